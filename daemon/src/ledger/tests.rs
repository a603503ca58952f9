//! The ledger's unit tests.

use super::*;
use oathkey_protocol::types::Algorithm;

fn info(serial: &str) -> SeedInfo {
    seed_info(
        "k1",
        &format!("{serial}:u@x.y"),
        serial,
        "u@x.y",
        OtpKind::Totp,
        Algorithm::Sha1,
        6,
        30,
        0,
        "virtual",
    )
}

#[test]
fn a_reused_id_never_hides_a_seed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seeds.ledger");
    let ledger = Ledger::open(&path).expect("opens");
    let a = info("0001");
    ledger
        .begin(a.clone(), SecretText::new("AAAABBBB".into()))
        .expect("recorded");
    let mut again = info("0002");
    again.id = a.id.clone();
    assert!(matches!(
        ledger.begin(again.clone(), SecretText::new("CCCCDDDD".into())),
        Err(LedgerError::Duplicate(id)) if id == a.id
    ));
    assert_eq!(ledger.records().len(), 1);
    drop(ledger);

    // A ledger holding the same id twice (edited by hand, merged): both seeds come back.
    let line = serde_json::to_string(&Line::Begin {
        info: again,
        secret: SecretText::new("CCCCDDDD".into()),
    })
    .expect("encodes");
    let mut text = std::fs::read_to_string(&path).expect("reads");
    text.push_str(&line);
    text.push('\n');
    std::fs::write(&path, text).expect("writes");
    let records = Ledger::open(&path).expect("reopens").records();
    let mut secrets: Vec<_> = records
        .iter()
        .map(|r| r.secret.expose().to_string())
        .collect();
    secrets.sort();
    assert_eq!(secrets, ["AAAABBBB", "CCCCDDDD"]);
    let serials: Vec<_> = records.iter().map(|r| r.info.serial.as_str()).collect();
    assert!(
        serials.contains(&"0001") && serials.contains(&"0002"),
        "{serials:?}"
    );
}

#[test]
fn ids_are_distinct() {
    let ids: std::collections::HashSet<_> = (0..1000).map(|_| new_id()).collect();
    assert_eq!(ids.len(), 1000);
}

#[test]
fn records_survive_reopening_with_their_states() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seeds.ledger");
    let ledger = Ledger::open(&path).expect("opens");
    let a = info("0001");
    let b = info("0002");
    ledger
        .begin(a.clone(), SecretText::new("AAAABBBB".into()))
        .expect("recorded");
    ledger
        .begin(b.clone(), SecretText::new("CCCCDDDD".into()))
        .expect("recorded");
    ledger
        .mark(&a.id, SeedState::Verified, None)
        .expect("marked");
    ledger
        .mark(&b.id, SeedState::Failed, Some("key said no".into()))
        .expect("marked");
    ledger
        .mark_exported(std::slice::from_ref(&a.id), "azure-csv")
        .expect("marked");
    drop(ledger);

    let mode = std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let ledger = Ledger::open(&path).expect("reopens");
    let records = ledger.records();
    let got_a = records.iter().find(|r| r.info.id == a.id).expect("a");
    assert_eq!(got_a.info.state, SeedState::Verified);
    assert!(got_a.info.exported_at.is_some());
    assert_eq!(got_a.secret.expose(), "AAAABBBB");
    let got_b = records.iter().find(|r| r.info.id == b.id).expect("b");
    assert_eq!(
        (got_b.info.state, got_b.info.reason.as_deref()),
        (SeedState::Failed, Some("key said no"))
    );
}

#[test]
fn a_torn_last_line_is_cut_off_and_appending_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seeds.ledger");
    let a = info("0001");
    {
        let ledger = Ledger::open(&path).expect("opens");
        ledger
            .begin(a.clone(), SecretText::new("AAAA".into()))
            .expect("recorded");
    }
    // A crash in the middle of the next append.
    let mut f = OpenOptions::new().append(true).open(&path).expect("opens");
    f.write_all(b"{\"op\":\"state\",\"id\":\"").expect("writes");
    drop(f);
    let ledger = Ledger::open(&path).expect("repairs");
    ledger
        .mark(&a.id, SeedState::Written, None)
        .expect("appends on a clean line");
    drop(ledger);
    let text = std::fs::read_to_string(&path).expect("reads");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{text}"
    );
    let ledger = Ledger::open(&path).expect("reopens");
    assert_eq!(ledger.records()[0].info.state, SeedState::Written);
}

use serde_json::Value;

#[test]
fn purge_removes_only_exported_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seeds.ledger");
    let ledger = Ledger::open(&path).expect("opens");
    let (a, b) = (info("0001"), info("0002"));
    ledger
        .begin(a.clone(), SecretText::new("AAAA".into()))
        .expect("recorded");
    ledger
        .begin(b.clone(), SecretText::new("BBBB".into()))
        .expect("recorded");
    ledger
        .mark(&b.id, SeedState::Verified, None)
        .expect("marked");
    ledger
        .mark_exported(std::slice::from_ref(&a.id), "pskc")
        .expect("marked");
    assert_eq!(ledger.purge_exported().expect("purged"), 1);
    // Appends keep working on the rewritten file, and the result survives a reopen.
    let c = info("0003");
    ledger
        .begin(c.clone(), SecretText::new("CCCC".into()))
        .expect("recorded");
    drop(ledger);
    let ledger = Ledger::open(&path).expect("reopens");
    let ids: Vec<String> = ledger.records().into_iter().map(|r| r.info.id).collect();
    assert!(
        ids.contains(&b.id) && ids.contains(&c.id) && !ids.contains(&a.id),
        "{ids:?}"
    );
    assert_eq!(
        ledger
            .records()
            .iter()
            .find(|r| r.info.id == b.id)
            .expect("b")
            .info
            .state,
        SeedState::Verified
    );
    assert_eq!(
        std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn unsettled_lists_pending_and_written_of_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(&dir.path().join("l")).expect("opens");
    let (a, b) = (info("0001"), info("0002"));
    ledger
        .begin(a.clone(), SecretText::new("AAAA".into()))
        .expect("recorded");
    ledger
        .begin(b.clone(), SecretText::new("BBBB".into()))
        .expect("recorded");
    ledger
        .mark(&b.id, SeedState::Verified, None)
        .expect("marked");
    let unsettled: Vec<String> = ledger.unsettled("k1").into_iter().map(|i| i.id).collect();
    assert_eq!(unsettled, vec![a.id]);
    assert!(ledger.unsettled("other").is_empty());
}
