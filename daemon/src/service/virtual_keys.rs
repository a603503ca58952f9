//! In-process virtual keys: unplug, plug back, press the button (admins, for tests and demos).

use std::sync::Arc;

use oathkey_protocol::ErrorCode;

use super::{Result, Service, ServiceError};
use crate::auth::Caller;
use crate::keys::KeyEntry;
use crate::keys::sources::attach_virtual;

impl Service {
    pub(super) fn virtual_key(&self, caller: &Caller, id: Option<&str>) -> Result<Arc<KeyEntry>> {
        Self::require_admin(caller, "controlling a virtual key")?;
        let entry = self.key(id)?;
        if entry.virtual_handle.is_none() {
            return Err(ServiceError::new(
                ErrorCode::Unsupported,
                format!("key {} is not an in-process virtual key", entry.id),
            ));
        }
        Ok(entry)
    }

    /// `virtual.unplug` (admin).
    pub fn virtual_unplug(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.virtual_key(caller, id)?;
        if let Some(handle) = &entry.virtual_handle {
            handle.unplug();
            self.registry.park(&entry.id, handle.clone());
        }
        self.registry.remove(&entry.id, None);
        Ok(())
    }

    /// `virtual.plug` (admin).
    pub async fn virtual_plug(&self, caller: &Caller, id: Option<&str>) -> Result<String> {
        Self::require_admin(caller, "controlling a virtual key")?;
        let id =
            id.ok_or_else(|| ServiceError::params("name the unplugged virtual key with `key`"))?;
        let handle = self.registry.unpark(id).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::KeyNotFound,
                format!("no unplugged virtual key {id}"),
            )
        })?;
        handle.replug();
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || attach_virtual(&registry, handle))
            .await
            .map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(|e| ServiceError::new(ErrorCode::DeviceError, e.to_string()))
    }

    /// `virtual.press` (admin): whether a request was waiting for the touch.
    pub fn virtual_press(&self, caller: &Caller, id: Option<&str>) -> Result<bool> {
        let entry = self.virtual_key(caller, id)?;
        Ok(entry.virtual_handle.as_ref().is_some_and(|h| h.press()))
    }
}
