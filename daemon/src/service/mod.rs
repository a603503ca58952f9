//! The service core: every operation the daemon offers, with its authorization. Frontends
//! (JSON-RPC on the socket, D-Bus) only translate; nothing here knows which one called.
//!
//! One [`Service`] type, one `impl` block per concern:
//! - this file: the type, callers and their roles, finding a key, claims checks;
//! - [`error`]: [`ServiceError`] and how device and ledger errors map to it;
//! - [`keys`]: keys, settings, blinking, claims;
//! - [`tokens`]: token lists (cached), the ledger kept true to them, search, delete;
//! - [`codes`]: codes and the touch-wait rules;
//! - [`seeding`]: write-ahead seeding, verification, reconciliation;
//! - [`seeds`]: the seeds API (list, export, mark exported, purge);
//! - [`virtual_keys`]: in-process virtual key control.

mod codes;
mod error;
mod keys;
mod seeding;
mod seeds;
mod tokens;
mod virtual_keys;

use std::sync::{Arc, RwLock};

use oathkey_protocol::ErrorCode;
use oathkey_protocol::types::{Event, Role};
use tokio::sync::broadcast;

use crate::auth::{Authorizer, Caller};
use crate::keys::{KeyEntry, Registry};
use crate::ledger::{Ledger, LedgerError};
use error::ledger_error;

pub use codes::{READER_TOUCH_WAITS, touch_wait};
pub use error::{ServiceError, device_error};
pub use seeding::decode_base32;
pub use tokens::token_info;

type Result<T> = std::result::Result<T, ServiceError>;

/// The daemon's operations.
#[derive(Debug)]
pub struct Service {
    registry: Arc<Registry>,
    auth: RwLock<Authorizer>,
    ledger: Arc<Ledger>,
    /// One reconciliation at a time: a key's records are settled once, not twice in parallel.
    reconciling: tokio::sync::Mutex<()>,
}

impl Service {
    /// A service over `registry` with the given admin rules, recording seeds in `ledger`.
    pub fn new(registry: Arc<Registry>, auth: Authorizer, ledger: Arc<Ledger>) -> Self {
        Self {
            registry,
            auth: RwLock::new(auth),
            ledger,
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// The seed ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Runs a ledger write off the async threads (it fsyncs).
    pub(super) async fn ledger_do<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> std::result::Result<T, LedgerError> + Send + 'static,
    ) -> Result<T> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || f(&ledger))
            .await
            .map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(ledger_error)
    }

    /// The key registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Replaces the admin rules (SIGHUP).
    pub fn set_authorizer(&self, auth: Authorizer) {
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = auth;
    }

    /// Builds the caller for a connection from its peer credentials.
    pub fn caller(
        &self,
        conn: u64,
        uid: Option<u32>,
        gid: Option<u32>,
        pid: Option<i32>,
    ) -> Caller {
        let role = self
            .auth
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .role(uid, gid);
        Caller {
            conn,
            uid,
            gid,
            pid,
            role,
            frontend: Default::default(),
        }
    }

    pub(super) fn require_admin(caller: &Caller, what: &str) -> Result<()> {
        if caller.is_admin() {
            Ok(())
        } else {
            caller.log_denied(&format!("{what} needs an admin"));
            Err(ServiceError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "{what} needs an admin; ask your administrator (admins are root and the configured admin users and groups)"
                ),
            ))
        }
    }

    pub(super) fn check_claim(entry: &KeyEntry, caller: &Caller) -> Result<()> {
        match entry.claimant() {
            Some(conn) if conn != caller.conn => Err(ServiceError::new(
                ErrorCode::Claimed,
                format!(
                    "key {} is claimed by another client for a multi-step job; try again when it is done",
                    entry.id
                ),
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn key(&self, id: Option<&str>) -> Result<Arc<KeyEntry>> {
        match id {
            Some(id) => self.registry.get(id).ok_or_else(|| {
                let present: Vec<String> =
                    self.registry.list().iter().map(|e| e.id.clone()).collect();
                ServiceError::new(
                    ErrorCode::KeyNotFound,
                    if present.is_empty() {
                        format!("no key {id}: no key is plugged in")
                    } else {
                        format!("no key {id}; present: {}", present.join(", "))
                    },
                )
            }),
            None => {
                let keys = self.registry.list();
                match keys.as_slice() {
                    [] => Err(ServiceError::new(
                        ErrorCode::KeyNotFound,
                        "no key is plugged in",
                    )),
                    [one] => Ok(one.clone()),
                    many => Err(ServiceError::params(format!(
                        "{} keys are present ({}); choose one (oathkey --key ID, or the `key` param)",
                        many.len(),
                        many.iter()
                            .map(|e| e.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }

    /// Events for subscribers.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.registry.events().subscribe()
    }

    /// Whether `caller` is an admin (for frontends that filter by role).
    pub fn role(&self, caller: &Caller) -> Role {
        caller.role
    }
}
