//! Keys: what is plugged in, its settings (the admin tool's Mode and Key Press), blinking,
//! and claims for multi-step jobs.

use oathkey_device::Setting;
use oathkey_protocol::types::{
    Event, Hello, KeyInfo, KeyList, Operation, SetConfigParams, Settings,
};
use oathkey_protocol::{ErrorCode, PROTOCOL_VERSION};
use tracing::info;

use super::{Result, Service, ServiceError, device_error};
use crate::auth::Caller;

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
                    format!("key {} has no {setting} setting", entry.id),
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
}
