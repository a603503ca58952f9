//! Replays the fuzz corpora and regressions of the JSON-RPC targets (`rpc_line`, the codec and
//! the line parser; `rpc_dispatch`, the dispatcher with a virtual key behind it) and of the seed
//! ledger reader (`seed_ledger`) through the same checks as the fuzz targets, on the stable
//! toolchain. Seeds named `ok-*` must be taken
//! as requests and answered without an error; `bad-*` must get JSON-RPC error answers.

#[path = "../../../fuzz/checks/ledger.rs"]
mod ledger;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;
#[path = "../../../fuzz/checks/rpc_dispatch.rs"]
mod rpc_dispatch;
#[path = "../../../fuzz/checks/rpc_line.rs"]
mod rpc_line;

use oathkey_protocol::ErrorCode;

#[test]
fn rpc_line_corpus_and_regressions() {
    use rpc_line::Kind;
    for input in replay::inputs("rpc_line") {
        let outcome = rpc_line::check(&input.bytes);
        let refused = |k: &Kind| match k {
            Kind::Invalid(_) | Kind::Refused(_) => true,
            Kind::Batch { errors, .. } => *errors > 0,
            Kind::Single => false,
        };
        assert!(!outcome.lines.is_empty(), "{}: no line", input.name);
        if input.is_ok_seed() {
            assert!(
                !outcome.lines.iter().any(refused),
                "{}: {outcome:?}",
                input.name
            );
        }
        if input.is_bad_seed() {
            assert!(
                outcome.lines.iter().any(refused),
                "{}: {outcome:?}",
                input.name
            );
        }
    }
}

#[test]
fn rpc_dispatch_corpus_and_regressions() {
    for input in replay::inputs("rpc_dispatch") {
        let outcome = rpc_dispatch::check(&input.bytes);
        let [reader, admin] = &outcome.errors;
        if input.is_ok_seed() {
            assert!(admin.is_empty(), "{}: admin got {admin:?}", input.name);
            assert!(outcome.results[1] > 0, "{}: no result", input.name);
            // A reader may read but not change anything (so what it did not create is not
            // there to read, and it holds no claim to release).
            assert!(
                reader.iter().all(|c| matches!(
                    c,
                    ErrorCode::PermissionDenied
                        | ErrorCode::TokenNotFound
                        | ErrorCode::InvalidParams
                )),
                "{}: reader got {reader:?}",
                input.name
            );
        }
        if input.is_bad_seed() {
            assert!(!admin.is_empty(), "{}: {outcome:?}", input.name);
        }
    }
}

#[test]
fn seed_ledger_corpus_and_regressions() {
    let mut kept = 0;
    for input in replay::inputs("seed_ledger") {
        let outcome = ledger::check(&input.bytes);
        if input.is_ok_seed() {
            assert_eq!(
                outcome.records, outcome.begins,
                "{}: {outcome:?}",
                input.name
            );
            kept += outcome.records;
        }
        if input.is_bad_seed() {
            assert_eq!(outcome.records, 0, "{}: {outcome:?}", input.name);
        }
        match input.name.as_str() {
            "ok-written-by-the-daemon" | "ok-crlf" => {
                assert_eq!(outcome.records, 3, "{}", input.name)
            }
            "ok-same-id-twice" => assert_eq!(outcome.records, 4, "both copies kept"),
            "ok-torn-last-line" => assert!(outcome.cut > 0, "the torn line is cut"),
            _ => {}
        }
    }
    assert!(kept > 0, "the seeds hold records");
}
