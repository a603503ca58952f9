//! CTAPHID: the FIDO USB HID framing (wire format) and its host side.

pub mod host;
pub mod wire;

pub use host::{CallOptions, CtapHid, InitInfo, Timeouts, Wait};
