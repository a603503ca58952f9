//! The state directory: the seed ledger and the virtual keys' state, held by one daemon.
//!
//! Two daemons on one state directory would each keep the ledger in memory and rewrite it on
//! purge, so one's records vanish and the other's next seed goes to an unlinked file: a key
//! then holds a seed no ledger knows. So the directory is locked (an `flock` on `.lock` inside,
//! released by the kernel when the daemon dies, even by SIGKILL), and the lock file says who
//! holds it. The directory itself must be private ([`crate::safe_fs`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::safe_fs::{self, UnsafePath};

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// It is not safe to keep seeds in.
    #[error(transparent)]
    Unsafe(#[from] UnsafePath),
    /// Another daemon holds it.
    #[error(
        "state directory {path} is in use by another oathkeyd ({holder}); stop that daemon, or give this one another --state-dir"
    )]
    InUse {
        /// The directory.
        path: PathBuf,
        /// What the holder wrote into the lock file.
        holder: String,
    },
    /// The lock file could not be written.
    #[error("state directory {path}: {action}: {cause}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        action: &'static str,
        /// Why.
        cause: std::io::Error,
    },
}

/// The locked state directory; the lock ends when this is dropped.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    _lock: Flock<File>,
}

impl StateDir {
    /// Secures and locks `dir` for a daemon serving `socket` (written into the lock file so a
    /// second daemon can say who holds it).
    pub fn open(dir: &Path, socket: &Path) -> Result<Self, StateDirError> {
        let path = safe_fs::private_dir(dir, "the seed ledger")?;
        let lock_path = path.join(".lock");
        let io = |action| {
            let lock_path = lock_path.clone();
            move |cause| StateDirError::Io {
                path: lock_path,
                action,
                cause,
            }
        };
        let file = safe_fs::open_private_file(
            &lock_path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(StateDirError::InUse {
                    path,
                    holder: if holder.is_empty() {
                        "it has not said which".into()
                    } else {
                        holder
                    },
                });
            }
        };
        lock.set_len(0).map_err(io("clearing the lock file"))?;
        lock.seek(SeekFrom::Start(0))
            .map_err(io("writing the lock file"))?;
        writeln!(
            lock,
            "pid {} serving {}",
            std::process::id(),
            socket.display()
        )
        .map_err(io("writing the lock file"))?;
        Ok(Self { path, _lock: lock })
    }

    /// The directory, resolved.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_has_it_and_gets_it_once_released() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("state");
        let first = StateDir::open(&dir, Path::new("/run/first.sock")).expect("first");
        match StateDir::open(&dir, Path::new("/run/second.sock")) {
            Err(StateDirError::InUse { holder, .. }) => {
                assert!(holder.contains("/run/first.sock"), "{holder}");
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("a second holder: {other:?}"),
        }
        drop(first);
        let second = StateDir::open(&dir, Path::new("/run/second.sock")).expect("free again");
        let text = std::fs::read_to_string(second.path().join(".lock")).expect("lock file");
        assert!(
            text.contains("/run/second.sock") && !text.contains("first"),
            "{text}"
        );
    }
}
