//! The key-family seam: everything the daemon asks of a key, whatever protocol it speaks.
//!
//! A family is one driver module (the Nitrokey 3 secrets app over CTAPHID in [`crate::key`];
//! YKOATH over PC/SC in the `ykoath` module) that implements [`KeyDriver`]. The daemon drives
//! every key through this trait and nothing else, so a new family is one new module: its
//! [`Capabilities`] say what it can do, and what it cannot is a typed
//! [`Error::Unsupported`] that names the family, never a protocol error.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use oathkey_otp::Algorithm;
use secrecy::SecretString;

use crate::admin::Setting;
use crate::error::Error;
use crate::key::{TouchHook, TouchWait};
use crate::label::TokenLabel;
use crate::oath::{CredentialInfo, NewCredential, Otp};

/// Which protocol a key speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// The Nitrokey 3 secrets app over the FIDO HID interface (CTAPHID vendor command 0x70).
    Nk3Hid,
    /// YKOATH over CCID through PC/SC (YubiKey 5, Nitrokey 3 and other trussed keys).
    YkoathPcsc,
}

impl Family {
    /// Every family, for documentation and tests.
    pub const ALL: [Family; 2] = [Family::Nk3Hid, Family::YkoathPcsc];

    /// The stable name (also on the wire).
    pub const fn name(self) -> &'static str {
        match self {
            Family::Nk3Hid => "nk3-hid",
            Family::YkoathPcsc => "ykoath-pcsc",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a key can do. A client shows only what is there; a request for the rest is refused
/// with [`Error::Unsupported`] before anything is sent to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Computes codes the host can read (false for a display-only token).
    pub codes: bool,
    /// Writes new tokens.
    pub create: bool,
    /// Deletes tokens.
    pub delete: bool,
    /// Renames a token in place.
    pub rename: bool,
    /// Tokens can require a touch for every code.
    pub touch: bool,
    /// Counter-based (HOTP) tokens.
    pub hotp: bool,
    /// The hash functions it computes with.
    pub algorithms: Vec<Algorithm>,
    /// The admin tool's device settings it has (Mode: Keyboard, U2F; Key Press).
    pub settings: Vec<Setting>,
    /// An access code (password) can lock its tokens.
    pub access_code: bool,
    /// It can blink to show which key it is.
    pub wink: bool,
}

/// Who a key is, as it says when opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its serial number, when it tells one: 8 hex digits for the Nitrokey 3 secrets app (over
    /// HID or CCID); decimal for a YubiKey, as printed on it and shown by ykman.
    pub serial: Option<String>,
    /// Model name.
    pub model: String,
    /// The OATH application's version, such as `4.13.0`.
    pub firmware: String,
    /// Where it is: a hidraw node, `virtual:...`, `udp://...`, a PC/SC reader name.
    pub path: String,
    /// Whether a PIN is set (Nitrokey 3 secrets app).
    pub pin_set: bool,
}

/// A key of any family, as the daemon drives it. One key per value; the daemon's actor for the
/// key owns it and calls it from one thread at a time.
pub trait KeyDriver: Send {
    /// Its family.
    fn family(&self) -> Family;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Who it is (as of opening).
    fn identity(&self) -> Identity;

    /// Whether its tokens are locked behind an access code not given yet (see
    /// [`KeyDriver::unlock`]); listing and codes then fail with [`Error::Locked`].
    fn locked(&self) -> bool {
        false
    }

    /// Its tokens.
    fn list(&mut self) -> Result<Vec<CredentialInfo>, Error>;

    /// The code of `name` for the challenge (the TOTP time step; ignored by HOTP).
    fn calculate(&mut self, name: &str, challenge: u64, touch: TouchWait) -> Result<Otp, Error>;

    /// The TOTP code of `name` at `unix_time`, with the period its label carries.
    fn totp(&mut self, name: &str, unix_time: u64, touch: TouchWait) -> Result<Otp, Error> {
        let period = u64::from(TokenLabel::parse(name).period.max(1));
        self.calculate(name, unix_time / period, touch)
    }

    /// Writes a new token.
    fn put(&mut self, credential: &NewCredential) -> Result<(), Error>;

    /// Deletes a token.
    fn delete(&mut self, name: &str) -> Result<(), Error>;

    /// Renames a token, keeping its seed.
    fn rename(&mut self, _name: &str, _new_name: &str) -> Result<(), Error> {
        Err(self.unsupported("renaming a token"))
    }

    /// One of the admin tool's settings.
    fn setting(&mut self, setting: Setting) -> Result<bool, Error> {
        Err(self.unsupported(&format!("the {setting} setting")))
    }

    /// Changes one of the admin tool's settings (may wait for a touch).
    fn set_setting(&mut self, setting: Setting, _value: bool) -> Result<(), Error> {
        Err(self.unsupported(&format!("the {setting} setting")))
    }

    /// Blinks.
    fn wink(&mut self) -> Result<(), Error> {
        Err(self.unsupported("blinking"))
    }

    /// Wipes every token (and the PIN or access code) as the family's own reset does; a touch
    /// may be needed.
    fn reset(&mut self) -> Result<(), Error> {
        Err(self.unsupported("a reset"))
    }

    /// Checks that the key still answers (keys whose removal nothing else notices).
    fn ping(&mut self) -> Result<(), Error>;

    /// Unlocks tokens protected by an access code, for as long as the key stays connected.
    fn unlock(&mut self, _code: &SecretString) -> Result<(), Error> {
        Err(self.unsupported("an access code"))
    }

    /// Sets (`Some`) or clears (`None`) the access code.
    fn set_access_code(&mut self, _code: Option<&SecretString>) -> Result<(), Error> {
        Err(self.unsupported("an access code"))
    }

    /// Sets the flag that cancels the request in progress when raised.
    fn set_cancel_flag(&mut self, flag: Option<Arc<AtomicBool>>);

    /// Sets the callback told before the key waits for a touch.
    fn set_touch_hook(&mut self, hook: Option<TouchHook>);

    /// The error for something this family cannot do.
    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported(format!("{what}: {} keys cannot", self.family()))
    }
}

/// A key of any family.
pub type DynKey = Box<dyn KeyDriver>;
