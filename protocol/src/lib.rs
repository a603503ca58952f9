//! oathkey-protocol: the daemon's public API as data.
//!
//! # Layout
//! - [`jsonrpc`]: JSON-RPC 2.0 envelopes (requests, responses, notifications, error objects).
//! - [`error`]: the stable error codes every frontend (socket, D-Bus) and client shares.
//! - [`codec`]: newline-delimited framing with a hard line-size limit.
//!
//! Wire rules: one JSON object per line, UTF-8, at most [`codec::MAX_LINE`] bytes. The protocol
//! version is [`PROTOCOL_VERSION`]; within a version, changes are additive only.

pub mod codec;
pub mod error;
pub mod jsonrpc;

pub use error::ErrorCode;

/// The version of the daemon's API. Bumped by hand for incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
