//! Shared scaffolding of oathkey's integration tests and its benchmark program: one copy of
//! what several crates' tests need, so that a fix to a helper reaches every test. A
//! dev-dependency only (`publish = false`); nothing here is part of oathkey itself.
//!
//! # Layout
//! - [`bins`]: the workspace's programs, built fresh once per test process ([`bin`]); copies
//!   any uid may run ([`ForAnyone`]); whether we are root; the Python of the interop tests.
//! - [`daemon`]: a real `oathkeyd` process on a private socket and state directory
//!   ([`Daemon`], [`DaemonBuilder`]), with its log, clients, the CLI against it, signals.
//! - [`output`]: what a finished command did ([`Ran`]), [`assert_exit`] that shows the command,
//!   its directory, stdout and stderr when the exit code is wrong, and line waiting.
//! - [`users`]: the CLI run as another uid (`setpriv`), for the reader tests.
//! - [`raw`]: a raw socket connection that sends bytes and reads answer lines ([`Raw`]).
//! - [`steady`]: a reader that runs beside a test and counts what went wrong ([`Steady`]).
//! - [`udp_key`]: a virtual key served over UDP by `oathkey-emulator serve` ([`UdpKey`]).
//! - [`totp`]: the reference TOTP (totp-rs, independent of oathkey's own) and [`unix_now`].
//! - [`log`]: everything this process logs through `tracing`, captured for searching.
//! - [`needles`]: a secret in every form text can hold it in, searched for in logs and output.
//! - [`pcscd`]: a private pcscd (own mount namespace) with vsmartcard's vpcd reader, and the
//!   virtual smart card `oathkey-emulator serve --vpcd` in it ([`Pcscd`], [`pcscd::Emulator`]).
//! - [`mock`]: a mock Microsoft Graph (beta hardware OATH API) and sign-in service on
//!   127.0.0.1 ([`mock::Mock`]), for `oathkey-entra`'s tests and the CLI's `oathkey entra` tests.
//! - [`isolate`]: runs one test in a process of its own (for process-global state such as the
//!   log subscriber).

pub mod bins;
pub mod daemon;
pub mod isolate;
pub mod log;
pub mod mock;
pub mod needles;
pub mod output;
pub mod pcscd;
pub mod raw;
pub mod steady;
pub mod totp;
pub mod udp_key;
pub mod users;

pub use bins::{ForAnyone, bin, is_root, python};
pub use daemon::{Daemon, DaemonBuilder};
pub use output::{Ran, assert_exit, stderr, stdout, wait_for_line};
pub use pcscd::Pcscd;
pub use raw::Raw;
pub use steady::Steady;
pub use totp::{reference_totp, reference_totp_b32, unix_now};
pub use udp_key::UdpKey;
pub use users::{cli_as, cli_as_nobody};
