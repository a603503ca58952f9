//! Keys: what is plugged in, its settings (the admin tool's Mode and Key Press), blinking,
//! claims for multi-step jobs, and access codes.

use oathkey_device::Setting;
use oathkey_protocol::types::{
    AccessCodeParams, Event, Hello, KeyFamily, KeyInfo, KeyList, Operation, SetConfigParams,
    Settings, UnlockParams,
};
use oathkey_protocol::{ErrorCode, PROTOCOL_VERSION};
use secrecy::SecretString;
use tracing::info;

use super::{Result, Service, ServiceError, device_error};
use crate::auth::Caller;
use crate::keys::KeyEntry;

impl Service {
    /// `hello`.
    pub fn hello(&self, caller: &Caller) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            daemon: env!("CARGO_PKG_VERSION").to_string(),
            role: caller.role,
            uid: caller.uid,
        }
    }

    /// `keys.list`.
    pub fn keys(&self, _caller: &Caller) -> KeyList {
        KeyList {
            keys: self.registry.list().iter().map(|e| e.info()).collect(),
            unavailable: self.registry.unavailable(),
        }
    }

    /// `keys.info`.
    pub fn key_info(&self, _caller: &Caller, id: Option<&str>) -> Result<KeyInfo> {
        Ok(self.key(id)?.info())
    }

    /// `keys.wink`.
    pub async fn wink(&self, _caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.key(id)?;
        entry
            .actor
            .run(Operation::Wink, None, |k| k.wink())
            .await
            .map_err(|e| device_error(&entry.id, e))
    }

    /// `keys.get_config`.
    pub fn get_config(&self, _caller: &Caller, id: Option<&str>) -> Result<Settings> {
        Ok(self.key(id)?.settings())
    }

    /// `keys.set_config` (admin): each change needs a touch of the key.
    pub async fn set_config(&self, caller: &Caller, p: SetConfigParams) -> Result<Settings> {
        Self::require_admin(caller, "changing a key's settings")?;
        let entry = self.key(p.key.as_deref())?;
        Self::check_claim(&entry, caller)?;
        let current = entry.settings();
        let wanted = [
            (Setting::ModeKeyboard, p.keyboard, current.keyboard),
            (Setting::ModeU2f, p.u2f, current.u2f),
            (Setting::OtpKeyPress, p.key_press, current.key_press),
        ];
        if wanted.iter().all(|(_, new, _)| new.is_none()) {
            return Ok(current);
        }
        for (setting, new, now) in wanted {
            if new.is_some() && now.is_none() {
                return Err(ServiceError::new(
                    ErrorCode::Unsupported,
                    unsupported_setting(&entry.id, entry.info().family, setting),
                ));
            }
        }
        let keyboard = p.keyboard.or(current.keyboard);
        let u2f = p.u2f.or(current.u2f);
        if keyboard == Some(false) && u2f == Some(false) {
            return Err(ServiceError::params(
                "Mode needs at least one of Keyboard and U2F: a key with neither cannot be reached",
            ));
        }
        // Enable before disabling, so the key never passes through a state it refuses.
        let mut changes: Vec<(Setting, bool)> = wanted
            .iter()
            .filter_map(|(s, new, now)| new.filter(|v| Some(*v) != *now).map(|v| (*s, v)))
            .collect();
        changes.sort_by_key(|(_, v)| !*v);
        let mut settings = current;
        for (setting, value) in changes {
            entry
                .actor
                .run(Operation::Config, None, move |k| {
                    k.set_setting(setting, value)
                })
                .await
                .map_err(|e| device_error(&entry.id, e))?;
            match setting {
                Setting::ModeKeyboard => settings.keyboard = Some(value),
                Setting::ModeU2f => settings.u2f = Some(value),
                Setting::OtpKeyPress => settings.key_press = Some(value),
            }
            entry.set_settings(settings);
        }
        info!(key = %entry.id, ?settings, uid = ?caller.uid, "settings changed");
        let _ = self.registry.events().send(Event::ConfigChanged {
            key: entry.id.clone(),
            settings,
        });
        Ok(settings)
    }

    /// `keys.claim` (admin).
    pub fn claim(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        Self::require_admin(caller, "claiming a key")?;
        let entry = self.key(id)?;
        let was_claimed = entry.claimant().is_some();
        entry.claim(caller.conn).map_err(|_| {
            ServiceError::new(
                ErrorCode::Claimed,
                format!("key {} is already claimed by another client", entry.id),
            )
        })?;
        if !was_claimed {
            let _ = self.registry.events().send(Event::ClaimChanged {
                key: entry.id.clone(),
                claimed: true,
            });
        }
        Ok(())
    }

    /// `keys.release`.
    pub fn release(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.key(id)?;
        if entry.release(caller.conn) {
            let _ = self.registry.events().send(Event::ClaimChanged {
                key: entry.id.clone(),
                claimed: false,
            });
            Ok(())
        } else {
            Err(ServiceError::params(format!(
                "you hold no claim on key {}",
                entry.id
            )))
        }
    }

    /// A connection closed: its claims end.
    pub fn disconnected(&self, conn: u64) {
        self.registry.release_claims(conn);
    }

    /// `keys.unlock` (admin): gives a key its access code. The key's driver keeps only the key
    /// derived from it, in memory, until the key goes away or the daemon stops.
    pub async fn unlock(&self, caller: &Caller, p: UnlockParams) -> Result<()> {
        Self::require_admin(caller, "unlocking a key")?;
        let entry = self.key(p.key.as_deref())?;
        Self::check_access_code(&entry)?;
        let code = SecretString::from(p.code.expose().to_string());
        let locked = entry
            .actor
            .run(Operation::AccessCode, None, move |k| {
                k.unlock(&code)?;
                Ok(k.locked())
            })
            .await
            .map_err(|e| device_error(&entry.id, e))?;
        self.lock_changed(&entry, locked);
        info!(key = %entry.id, uid = ?caller.uid, "key unlocked");
        Ok(())
    }

    /// `keys.set_access_code` (admin): sets or clears a key's access code.
    pub async fn set_access_code(&self, caller: &Caller, p: AccessCodeParams) -> Result<()> {
        Self::require_admin(caller, "changing a key's access code")?;
        let entry = self.key(p.key.as_deref())?;
        Self::check_claim(&entry, caller)?;
        Self::check_access_code(&entry)?;
        let setting = p.code.is_some();
        let code = p.code.map(|c| SecretString::from(c.expose().to_string()));
        let locked = entry
            .actor
            .run(Operation::AccessCode, None, move |k| {
                k.set_access_code(code.as_ref())?;
                Ok(k.locked())
            })
            .await
            .map_err(|e| device_error(&entry.id, e))?;
        self.lock_changed(&entry, locked);
        info!(key = %entry.id, uid = ?caller.uid, set = setting, "access code changed");
        Ok(())
    }

    fn check_access_code(entry: &KeyEntry) -> Result<()> {
        let info = entry.info();
        if info.capabilities.access_code {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::Unsupported,
            format!(
                "key {} ({}, {}) has no access code",
                entry.id,
                info.model,
                info.family.name()
            ),
        ))
    }

    fn lock_changed(&self, entry: &KeyEntry, locked: bool) {
        entry.invalidate_tokens();
        if entry.set_locked(locked) {
            let _ = self.registry.events().send(Event::LockChanged {
                key: entry.id.clone(),
                locked,
            });
        }
    }
}

/// Says plainly, in the admin tool's words, that a key lacks a setting, and what to do instead.
fn unsupported_setting(id: &str, family: KeyFamily, setting: Setting) -> String {
    let name = match setting {
        Setting::ModeKeyboard => "Mode: Keyboard",
        Setting::ModeU2f => "Mode: U2F",
        Setting::OtpKeyPress => "Key Press",
    };
    match (family, setting) {
        (KeyFamily::YkoathPcsc, Setting::OtpKeyPress) => format!(
            "key {id} has no Key Press setting: on a YubiKey (and any YKOATH key) touch is a \
             property of each token; create tokens with `oathkey token new --touch`"
        ),
        _ => format!(
            "key {id} ({}) cannot change {name}: this key does not have that setting",
            family.name()
        ),
    }
}
