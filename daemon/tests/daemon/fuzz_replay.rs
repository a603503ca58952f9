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
        // The fuzz target reuses one daemon's registry and key across inputs: each input must
        // find it as a new daemon would.
        assert_eq!(
            outcome,
            rpc_dispatch::check_fresh(&input.bytes),
            "{}: a reused daemon answered otherwise than a new one",
            input.name
        );
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

#[test]
fn the_dispatcher_fixture_is_put_back_as_new_after_an_input_that_changes_everything() {
    // This thread's fixture, as new.
    let daemon = rpc_dispatch::Daemon::start();
    let entry = daemon.service.registry().list()[0].clone();
    let handle = entry.virtual_handle.clone().expect("a virtual key");
    let (new, settings) = (handle.state(), entry.settings());
    drop(entry);
    daemon.finish();
    // Tokens (one still on the key and in the daemon's cache, seeds in the ledger), settings,
    // a claim held; and the same with the key left unplugged.
    let changes = r#"{"jsonrpc":"2.0","id":1,"method":"tokens.create","params":{"account":"alice@contoso.com","serial":"0012345"}}
{"jsonrpc":"2.0","id":2,"method":"tokens.create","params":{"account":"bob@contoso.com","serial":"0012346"}}
{"jsonrpc":"2.0","id":3,"method":"tokens.delete","params":{"token":"0012345"}}
{"jsonrpc":"2.0","id":4,"method":"keys.set_config","params":{"key_press":true,"keyboard":false}}
{"jsonrpc":"2.0","id":5,"method":"keys.claim"}
{"jsonrpc":"2.0","id":6,"method":"tokens.list"}
"#;
    let unplug = format!(
        "{changes}{}",
        r#"{"jsonrpc":"2.0","id":7,"method":"virtual.unplug"}"#
    );
    for input in [changes, &unplug, changes, &unplug] {
        let outcome = rpc_dispatch::check(input.as_bytes());
        assert_eq!(outcome.errors[1], [], "{input}");
        let daemon = rpc_dispatch::Daemon::start();
        let entries = daemon.service.registry().list();
        assert_eq!(entries.len(), 1, "one key, plugged in: {input}");
        let again = entries[0].virtual_handle.clone().expect("a virtual key");
        assert!(again.is_plugged());
        let state = again.state();
        assert_eq!(state.uuid, new.uuid, "the same key: the fixture was reused");
        assert_eq!(state, new, "no token left, settings as new: {input}");
        assert_eq!(
            entries[0].settings(),
            settings,
            "the daemon's view: {input}"
        );
        assert_eq!(entries[0].claimant(), None, "no claim");
        assert_eq!(entries[0].cached_tokens(), None, "no token list cached");
        assert!(
            daemon.service.ledger().records().is_empty(),
            "an empty ledger"
        );
        drop(entries);
        daemon.finish();
    }
}
