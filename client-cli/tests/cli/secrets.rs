//! Secrets through real processes: a daemon logging at `trace` and the CLI asked for trace logs
//! too (`RUST_LOG`, `OATHKEY_LOG`) seed keys (`token new`, imported and generated, `provision`),
//! refuse bad seeds, export every format, list the ledger, check and activate seed files and
//! print events. No seed, in any encoding, may show in the daemon's log, in any stderr, in any
//! error, or in any stdout but the two that exist to hand a seed to an admin (`token new` and an
//! export to standard output). (What a reader gets through the real socket is the daemon's
//! test `secrets::a_reader_gets_no_seed_from_any_method`.)

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use oathkey_protocol::types::{CreatedToken, KeyList};
use oathkey_seedfile::Format;
use oathkey_testkit::needles::{Needles, assert_found, assert_no_secret};
use oathkey_testkit::{Daemon, assert_exit, bin, stderr, stdout};
use serde_json::{Value, json};

/// Starts `oathkeyd` logging at `trace`, its socket open to every uid (readers included), this
/// test's user an admin even when it is not root.
fn trace_daemon(emulate: &str) -> Daemon {
    Daemon::builder()
        .admin_self()
        .args(["--dbus", "off"])
        .log_level(Some("trace"))
        .args(["--emulate", emulate])
        .config("socket_mode = \"0666\"\n")
        .env("RUST_LOG", "trace")
        .start()
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
