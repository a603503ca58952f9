//! Who calls over D-Bus: the caller's uid as the bus tells it (never anything the caller says
//! about itself, never the daemon's own identity), a connection id per unique bus name for
//! claims, and polkit where it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use zbus::Variant as Value;
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::BusName;

use super::error::DbusError;
use crate::auth::{Caller, Frontend, next_conn_id};
use crate::service::Service;

/// Polkit's authority.
#[zbus::proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
trait Authority {
    /// Asks whether `subject` may perform `action_id`.
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, Value<'_>>),
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

/// Polkit flag: the user may be asked to authenticate.
const ALLOW_USER_INTERACTION: u32 = 1;

/// Polkit action ids, one per privileged verb (declared in packaging/polkit).
pub mod action {
    /// Read codes and list tokens.
    pub const READ_CODES: &str = "org.oathkey.read-codes";
    /// Change Mode / Key Press.
    pub const CONFIGURE_KEY: &str = "org.oathkey.configure-key";
    /// Create a token.
    pub const CREATE_TOKEN: &str = "org.oathkey.create-token";
    /// Delete a token.
    pub const DELETE_TOKEN: &str = "org.oathkey.delete-token";
    /// Claim a key for a multi-step job.
    pub const CLAIM_KEY: &str = "org.oathkey.claim-key";
}

/// Maps bus names to callers.
#[derive(Debug)]
pub struct Callers {
    service: Arc<Service>,
    /// unique bus name -> (connection id, uid)
    known: Mutex<HashMap<String, (u64, u32)>>,
    /// unique bus name -> set to true when the name leaves the bus; only for names with a call
    /// in flight that may wait on the key.
    leaving: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Callers {
    /// An empty map.
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            known: Mutex::default(),
            leaving: Mutex::default(),
        }
    }

    /// Runs `call` until it ends or its caller leaves the bus, whichever comes first. Dropping
    /// the call cancels it in the service core (a touch wait ends at once), as a socket client's
    /// disconnect does; a D-Bus method call outlives its caller otherwise.
    pub async fn unless_caller_leaves<T>(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
        call: impl Future<Output = Result<T, DbusError>>,
    ) -> Result<T, DbusError> {
        let Some(sender) = header.sender().map(|s| s.to_string()) else {
            return call.await;
        };
        let mut left = self
            .leaving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(sender.clone())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        // The name may have gone before the watch existed; the bus knows.
        if !self.still_on_bus(conn, header).await {
            self.vanished(&sender);
        }
        tokio::select! {
            result = call => result,
            _ = left.wait_for(|gone| *gone) => {
                tracing::debug!(caller = %sender, "the caller left the bus; its call is cancelled");
                Err(DbusError::Cancelled("the caller left the bus".into()))
            }
        }
    }

    /// Whether the sender of a call still has its name on the bus (true when unsure).
    pub async fn still_on_bus(&self, conn: &zbus::Connection, header: &Header<'_>) -> bool {
        let Some(sender) = header.sender().map(|s| s.to_string()) else {
            return true;
        };
        match (
            DBusProxy::new(conn).await,
            BusName::try_from(sender.as_str()),
        ) {
            (Ok(dbus), Ok(name)) => dbus.name_has_owner(name).await.unwrap_or(true),
            _ => true,
        }
    }

    /// The caller behind a method call.
    pub async fn caller(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
    ) -> Result<Caller, DbusError> {
        let sender = header
            .sender()
            .ok_or_else(|| DbusError::denied("a call without a sender cannot be authorised"))?
            .to_string();
        let cached = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sender)
            .copied();
        let (id, uid) = match cached {
            Some(entry) => entry,
            None => {
                let dbus = DBusProxy::new(conn).await?;
                let name = BusName::try_from(sender.as_str())
                    .map_err(|e| DbusError::InvalidRequest(e.to_string()))?;
                let uid = dbus.get_connection_unix_user(name).await?;
                let entry = (next_conn_id(), uid);
                self.known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(sender, entry);
                entry
            }
        };
        Ok(self
            .service
            .caller(id, Some(uid), None, None)
            .via(Frontend::Dbus))
    }

    /// A bus name vanished: its claims end and its calls in flight are cancelled.
    pub fn vanished(&self, name: &str) {
        if let Some(left) = self
            .leaving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
        {
            left.send_replace(true);
        }
        let gone = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some((conn, _)) = gone {
            self.service.disconnected(conn);
        }
    }

    /// Checks `action` with polkit when polkit runs on this bus; allowed when it does not.
    pub async fn polkit(
        &self,
        conn: &zbus::Connection,
        header: &Header<'_>,
        action: &str,
    ) -> Result<(), DbusError> {
        let dbus = DBusProxy::new(conn).await?;
        let authority = BusName::try_from("org.freedesktop.PolicyKit1")
            .map_err(|e| DbusError::InternalError(e.to_string()))?;
        if !dbus.name_has_owner(authority).await? {
            return Ok(());
        }
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let mut subject = HashMap::new();
        subject.insert("name", Value::from(sender.as_str()));
        let proxy = AuthorityProxy::new(conn).await?;
        let (authorized, _challenge, _details) = proxy
            .check_authorization(
                &("system-bus-name", subject),
                action,
                HashMap::new(),
                ALLOW_USER_INTERACTION,
                "",
            )
            .await?;
        if authorized {
            Ok(())
        } else {
            let uid = self
                .known
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&sender)
                .map(|(_, uid)| *uid);
            tracing::warn!(?uid, sender = %sender, frontend = "dbus", "denied: polkit does not allow {action}");
            Err(DbusError::denied(format!(
                "polkit does not allow {action} for this caller"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::action;

    #[test]
    fn every_checked_action_is_declared_in_the_polkit_policy() {
        let policy = include_str!("../../../packaging/polkit/org.oathkey.policy");
        for id in [
            action::READ_CODES,
            action::CONFIGURE_KEY,
            action::CREATE_TOKEN,
            action::DELETE_TOKEN,
            action::CLAIM_KEY,
        ] {
            assert!(
                policy.contains(&format!("<action id=\"{id}\">")),
                "{id} missing from the policy"
            );
        }
        // Admin verbs keep an administrator's authentication; reading is for active sessions.
        assert_eq!(
            policy
                .matches("<allow_active>auth_admin_keep</allow_active>")
                .count(),
            4
        );
        assert_eq!(
            policy.matches("<allow_active>yes</allow_active>").count(),
            1
        );
    }
}
