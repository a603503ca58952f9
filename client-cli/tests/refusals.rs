//! What the CLI refuses, and how it says so: the exit code docs/exit-codes.md documents and a
//! message that names the problem, for a busy daemon, a missing key, a request too long to
//! send, and values out of range (refused when the command line is parsed, exit 2).

mod common;

use common::{Daemon, assert_exit, stderr, stdout};
use oathkey_protocol::{ClientError, ErrorCode};

/// A daemon at its client limit refuses a connection with one `Busy` line (id null) and
/// closes: the CLI says "busy" with exit 7, as documented, not "unexpected answer", exit 1.
#[test]
fn a_daemon_with_no_room_for_another_client_is_busy_exit_7() {
    let d = Daemon::start_with_config(Some("max_clients = 2\n"), &["--emulate", "1"]);
    assert_exit(&d.cli(&["token", "new", "--user", "ann@contoso.com"]), 0);
    // Take connections until the daemon refuses one (whatever room it keeps for whom).
    let mut held = Vec::new();
    let refusal = loop {
        assert!(held.len() < 64, "the daemon never refused a connection");
        match oathkey_protocol::Client::connect(&d.socket) {
            Ok(c) => held.push(c),
            Err(e) => break e,
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
            stderr(&run).contains("too many clients; try again later"),
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
