//! The listening socket: created with restrictive permissions, guarded by a lock file so that a
//! second daemon refuses to start instead of stealing the socket, and removed on shutdown.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Group, chown};
use tracing::{info, warn};

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon holds the socket.
    #[error(
        "another oathkeyd is already serving {path}; stop it first (or give this one another --socket)"
    )]
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
    },
    /// The socket group does not exist.
    #[error("socket group {0:?} does not exist; create it or change socket_group")]
    NoSuchGroup(String),
    /// The socket's directory or lock file could have been prepared by another user.
    #[error(transparent)]
    Unsafe(#[from] crate::safe_fs::UnsafePath),
    /// A filesystem or socket operation failed.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// Whether a daemon answers on `path` (a socket that accepts a connection; a stale socket file
/// left by a crash does not count).
pub fn serving(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Holds the lock and removes the socket and lock file when dropped.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.lock_path);
        info!(path = %self.path.display(), "socket removed");
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SocketError + 'a {
    move |cause| SocketError::Io {
        action,
        path: path.to_path_buf(),
        cause,
    }
}

/// Creates the socket at `path` with permission bits `mode`, owned by `group` if given.
pub fn bind(
    path: &Path,
    mode: u32,
    group: Option<&str>,
) -> Result<(Listener, SocketGuard), SocketError> {
    let gid = match group {
        Some(name) => Some(
            Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid)
                .ok_or_else(|| SocketError::NoSuchGroup(name.to_string()))?,
        ),
        None => None,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        // The directory opens exactly to the socket's audience: group and others get search
        // access only where the socket mode gives them access at all.
        let mut dir_mode = 0o700;
        if mode & 0o070 != 0 {
            dir_mode |= 0o050;
        }
        if mode & 0o007 != 0 {
            dir_mode |= 0o005;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode))
            .map_err(io_err("setting permissions of", dir))?;
        if gid.is_some() {
            chown(dir, None, gid).map_err(|e| io_err("changing the group of", dir)(e.into()))?;
        }
    }
    // Everything below changes files by name (the lock, a stale socket, the socket's mode and
    // group): nobody else may be able to swap them in the directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::safe_fs::check_ancestors(dir, "the socket")?;
    }
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock_path = PathBuf::from(lock_name);
    let lock_file = crate::safe_fs::open_private_file(
        &lock_path,
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
    let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        SocketError::AlreadyRunning {
            path: path.to_path_buf(),
        }
    })?;
    if path.exists() {
        // A socket file without a lock holder: a daemon of another version, or a stale file.
        if serving(path) {
            return Err(SocketError::AlreadyRunning {
                path: path.to_path_buf(),
            });
        }
        warn!(path = %path.display(), "removing a stale socket left by a daemon that died");
        std::fs::remove_file(path).map_err(io_err("removing the stale socket", path))?;
    }
    let name = path
        .to_fs_name::<GenericFilePath>()
        .map_err(io_err("naming", path))?;
    // Create the socket without group or other access, then open it up exactly as configured:
    // no moment where it is wider than `mode`.
    let old = umask(Mode::from_bits_truncate(0o177));
    let listener = ListenerOptions::new()
        .name(name)
        .reclaim_name(false)
        .create_tokio();
    umask(old);
    let listener = listener.map_err(io_err("listening on", path))?;
    if let Some(gid) = gid {
        chown(path, None, Some(gid))
            .map_err(|e| io_err("changing the group of", path)(e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("setting permissions of", path))?;
    info!(path = %path.display(), mode = format_args!("{mode:04o}"), group = ?group, "listening");
    Ok((
        listener,
        SocketGuard {
            path: path.to_path_buf(),
            lock_path,
            _lock: lock,
        },
    ))
}

/// Accepts the next connection (re-exported so the server needs no trait import).
pub async fn accept(
    listener: &Listener,
) -> std::io::Result<interprocess::local_socket::tokio::Stream> {
    listener.accept().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_socket_that_accepts_counts_as_a_running_daemon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        assert!(!serving(&path), "no file");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("binds");
        assert!(serving(&path), "a listening socket");
        drop(listener);
        assert!(path.exists(), "the file a crashed daemon leaves behind");
        assert!(!serving(&path), "a stale socket file");
    }
}
