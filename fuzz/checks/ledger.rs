//! The seed ledger's reader (`oathkeyd::ledger::Ledger::open`), fed arbitrary file contents: a
//! ledger torn by a crash, damaged on disk or edited by hand.
//!
//! Shared by `fuzz/fuzz_targets/seed_ledger.rs` and `daemon/tests/daemon/fuzz_replay.rs`.
//!
//! Properties:
//! - opening succeeds whatever the contents (only I/O can fail) and never panics;
//! - the file is cut back to its last complete line, and nothing before it changes;
//! - no seed is lost: every complete line that is a valid `begin` record (judged here with the
//!   public `SeedRecord` type, not the ledger's own parser) has a record with its serial, user
//!   and secret, even when ids repeat;
//! - reopening gives the same records, secrets included; and
//! - the opened ledger still takes a new seed, which is there after another reopen.
#![allow(dead_code)]

use oathkey_protocol::SecretText;
use oathkey_protocol::types::{Algorithm, OtpKind, SeedRecord};
use oathkeyd::ledger::{Ledger, seed_info};

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Records after opening.
    pub records: usize,
    /// Valid `begin` lines among the complete ones.
    pub begins: usize,
    /// Bytes cut off the end (a torn last line).
    pub cut: usize,
}

/// `(serial, user, secret)` of a record.
fn identity(r: &SeedRecord) -> (String, String, String) {
    (
        r.info.serial.clone(),
        r.info.user.clone(),
        r.secret.expose().to_string(),
    )
}

/// The records the complete lines of `text` hold, judged line by line as a reader of the
/// documented format would.
fn begin_lines(text: &[u8]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(line) else {
            continue;
        };
        if fields.remove("op") != Some(serde_json::Value::String("begin".into())) {
            continue;
        }
        if let Ok(record) = serde_json::from_value::<SeedRecord>(serde_json::Value::Object(fields))
        {
            out.push(identity(&record));
        }
    }
    out
}

fn sorted(records: &[SeedRecord]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = records
        .iter()
        .map(|r| {
            let (serial, user, secret) = identity(r);
            (r.info.id.clone(), serial, user, secret)
        })
        .collect();
    v.sort();
    v
}

/// A scratch directory in memory when the system has one: the ledger fsyncs every write, which
/// on a disk costs more than the rest of the check.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}

/// Opens a ledger holding `bytes`; panics if a property breaks.
pub fn check(bytes: &[u8]) -> Outcome {
    let dir = scratch();
    let path = dir.path().join("seeds.ledger");
    std::fs::write(&path, bytes).expect("written");

    let ledger = Ledger::open(&path).expect("a ledger opens whatever it holds");
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let on_disk = std::fs::read(&path).expect("readable");
    assert_eq!(
        on_disk,
        &bytes[..complete],
        "only a torn last line is cut off"
    );

    let records = ledger.records();
    let mut have: Vec<_> = records.iter().map(identity).collect();
    have.sort();
    let mut wanted = begin_lines(&bytes[..complete]);
    wanted.sort();
    // Every valid begin line has its record (a multiset inclusion: two identical lines are two
    // records, each kept).
    let mut rest = have.clone();
    for w in &wanted {
        let Some(i) = rest.iter().position(|h| h == w) else {
            panic!("a seed was lost: {:?} has no record", (&w.0, &w.1));
        };
        rest.swap_remove(i);
    }
    assert_eq!(
        records.len(),
        wanted.len(),
        "one record per begin line, no more"
    );
    let before = sorted(&records);
    drop(ledger);

    let again = Ledger::open(&path).expect("reopens");
    assert_eq!(
        sorted(&again.records()),
        before,
        "reopening changes nothing"
    );

    // Still usable: a new seed goes in and comes back.
    let info = seed_info(
        "k",
        "NEW:new@example.com",
        "NEW",
        "new@example.com",
        OtpKind::Totp,
        Algorithm::Sha1,
        6,
        30,
        0,
        "fuzz",
    );
    again
        .begin(info, SecretText::new("JBSWY3DPEHPK3PXP".into()))
        .expect("takes a new seed");
    drop(again);
    let last = Ledger::open(&path).expect("reopens");
    assert_eq!(
        last.records().len(),
        records.len() + 1,
        "the new seed is kept"
    );
    assert!(
        last.records()
            .iter()
            .any(|r| r.info.serial == "NEW" && r.secret.expose() == "JBSWY3DPEHPK3PXP")
    );
    Outcome {
        records: records.len(),
        begins: wanted.len(),
        cut: bytes.len() - complete,
    }
}
