//! Who may do what. The role comes from the peer's credentials (SO_PEERCRED on the socket, the
//! bus's idea of the caller's uid on D-Bus), never from anything the client says about itself.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::unistd::{Gid, Group, Uid, User};
use oathkey_protocol::types::Role;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A connection id unique across all frontends for the daemon's lifetime (claims belong to it).
pub fn next_conn_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// The frontend a caller came through (for the log of what it was refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frontend {
    /// The JSON-RPC socket.
    #[default]
    Socket,
    /// D-Bus.
    Dbus,
}

impl std::fmt::Display for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Frontend::Socket => "socket",
            Frontend::Dbus => "dbus",
        })
    }
}

/// A connected client as the service core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Connection id, unique for the daemon's lifetime (claims belong to it).
    pub conn: u64,
    /// Peer uid, when the transport tells.
    pub uid: Option<u32>,
    /// Peer primary gid.
    pub gid: Option<u32>,
    /// Peer pid (for logs).
    pub pid: Option<i32>,
    /// The role the rules gave it.
    pub role: Role,
    /// Where it came from.
    pub frontend: Frontend,
}

impl Caller {
    /// The same caller, as having come through `frontend`.
    pub fn via(mut self, frontend: Frontend) -> Self {
        self.frontend = frontend;
        self
    }

    /// Logs a refusal of something the caller's role does not allow: who asked, for what,
    /// through which frontend (never the request's values: they may hold a seed).
    pub fn log_denied(&self, what: &str) {
        tracing::warn!(
            uid = ?self.uid,
            pid = ?self.pid,
            conn = self.conn,
            frontend = %self.frontend,
            role = ?self.role,
            "denied: {what}"
        );
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The admin rules from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorizer {
    admin_users: Vec<String>,
    admin_groups: Vec<String>,
}

impl Authorizer {
    /// Rules from the configured admin users and groups (names or numeric ids).
    pub fn new(admin_users: &[String], admin_groups: &[String]) -> Self {
        Self {
            admin_users: admin_users.to_vec(),
            admin_groups: admin_groups.to_vec(),
        }
    }

    /// The role of a peer. Root and the daemon's own user are always admins (the latter can
    /// read the daemon's state, seed ledger included, anyway: for a user daemon that is the
    /// user who started it); an unknown peer is a reader.
    pub fn role(&self, uid: Option<u32>, gid: Option<u32>) -> Role {
        let Some(uid) = uid else { return Role::Reader };
        if uid == 0 || uid == Uid::effective().as_raw() {
            return Role::Admin;
        }
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let user_match = self.admin_users.iter().any(|u| {
            u.parse::<u32>().map(|n| n == uid).unwrap_or(false)
                || user.as_ref().is_some_and(|user| &user.name == u)
        });
        if user_match {
            return Role::Admin;
        }
        let group_match = self.admin_groups.iter().any(|g| {
            let group = match g.parse::<u32>() {
                Ok(n) => Group::from_gid(Gid::from_raw(n)).ok().flatten(),
                Err(_) => Group::from_name(g).ok().flatten(),
            };
            match group {
                // Primary group from the peer credentials, or listed as a member.
                Some(group) => {
                    Some(group.gid.as_raw()) == gid
                        || user
                            .as_ref()
                            .is_some_and(|u| group.mem.contains(&u.name) || u.gid == group.gid)
                }
                None => g.parse::<u32>().is_ok_and(|n| Some(n) == gid),
            }
        });
        if group_match {
            Role::Admin
        } else {
            Role::Reader
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_admin_and_unknown_peers_read() {
        let a = Authorizer::default();
        assert_eq!(a.role(Some(0), Some(0)), Role::Admin);
        assert_eq!(a.role(None, None), Role::Reader);
        assert_eq!(a.role(Some(65534), Some(65534)), Role::Reader);
    }

    #[test]
    fn the_daemons_own_user_is_admin() {
        let own = Uid::effective().as_raw();
        assert_eq!(Authorizer::default().role(Some(own), None), Role::Admin);
    }

    #[test]
    fn configured_users_and_groups_are_admins() {
        let by_uid = Authorizer::new(&["65534".into()], &[]);
        assert_eq!(by_uid.role(Some(65534), Some(65534)), Role::Admin);
        assert_eq!(by_uid.role(Some(1234), Some(1234)), Role::Reader);
        // "nobody" exists on every Debian system (uid 65534).
        let by_name = Authorizer::new(&["nobody".into()], &[]);
        assert_eq!(by_name.role(Some(65534), Some(65534)), Role::Admin);
        let by_gid = Authorizer::new(&[], &["4242".into()]);
        assert_eq!(by_gid.role(Some(1234), Some(4242)), Role::Admin);
        assert_eq!(by_gid.role(Some(1234), Some(1234)), Role::Reader);
    }
}
