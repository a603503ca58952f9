//! oathkey-seedfile: seed files for OATH tokens, in the formats MFA services import, with the
//! rules each of them enforces.
//!
//! A seed file carries each token's serial, user and secret to the service that verifies its
//! codes. Services refuse files for reasons that are easy to get wrong (a Base64 secret, an
//! 8-digit token, a serial a spreadsheet turned into a number) and say so late, after upload.
//! This crate writes only what the target takes, refuses the rest with the reason and the row
//! (unless forced), reads every format back with a problem per bad row, and never panics on
//! any input.
//!
//! # Layout
//! - [`mod@record`]: [`TokenRecord`] and its [`Secret`], the common ground of every format;
//!   [`AlgorithmNames`], the seed files' spellings of `oathkey-otp`'s [`Algorithm`].
//! - [`mod@format`]: [`Format`], the five formats' names and extensions.
//! - [`mod@validate`]: [`Target`] rules and [`Problem`]s, with the table of which target wants what.
//! - [`mod@read`]: [`read()`] bytes in any format into records and problems, [`detect`] a
//!   format (or [`guess`] it with the file's name and target).
//! - [`mod@write`]: [`render()`] records in a format, refusing what the target would reject;
//!   [`render_checked`] also returns the problems `force` let through, with their lines.
//! - [`mod@encoding`]: text as editors save it (UTF-8, UTF-16), [`text_lines`] for files of
//!   lines such as `provision`'s users file.
//! - [`mod@file`]: [`write_file`] 0600 and atomically, with create/append/replace modes;
//!   [`read_path`].
//! - [`mod@otpauth`]: key URIs and QR codes of them ([`otpauth_uri`], [`qr_png`]).
//! - [`mod@upn`]: [`upn_problem`], the one rule for user principal names, and
//!   [`export_refusals`], what each export format would say about a user.
//! - [`mod@activate`]: [`check_code`], the check Azure makes when a token is activated, with
//!   `oathkey-otp`'s computation.
//! - `export` (feature `client`): seeds from oathkeyd's ledger to a file, the path the CLI and
//!   the desktop app share.
//! - The other formats, one module each, private behind [`read()`] and [`render()`]: Azure CSV
//!   (`azure`), PSKC (`pskc`), Graph JSON (`graph`), privacyIDEA CSV (`privacyidea`).

pub mod activate;
mod azure;
mod cells;
pub mod encoding;
#[cfg(feature = "client")]
pub mod export;
pub mod file;
pub mod format;
mod graph;
pub mod otpauth;
mod privacyidea;
mod pskc;
pub mod read;
pub mod record;
mod text;
pub mod upn;
pub mod validate;
pub mod write;

pub use activate::check_code;
pub use azure::AZURE_HEADER;
pub use encoding::{is_utf16, text_lines, utf16_text};
pub use file::{FileError, WriteMode, read_path, read_path_as, write_file};
pub use format::{Format, UnknownFormat};
pub use otpauth::{otpauth_uri, qr_png};
pub use pskc::PSKC_NAMESPACE;
pub use read::{
    Content, MAX_INPUT, Parsed, UTF16, content_of, detect, guess, read, read_as, unreadable,
};
pub use record::{Algorithm, AlgorithmNames, Kind, Secret, TokenRecord};
pub use upn::{export_refusals, is_guest, probe_record, upn_problem};
pub use validate::{MIN_SECRET_BYTES, Problem, ProblemKind, Target, validate, validate_numbered};
pub use write::{RenderError, Rendered, render, render_checked};
