//! Batch work at the edges: users files and selections far larger than one request line,
//! bounded waits, outputs checked before any key is touched, and the summaries `--json` prints.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oathkey_seedfile::{Format, TokenRecord};
use oathkey_testkit::{Daemon, assert_exit, stderr, stdout};
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

/// Runs the CLI against `d`, killing it if it has not ended within `limit` (a hang is a
/// failure, not a test that never ends).
fn cli_within(d: &Daemon, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    let mut child = d.spawn_cli(args);
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("waits");
            panic!(
                "{args:?} still ran after {limit:?}\nstderr:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("waits")
}

/// `--wait` bounds the wait for the seeded key to be removed as it bounds the wait for the
/// next one: it hung for ever at "Remove key ... and insert the next one".
#[test]
fn provision_wait_bounds_the_wait_for_removal_too() {
    let d = Daemon::start(&["--emulate", "2"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "hana@contoso.com\nivan@contoso.com\n").expect("written");
    let out = dir.join("tseed.csv");
    let started = std::time::Instant::now();
    let run = cli_within(
        &d,
        &[
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--wait",
            "2",
        ],
        std::time::Duration::from_secs(30),
    );
    assert_exit(&run, 4);
    let err = stderr(&run);
    assert!(err.contains("Remove key"), "{err}");
    assert!(err.contains("was not removed within 2 s"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    // The first user's row is safe; the second is left for the next run.
    let rows = read(Format::AzureCsv, &out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user, "hana@contoso.com");
}

/// Where provision and export write is checked before any key is touched or any seed is
/// written or marked exported: a missing directory, a directory where the file should be, a
/// file where the directory should be, a QR code that exists already.
#[test]
fn outputs_are_checked_before_anything_is_done() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "jo@contoso.com\n").expect("written");
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "").expect("written");
    let a_dir = dir.join("a-dir");
    std::fs::create_dir(&a_dir).expect("created");
    let missing = Path::new("/nonexistent/dir/x.csv").to_path_buf();
    let under_file = a_file.join("x.csv");
    let tokens = |d: &Daemon| -> usize {
        let t: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("lists");
        t.len()
    };
    for (out, says) in [
        (&missing, "/nonexistent/dir"),
        (&under_file, "is not a directory"),
        (&a_dir, "is a directory"),
    ] {
        let run = d.cli(&[
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--keys-present",
        ]);
        assert_exit(&run, 10);
        assert!(stderr(&run).contains(says), "{out:?}: {}", stderr(&run));
        assert!(
            stderr(&run).contains("no key was touched"),
            "{}",
            stderr(&run)
        );
        assert_eq!(tokens(&d), 0, "{out:?}: no key was touched");
    }

    // export: nothing is written or marked when an output cannot be made.
    assert_exit(
        &d.cli(&[
            "token",
            "new",
            "--user",
            "kim@contoso.com",
            "--serial",
            "K1",
        ]),
        0,
    );
    let qr = dir.join("qr");
    std::fs::create_dir(&qr).expect("created");
    std::fs::write(qr.join("K1.png"), "an older code").expect("written");
    let seeds = dir.join("seeds.csv");
    for (args, says) in [
        (
            vec!["export", "-o", missing.to_str().expect("utf8")],
            "/nonexistent/dir",
        ),
        (
            vec!["export", "-o", a_dir.to_str().expect("utf8"), "--replace"],
            "is a directory",
        ),
        (
            vec![
                "export",
                "-o",
                seeds.to_str().expect("utf8"),
                "--qr-dir",
                qr.to_str().expect("utf8"),
            ],
            "K1.png already exists",
        ),
        (
            vec![
                "export",
                "-o",
                seeds.to_str().expect("utf8"),
                "--qr-dir",
                a_file.to_str().expect("utf8"),
            ],
            "is not a directory",
        ),
    ] {
        let run = d.cli(&args);
        assert_exit(&run, 10);
        assert!(stderr(&run).contains(says), "{args:?}: {}", stderr(&run));
        assert!(!seeds.exists(), "{args:?}: nothing written");
        let listed: Vec<Value> = d.client().call("seeds.list", Value::Null).expect("lists");
        assert!(listed[0]["exported_at"].is_null(), "{args:?}: not marked");
    }
    assert_eq!(
        std::fs::read(qr.join("K1.png")).expect("kept"),
        b"an older code"
    );
}

/// Runs the CLI with its standard output going to `file` (`oathkey ... > file`).
fn cli_into(d: &Daemon, args: &[&str], file: &Path) -> std::process::Output {
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .expect("opens");
    std::process::Command::new(oathkey_testkit::bin("oathkey"))
        .args(args)
        .env("OATHKEY_SOCKET", &d.socket)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .output()
        .expect("runs")
}

/// A file as the shell creates it for `>` with the usual umask: empty, 0644.
fn shell_file(path: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::write(&path, "").expect("created");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

fn exported(d: &Daemon, serial: &str) -> bool {
    let listed: Vec<Value> = d
        .client()
        .call("seeds.list", serde_json::json!({"serials": [serial]}))
        .expect("lists");
    listed[0]["exported_at"].is_number()
}

/// `oathkey export > seeds.csv` (as docs/seeding.md shows) left every seed in a 0644 file and
/// marked them exported; `token new > alice.txt` the same for its seed. Standard output that
/// is a file is made 0600 before a seed goes to it; a file that cannot be made private (other
/// names, someone else's) is refused before anything is written, or any key touched.
#[test]
fn seeds_go_to_standard_output_only_when_it_is_private() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    for serial in ["P1", "P2"] {
        let user = format!("{}@contoso.com", serial.to_lowercase());
        assert_exit(
            &d.cli(&["token", "new", "--user", &user, "--serial", serial]),
            0,
        );
    }
    let seeds = shell_file(dir.join("seeds.csv"));
    let run = cli_into(&d, &["export", "--serial", "P1"], &seeds);
    assert_exit(&run, 0);
    assert_eq!(mode(&seeds), 0o600, "made private");
    let rows = read(Format::AzureCsv, &seeds);
    assert_eq!(rows.len(), 1);
    assert!(exported(&d, "P1"), "a file keeps what was written: marked");

    // A second name for the file (made before the export) would keep the seeds readable.
    let linked = shell_file(dir.join("linked.csv"));
    std::fs::hard_link(&linked, dir.join("other-name.csv")).expect("linked");
    let run = cli_into(&d, &["export", "--serial", "P2"], &linked);
    assert_exit(&run, 10);
    assert!(stderr(&run).contains("hard links"), "{}", stderr(&run));
    assert!(stderr(&run).contains("-o FILE"), "{}", stderr(&run));
    assert_eq!(
        std::fs::read(&linked).expect("reads"),
        b"",
        "nothing written"
    );
    assert!(!exported(&d, "P2"), "not marked");

    let tokens = |d: &Daemon| -> usize {
        let t: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("lists");
        t.len()
    };
    // token new prints the seed once: the same rules, checked before the key is touched.
    let alice = shell_file(dir.join("alice.txt"));
    let run = cli_into(&d, &["token", "new", "--user", "alice@contoso.com"], &alice);
    assert_exit(&run, 0);
    assert_eq!(mode(&alice), 0o600);
    assert!(
        std::fs::read_to_string(&alice)
            .expect("reads")
            .contains("Secret:"),
        "the seed went to the file"
    );
    let before = tokens(&d);
    let run = cli_into(&d, &["token", "new", "--user", "bob@contoso.com"], &linked);
    assert_exit(&run, 10);
    assert_eq!(tokens(&d), before, "no key was touched");

    // A file of someone else's: they can read it whatever its mode (only root can test this).
    if oathkey_testkit::is_root() {
        let theirs = shell_file(dir.join("theirs.csv"));
        std::process::Command::new("chown")
            .args(["65534:65534", theirs.to_str().expect("utf8")])
            .status()
            .expect("chown runs");
        let run = cli_into(&d, &["export", "--serial", "P2"], &theirs);
        assert_exit(&run, 10);
        assert!(
            stderr(&run).contains("belongs to uid 65534"),
            "{}",
            stderr(&run)
        );
        assert_eq!(std::fs::read(&theirs).expect("reads"), b"");
        assert!(!exported(&d, "P2"));
    }
}

/// `--json` everywhere, as the README says: provision and export printed nothing on standard
/// output. They print what they did (users, keys, serials, counts, files), never a seed.
#[test]
fn provision_and_export_print_a_json_summary_without_seeds() {
    let d = Daemon::start(&["--emulate", "2"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(
        &users,
        "lea@contoso.com\nmax@contoso.com\nned@contoso.com\n",
    )
    .expect("written");
    let out = dir.join("tseed.csv");
    let run = d.cli(&[
        "--json",
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keys-present",
    ]);
    assert_exit(&run, 0);
    let summary: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", stdout(&run)));
    let rows = read(Format::AzureCsv, &out);
    assert_eq!(summary["seed_file"], out.to_str().expect("utf8"));
    assert_eq!(summary["format"], "azure-csv");
    assert_eq!(summary["already_in_file"], 0);
    assert_eq!(summary["left"], 1, "two keys for three users");
    let seeded = summary["seeded"].as_array().expect("a list");
    assert_eq!(seeded.len(), 2);
    for row in &rows {
        assert!(
            seeded.iter().any(|s| s["user"] == row.user.as_str()
                && s["serial"] == row.serial.as_str()
                && s["key"].is_string()),
            "{row:?} in {summary}"
        );
        let secret = data_encoding::BASE32_NOPAD.encode(row.secret.expose());
        assert!(!stdout(&run).contains(&secret), "no seed in the summary");
    }

    let seeds = dir.join("seeds.xml");
    let run = d.cli(&[
        "--json",
        "export",
        "--format",
        "pskc",
        "-o",
        seeds.to_str().expect("utf8"),
    ]);
    assert_exit(&run, 0);
    let summary: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", stdout(&run)));
    assert_eq!(summary["file"], seeds.to_str().expect("utf8"));
    assert_eq!(summary["format"], "pskc");
    assert_eq!(summary["exported"], 2);
    let mut serials: Vec<&str> = summary["serials"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    serials.sort_unstable();
    let mut want: Vec<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
    want.sort_unstable();
    assert_eq!(serials, want);
    for row in &rows {
        let secret = data_encoding::BASE32_NOPAD.encode(row.secret.expose());
        assert!(!stdout(&run).contains(&secret), "no seed in the summary");
    }
    // Nothing matches: an empty summary, still JSON.
    let none = dir.join("none.csv");
    let run = d.cli(&[
        "--json",
        "export",
        "--new-only",
        "-o",
        none.to_str().expect("utf8"),
    ]);
    assert_exit(&run, 0);
    let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(summary["exported"], 0);
    assert!(!none.exists());
}
