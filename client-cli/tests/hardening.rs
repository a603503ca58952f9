//! Defects found by trying oathkey as an admin and as an attacker would (issue 13), each checked
//! against real `oathkeyd` and `oathkey` processes: values a key cannot hold, state directories
//! another user prepared, two daemons on one state directory, a ledger that follows what the
//! keys hold, connection budgets, and touch waits that must not stall other reads.

mod common;

use common::{Daemon, assert_exit, stderr, stdout};
use serde_json::{Value, json};

fn seeds(d: &Daemon) -> Vec<Value> {
    d.client()
        .call("seeds.list", json!({"include_incomplete": true}))
        .expect("seeds.list")
}

#[test]
fn an_hotp_counter_the_key_cannot_move_on_is_refused_before_anything_is_written() {
    let d = Daemon::start(&["--emulate", "1"]);
    let out = d.cli(&[
        "token",
        "new",
        "--user",
        "alice@contoso.com",
        "--hotp",
        "--counter",
        "4294967295",
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("below 4294967295"),
        "says why: {}",
        stderr(&out)
    );
    assert!(seeds(&d).is_empty(), "no ledger record: {:?}", seeds(&d));
    let tokens: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("list");
    assert!(tokens.is_empty(), "nothing on the key: {tokens:?}");

    // One below works, for exactly one code; the next read says why there is none.
    let out = d.cli(&[
        "token",
        "new",
        "--user",
        "bob@contoso.com",
        "--serial",
        "H1",
        "--hotp",
        "--counter",
        "4294967294",
    ]);
    assert_exit(&out, 0);
    assert_exit(&d.cli(&["code", "H1"]), 0);
    let out = d.cli(&["code", "H1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("gives no more codes"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_name_with_an_invisible_character_never_reaches_a_key_or_the_ledger() {
    let d = Daemon::start(&["--emulate", "1"]);
    for (account, shown) in [
        ("\u{FEFF}alice@contoso.com", "U+FEFF"),
        ("al\u{200B}ice@contoso.com", "U+200B"),
    ] {
        let err = d
            .client()
            .call::<_, Value>("tokens.create", json!({"account": account}))
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains(shown), "{text}");
    }
    assert!(seeds(&d).is_empty());
}
