//! Defects found by trying oathkey as an admin and as an attacker would (issue 13), each checked
//! against real `oathkeyd` and `oathkey` processes: values a key cannot hold, state directories
//! another user prepared, two daemons on one state directory, a ledger that follows what the
//! keys hold, connection budgets, and touch waits that must not stall other reads.

use oathkey_testkit::{Daemon, assert_exit, bin, cli_as, is_root, stderr, stdout};
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

/// Starts `oathkeyd` expecting it to refuse; returns its stderr.
fn refused_start(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(bin("oathkeyd"))
        .args(["--user", "--no-hid"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("oathkeyd runs");
    assert!(
        !out.status.success(),
        "oathkeyd started but should have refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_second_daemon_on_the_same_state_directory_is_refused_and_told_who_holds_it() {
    let first = Daemon::start(&["--emulate", "1"]);
    let state = first.dir.path().join("state");
    let other_socket = first.dir.path().join("second.sock");
    let err = refused_start(&[
        "--socket".as_ref(),
        other_socket.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ]);
    assert!(err.contains("in use by another oathkeyd"), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.pid())) && err.contains("oathkeyd.sock"),
        "names the holder: {err}"
    );
    assert!(!other_socket.exists(), "the refused daemon left no socket");
    // The first is unharmed and keeps its ledger.
    assert_exit(
        &first.cli(&["token", "new", "--user", "alice@contoso.com"]),
        0,
    );
    assert_eq!(seeds(&first).len(), 1);
}

#[test]
fn a_state_directory_others_can_write_or_a_planted_link_is_refused() {
    let base = tempfile::tempdir().expect("tempdir");
    let socket = base.path().join("d.sock");
    // A directory anyone can write, as another user would leave it in /tmp.
    let open = base.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let err = refused_start(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--state-dir".as_ref(),
        open.as_os_str(),
    ]);
    assert!(
        err.contains("mode 0777") && err.contains("others can write"),
        "{err}"
    );
    assert!(!open.join("seeds.ledger").exists());

    // A ledger planted as a link to a file its planter can read.
    let private = base.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let bait = base.path().join("bait");
    std::fs::write(&bait, "").expect("bait");
    std::os::unix::fs::symlink(&bait, private.join("seeds.ledger")).expect("symlink");
    let err = refused_start(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--state-dir".as_ref(),
        private.as_os_str(),
    ]);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read(&bait).expect("bait"),
        b"",
        "nothing went into it"
    );
}

#[test]
fn a_state_directory_another_user_prepared_is_refused_by_root() {
    if !is_root() {
        eprintln!("not root: cannot create another user's directory; skipped");
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let socket = base.path().join("d.sock");
    // What the attacker did: their own directory, world-writable, with the ledger a link to a
    // file they can read.
    let theirs = base.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    let bait = base.path().join("bait");
    std::fs::write(&bait, "").expect("bait");
    std::os::unix::fs::symlink(&bait, theirs.join("seeds.ledger")).expect("symlink");
    for path in [&theirs, &bait] {
        nix::unistd::chown(
            path.as_path(),
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .expect("chown");
    }
    std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let err = refused_start(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--state-dir".as_ref(),
        theirs.as_os_str(),
    ]);
    assert!(err.contains("belongs to uid 65534"), "{err}");
    assert_eq!(
        std::fs::read(&bait).expect("bait"),
        b"",
        "no seed reached the bait"
    );
    // Nor one level down, inside their directory.
    let err = refused_start(&[
        "--socket".as_ref(),
        socket.as_os_str(),
        "--state-dir".as_ref(),
        theirs.join("sub").as_os_str(),
    ]);
    assert!(err.contains("another user can replace"), "{err}");
    assert!(
        !theirs.join("sub").exists(),
        "nothing was created in their directory"
    );
}

fn seed_list(d: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["seeds", "list", "--json"];
    all.extend_from_slice(args);
    let out = d.cli(&all);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// A deleted token's record no longer says "verified": it is not exported, not restored by
/// `provision`, does not clash with a new token of the same serial, and can be cleared.
#[test]
fn the_ledger_follows_a_deleted_token() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    assert_exit(
        &d.cli(&[
            "token",
            "new",
            "--user",
            "alice@contoso.com",
            "--serial",
            "0012345",
        ]),
        0,
    );
    assert_exit(&d.cli(&["token", "delete", "0012345"]), 0);
    assert!(seed_list(&d, &[]).is_empty(), "nothing exportable is left");
    let stale = seed_list(&d, &["--stale"]);
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0]["state"], "deleted");
    assert_eq!(stale[0]["serial"], "0012345");
    let csv = dir.join("all.csv");
    let out = d.cli(&["export", "-o", csv.to_str().expect("utf8")]);
    assert!(
        !std::fs::read_to_string(&csv)
            .unwrap_or_default()
            .contains("0012345"),
        "exported a deleted token: {}",
        stderr(&out)
    );

    // provision does not "restore" the deleted seed: alice gets a new token.
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice@contoso.com\n").expect("users");
    let tseed = dir.join("tseed.csv");
    let out = d.cli(&[
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        tseed.to_str().expect("utf8"),
        "--keys-present",
        "--allow-used-keys",
    ]);
    assert_exit(&out, 0);
    let rows = std::fs::read_to_string(&tseed).expect("tseed.csv");
    assert!(!rows.contains("0012345"), "restored a deleted seed: {rows}");
    assert!(!stderr(&out).contains("restored"), "{}", stderr(&out));
    assert_eq!(
        rows.lines().count(),
        2,
        "header and alice's new token: {rows}"
    );

    // The serial can be used again, and exporting it finds the one token a key holds.
    assert_exit(
        &d.cli(&[
            "token",
            "new",
            "--user",
            "bob@contoso.com",
            "--serial",
            "0012345",
        ]),
        0,
    );
    let bob = dir.join("bob.csv");
    let out = d.cli(&[
        "export",
        "--serial",
        "0012345",
        "-o",
        bob.to_str().expect("utf8"),
    ]);
    assert_exit(&out, 0);
    let rows = std::fs::read_to_string(&bob).expect("bob.csv");
    assert!(
        rows.contains("bob@contoso.com") && !rows.contains("alice@contoso.com"),
        "{rows}"
    );

    // Stale records are cleared on request; the others stay.
    let before = seed_list(&d, &["--all"]).len();
    let out = d.cli(&["seeds", "purge", "--stale"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("Purged 1 stale"), "{}", stderr(&out));
    assert!(seed_list(&d, &["--stale"]).is_empty());
    assert_eq!(seed_list(&d, &["--all"]).len(), before - 1);
    // Purging needs to be told what.
    assert_exit(&d.cli(&["seeds", "purge"]), 2);
}

/// A hostile reader (uid 65534) that opens connections and sits on them: it gets its share and
/// no more, root is served all along, and its idle connections are closed.
#[test]
fn one_reader_cannot_lock_everyone_out_with_idle_connections() {
    if !is_root() {
        eprintln!("not root: the test needs setpriv to become another uid; skipped");
        return;
    }
    let d = Daemon::start_with_config(
        Some(
            "socket_mode = \"0666\"\nmax_clients = 64\nmax_clients_per_user = 8\n\
             admin_reserved_clients = 16\nidle_timeout_s = 5\n",
        ),
        &["--emulate", "1"],
    );
    assert_exit(
        &d.cli(&[
            "token",
            "new",
            "--user",
            "alice@contoso.com",
            "--serial",
            "A1",
        ]),
        0,
    );
    // The attacker: 20 connections, reporting which were refused at once, then holding the
    // rest until each is closed by the daemon.
    let script = r#"
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
conns, held, refused = [], [], []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    conns.append(s)
# Refusals are written at once; give the daemon a moment to get through the accepts.
time.sleep(1)
for s in conns:
    s.settimeout(0.05)
    try:
        refused.append(s.recv(4096).decode())
    except socket.timeout:
        held.append(s)
print("held", len(held), flush=True)
print("refused", len(refused), refused[0].strip() if refused else "", flush=True)
for s in held:
    s.settimeout(30)
closed = 0
for s in held:
    if s.recv(1) == b"":
        closed += 1
print("closed", closed, flush=True)
"#;
    let mut attacker = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            // Debian's, not a shim in root's home that another uid cannot run.
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(&d.socket)
        .arg("20")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        attacker.stdout.take().expect("stdout"),
    ));
    let mut next = || lines.next().expect("a line").expect("text");
    assert_eq!(next(), "held 8", "the reader got its share");
    let refused = next();
    assert!(
        refused.starts_with("refused 12 ")
            && refused.contains("Busy")
            && refused.contains("your user already holds 8"),
        "{refused}"
    );
    // Meanwhile root is served, and so is another reader.
    assert_exit(&d.cli(&["code", "A1"]), 0);
    let other_reader = cli_as(&d, 4242, &["code", "A1"]);
    assert_exit(&other_reader, 0);
    // The held connections do nothing: the daemon closes them.
    assert_eq!(next(), "closed 8", "idle reader connections are closed");
    assert!(attacker.wait().expect("exits").success());
    assert!(
        d.log_text().contains("refusing a connection"),
        "the refusals are logged"
    );
}
