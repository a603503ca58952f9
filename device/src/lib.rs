//! oathkey-device: talking to programmable OTP keys.
//!
//! # Layout
//! The layers, from the wire up; each only uses the ones before it:
//! - [`transport`]: the one seam to the operating system, a trait that moves 64-byte HID reports.
//!   The host transports implement it: [`hid`] with hidapi for real keys, [`udp`] for a virtual
//!   key served over UDP by another process (`oathkey-emulator serve --udp`). The emulator crate
//!   implements it in-process for the virtual key.
//! - [`ctaphid`]: the FIDO CTAPHID framing ([`ctaphid::wire`], shared with the virtual key) and
//!   its host side ([`ctaphid::host`]): channels, fragmentation, busy retries, resync.
//! - [`apdu`]: ISO 7816 command APDUs, status words and TLVs, as the apps use them.
//! - [`oath`]: the OATH secrets app (vendor command 0x70) as data: requests and answers; the
//!   key's encoding ([`AlgorithmBits`]) of the hash type every crate shares ([`Algorithm`], from
//!   `oathkey-otp`), and codes from the key's truncated values with `oathkey-otp`'s reduction.
//! - [`admin`]: the admin app (vendor command 0x72): status and the Mode / Key Press fields.
//! - [`key`]: [`Key`], the typed driver that puts it all together and maps status words to
//!   [`Error`]s.
//! - [`family`]: the key-family seam, [`KeyDriver`]: what the daemon asks of a key of any
//!   family, with its [`Capabilities`]. One module per family implements it: [`nk3`] (the
//!   Nitrokey 3 secrets app over CTAPHID, with [`Key`] above) and [`ykoath`] (YKOATH smart
//!   cards over CCID: YubiKey, Nitrokey 3 over CCID; [`YkoathKey`]).
//! - [`ykoath`] has its own seam to the card, [`ykoath::CardChannel`] (one transaction per
//!   operation), so its protocol is tested without pcscd; `pcsc` (feature `pcsc`) implements
//!   it over pcsc-lite, shared with other applications, and watches readers come and go
//!   (`pcsc::ReaderMonitor`).
//! - [`label`]: the token name convention `[period/]serial:account`.
//! - [`model`]: which keys are supported, by USB ID.
//!
//! The layering, the label convention and the config fields are described for users in
//! `docs/device.md`.

pub mod admin;
pub mod apdu;
pub mod ctaphid;
pub mod error;
pub mod family;
#[cfg(feature = "hid")]
pub mod hid;
pub mod key;
pub mod label;
pub mod model;
pub mod nk3;
pub mod oath;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod transport;
pub mod udp;
pub mod ykoath;

pub use admin::Setting;
pub use ctaphid::Timeouts;
pub use error::Error;
pub use family::{Capabilities, DynKey, Family, Identity, KeyDriver};
pub use key::{Key, TouchHook, TouchWait};
pub use label::TokenLabel;
pub use model::Model;
pub use nk3::Nk3Key;
pub use oath::{Algorithm, AlgorithmBits, CredentialInfo, NewCredential, Otp, OtpKind, SelectInfo};
pub use transport::{DeviceInfo, Transport, TransportError};
pub use udp::UdpTransport;
pub use ykoath::{CardChannel, YkoathKey};
