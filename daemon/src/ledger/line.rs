//! The ledger's lines: a `begin` (a seed, before it goes to a key), a new state, an export, a
//! rename; and how each line changes the records, on replay and when written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use oathkey_protocol::SecretText;
use oathkey_protocol::types::{Algorithm, OtpKind, SeedInfo, SeedRecord, SeedState};
use serde::{Deserialize, Serialize};

use super::now;

/// One line of the ledger.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Line {
    /// A seed about to be written to a key.
    Begin {
        #[serde(flatten)]
        info: SeedInfo,
        secret: SecretText,
    },
    /// A record's new state.
    State {
        id: String,
        state: SeedState,
        reason: Option<String>,
        at: u64,
    },
    /// Records written to a seed file.
    Exported {
        ids: Vec<String>,
        format: String,
        at: u64,
    },
    /// A token renamed on its key: its credential name and user changed, its seed did not.
    Renamed {
        id: String,
        name: String,
        user: String,
        at: u64,
    },
}

pub(super) fn apply(records: &mut BTreeMap<String, SeedRecord>, entry: Line) {
    match entry {
        Line::Begin { info, secret } => {
            records.insert(info.id.clone(), SeedRecord { info, secret });
        }
        Line::State {
            id, state, reason, ..
        } => {
            if let Some(r) = records.get_mut(&id) {
                r.info.state = state;
                r.info.reason = reason;
            }
        }
        Line::Exported { ids, at, .. } => {
            for id in ids {
                if let Some(r) = records.get_mut(&id) {
                    r.info.exported_at = Some(at);
                }
            }
        }
        Line::Renamed { id, name, user, .. } => {
            if let Some(r) = records.get_mut(&id) {
                r.info.name = name;
                r.info.user = user;
            }
        }
    }
}

/// A fresh record id: 16 random hex digits.
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Ids must be unique, not secret: without the OS generator, the clock, the process
        // and a counter still give distinct ids (and `begin` refuses a reused one anyway).
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes = (nanos ^ (u64::from(std::process::id()) << 40) ^ n.rotate_left(20)).to_be_bytes();
    }
    data_encoding::HEXLOWER.encode(&bytes)
}

/// A new record's description.
#[allow(clippy::too_many_arguments)]
pub fn seed_info(
    key: &str,
    name: &str,
    serial: &str,
    user: &str,
    kind: OtpKind,
    algorithm: Algorithm,
    digits: u8,
    period: u32,
    counter: u32,
    model: &str,
) -> SeedInfo {
    SeedInfo {
        id: new_id(),
        key: key.into(),
        name: name.into(),
        serial: serial.into(),
        user: user.into(),
        kind,
        algorithm,
        digits,
        period,
        counter,
        state: SeedState::Pending,
        reason: None,
        created_at: now(),
        exported_at: None,
        model: Some(model.into()),
    }
}
