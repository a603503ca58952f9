//! Where the daemon's socket lives, found the same way by the daemon and every client.

use std::path::PathBuf;

/// Environment variable that names the socket for clients.
pub const SOCKET_ENV: &str = "OATHKEY_SOCKET";
/// The system daemon's socket.
pub const SYSTEM_SOCKET: &str = "/run/oathkey/oathkeyd.sock";

/// The socket of a user (session) daemon: `$XDG_RUNTIME_DIR/oathkey/oathkeyd.sock`.
pub fn user_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("oathkey").join("oathkeyd.sock"))
}

/// The socket a client should use: `$OATHKEY_SOCKET`, else a user daemon's socket if one
/// exists, else the system daemon's.
pub fn client_socket() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match user_socket() {
        Some(p) if p.exists() => p,
        _ => PathBuf::from(SYSTEM_SOCKET),
    }
}
