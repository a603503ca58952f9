//! oathkey-protocol: the daemon's public API as data, and a client for it.
//!
//! # Layout
//! - [`jsonrpc`]: JSON-RPC 2.0 envelopes (requests, responses, notifications, error objects).
//! - [`error`]: the stable error codes every frontend (socket, D-Bus) and client shares.
//! - [`methods`]: every method once, its name tied to its params and result types.
//! - [`types`]: the params, results and events themselves (protocol version 1); the hash,
//!   [`types::Algorithm`], is `oathkey-otp`'s, shared with every crate.
//! - [`secret`]: secret text in messages, redacted and zeroized.
//! - [`codec`]: newline-delimited framing with a hard line-size limit.
//! - [`paths`]: where the daemon's socket is.
//! - [`client`]: a small blocking client (CLI, desktop, tests).
//!
//! Wire rules: one JSON object per line, UTF-8, at most [`codec::MAX_LINE`] bytes. The protocol
//! version is [`PROTOCOL_VERSION`]; within a version, changes are additive only. The whole API
//! is described for users in `docs/protocol.md`.

pub mod client;
pub mod codec;
pub mod error;
pub mod jsonrpc;
pub mod methods;
pub mod paths;
pub mod secret;
pub mod types;

pub use client::{Client, ClientError};
pub use error::ErrorCode;
pub use secret::SecretText;

/// The version of the daemon's API. Bumped by hand for incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
