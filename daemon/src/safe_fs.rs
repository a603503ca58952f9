//! Paths another local user cannot have prepared: the state directory (seed ledger, virtual
//! keys' flash) and the socket's directory.
//!
//! A daemon that runs as root or as a service user writes seeds where an unprivileged user may
//! have been first: a world-writable directory created in advance, a `seeds.ledger` planted as a
//! symbolic link to a file that user can read, a parent directory they can rename. The rules,
//! as OpenSSH applies them to its own files:
//! - every directory on the way (after resolving links) belongs to root or to the daemon's user
//!   and cannot be written by others, unless it is sticky like `/tmp` (then nobody else can move
//!   or replace what we create in it);
//! - a private directory (the state directory) belongs to the daemon's user and cannot be
//!   written by anyone else at all;
//! - files inside are opened without following symbolic links, and must belong to the daemon's
//!   user.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::Uid;

/// Why a path is not safe to keep secrets in.
#[derive(Debug, thiserror::Error)]
pub enum UnsafePath {
    /// A filesystem operation failed.
    #[error("{path}: {action}: {cause}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why.
        cause: std::io::Error,
    },
    /// A directory on the way can be changed by someone else.
    #[error(
        "{path} is unsafe for {what}: {dir} belongs to uid {owner} with mode {mode:04o}, so another user can replace what is in it; use a directory that only root or uid {me} can write"
    )]
    Ancestor {
        /// The path asked for.
        path: PathBuf,
        /// What it is for.
        what: &'static str,
        /// The directory on the way that is unsafe.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its mode.
        mode: u32,
        /// The daemon's uid.
        me: u32,
    },
    /// The private directory (or a file in it) belongs to another user.
    #[error(
        "{path} belongs to uid {owner}, not to the daemon's user (uid {me}); another user may have created it to read what is written there. Remove it (or chown it to uid {me}) and start again"
    )]
    NotOwned {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The daemon's uid.
        me: u32,
    },
    /// The private directory can be written by others.
    #[error(
        "{path} has mode {mode:04o}: others can write in it and plant files or links; chmod 700 it (and check what is in it) or use another directory"
    )]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A state file is a symbolic link (or not a regular file).
    #[error(
        "{path} is {kind}, not a plain file; the daemon does not follow links where it keeps seeds. Remove it"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The path is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> UnsafePath + 'a {
    move |cause| UnsafePath::Io {
        path: path.to_path_buf(),
        action,
        cause,
    }
}

fn me() -> u32 {
    Uid::effective().as_raw()
}

/// Checks every directory from `/` down to `dir` itself (resolved): each belongs to root or to
/// us, and cannot be written by others unless it is sticky.
pub fn check_ancestors(dir: &Path, what: &'static str) -> Result<(), UnsafePath> {
    let resolved = dir.canonicalize().map_err(io(dir, "resolving"))?;
    for ancestor in resolved.ancestors() {
        let meta = std::fs::metadata(ancestor).map_err(io(ancestor, "inspecting"))?;
        let mode = meta.permissions().mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        let owner_ok = meta.uid() == 0 || meta.uid() == me();
        if !owner_ok || (mode & 0o022 != 0 && !sticky) {
            return Err(UnsafePath::Ancestor {
                path: dir.to_path_buf(),
                what,
                dir: ancestor.to_path_buf(),
                owner: meta.uid(),
                mode,
                me: me(),
            });
        }
    }
    Ok(())
}

/// Makes sure `dir` is a private directory of the daemon's user on a safe path, creating it
/// (mode 0700) when missing. Returns it resolved: later paths are built on the resolved form,
/// so a link on the way cannot be swapped afterwards.
pub fn private_dir(dir: &Path, what: &'static str) -> Result<PathBuf, UnsafePath> {
    let absolute = std::path::absolute(dir).map_err(io(dir, "resolving"))?;
    match std::fs::symlink_metadata(&absolute) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Judge the way there before creating anything on it.
            if let Some(existing) = absolute.ancestors().skip(1).find(|a| a.exists()) {
                check_ancestors(existing, what)?;
            }
            if let Some(parent) = absolute.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent, "creating"))?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(&absolute) {
                Ok(()) => {}
                // Someone was quicker: judged below like any existing directory.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&absolute, "creating")(e)),
            }
        }
        Err(e) => return Err(io(&absolute, "inspecting")(e)),
    }
    let resolved = absolute
        .canonicalize()
        .map_err(io(&absolute, "resolving"))?;
    if let Some(parent) = resolved.parent() {
        check_ancestors(parent, what)?;
    }
    let meta = std::fs::metadata(&resolved).map_err(io(&resolved, "inspecting"))?;
    if !meta.is_dir() {
        return Err(UnsafePath::NotADirectory { path: resolved });
    }
    if meta.uid() != me() {
        return Err(UnsafePath::NotOwned {
            path: resolved,
            owner: meta.uid(),
            me: me(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(UnsafePath::Writable {
            path: resolved,
            mode,
        });
    }
    Ok(resolved)
}

/// Opens a file inside a private directory without following a symbolic link, and checks that
/// it is a plain file of the daemon's user. `options` says how (read, append, create...); a
/// created file gets mode 0600.
pub fn open_private_file(path: &Path, options: &mut OpenOptions) -> Result<File, UnsafePath> {
    let file = options
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits() | OFlag::O_CLOEXEC.bits())
        .open(path)
        .map_err(|cause| {
            // O_NOFOLLOW on a link: ELOOP.
            if cause.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
                UnsafePath::NotAFile {
                    path: path.to_path_buf(),
                    kind: "a symbolic link",
                }
            } else {
                io(path, "opening")(cause)
            }
        })?;
    let meta = file.metadata().map_err(io(path, "inspecting"))?;
    if !meta.is_file() {
        return Err(UnsafePath::NotAFile {
            path: path.to_path_buf(),
            kind: "not a regular file",
        });
    }
    if meta.uid() != me() {
        return Err(UnsafePath::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me: me(),
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("a/state");
        let resolved = private_dir(&dir, "test").expect("created");
        let mode = std::fs::metadata(&resolved)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // Again, as it is now: fine.
        assert_eq!(private_dir(&dir, "test").expect("again"), resolved);
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        chmod(&dir, 0o777);
        let err = private_dir(&dir, "test").expect_err("world-writable");
        assert!(matches!(err, UnsafePath::Writable { .. }), "{err}");
        chmod(&dir, 0o770);
        assert!(matches!(
            private_dir(&dir, "test"),
            Err(UnsafePath::Writable { .. })
        ));
        chmod(&dir, 0o755);
        assert!(private_dir(&dir, "test").is_ok());
    }

    #[test]
    fn a_parent_others_can_write_is_refused_unless_sticky() {
        let base = tempfile::tempdir().expect("tempdir");
        let parent = base.path().join("shared");
        std::fs::create_dir(&parent).expect("mkdir");
        chmod(&parent, 0o777);
        let err = private_dir(&parent.join("state"), "test").expect_err("parent writable");
        assert!(
            matches!(&err, UnsafePath::Ancestor { dir, .. } if dir.ends_with("shared")),
            "{err}"
        );
        // Sticky, like /tmp: others cannot move what we create.
        chmod(&parent, 0o1777);
        assert!(private_dir(&parent.join("state"), "test").is_ok());
    }

    #[test]
    fn a_state_file_that_is_a_link_is_not_followed() {
        let base = tempfile::tempdir().expect("tempdir");
        let target = base.path().join("elsewhere");
        std::fs::write(&target, b"someone else's file").expect("written");
        let link = base.path().join("seeds.ledger");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = open_private_file(
            &link,
            OpenOptions::new().read(true).append(true).create(true),
        )
        .expect_err("a link");
        assert!(matches!(err, UnsafePath::NotAFile { .. }), "{err}");
        assert_eq!(
            std::fs::read(&target).expect("still there"),
            b"someone else's file"
        );
        // A dangling link is not created through either.
        let dangling = base.path().join("dangling");
        std::os::unix::fs::symlink(base.path().join("nothing"), &dangling).expect("symlink");
        assert!(open_private_file(&dangling, OpenOptions::new().write(true).create(true)).is_err());
        assert!(!base.path().join("nothing").exists());
    }
}
