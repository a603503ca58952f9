//! Every CLI command against a real daemon with virtual keys: text and JSON output, exit codes,
//! codes checked against independent TOTP implementations (totp-rs and oathtool).

use std::process::Command;

use oathkey_testkit::{Daemon, assert_exit, reference_totp_b32, stderr, stdout};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(o)))
}

#[test]
fn the_admin_workflow_through_the_cli() {
    let d = Daemon::start(&["--emulate", "1"]);

    let keys = d.cli(&["keys", "--json"]);
    assert_exit(&keys, 0);
    let keys = json(&keys);
    let id = keys["keys"][0]["id"].as_str().expect("an id").to_string();
    assert_eq!(keys["keys"][0]["model"], "oathkey virtual key");
    assert_eq!(keys["keys"][0]["source"], "virtual");
    let text = d.cli(&["keys"]);
    assert!(
        stdout(&text).contains(&id) && stdout(&text).starts_with("ID"),
        "{}",
        stdout(&text)
    );

    // No tokens yet: an empty list, said on stderr.
    let empty = d.cli(&["tokens", "--json"]);
    assert_exit(&empty, 0);
    assert_eq!(json(&empty), serde_json::json!([]));

    // The admin tool's form: user, serial, hash, digits, period.
    let created = d.cli(&[
        "token",
        "new",
        "--user",
        "alice@contoso.com",
        "--serial",
        "0012345",
        "--json",
    ]);
    assert_exit(&created, 0);
    let created = json(&created);
    assert_eq!(created["serial"], "0012345", "leading zeros kept");
    assert_eq!(created["token"]["name"], "0012345:alice@contoso.com");
    let secret = created["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_string();
    assert!(
        secret.len() >= 32
            && secret
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    );

    let created8 = d.cli(&[
        "token",
        "new",
        "--user",
        "bob@contoso.com",
        "--hash",
        "sha256",
        "--digits",
        "8",
        "--period",
        "60",
        "--json",
    ]);
    assert_exit(&created8, 0);
    let created8 = json(&created8);
    let serial8 = created8["serial"]
        .as_str()
        .expect("generated serial")
        .to_string();
    assert_eq!(serial8.len(), 8);
    assert!(serial8.chars().all(|c| c.is_ascii_digit()));
    let secret8 = created8["secret"].as_str().expect("secret").to_string();

    // Text output shows the secret too (the one time), and tokens lists both.
    let listed = d.cli(&["tokens"]);
    assert_exit(&listed, 0);
    let listed = stdout(&listed);
    assert!(
        listed.contains("0012345")
            && listed.contains("bob@contoso.com")
            && listed.contains("SHA256"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "tokens never shows secrets");

    // `code` prints the code and nothing else; by account, by serial, by name.
    for (token, alg, digits, period, seed) in [
        ("alice@contoso.com", "sha1", 6u8, 30u64, &secret),
        ("0012345", "sha1", 6, 30, &secret),
        ("0012345:alice@contoso.com", "sha1", 6, 30, &secret),
        (serial8.as_str(), "sha256", 8, 60, &secret8),
    ] {
        for t in [59u64, 1_111_111_109, 2_000_000_000] {
            let at = t.to_string();
            let out = d.cli(&["code", token, "--at", &at]);
            assert_exit(&out, 0);
            let expected = reference_totp_b32(alg, digits, period, seed, t);
            assert_eq!(stdout(&out), format!("{expected}\n"), "{token} at {t}");
        }
    }
    // oathtool agrees for the SHA-256 token (an implementation in C, not Rust).
    let tool = Command::new("oathtool")
        .args([
            "--totp=sha256",
            "--digits=8",
            "--time-step-size=60s",
            "--now=@1234567890",
            "-b",
            &secret8,
        ])
        .output()
        .expect("oathtool (scripts/setup installs it)");
    let out = d.cli(&["code", &serial8, "--at", "1234567890"]);
    assert_eq!(stdout(&out), stdout(&tool));

    // --json on code gives validity times.
    let code = json(&d.cli(&["code", "alice@contoso.com", "--at", "59", "--json"]));
    assert_eq!(code["valid_from"], 30);
    assert_eq!(code["valid_until"], 60);
    assert_eq!(code["digits"], 6);

    // codes: every token with seconds left.
    let all = d.cli(&["codes", "--at", "100", "--json"]);
    assert_exit(&all, 0);
    let all = json(&all);
    assert_eq!(all.as_array().expect("array").len(), 2);
    for entry in all.as_array().expect("array") {
        assert!(entry["code"].is_string(), "{entry}");
    }
    let table = stdout(&d.cli(&["codes"]));
    assert!(
        table.starts_with("KEY") && table.contains("LEFT"),
        "{table}"
    );

    // wink and config.
    assert_exit(&d.cli(&["wink"]), 0);
    let config = json(&d.cli(&["config", "--json"]));
    assert_eq!(
        config,
        serde_json::json!({"keyboard": true, "u2f": true, "key_press": false})
    );
    let changed = d.cli(&["config", "--key-press", "on", "--keyboard", "off", "--json"]);
    assert_exit(&changed, 0);
    assert_eq!(
        json(&changed),
        serde_json::json!({"keyboard": false, "u2f": true, "key_press": true})
    );
    let text = stdout(&d.cli(&["config"]));
    assert!(
        text.contains("Key Press:     enabled") && text.contains("Mode Keyboard: disabled"),
        "{text}"
    );
    let refused = d.cli(&["config", "--u2f", "off"]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("at least one of Keyboard and U2F"),
        "{}",
        stderr(&refused)
    );
    assert_exit(
        &d.cli(&["config", "--key-press", "off", "--keyboard", "on"]),
        0,
    );

    // Delete, then the token is gone.
    assert_exit(&d.cli(&["token", "delete", "0012345"]), 0);
    let gone = d.cli(&["code", "0012345"]);
    assert_exit(&gone, 4);
    assert!(stderr(&gone).contains("no token"), "{}", stderr(&gone));
    assert_eq!(stdout(&gone), "", "nothing on stdout when there is no code");

    // A key chosen explicitly works; an unknown one says which exist.
    assert_exit(&d.cli(&["--key", &id, "tokens"]), 0);
    let unknown = d.cli(&["--key", "ffffffff", "tokens"]);
    assert_exit(&unknown, 4);
    assert!(stderr(&unknown).contains(&id), "{}", stderr(&unknown));
}

#[test]
fn several_keys_need_a_choice() {
    let d = Daemon::start(&["--emulate", "2"]);
    let out = d.cli(&["token", "new", "--user", "carol@contoso.com"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("2 keys are present") && err.contains("--key"),
        "{err}"
    );
    let ids: Vec<String> = json(&d.cli(&["keys", "--json"]))["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_string())
        .collect();
    for id in &ids {
        assert!(err.contains(id.as_str()), "the message lists {id}: {err}");
    }
    assert_exit(
        &d.cli(&[
            "--key",
            &ids[1],
            "token",
            "new",
            "--user",
            "carol@contoso.com",
        ]),
        0,
    );
    // Token lookup spans keys when no key is given.
    assert_exit(&d.cli(&["code", "carol@contoso.com"]), 0);
}

#[test]
fn importing_a_secret_and_usage_errors() {
    let d = Daemon::start(&["--emulate", "1"]);
    // RFC 6238's SHA-1 seed, typed in lower case with spaces as people do.
    let out = d.cli(&[
        "token",
        "new",
        "--user",
        "rfc@example.com",
        "--serial",
        "R1",
        "--digits",
        "8",
        "--secret",
        "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
        "--json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&d.cli(&["code", "R1", "--at", "59"])), "94287082\n");
    // The secret can come from the environment instead of the command line.
    let out = Command::new(oathkey_testkit::bin("oathkey"))
        .args([
            "token",
            "new",
            "--user",
            "env@example.com",
            "--serial",
            "E1",
            "--secret",
            "-",
        ])
        .env("OATHKEY_SOCKET", &d.socket)
        .env("OATHKEY_SECRET", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        .output()
        .expect("runs");
    assert_exit(&out, 0);
    assert_eq!(stdout(&d.cli(&["code", "E1", "--at", "59"])).len(), 7);

    let bad = d.cli(&[
        "token",
        "new",
        "--user",
        "x@example.com",
        "--secret",
        "not base32!",
    ]);
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("Base32"), "{}", stderr(&bad));
    assert_exit(
        &d.cli(&["token", "new", "--user", "x@example.com", "--digits", "7"]),
        2,
    );
    assert_exit(
        &d.cli(&["token", "new", "--user", "x@example.com", "--period", "45"]),
        2,
    );
    let dup = d.cli(&["token", "new", "--user", "y@example.com", "--serial", "R1"]);
    assert_exit(&dup, 9);
    assert_exit(&d.cli(&["frobnicate"]), 2);
    // --at means nothing to a command that computes no code: refused, not ignored.
    let at = d.cli(&["keys", "--at", "59"]);
    assert_exit(&at, 2);
    assert!(
        stderr(&at).contains("--at applies only to"),
        "{}",
        stderr(&at)
    );
}

/// A path that certainly holds no socket.
fn missing_socket(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("nothing-here.sock")
}

#[test]
fn no_daemon_is_exit_3_with_advice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(oathkey_testkit::bin("oathkey"))
        .arg("keys")
        .env("OATHKEY_SOCKET", missing_socket(dir.path()))
        .output()
        .expect("runs");
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("is it running?") && err.contains("oathkeyd --user"),
        "{err}"
    );
}

#[test]
fn the_demo_runs_on_its_own() {
    // A fresh environment: no socket variable, no daemon. --periods 1 (one code) keeps it
    // short. As the user running the tests, and (when that is root) as an ordinary user with
    // no groups: the private daemon's own user may seed its key.
    let mut runs = vec![Command::new(oathkey_testkit::bin("oathkey"))];
    // The demo starts the oathkeyd beside it: both where uid 65534 can run them.
    let bins = oathkey_testkit::ForAnyone::bins(&["oathkey", "oathkeyd"]);
    if oathkey_testkit::is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bins.path("oathkey"))
            .env("TMPDIR", "/tmp")
            .env("HOME", "/nonexistent");
        runs.push(c);
    }
    for mut run in runs {
        check_demo(
            run.args(["demo", "--periods", "1"])
                .env_remove("OATHKEY_SOCKET")
                .env_remove("XDG_RUNTIME_DIR")
                .stdin(std::process::Stdio::null())
                .output()
                .expect("runs"),
        );
    }
}

fn check_demo(out: std::process::Output) {
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("Started a private oathkeyd with one virtual key"),
        "{text}"
    );
    assert!(text.contains("demo.user@contoso.com"), "{text}");
    // At least one live six-digit code was shown.
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .next()
            .is_some_and(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))),
        "{text}"
    );
    assert!(text.contains("deleted"), "{text}");
}

#[test]
fn events_prints_json_lines_and_stops_when_told() {
    let d = Daemon::start(&["--emulate", "1"]);
    // Nothing happens: --timeout ends it quietly.
    let quiet = d.cli(&["events", "--timeout", "1"]);
    assert_exit(&quiet, 0);
    assert_eq!(stdout(&quiet), "");

    let mut listener = Command::new(oathkey_testkit::bin("oathkey"))
        .args(["events", "--count", "1", "--timeout", "30"])
        .env("OATHKEY_SOCKET", &d.socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("events runs");
    // The listener subscribes at some point after it starts: change tokens until it has seen one.
    let mut n = 0;
    let status = loop {
        if let Some(status) = listener.try_wait().expect("try_wait") {
            break status;
        }
        assert!(n < 100, "no event arrived:\n{}", d.log_text());
        let user = format!("ev{n}@example.com");
        assert_exit(&d.cli(&["token", "new", "--user", &user]), 0);
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success());
    let mut text = String::new();
    std::io::Read::read_to_string(&mut listener.stdout.take().expect("piped"), &mut text)
        .expect("reads");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let event: Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(event["type"], "tokens_changed", "{text}");
    assert_eq!(event["key"], d.key_id().as_str(), "{text}");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let d = Daemon::start(&["--emulate", "1"]);
    for args in [&["keys"][..], &["--json", "keys"], &["tokens"]] {
        let mut child = Command::new(oathkey_testkit::bin("oathkey"))
            .args(args)
            .env("OATHKEY_SOCKET", &d.socket)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        // The reader goes away before anything is written (`oathkey keys | head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waits");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}
