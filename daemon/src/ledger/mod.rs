//! The seed ledger: every seed the daemon writes to a key is recorded here first.
//!
//! An append-only file of JSON lines, created 0600 and owned by the daemon. Every entry is
//! written and fsynced before the call that made it returns, so the order on disk is the order
//! of events: a `begin` line (serial, user, secret) is durable before the key is touched; state
//! lines follow (written, verified, failed, not on key); `exported` lines record seed files.
//! A crash can only tear the very last line, which was never acknowledged; it is cut off when
//! the ledger is opened again. Purging rewrites the file atomically (temp, fsync, rename).
//!
//! The ledger holds seeds in the clear, like the seed files it feeds: it is readable by the
//! daemon's user only, and `oathkey seeds purge --exported` shrinks it once seeds are uploaded.

//!
//! # Layout
//! - this file: [`Ledger`], the file and the records it holds;
//! - [`line`]: the lines on disk and how each changes the records.

mod line;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use oathkey_protocol::SecretText;
use oathkey_protocol::types::{OtpKind, SeedInfo, SeedRecord, SeedState};
use tracing::{info, warn};
use zeroize::Zeroizing;

use line::{Line, apply};
pub use line::{new_id, seed_info};

/// A ledger problem.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be read or written.
    #[error("seed ledger {path}: {action}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        action: &'static str,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is a link, or belongs to another user.
    #[error(transparent)]
    Unsafe(crate::safe_fs::UnsafePath),
    /// No record with that id.
    #[error("no seed record {0}")]
    Unknown(String),
    /// A record with that id exists already (ids must never be reused: a second `begin` with
    /// the same id would hide the first seed).
    #[error("seed record {0} exists already")]
    Duplicate(String),
}

#[derive(Debug)]
struct Inner {
    file: File,
    records: BTreeMap<String, SeedRecord>,
    /// The [`Ledger::generation`] of each record's last change in this run (0: before it).
    changed: BTreeMap<String, u64>,
}

/// The ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Counts this run's changes. A list of a key's tokens proves a record's seed is gone only
    /// if the record changed before the list began: read on the key's actor just before it
    /// lists, it orders a list against a write whose record is marked while the list runs.
    generation: AtomicU64,
}

/// A record that says its key holds its seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Record id.
    pub id: String,
    /// The credential name on the key.
    pub name: String,
    /// The generation of the record's last change.
    pub changed: u64,
}

fn now() -> u64 {
    crate::clock::unix_now()
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`, replaying its lines. A torn last line from a
    /// crash is cut off; an unreadable line elsewhere is skipped with a warning and kept.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let io = |action, cause| LedgerError::Io {
            path: path.to_path_buf(),
            action,
            cause,
        };
        let dir = dir_of(path);
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io("creating its directory", e))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("securing its directory", e))?;
        }
        let existed = path.symlink_metadata().is_ok();
        // Never through a link, and only a file of the daemon's own user.
        let mut file = crate::safe_fs::open_private_file(
            path,
            OpenOptions::new().read(true).append(true).create(true),
        )
        .map_err(LedgerError::Unsafe)?;
        if !existed {
            // The new file's name must be durable too, or a crash could lose the whole ledger.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("syncing its directory", e))?;
        }
        let mode = file
            .metadata()
            .map_err(|e| io("inspecting", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            warn!(path = %path.display(), mode = format_args!("{:o}", mode & 0o777), "seed ledger was readable by others; making it 0600");
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io("securing", e))?;
        }
        let mut text = Zeroizing::new(Vec::new());
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io("reading", e))?;
        file.read_to_end(&mut text).map_err(|e| io("reading", e))?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            warn!(path = %path.display(), bytes = text.len() - complete, "cutting off a torn last ledger line (an interrupted write)");
            file.set_len(complete as u64)
                .map_err(|e| io("repairing", e))?;
            file.sync_all().map_err(|e| io("syncing", e))?;
        }
        let mut records = BTreeMap::new();
        for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            // Through a JSON value first: a line damaged into repeating a member (which a
            // derived parser refuses outright) still gives up its seed, the last value winning.
            let parsed = serde_json::from_slice::<serde_json::Value>(line)
                .and_then(serde_json::from_value::<Line>);
            match parsed {
                Ok(Line::Begin { mut info, secret }) if records.contains_key(&info.id) => {
                    // Never written by this daemon (begin refuses a reused id), but a ledger
                    // edited by hand or merged could hold one: keep both seeds.
                    let renamed = (1..)
                        .map(|k| format!("{}-line{}-{k}", info.id, n + 1))
                        .find(|id| !records.contains_key(id))
                        .unwrap_or_default();
                    warn!(path = %path.display(), line = n + 1, id = %info.id, renamed = %renamed, "a second seed record with the same id; kept under another id");
                    info.id = renamed;
                    apply(&mut records, Line::Begin { info, secret });
                }
                Ok(entry) => apply(&mut records, entry),
                Err(e) => {
                    warn!(path = %path.display(), line = n + 1, "skipping an unreadable ledger line: {e}")
                }
            }
        }
        info!(path = %path.display(), records = records.len(), "seed ledger opened");
        Ok(Self {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                records,
                changed: BTreeMap::new(),
            }),
            generation: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, inner: &mut Inner, entry: &Line) -> Result<(), LedgerError> {
        let io = |action, cause| LedgerError::Io {
            path: self.path.clone(),
            action,
            cause,
        };
        let mut line = Zeroizing::new(
            serde_json::to_vec(entry).map_err(|e| io("encoding", std::io::Error::other(e)))?,
        );
        line.push(b'\n');
        inner.file.write_all(&line).map_err(|e| io("writing", e))?;
        // Durable before anything else happens: this is the point of a write-ahead ledger.
        inner.file.sync_data().map_err(|e| io("syncing", e))
    }

    /// Records a seed before it is written to a key.
    pub fn begin(&self, info: SeedInfo, secret: SecretText) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        if inner.records.contains_key(&info.id) {
            return Err(LedgerError::Duplicate(info.id));
        }
        let id = info.id.clone();
        let entry = Line::Begin { info, secret };
        self.append(&mut inner, &entry)?;
        apply(&mut inner.records, entry);
        self.changed(&mut inner, id);
        Ok(())
    }

    fn changed(&self, inner: &mut Inner, id: String) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        inner.changed.insert(id, generation);
    }

    /// How many changes this run has made (see [`Held`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Records that say `key` holds their seed (written or verified).
    pub fn held_by(&self, key: &str) -> Vec<Held> {
        let inner = self.lock();
        inner
            .records
            .values()
            .filter(|r| r.info.key == key && r.info.state.exportable())
            .map(|r| Held {
                id: r.info.id.clone(),
                name: r.info.name.clone(),
                changed: inner.changed.get(&r.info.id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Records of the credential `name` on `key` whose seed the key may hold: pending,
    /// written, verified, or failed (a mismatch the key could not delete).
    pub fn maybe_on_key(&self, key: &str, name: &str) -> Vec<String> {
        self.lock()
            .records
            .values()
            .filter(|r| {
                r.info.key == key
                    && r.info.name == name
                    && matches!(
                        r.info.state,
                        SeedState::Pending
                            | SeedState::Written
                            | SeedState::Verified
                            | SeedState::Failed
                    )
            })
            .map(|r| r.info.id.clone())
            .collect()
    }

    /// Records a new state of a seed.
    pub fn mark(
        &self,
        id: &str,
        state: SeedState,
        reason: Option<String>,
    ) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        if !inner.records.contains_key(id) {
            return Err(LedgerError::Unknown(id.into()));
        }
        let entry = Line::State {
            id: id.into(),
            state,
            reason,
            at: now(),
        };
        self.append(&mut inner, &entry)?;
        apply(&mut inner.records, entry);
        self.changed(&mut inner, id.into());
        Ok(())
    }

    /// Records that a token was renamed on its key (the seed stays; the name and user change).
    pub fn rename(&self, id: &str, name: &str, user: &str) -> Result<(), LedgerError> {
        let mut inner = self.lock();
        if !inner.records.contains_key(id) {
            return Err(LedgerError::Unknown(id.into()));
        }
        let entry = Line::Renamed {
            id: id.into(),
            name: name.into(),
            user: user.into(),
            at: now(),
        };
        self.append(&mut inner, &entry)?;
        apply(&mut inner.records, entry);
        self.changed(&mut inner, id.into());
        Ok(())
    }

    /// Records that seeds went into a seed file; returns how many were known.
    pub fn mark_exported(&self, ids: &[String], format: &str) -> Result<usize, LedgerError> {
        let mut inner = self.lock();
        let known: Vec<String> = ids
            .iter()
            .filter(|id| inner.records.contains_key(*id))
            .cloned()
            .collect();
        if known.is_empty() {
            return Ok(0);
        }
        let entry = Line::Exported {
            ids: known.clone(),
            format: format.into(),
            at: now(),
        };
        self.append(&mut inner, &entry)?;
        apply(&mut inner.records, entry);
        Ok(known.len())
    }

    /// Every record (with secrets).
    pub fn records(&self) -> Vec<SeedRecord> {
        self.lock().records.values().cloned().collect()
    }

    /// Records of one key that are not settled: pending, or written TOTP never verified.
    pub fn unsettled(&self, key: &str) -> Vec<SeedInfo> {
        self.lock()
            .records
            .values()
            .filter(|r| {
                // Pending: the key may or may not hold it. Written TOTP: on the key, but the
                // crash came before the code was read back. (Written HOTP is as good as it gets.)
                r.info.key == key
                    && (r.info.state == SeedState::Pending
                        || (r.info.state == SeedState::Written && r.info.kind == OtpKind::Totp))
            })
            .map(|r| r.info.clone())
            .collect()
    }

    /// Deletes exported records (see [`Ledger::purge`]).
    pub fn purge_exported(&self) -> Result<usize, LedgerError> {
        self.purge(|info| info.exported_at.is_some())
    }

    /// Deletes the records `pick` picks by rewriting the ledger atomically without them.
    pub fn purge(&self, pick: impl Fn(&SeedInfo) -> bool) -> Result<usize, LedgerError> {
        let io = |action, cause| LedgerError::Io {
            path: self.path.clone(),
            action,
            cause,
        };
        let mut inner = self.lock();
        let keep: Vec<SeedRecord> = inner
            .records
            .values()
            .filter(|r| !pick(&r.info))
            .cloned()
            .collect();
        let purged = inner.records.len() - keep.len();
        if purged == 0 {
            return Ok(0);
        }
        let dir = dir_of(&self.path);
        let mut tmp = tempfile::Builder::new()
            .prefix(".seeds-")
            .tempfile_in(dir)
            .map_err(|e| io("creating a temporary file", e))?;
        for record in &keep {
            let mut line = Zeroizing::new(
                serde_json::to_vec(&Line::Begin {
                    info: record.info.clone(),
                    secret: record.secret.clone(),
                })
                .map_err(|e| io("encoding", std::io::Error::other(e)))?,
            );
            line.push(b'\n');
            tmp.write_all(&line).map_err(|e| io("writing", e))?;
        }
        tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
        drop(
            tmp.persist(&self.path)
                .map_err(|e| io("replacing", e.error))?,
        );
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        // Keep appending, to the new file.
        let file = crate::safe_fs::open_private_file(
            &self.path,
            OpenOptions::new().append(true).read(true),
        )
        .map_err(LedgerError::Unsafe)?;
        inner.file = file;
        inner.records = keep.into_iter().map(|r| (r.info.id.clone(), r)).collect();
        let Inner {
            records, changed, ..
        } = &mut *inner;
        changed.retain(|id, _| records.contains_key(id));
        info!(purged, "seeds purged from the ledger");
        Ok(purged)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
