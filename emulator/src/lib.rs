//! oathkey-emulator: the virtual key, the device side of the OTP key protocol.
//!
//! A behavioural model of a Nitrokey 3-class key (CTAPHID + OATH secrets app + admin app) with
//! the vendor tool's Mode and Key Press settings, and of the same key as a smart card behind
//! PC/SC (a YubiKey 5-like card or a Nitrokey 3 over CCID), so that every part of oathkey runs
//! and is tested on machines with no key attached.
//!
//! # Layout
//! - [`config`]: profile, touch policy, timings, and the injectable clock.
//! - [`state`]: the persistent "flash" (credentials, PIN, settings) and its atomic state file.
//! - [`apdu`]: device-side APDU and BER-TLV parsing, answers with the status word first.
//! - [`secrets`]: the OATH secrets app: checks, touch points and status words of the real app.
//!   Codes come from `oathkey-otp`, the computation every crate shares (the daemon checks a
//!   new token with it), so the tests hold the key to independent implementations instead.
//! - [`admin`]: the admin app: STATUS and the configuration fields.
//! - [`faults`]: dropped, corrupted, duplicated and stalled reports; a busy key.
//! - [`device`]: [`VirtualKey`], the core: channels, reassembly, arbitration, touch waits.
//! - The smart-card face, sharing the state file and the touch policy: [`card`] ([`Card`], the
//!   APDU-level card: applet selection, command and response chaining, touch waits, the
//!   `yubikey` and `nk3` profiles), [`ykoath`] (the YubiKey's OATH app: access code, CALCULATE
//!   ALL, RENAME) and [`management`] (the YubiKey Management app: USB applications = Mode).
//! - Fronts that move reports in and out of the core: [`inproc`] (a `Transport` for the
//!   device crate), [`udp`] (the server of datagrams, for external tools and for
//!   `oathkeyd --udp-key`, whose host side is the device crate's `UdpTransport`) and, on Linux,
//!   `uhid` (a real kernel HID device, `/dev/hidrawN`); for the card, [`vpcd`] (the TCP client
//!   of vsmartcard's vpcd reader driver: the card appears to pcscd and every PC/SC application).

pub mod admin;
pub mod apdu;
pub mod card;
pub mod config;
pub mod device;
pub mod faults;
pub mod inproc;
pub mod management;
pub mod secrets;
pub mod state;
pub mod udp;
#[cfg(target_os = "linux")]
pub mod uhid;
pub mod vpcd;
pub mod ykoath;

pub use card::{Card, CardProfile};
pub use config::{Clock, Config, ManualClock, Profile, SystemClock, TouchPolicy};
pub use device::VirtualKey;
pub use faults::Faults;
pub use inproc::{VirtualKeyHandle, VirtualTransport};
pub use state::{KeyState, StateFile};
