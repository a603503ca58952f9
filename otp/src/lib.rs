//! oathkey-otp: the one OATH computation every oathkey crate shares.
//!
//! The virtual key computes its codes with it, the daemon checks a freshly written token
//! against it, and the seed-file tools check activation codes with it, so a difference between
//! "what the key computes" and "what we expect" can only come from the key or the seed, never
//! from two implementations disagreeing. Independent implementations (totp-rs, oathtool,
//! pyotp) stay in the tests, as checks of this one.
//!
//! This crate sits below every other oathkey crate and knows nothing of keys, files or the
//! daemon.
//!
//! # Layout
//! - [`algorithm`]: [`Algorithm`], the HMAC hash, with the lowercase names the protocol and the
//!   seed ledger use (`sha1`, `sha256`, `sha512`). Encodings owned by one party stay with it:
//!   the key's nibble in `oathkey-device`, the otpauth and loose spellings in
//!   `oathkey-seedfile`.
//! - [`compute`]: HMAC, RFC 4226 dynamic truncation, [`hotp`] and [`totp`] (RFC 6238, any
//!   period, 1 to 10 digits, secrets of any length: no 128-bit rule).
//! - [`base32`]: [`decode_base32`], secrets as people write them, with typed errors that
//!   never quote the text.

pub mod algorithm;
pub mod base32;
pub mod compute;

pub use algorithm::Algorithm;
pub use base32::{Base32Error, decode_base32};
pub use compute::{MAX_DIGITS, ParamError, code, hmac, hotp, totp, truncate, truncated};
