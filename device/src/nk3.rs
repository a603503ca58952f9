//! The Nitrokey 3 family: the secrets app over the FIDO HID interface ([`Key`], CTAPHID vendor
//! command 0x70) and the admin app's settings (0x72), behind the [`KeyDriver`] seam.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use oathkey_otp::Algorithm;

use crate::admin::Setting;
use crate::ctaphid::wire::capability;
use crate::error::Error;
use crate::family::{Capabilities, Family, Identity, KeyDriver};
use crate::key::{Key, TouchHook, TouchWait};
use crate::model::Model;
use crate::oath::{CredentialInfo, NewCredential, Otp};
use crate::transport::Transport;

/// A Nitrokey 3 (or the virtual key speaking its dialect) as a [`KeyDriver`].
pub struct Nk3Key<T> {
    key: Key<T>,
    /// The admin tool's settings the key has, found when it was opened.
    settings: Vec<Setting>,
}

impl<T> std::fmt::Debug for Nk3Key<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nk3Key")
            .field("key", &self.key)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<T: Transport> Nk3Key<T> {
    /// Takes an opened key into the family, finding which settings it has (a key without the
    /// admin app, or an older firmware, has fewer).
    pub fn new(mut key: Key<T>) -> Self {
        let settings = Setting::ALL
            .into_iter()
            .filter(|s| match key.setting(*s) {
                Ok(_) => true,
                Err(Error::Unsupported(_)) => false,
                Err(e) => {
                    tracing::debug!("reading {s}: {e}");
                    false
                }
            })
            .collect();
        Self { key, settings }
    }

    /// The driver underneath (tests, fault injection).
    pub fn key_mut(&mut self) -> &mut Key<T> {
        &mut self.key
    }
}

impl<T: Transport + Send> KeyDriver for Nk3Key<T> {
    fn family(&self) -> Family {
        Family::Nk3Hid
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            codes: true,
            create: true,
            delete: true,
            // The credential-update command can rename, but it is not driven yet.
            rename: false,
            touch: true,
            hotp: true,
            // The Nitrokey 3 secrets app has no HMAC-SHA-512.
            algorithms: vec![Algorithm::Sha1, Algorithm::Sha256],
            settings: self.settings.clone(),
            // Its PIN protects single credentials; there is no YKOATH access code.
            access_code: false,
            wink: self
                .key
                .init_info()
                .is_some_and(|i| i.capabilities & capability::WINK != 0),
        }
    }

    fn identity(&self) -> Identity {
        let app = self.key.app_info();
        let device = self.key.device_info();
        let model = match Model::identify(device) {
            Some(m) => m.name().to_string(),
            None => device
                .product
                .clone()
                .unwrap_or_else(|| "unknown key".into()),
        };
        Identity {
            serial: app.serial_hex(),
            model,
            firmware: format!("{}.{}.{}", app.version.0, app.version.1, app.version.2),
            path: device.path.clone(),
            pin_set: app.pin_retries.is_some(),
        }
    }

    fn list(&mut self) -> Result<Vec<CredentialInfo>, Error> {
        self.key.list(None)
    }

    fn calculate(&mut self, name: &str, challenge: u64, touch: TouchWait) -> Result<Otp, Error> {
        self.key.calculate(name, challenge, touch, None)
    }

    fn totp(&mut self, name: &str, unix_time: u64, touch: TouchWait) -> Result<Otp, Error> {
        self.key.totp(name, unix_time, touch, None)
    }

    fn put(&mut self, credential: &NewCredential) -> Result<(), Error> {
        if credential.algorithm == Algorithm::Sha512 {
            return Err(self.unsupported("HMAC-SHA-512"));
        }
        self.key.put(credential, None)
    }

    fn delete(&mut self, name: &str) -> Result<(), Error> {
        self.key.delete(name, None)
    }

    fn setting(&mut self, setting: Setting) -> Result<bool, Error> {
        if !self.settings.contains(&setting) {
            return Err(self.unsupported(&format!("the {setting} setting")));
        }
        self.key.setting(setting)
    }

    fn set_setting(&mut self, setting: Setting, value: bool) -> Result<(), Error> {
        if !self.settings.contains(&setting) {
            return Err(self.unsupported(&format!("the {setting} setting")));
        }
        self.key.set_setting(setting, value)
    }

    fn wink(&mut self) -> Result<(), Error> {
        self.key.wink()
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.key.reset()
    }

    fn ping(&mut self) -> Result<(), Error> {
        self.key.ping(b"oathkeyd")
    }

    fn set_cancel_flag(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.key.set_cancel_flag(flag);
    }

    fn set_touch_hook(&mut self, hook: Option<TouchHook>) {
        self.key.set_touch_hook(hook);
    }
}
