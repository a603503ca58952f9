//! The YKOATH family: OATH smart cards over CCID (YubiKey 5 and 4, Nitrokey 3 over CCID, other
//! trussed keys), reached through PC/SC (`crate::pcsc`, feature `pcsc`) and shared with other
//! applications.
//!
//! # Layout
//! - [`channel`]: the seam to the card, [`CardChannel`]: one transaction per operation, and
//!   the polite back-off while another application holds the card exclusively
//!   ([`SharingPolicy`]).
//! - [`wire`]: short APDUs with the status word last, response chaining (`61 xx`) and wrong-Le
//!   (`6C xx`) handling.
//! - [`proto`]: the OATH application's requests and answers as data, and the two dialects
//!   ([`Dialect`]): what is the same as the Nitrokey 3 dialect comes from [`crate::oath`].
//! - [`access`]: the access code (PBKDF2 key, mutual VALIDATE, SET CODE).
//! - [`management`]: the YubiKey Management application: serial, form factor, and the USB
//!   applications behind the admin tool's "Mode: Keyboard / U2F".
//! - [`driver`]: [`YkoathKey`], the [`crate::KeyDriver`] of the family.
//!
//! The commands, quirks and settings mapping are described in `docs/device.md`.

pub mod access;
pub mod channel;
pub mod driver;
pub mod management;
pub mod proto;
pub mod wire;

pub use access::AccessKey;
pub use channel::{Attempt, CardChannel, CardLink, SharingPolicy};
pub use driver::{CardModel, YkoathKey};
pub use proto::{Dialect, YkSelect};
