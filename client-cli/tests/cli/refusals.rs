//! What the CLI refuses, and how it says so: the exit code docs/exit-codes.md documents and a
//! message that names the problem, for a busy daemon, a missing key, a request too long to
//! send, values out of range (refused when the command line is parsed, exit 2), and a socket
//! this user may not open (exit 6, not "no daemon").

use oathkey_protocol::{ClientError, ErrorCode};
use oathkey_testkit::{Daemon, assert_exit, cli_as_nobody, is_root, stderr, stdout};

/// A daemon at its client limit refuses a connection with one `Busy` line (id null) and
/// closes: the CLI says "busy" with exit 7, as documented, not "unexpected answer", exit 1.
#[test]
fn a_daemon_with_no_room_for_another_client_is_busy_exit_7() {
    let d = Daemon::start_with_config(Some("max_clients = 2\n"), &["--emulate", "1"]);
    assert_exit(&d.cli(&["token", "new", "--user", "ann@contoso.com"]), 0);
    // Take connections until the daemon refuses them (whatever room it keeps for whom), three
    // times in a row: a connection that just ended (the CLI's, the start-up check's) may
    // free its slot a moment later.
    let mut held = Vec::new();
    let mut refused = 0;
    let refusal = loop {
        assert!(held.len() < 64, "the daemon never refused a connection");
        match oathkey_protocol::Client::connect(&d.socket) {
            Ok(c) => {
                held.push(c);
                refused = 0;
            }
            Err(e) if refused == 2 => break e,
            Err(_) => {
                refused += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    assert!(
        matches!(&refusal, ClientError::Rpc(e) if e.kind() == Some(ErrorCode::Busy)),
        "{refusal:?}"
    );
    for args in [&["code"][..], &["tokens"], &["--json", "codes"]] {
        let run = d.cli(args);
        assert_exit(&run, 7);
        assert!(stdout(&run).is_empty(), "{args:?}");
        assert!(
            stderr(&run).contains("too many clients (2); try again later"),
            "{args:?}: {}",
            stderr(&run)
        );
        assert!(!stderr(&run).contains("unexpected"), "{}", stderr(&run));
    }
    // Room again: served.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let run = d.cli(&["code"]);
        if run.status.code() == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", stderr(&run));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A request longer than the daemon reads is refused by the CLI itself before anything is
/// sent: bad usage (exit 2) with the size and the limit, not a daemon that "closed the
/// connection".
#[test]
fn a_request_too_long_to_send_is_usage_exit_2() {
    let d = Daemon::start(&["--emulate", "1"]);
    let long = "a".repeat(70_000);
    let run = d.cli(&["code", &long]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    assert!(
        err.contains("codes.get request would be") && err.contains("limit of 65536 bytes"),
        "{err}"
    );
    // Nothing reached the daemon: it never saw a line that long.
    assert!(!d.log_text().contains("longer than"), "{}", d.log_text());
}

/// A seed file with one token (the RFC 6238 test secret), for `activate`.
fn seed_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tseed.csv");
    std::fs::write(
        &path,
        "upn,serial number,secret key,time interval,manufacturer,model\n\
         alice@contoso.com,0012345,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,oathkey,oathkey virtual key\n",
    )
    .expect("written");
    path
}

fn activate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(oathkey_testkit::bin("oathkey"))
        .arg("activate")
        .args(args)
        .output()
        .expect("runs")
}

/// `--window` above 100 was searched as 100 while the message claimed the larger window; a
/// code that is no code at all was "not accepted" (exit 11). Both are refused when the
/// command line is read, as bad usage.
#[test]
fn activate_refuses_what_it_cannot_check_as_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = seed_file(dir.path());
    let file = file.to_str().expect("utf8");
    // RFC 6238's SHA-1 code at T = 59 is 94287082; its last six digits are the 6-digit code.
    let base = ["--seed-file", file, "--serial", "0012345", "--at", "59"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        activate(&args)
    };
    assert_exit(&with(&["--code", "287082"]), 0);
    for bad in [
        "abc",
        "28708",
        "2870820",
        "287 08x",
        "",
        "-287082",
        "２８７０８２",
    ] {
        let run = with(&[&format!("--code={bad}")]);
        assert_exit(&run, 2);
        assert!(
            stderr(&run).contains("6 or 8 digits"),
            "{bad:?}: {}",
            stderr(&run)
        );
    }
    // Spaces inside a code, as authenticator apps group it, are fine.
    assert_exit(&with(&["--code", "287 082"]), 0);
    for window in ["101", "1000", "-1"] {
        let run = with(&["--code", "000000", &format!("--window={window}")]);
        assert_exit(&run, 2);
        assert!(
            stderr(&run).contains("--window")
                && (window == "-1" || stderr(&run).contains("0..=100")),
            "{window}: {}",
            stderr(&run)
        );
    }
    // The largest window is searched as said.
    let run = with(&["--code", "000000", "--window", "100"]);
    assert_exit(&run, 11);
    assert!(
        stderr(&run).contains("none of the 201 steps"),
        "{}",
        stderr(&run)
    );
    // A time whose window does not fit in 64 bits was "not accepted" (exit 11) after checking
    // fewer steps than it said; `code --at` refuses such a time as bad usage, and so does this.
    let run = activate(&[
        "--seed-file",
        file,
        "--serial",
        "0012345",
        "--code",
        "000000",
        "--at",
        "18446744073709551600",
    ]);
    assert_exit(&run, 2);
    assert!(stderr(&run).contains("--at"), "{}", stderr(&run));
}

/// Waits given in seconds far beyond any clock (`--timeout`, `--wait`) panicked adding them
/// to now; such a wait has no end the machine can tell, so it is waited as "forever".
#[test]
fn waits_beyond_any_clock_do_not_panic() {
    let d = Daemon::start(&["--emulate", "1"]);
    let run = d.cli(&[
        "events",
        "--count",
        "0",
        "--timeout",
        "18446744073709551615",
    ]);
    assert_exit(&run, 0);
    assert!(!stderr(&run).contains("panicked"), "{}", stderr(&run));
    // provision --wait: the only key is free, so it is seeded without waiting.
    let users = d.dir.path().join("users.txt");
    std::fs::write(&users, "bea@contoso.com\n").expect("written");
    let out = d.dir.path().join("tseed.csv");
    let run = d.cli(&[
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--wait",
        "18446744073709551615",
    ]);
    assert_exit(&run, 0);
    assert!(!stderr(&run).contains("panicked"), "{}", stderr(&run));
}

/// With no key plugged in, `tokens` and `codes` said "No tokens. Create one..." with exit 0,
/// while `code` said no key is plugged in (exit 4). They all say it now, `--json` too: an
/// empty list would tell a script that a key holds no tokens. `keys` lists keys, so an empty
/// list (exit 0) is its right answer.
#[test]
fn no_key_plugged_in_is_said_the_same_by_every_command_that_needs_one() {
    let d = Daemon::start(&["--emulate", "0"]);
    for args in [
        &["code"][..],
        &["tokens"],
        &["codes"],
        &["--json", "tokens"],
        &["--json", "codes"],
        &["codes", "--include-touch"],
    ] {
        let run = d.cli(args);
        assert_exit(&run, 4);
        assert!(stdout(&run).is_empty(), "{args:?}: {}", stdout(&run));
        assert!(
            stderr(&run).contains("no key is plugged in"),
            "{args:?}: {}",
            stderr(&run)
        );
        assert!(!stderr(&run).contains("No tokens"), "{}", stderr(&run));
    }
    let keys = d.cli(&["keys"]);
    assert_exit(&keys, 0);
    assert!(
        stderr(&keys).contains("No key is plugged in"),
        "{}",
        stderr(&keys)
    );
    let keys = d.cli(&["--json", "keys"]);
    assert_exit(&keys, 0);
    let list: serde_json::Value = serde_json::from_slice(&keys.stdout).expect("json");
    assert_eq!(list["keys"], serde_json::json!([]));
}

/// A daemon whose socket this user may not open is told apart from no daemon at all.
#[test]
fn a_socket_not_open_to_the_user_is_exit_6_not_no_daemon() {
    if !is_root() {
        eprintln!("not root: needs setpriv to become another uid; skipped");
        return;
    }
    // The default socket mode lets only the daemon's user (and root) in.
    let d = Daemon::start(&["--emulate", "1"]);
    let out = cli_as_nobody(&d, &["keys"]);
    assert_exit(&out, 6);
    let err = stderr(&out);
    assert!(
        err.contains("not open to you") && err.contains("group"),
        "{err}"
    );
    assert!(!err.contains("is it running?"), "{err}");
}
