//! Secrets through real processes: a daemon logging at `trace` and the CLI asked for trace logs
//! too (`RUST_LOG`, `OATHKEY_LOG`) seed keys (`token new`, imported and generated, `provision`),
//! refuse bad seeds, export every format, list the ledger, check and activate seed files and
//! print events. No seed, in any encoding, may show in the daemon's log, in any stderr, in any
//! error, or in any stdout but the two that exist to hand a seed to an admin (`token new` and an
//! export to standard output). Then a reader (uid 65534, through the real socket) calls every
//! method of the API and gets no seed in any answer.

mod common;
#[path = "../../daemon/tests/common/needles.rs"]
mod needles;

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, assert_exit, bin, cli_as_nobody, is_root, stderr, stdout};
use needles::{Needles, assert_found, assert_no_secret};
use oathkey_protocol::types::{CreatedToken, KeyList};
use oathkey_seedfile::Format;
use serde_json::{Value, json};

/// Starts `oathkeyd` logging at `trace`, its socket open to every uid (readers included).
fn trace_daemon(emulate: &str) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = dir.path().join("oathkeyd.sock");
    let log = dir.path().join("oathkeyd.log");
    let config = dir.path().join("oathkeyd.toml");
    std::fs::write(&config, "socket_mode = \"0666\"\n").expect("config");
    // This test's user is an admin even when it is not root.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .expect("our uid");
    let child = Command::new(bin("oathkeyd"))
        .args(["--admin-user", &uid])
        .args([
            "--user",
            "--no-hid",
            "--dbus",
            "off",
            "--log-level",
            "trace",
        ])
        .args(["--emulate", emulate])
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("oathkeyd starts");
    let mut d = Daemon {
        child,
        dir,
        socket,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while oathkey_protocol::Client::connect(&d.socket).is_err() {
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!("oathkeyd exited early ({status}):\n{}", d.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "oathkeyd did not come up:\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    d
}

/// Runs the CLI against `d` with trace logging asked for, `env` added.
fn cli(d: &Daemon, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("oathkey"));
    cmd.args(args)
        .env("OATHKEY_SOCKET", &d.socket)
        .env("RUST_LOG", "trace")
        .env("OATHKEY_LOG", "trace")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("oathkey runs")
}

fn random_secret() -> Vec<u8> {
    let mut bytes = vec![0u8; 20];
    let mut f = std::fs::File::open("/dev/urandom").expect("urandom");
    f.read_exact(&mut bytes).expect("random bytes");
    bytes
}

fn b32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// The `Secret:` line of `token new`'s text output.
fn printed_secret(out: &Output) -> String {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix("Secret:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no secret printed: {}", stdout(out)))
}

/// Every output of the CLI that must hold no secret, labelled.
#[derive(Default)]
struct Transcript(Vec<(String, String)>);

impl Transcript {
    /// Keeps stderr (and stdout, unless this command exists to print a seed).
    fn keep(&mut self, what: &str, out: &Output, stdout_may_hold_seeds: bool) {
        self.0
            .push((format!("stderr of `oathkey {what}`"), stderr(out)));
        if !stdout_may_hold_seeds {
            self.0
                .push((format!("stdout of `oathkey {what}`"), stdout(out)));
        }
    }

    fn check(&self, secrets: &[Needles]) {
        for (what, text) in &self.0 {
            assert_no_secret(secrets, what, text);
        }
    }
}

fn records(format: Format, path: &Path) -> Vec<oathkey_seedfile::TokenRecord> {
    let bytes = std::fs::read(path).expect("seed file written");
    let parsed = oathkey_seedfile::read(format, &bytes);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    parsed.records.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn seeding_at_trace_level_leaves_no_seed_in_logs_errors_or_output() {
    let d = trace_daemon("2");
    let dir = d.dir.path().to_path_buf();
    let mut secrets: Vec<Needles> = Vec::new();
    let mut out = Transcript::default();
    let list: KeyList = d.client().call("keys.list", Value::Null).expect("keys");
    let (k1, k2) = (list.keys[0].id.clone(), list.keys[1].id.clone());

    // Watch events throughout (as JSON lines from the CLI).
    let events = Command::new(bin("oathkey"))
        .args(["events", "--timeout", "20"])
        .env("OATHKEY_SOCKET", &d.socket)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oathkey events runs");

    // An imported seed, through the environment (so it is not in the process list).
    let imported = random_secret();
    secrets.push(Needles::secret("the imported seed", &imported));
    let run = cli(
        &d,
        &[
            "--key",
            &k1,
            "token",
            "new",
            "--user",
            "alice@contoso.com",
            "--serial",
            "0012345",
            "--secret",
            "-",
        ],
        &[("OATHKEY_SECRET", &b32(&imported))],
    );
    assert_exit(&run, 0);
    assert_eq!(printed_secret(&run), b32(&imported));
    out.keep("token new --secret -", &run, true);

    // Generated seeds, shown once on stdout (text and JSON).
    let run = cli(
        &d,
        &[
            "--key",
            &k1,
            "--json",
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
        ],
        &[],
    );
    assert_exit(&run, 0);
    let bob: CreatedToken = serde_json::from_slice(&run.stdout).expect("JSON");
    secrets.push(Needles::base32("bob's generated seed", bob.secret.expose()));
    out.keep("--json token new", &run, true);
    let run = cli(
        &d,
        &[
            "--key",
            &k1,
            "token",
            "new",
            "--user",
            "carol@contoso.com",
            "--hotp",
            "--touch",
        ],
        &[],
    );
    assert_exit(&run, 0);
    secrets.push(Needles::base32(
        "carol's generated seed",
        &printed_secret(&run),
    ));
    out.keep("token new --hotp --touch", &run, true);

    // Refused seeds: neither the CLI nor the daemon quotes them back.
    let refused = random_secret();
    let refused_needles = Needles::secret("a refused seed", &refused);
    for (args, env, what) in [
        (
            vec![
                "--key",
                &k1,
                "token",
                "new",
                "--user",
                "eve@contoso.com",
                "--serial",
                "0012345",
                "--secret",
                "-",
            ],
            vec![("OATHKEY_SECRET", b32(&refused))],
            "a serial already on the key",
        ),
        (
            vec![
                "--key",
                &k1,
                "token",
                "new",
                "--user",
                "eve@contoso.com",
                "--secret",
                "-",
            ],
            vec![("OATHKEY_SECRET", format!("{}1", b32(&refused)))],
            "a seed that is not Base32",
        ),
        (
            vec![
                "--key",
                &k1,
                "token",
                "new",
                "--user",
                "eve@contoso.com",
                "--secret",
                "-",
            ],
            vec![(
                "OATHKEY_SECRET",
                format!("{}{}", b32(&refused), "A".repeat(300)),
            )],
            "a seed too long for a key",
        ),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = cli(&d, &args, &env);
        assert_ne!(run.status.code(), Some(0), "{what} was accepted");
        assert!(!stderr(&run).trim().is_empty(), "{what}: no message");
        assert_no_secret(
            std::slice::from_ref(&refused_needles),
            what,
            &format!("{}{}", stdout(&run), stderr(&run)),
        );
        out.keep(&format!("token new ({what})"), &run, false);
    }
    secrets.push(refused_needles);

    // Provisioning: the blank key is seeded, the seed file written.
    let users = dir.join("users.txt");
    std::fs::write(&users, "frank@contoso.com\n").expect("users");
    let tseed = dir.join("tseed.csv");
    let run = cli(
        &d,
        &[
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            tseed.to_str().expect("utf8"),
            "--keys-present",
        ],
        &[],
    );
    assert_exit(&run, 0);
    out.keep("provision", &run, false);
    let provisioned = records(Format::AzureCsv, &tseed);
    assert_eq!(provisioned.len(), 1, "one user, one blank key");
    let frank = Needles::secret("frank's provisioned seed", provisioned[0].secret.expose());
    assert_found(
        &frank,
        "the seed file",
        &std::fs::read_to_string(&tseed).expect("read"),
    );
    secrets.push(frank);
    let tokens_k2: Vec<Value> = d
        .client()
        .call("tokens.list", json!({"key": k2}))
        .expect("listed");
    assert_eq!(tokens_k2.len(), 1);

    // Every export format, to files: the files hold the seeds, nothing else does.
    // (Azure's CSV and Graph hold only 6-digit TOTP tokens: alice's and frank's; privacyIDEA's
    // CSV only SHA-1: all but bob's.)
    let azure_only: &[&str] = &["--user", "alice@contoso.com", "--user", "frank@contoso.com"];
    let sha1_only: &[&str] = &[
        "--user",
        "alice@contoso.com",
        "--user",
        "carol@contoso.com",
        "--user",
        "frank@contoso.com",
    ];
    for (format, name, only) in [
        ("azure-csv", "seeds.csv", azure_only),
        ("otpauth", "seeds.txt", &[]),
        ("pskc", "seeds.xml", &[]),
        ("graph-json", "seeds.json", azure_only),
        ("privacyidea-csv", "seeds-pi.csv", sha1_only),
    ] {
        let path = dir.join(name);
        let mut args = vec![
            "export",
            "--format",
            format,
            "--force",
            "-o",
            path.to_str().expect("utf8"),
        ];
        args.extend_from_slice(only);
        let run = cli(&d, &args, &[]);
        assert_exit(&run, 0);
        out.keep(&format!("export --format {format}"), &run, false);
        let written = std::fs::read_to_string(&path).expect("written");
        assert_found(&secrets[0], &format!("the {format} export"), &written);
    }
    // To standard output: stdout holds the seeds (that is what was asked), stderr does not.
    let run = cli(&d, &["export", "--format", "otpauth", "--force"], &[]);
    assert_exit(&run, 0);
    assert_found(&secrets[0], "an export to stdout", &stdout(&run));
    out.keep("export (stdout)", &run, true);

    // Reading commands, as an admin.
    for args in [
        vec!["keys"],
        vec!["--json", "keys"],
        vec!["tokens"],
        vec!["--json", "tokens"],
        vec!["codes"],
        vec!["--json", "codes"],
        vec!["code", "0012345"],
        vec!["--key", &k1, "config"],
        vec!["seeds", "list", "--all"],
        vec!["--json", "seeds", "list", "--all"],
    ] {
        let run = cli(&d, &args, &[]);
        assert_exit(&run, 0);
        out.keep(&args.join(" "), &run, false);
    }

    // Seed files: checked and used for activation without quoting a seed, even a broken one.
    let run = cli(
        &d,
        &[
            "seedfile",
            "check",
            tseed.to_str().expect("utf8"),
            "--target",
            "azure",
        ],
        &[],
    );
    assert_exit(&run, 0);
    out.keep("seedfile check", &run, false);
    let broken = dir.join("broken.csv");
    let broken_seed = random_secret();
    std::fs::write(
        &broken,
        format!(
            "upn,serial number,secret key,time interval,manufacturer,model\nzed@contoso.com,0099,{}!!,30,oathkey,virtual\n",
            b32(&broken_seed)
        ),
    )
    .expect("written");
    let run = cli(
        &d,
        &[
            "seedfile",
            "check",
            broken.to_str().expect("utf8"),
            "--target",
            "azure",
        ],
        &[],
    );
    assert_ne!(
        run.status.code(),
        Some(0),
        "a broken seed file passes the check"
    );
    assert!(
        stdout(&run).contains("line 2") || stderr(&run).contains("line 2"),
        "{}{}",
        stdout(&run),
        stderr(&run)
    );
    out.keep("seedfile check (broken)", &run, false);
    secrets.push(Needles::secret("a broken seed file's seed", &broken_seed));
    let serial = provisioned[0].serial.clone();
    let run = cli(
        &d,
        &[
            "activate",
            "--seed-file",
            tseed.to_str().expect("utf8"),
            "--serial",
            &serial,
            "--code",
            "000000",
            "--window",
            "0",
        ],
        &[],
    );
    out.keep("activate (a wrong code)", &run, false);
    let purge = cli(&d, &["seeds", "purge", "--exported"], &[]);
    assert_exit(&purge, 0);
    out.keep("seeds purge --exported", &purge, false);

    // The events the CLI printed meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    let mut events = events;
    let _ = events.kill();
    let events = events.wait_with_output().expect("events output");
    let printed = stdout(&events);
    assert!(printed.contains("tokens_changed"), "{printed}");
    out.0.push(("`oathkey events`".into(), printed));
    out.0
        .push(("stderr of `oathkey events`".into(), stderr(&events)));

    out.check(&secrets);
    let log = d.log_text();
    assert!(
        log.contains("token created") && log.contains("DEBUG"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert_no_secret(&secrets, "the daemon's trace log", &log);
    eprintln!(
        "secrets: {} seeds searched in {} outputs and {} KiB of daemon log",
        secrets.len(),
        out.0.len(),
        log.len() / 1024
    );
}

/// Env vars of the raw reader client (run as another uid by the test below).
const RAW_SOCKET: &str = "OATHKEY_TEST_RAW_SOCKET";
const RAW_REQUESTS: &str = "OATHKEY_TEST_RAW_REQUESTS";

/// Not a test: the raw JSON-RPC client the reader test runs under another uid (this very test
/// binary, re-executed through setpriv). It sends the request lines of `$OATHKEY_TEST_RAW_
/// REQUESTS`, closes its sending side and prints every answer line prefixed with `ANSWER `.
#[test]
#[ignore = "a helper: the reader test runs it as uid 65534"]
fn raw_reader_client() {
    let (Some(socket), Some(requests)) =
        (std::env::var_os(RAW_SOCKET), std::env::var_os(RAW_REQUESTS))
    else {
        eprintln!("nothing to do: run by a_reader_gets_no_seed_from_any_method");
        return;
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("the reader connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
        .write_all(requests.to_string_lossy().as_bytes())
        .expect("requests sent");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-closed");
    for line in std::io::BufReader::new(stream).lines() {
        println!("ANSWER {}", line.expect("an answer line"));
    }
}

/// The methods in docs/protocol.md's table, with whether only admins may call them.
fn documented_methods() -> Vec<(String, bool)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .expect("docs/protocol.md");
    doc.lines()
        .filter(|l| l.starts_with("| [`"))
        .map(|l| {
            let name = l["| [`".len()..]
                .split('`')
                .next()
                .expect("name")
                .to_string();
            let role = l.split('|').nth(2).expect("role column");
            (name, role.contains("admin"))
        })
        .collect()
}

#[test]
fn a_reader_gets_no_seed_from_any_method() {
    if !is_root() {
        eprintln!(
            "SKIPPED: a_reader_gets_no_seed_from_any_method needs root to connect as uid 65534 (setpriv)"
        );
        return;
    }
    let d = trace_daemon("2");
    let list: KeyList = d.client().call("keys.list", Value::Null).expect("keys");
    let (k1, k2) = (list.keys[0].id.clone(), list.keys[1].id.clone());
    let mut admin = d.client();
    let mut secrets = Vec::new();
    for (key, user, serial) in [
        (&k1, "alice@contoso.com", "0012345"),
        (&k2, "bob@contoso.com", "0012346"),
    ] {
        let t: CreatedToken = admin
            .call(
                "tokens.create",
                json!({"key": key, "account": user, "serial": serial}),
            )
            .expect("created");
        secrets.push(Needles::base32(
            &format!("{user}'s seed"),
            t.secret.expose(),
        ));
    }
    let ids: Vec<Value> = admin
        .call::<_, Vec<Value>>("seeds.list", Value::Null)
        .expect("listed")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    let reader_seed = random_secret();
    secrets.push(Needles::secret("the seed a reader sends", &reader_seed));

    // Every method, as an admin would call it successfully.
    let documented = documented_methods();
    assert!(documented.len() >= 20, "{documented:?}");
    let params_for = |m: &str| -> Value {
        match m {
            "hello" | "keys.list" | "tokens.list" | "codes.all" | "events.subscribe" => Value::Null,
            "keys.info" | "keys.wink" | "keys.get_config" | "keys.claim" | "keys.release"
            | "virtual.press" => json!({"key": k1}),
            "keys.set_config" => json!({"key": k1, "key_press": false}),
            "tokens.create" => {
                json!({"key": k1, "account": "mallory@contoso.com", "secret": b32(&reader_seed)})
            }
            "tokens.delete" => json!({"key": k1, "token": "0012345"}),
            "codes.get" => json!({"token": "0012345"}),
            "virtual.unplug" | "virtual.plug" => json!({"key": k2}),
            "seeds.list" | "seeds.export" => json!({"include_incomplete": true}),
            "seeds.mark_exported" => json!({"ids": ids, "format": "azure-csv"}),
            "seeds.purge" => json!({"exported": true}),
            other => panic!("no params for {other}: add the new method to this test"),
        }
    };
    let mut lines = String::new();
    for (i, (method, _)) in documented.iter().enumerate() {
        lines.push_str(
            &json!({"jsonrpc": "2.0", "id": i, "method": method, "params": params_for(method)})
                .to_string(),
        );
        lines.push('\n');
    }
    let future = documented.len();
    lines.push_str(
        &json!({"jsonrpc": "2.0", "id": future, "method": "codes.get", "params": {"token": "0012345", "at": 4_000_000_000u64}})
            .to_string(),
    );
    lines.push('\n');

    let me = common::ForAnyone::new(&[std::env::current_exe().expect("this test binary")]);
    let run = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(
            me.path(
                &std::env::current_exe()
                    .expect("this test binary")
                    .file_name()
                    .expect("a name")
                    .to_string_lossy(),
            ),
        )
        .args([
            "--ignored",
            "--exact",
            "raw_reader_client",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RAW_SOCKET, &d.socket)
        .env(RAW_REQUESTS, &lines)
        .output()
        .expect("setpriv runs");
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let answers: Vec<Value> = stdout(&run)
        .lines()
        // (libtest's own "test ... " may come first on the line.)
        .filter_map(|l| l.find("ANSWER ").map(|i| &l[i + "ANSWER ".len()..]))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let by_id = |id: usize| {
        answers
            .iter()
            .find(|a| a["id"] == json!(id))
            .unwrap_or_else(|| panic!("no answer to {id}: {answers:?}"))
    };
    assert_eq!(
        by_id(0)["result"]["role"],
        "reader",
        "the daemon saw a reader"
    );
    for (i, (method, admin_only)) in documented.iter().enumerate() {
        let answer = by_id(i);
        assert_no_secret(
            &secrets,
            &format!("a reader's {method}"),
            &answer.to_string(),
        );
        let error = answer["error"]["data"]["name"].as_str();
        if *admin_only {
            assert_eq!(error, Some("PermissionDenied"), "{method}: {answer}");
        } else if method == "keys.release" {
            assert_eq!(error, Some("InvalidParams"), "{method}: {answer}");
        } else {
            assert_eq!(error, None, "a reader was refused {method}: {answer}");
        }
    }
    assert_eq!(by_id(future)["error"]["data"]["name"], "PermissionDenied");
    // Notifications the reader got while its requests ran carry no seed either.
    for a in answers.iter().filter(|a| a.get("id").is_none()) {
        assert_eq!(a["method"], "event", "{a}");
    }
    assert_no_secret(&secrets, "everything the reader got", &stdout(&run));

    // The CLI as the reader: the admin commands are refused (exit 6), nothing leaks.
    let listing = d.dir.path().join("reader-export.csv");
    for args in [
        vec!["export", "-o", listing.to_str().expect("utf8")],
        vec!["seeds", "list", "--all"],
        vec![
            "token",
            "new",
            "--user",
            "mallory@contoso.com",
            "--secret",
            &b32(&reader_seed),
        ],
        vec!["--json", "tokens"],
        vec!["--json", "codes"],
    ] {
        let run = cli_as_nobody(&d, &args);
        let text = format!("{}{}", stdout(&run), stderr(&run));
        assert_no_secret(
            &secrets,
            &format!("`oathkey {}` as a reader", args.join(" ")),
            &text,
        );
        if matches!(args[0], "export" | "seeds" | "token") {
            assert_exit(&run, 6);
        } else {
            assert_exit(&run, 0);
        }
    }
    assert!(!listing.exists(), "a reader's export wrote a file");
    assert_no_secret(&secrets, "the daemon's trace log", &d.log_text());
}

#[test]
fn debug_output_of_seed_file_records_shows_no_seed() {
    let bytes = random_secret();
    let secret = oathkey_seedfile::Secret::new(bytes.clone());
    let record =
        oathkey_seedfile::TokenRecord::totp("0012345", "alice@contoso.com", secret.clone());
    let needles = [Needles::secret("the seed", &bytes)];
    for text in [
        format!("{secret:?}"),
        format!("{record:?}"),
        format!("{record:#?}"),
    ] {
        assert_no_secret(&needles, "Debug output", &text);
    }
    // The search would have found it in the clear.
    assert_found(&needles[0], "the record's Base32", &secret.base32());
    assert_found(&needles[0], "the record's hex", &secret.hex());
}
