//! Batch work at the edges: users files and selections far larger than one request line,
//! bounded waits, outputs checked before any key is touched, and the summaries `--json` prints.

mod common;

use std::path::Path;

use common::{Daemon, assert_exit, stderr, stdout};
use oathkey_seedfile::{Format, TokenRecord};
use serde_json::Value;

fn read(format: Format, path: &Path) -> Vec<TokenRecord> {
    let bytes = std::fs::read(path).expect("file written");
    let parsed = oathkey_seedfile::read(format, &bytes);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    parsed.records.into_iter().map(|(_, r)| r).collect()
}

fn users_file(dir: &Path, name: &str, count: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let text: String = (0..count)
        .map(|i| format!("user{i:06}@contoso.com\n"))
        .collect();
    std::fs::write(&path, text).expect("written");
    path
}

/// The users file's size made the ledger queries longer than the daemon's 64 KiB line: 3,000
/// users failed with "answer for unknown request Null", 500,000 with a broken pipe. Every size
/// works now; the keys plugged in are seeded and the rest are left for the next run.
#[test]
fn provision_takes_users_files_far_over_one_request_line() {
    let d = Daemon::start(&["--emulate", "2"]);
    let dir = d.dir.path();
    for count in [3_000, 100_000] {
        let users = users_file(dir, &format!("users-{count}.txt"), count);
        let out = dir.join(format!("tseed-{count}.csv"));
        let run = d.cli(&[
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--keys-present",
            "--allow-used-keys",
        ]);
        assert_exit(&run, 0);
        let rows = read(Format::AzureCsv, &out);
        assert_eq!(rows.len(), 2, "one user per key plugged in");
        assert!(
            stderr(&run).contains(&format!("{} user(s) left", count - 2)),
            "{}",
            stderr(&run)
        );
    }
}

/// `export --serial` repeated thousands of times (a selection built by a script) is split into
/// requests that fit; the result is the same as one request would give.
#[test]
fn export_takes_selections_far_over_one_request_line() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let created = d.cli(&[
        "token",
        "new",
        "--user",
        "alice@contoso.com",
        "--serial",
        "0012345",
    ]);
    assert_exit(&created, 0);
    // 10,000 serials (about 110 KB of JSON) that match nothing, and the one that does, last.
    let mut args: Vec<String> = vec!["export".into(), "-o".into()];
    args.push(dir.join("some.csv").to_str().expect("utf8").into());
    for i in 0..10_000 {
        args.push("--serial".into());
        args.push(format!("N{i:07}"));
    }
    args.extend(["--serial".into(), "0012345".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = d.cli(&args);
    assert_exit(&run, 0);
    let rows = read(Format::AzureCsv, &dir.join("some.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].serial, "0012345");
    let listed: Vec<Value> = d.client().call("seeds.list", Value::Null).expect("lists");
    assert!(
        listed[0]["exported_at"].is_number(),
        "marked exported: {listed:?}"
    );
    assert!(stdout(&run).is_empty());
}
