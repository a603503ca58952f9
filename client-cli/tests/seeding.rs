//! Seeding keys and seed files end to end: provision, export in every format, codes checked
//! with oathtool against the exported secrets, the ledger, activation, seed-file checks.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Daemon, assert_exit, stderr, stdout};
use oathkey_seedfile::{Format, Kind, TokenRecord};
use serde_json::{Value, json};

fn oathtool(record: &TokenRecord, t: u64) -> String {
    let alg = match record.algorithm {
        oathkey_seedfile::Algorithm::Sha1 => "sha1",
        oathkey_seedfile::Algorithm::Sha256 => "sha256",
        oathkey_seedfile::Algorithm::Sha512 => "sha512",
    };
    let out = Command::new("oathtool")
        .args([
            format!("--totp={alg}"),
            format!("--digits={}", record.digits),
            format!("--time-step-size={}s", record.period),
            format!("--now=@{t}"),
            record.secret.hex().to_string(),
        ])
        .output()
        .expect("oathtool (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).trim().to_string()
}

fn read(format: Format, path: &Path) -> Vec<TokenRecord> {
    let bytes = std::fs::read(path).expect("file written");
    let parsed = oathkey_seedfile::read(format, &bytes);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    parsed.records.into_iter().map(|(_, r)| r).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

const TIMES: [u64; 4] = [59, 1_111_111_109, 1_234_567_890, 2_000_000_000];

#[test]
fn provision_every_key_on_a_hub_and_resume() {
    let d = Daemon::start(&["--emulate", "3"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(
        &users,
        "# the first batch\nalice@contoso.com\nbob@contoso.com\n\ncarol@contoso.com\n",
    )
    .expect("written");
    let out = dir.join("tseed.csv");
    let run = d.cli(&[
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keys-present",
        "--key-press",
        "off",
        "--keyboard",
        "on",
    ]);
    assert_exit(&run, 0);
    assert_eq!(mode(&out), 0o600, "the seed file is private");
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(
        text.starts_with("upn,serial number,secret key,time interval,manufacturer,model\n"),
        "{text}"
    );
    let rows = read(Format::AzureCsv, &out);
    let mut who: Vec<&str> = rows.iter().map(|r| r.user.as_str()).collect();
    who.sort_unstable();
    assert_eq!(
        who,
        ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    );

    // Every key's code equals oathtool on the secret from the file.
    for r in &rows {
        for t in TIMES {
            let code = d.cli(&["code", &r.serial, "--at", &t.to_string()]);
            assert_exit(&code, 0);
            assert_eq!(stdout(&code).trim(), oathtool(r, t), "{} at {t}", r.serial);
        }
    }
    let check = d.cli(&[
        "seedfile",
        "check",
        out.to_str().expect("utf8"),
        "--target",
        "azure",
    ]);
    assert_exit(&check, 0);

    // A fourth user and key: the run skips the three in the file and seeds only the new one.
    std::fs::write(
        &users,
        "alice@contoso.com\nbob@contoso.com\ncarol@contoso.com\ndave@contoso.com\n",
    )
    .expect("written");
    let again = d.cli(&[
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keys-present",
    ]);
    // All keys hold tokens now: nothing to seed dave on yet.
    assert_exit(&again, 0);
    assert!(stderr(&again).contains("already in"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("1 user(s) left"),
        "{}",
        stderr(&again)
    );
    assert_eq!(read(Format::AzureCsv, &out).len(), 3);
}

#[test]
fn provision_refuses_what_the_csv_cannot_hold_before_touching_a_key() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "gina@contoso.com\n").expect("written");
    let out = dir.join("tseed.csv");
    for extra in [
        vec!["--hash", "sha256"],
        vec!["--digits", "8"],
        vec!["--hash", "sha256", "--force"],
    ] {
        let mut args = vec![
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--keys-present",
        ];
        args.extend(extra.iter().copied());
        let run = d.cli(&args);
        assert_exit(&run, 2);
        assert!(
            stderr(&run).contains("SHA") || stderr(&run).contains("digit"),
            "{extra:?}: {}",
            stderr(&run)
        );
    }
    let tokens: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("lists");
    assert!(tokens.is_empty(), "no key was touched: {tokens:?}");
    assert!(!out.exists());
    // An existing file with an unreadable row stops the run before any key is seeded, even forced.
    std::fs::write(
        &out,
        "upn,serial number,secret key,time interval,manufacturer,model\n\"broken\n",
    )
    .expect("written");
    let run = d.cli(&[
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keys-present",
        "--force",
    ]);
    assert_exit(&run, 10);
    let tokens: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("lists");
    assert!(tokens.is_empty(), "no key was touched: {tokens:?}");
}

#[test]
fn provision_one_key_at_a_time() {
    let d = Daemon::start(&["--emulate", "2"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "erin@contoso.com\nfrank@contoso.com\n").expect("written");
    let out = dir.join("tseed.csv");
    let mut child = Command::new(common::bin("oathkey"))
        .args([
            "provision",
            "--users",
            users.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--wait",
            "30",
        ])
        .env("OATHKEY_SOCKET", &d.socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // Play the admin: whenever a key holds a token, pull it out.
    let mut admin = d.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut pulled = 0;
    while child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "provision did not finish"
        );
        let keys: oathkey_protocol::types::KeyList =
            admin.call("keys.list", Value::Null).expect("lists");
        for k in keys.keys {
            let tokens: Vec<Value> = admin
                .call("tokens.list", json!({"key": k.id}))
                .expect("lists");
            if !tokens.is_empty() {
                let _: Value = admin
                    .call("virtual.unplug", json!({"key": k.id}))
                    .expect("unplugged");
                pulled += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = child.wait().expect("exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("reads");
    assert!(status.success(), "{err}");
    assert!(err.contains("Remove key"), "{err}");
    assert!(
        pulled >= 1,
        "the first key had to be pulled before the second was seeded"
    );
    let rows = read(Format::AzureCsv, &out);
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].serial, rows[1].serial);
}

#[test]
fn exports_in_every_format_match_oathtool() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    // The combinations the issue names: SHA-1/256, 6/8 digits, periods 30/60.
    let mut serials = Vec::new();
    for (i, (hash, digits, period)) in [
        ("sha1", "6", "30"),
        ("sha256", "8", "60"),
        ("sha1", "8", "60"),
        ("sha256", "6", "30"),
    ]
    .iter()
    .enumerate()
    {
        let serial = format!("X{i:03}");
        let user = format!("user{i}@contoso.com");
        let out = d.cli(&[
            "token", "new", "--user", &user, "--serial", &serial, "--hash", hash, "--digits",
            digits, "--period", period, "--json",
        ]);
        assert_exit(&out, 0);
        serials.push(serial);
    }
    for (fmt, name) in [(Format::Pskc, "pskc"), (Format::Otpauth, "otpauth")] {
        let path = dir.join(format!("all.{name}"));
        let out = d.cli(&[
            "export",
            "--format",
            name,
            "-o",
            path.to_str().expect("utf8"),
        ]);
        assert_exit(&out, 0);
        assert_eq!(mode(&path), 0o600);
        let records = read(fmt, &path);
        assert_eq!(records.len(), 4, "{name}");
        for r in &records {
            assert_eq!(r.kind, Kind::Totp);
            for t in TIMES {
                let code = d.cli(&["code", &r.serial, "--at", &t.to_string()]);
                assert_eq!(
                    stdout(&code).trim(),
                    oathtool(r, t),
                    "{name}: {} at {t}",
                    r.serial
                );
            }
        }
    }
    // Azure's CSV cannot carry SHA-256 or 8 digits: refused with the reasons, unless forced.
    let azure = dir.join("tseed.csv");
    let refused = d.cli(&[
        "export",
        "--format",
        "azure-csv",
        "-o",
        azure.to_str().expect("utf8"),
    ]);
    assert_exit(&refused, 10);
    assert!(
        stderr(&refused).contains("SHA-1") || stderr(&refused).contains("sha"),
        "{}",
        stderr(&refused)
    );
    assert!(!azure.exists(), "nothing written when refused");
    let only_sha1 = d.cli(&[
        "export",
        "--format",
        "azure-csv",
        "--serial",
        "X000",
        "-o",
        azure.to_str().expect("utf8"),
    ]);
    assert_exit(&only_sha1, 0);
    let rows = read(Format::AzureCsv, &azure);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        stdout(&d.cli(&["code", "X000", "--at", "59"])).trim(),
        oathtool(&rows[0], 59)
    );
    // Not overwritten silently; replaced when asked.
    assert_exit(
        &d.cli(&[
            "export",
            "--format",
            "azure-csv",
            "--serial",
            "X000",
            "-o",
            azure.to_str().expect("utf8"),
        ]),
        10,
    );
    assert_exit(
        &d.cli(&[
            "export",
            "--format",
            "azure-csv",
            "--serial",
            "X000",
            "--replace",
            "-o",
            azure.to_str().expect("utf8"),
        ]),
        0,
    );

    // Graph allows SHA-256 but not 8 digits; privacyIDEA allows 8 digits but only SHA-1.
    let graph = dir.join("graph.json");
    assert_exit(
        &d.cli(&[
            "export",
            "--format",
            "graph-json",
            "--serial",
            "X003",
            "-o",
            graph.to_str().expect("utf8"),
        ]),
        0,
    );
    let g: Value = serde_json::from_slice(&std::fs::read(&graph).expect("written")).expect("JSON");
    assert_eq!(g["@context"], "#$delta");
    assert_eq!(g["value"][0]["hashFunction"], "hmacsha256");
    let pi = dir.join("pi.csv");
    assert_exit(
        &d.cli(&[
            "export",
            "--format",
            "privacyidea-csv",
            "--serial",
            "X002",
            "-o",
            pi.to_str().expect("utf8"),
        ]),
        0,
    );
    let rows = read(Format::PrivacyIdeaCsv, &pi);
    assert_eq!(
        stdout(&d.cli(&["code", "X002", "--at", "1234567890"])).trim(),
        oathtool(&rows[0], 1_234_567_890)
    );

    // QR codes, one private PNG per token.
    let qr = dir.join("qr");
    assert_exit(
        &d.cli(&[
            "export",
            "--format",
            "otpauth",
            "--qr-dir",
            qr.to_str().expect("utf8"),
        ]),
        0,
    );
    let pngs: Vec<_> = std::fs::read_dir(&qr)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(pngs.len(), 4);
    for p in pngs {
        assert_eq!(mode(&p), 0o600);
        assert!(
            std::fs::read(&p)
                .expect("png")
                .starts_with(b"\x89PNG\r\n\x1a\n")
        );
    }
}

#[test]
fn the_ledger_lists_and_purges_only_exported_seeds() {
    let d = Daemon::start(&["--emulate", "1"]);
    for s in ["L1", "L2"] {
        assert_exit(
            &d.cli(&[
                "token",
                "new",
                "--user",
                &format!("{s}@contoso.com"),
                "--serial",
                s,
            ]),
            0,
        );
    }
    let list: Vec<Value> =
        serde_json::from_slice(&d.cli(&["seeds", "list", "--json"]).stdout).expect("JSON");
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|s| s["state"] == "verified" && s.get("secret").is_none()),
        "{list:?}"
    );
    let out = d.dir.path().join("one.csv");
    assert_exit(
        &d.cli(&[
            "export",
            "--serial",
            "L1",
            "-o",
            out.to_str().expect("utf8"),
        ]),
        0,
    );
    let purge = d.cli(&["seeds", "purge", "--exported"]);
    assert_exit(&purge, 0);
    let list: Vec<Value> =
        serde_json::from_slice(&d.cli(&["seeds", "list", "--json"]).stdout).expect("JSON");
    let serials: Vec<&str> = list.iter().filter_map(|s| s["serial"].as_str()).collect();
    assert_eq!(serials, ["L2"], "the unexported seed stays");
    // The ledger file itself is private.
    assert_eq!(mode(&d.dir.path().join("state/seeds.ledger")), 0o600);
}

#[test]
fn activation_accepts_the_current_step_and_its_neighbours() {
    let d = Daemon::start(&["--emulate", "1"]);
    let created: Value = serde_json::from_slice(
        &d.cli(&[
            "token",
            "new",
            "--user",
            "act@contoso.com",
            "--serial",
            "A1",
            "--json",
        ])
        .stdout,
    )
    .expect("JSON");
    assert_eq!(created["serial"], "A1");
    let file = d.dir.path().join("tseed.csv");
    assert_exit(&d.cli(&["export", "-o", file.to_str().expect("utf8")]), 0);
    let t = 1_234_567_890u64;
    let code_at = |t: u64| {
        stdout(&d.cli(&["code", "A1", "--at", &t.to_string()]))
            .trim()
            .to_string()
    };
    let activate = |code: &str| {
        Command::new(common::bin("oathkey"))
            .args([
                "activate",
                "--seed-file",
                file.to_str().expect("utf8"),
                "--serial",
                "A1",
                "--code",
                code,
                "--at",
                &t.to_string(),
            ])
            .output()
            .expect("runs")
    };
    let now = activate(&code_at(t));
    assert_exit(&now, 0);
    assert!(
        stdout(&now).contains("current time step"),
        "{}",
        stdout(&now)
    );
    assert_exit(&activate(&code_at(t - 30)), 0);
    assert_exit(&activate(&code_at(t + 30)), 0);
    assert_exit(&activate(&code_at(t - 90)), 11);
    assert_exit(&activate("000000"), 11);
    let missing = Command::new(common::bin("oathkey"))
        .args([
            "activate",
            "--seed-file",
            file.to_str().expect("utf8"),
            "--serial",
            "ZZZ",
            "--code",
            "123456",
        ])
        .output()
        .expect("runs");
    assert_exit(&missing, 4);
}

#[test]
fn seedfile_check_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "upn,serial number,secret key,time interval,manufacturer,model\n\
         alice@contoso.com,0001,JBSWY3DPEHPK3PXP,30,oathkey,key\n\
         bob@contoso.com,0002,not-base32!,30,oathkey,key\n\
         carol@contoso.com,0001,JBSWY3DPEHPK3PXP,45,oathkey,key\n",
    )
    .expect("written");
    let out = Command::new(common::bin("oathkey"))
        .args(["seedfile", "check"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_exit(&out, 10);
    let text = stdout(&out);
    assert!(text.contains("line 3"), "bad Base32 on line 3: {text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("line 3")).count(),
        1,
        "reported once: {text}"
    );
    assert!(
        text.contains("line 4"),
        "duplicate serial and bad period on line 4: {text}"
    );
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "upn,serial number,secret key,time interval,manufacturer,model\r\nalice@contoso.com,0001,JBSWY3DPEHPK3PXP,30,oathkey,key\r\n").expect("written");
    assert_exit(
        &Command::new(common::bin("oathkey"))
            .args(["seedfile", "check"])
            .arg(&good)
            .output()
            .expect("runs"),
        0,
    );
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 255, 10, 1, 2]).expect("written");
    let out = Command::new(common::bin("oathkey"))
        .args(["seedfile", "check", "--format", "azure-csv"])
        .arg(&garbage)
        .output()
        .expect("runs");
    assert_exit(&out, 10);
}
