//! Seeding keys and seed files end to end: provision, export in every format, codes checked
//! with oathtool against the exported secrets, the ledger, activation, seed-file checks.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use oathkey_seedfile::{Format, Kind, TokenRecord};
use oathkey_testkit::{Daemon, assert_exit, stderr, stdout};
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
    let mut child = Command::new(oathkey_testkit::bin("oathkey"))
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
            "X000",
            "--serial",
            "X003",
            "-o",
            graph.to_str().expect("utf8"),
        ]),
        0,
    );
    let g: Value = serde_json::from_slice(&std::fs::read(&graph).expect("written")).expect("JSON");
    assert_eq!(g["@context"], "#$delta");
    let mut hashes: Vec<(&str, &str)> = g["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|v| {
            (
                v["serialNumber"].as_str().expect("serial"),
                v["hashFunction"].as_str().expect("hash"),
            )
        })
        .collect();
    hashes.sort_unstable();
    assert_eq!(hashes, [("X000", "hmacsha1"), ("X003", "hmacsha256")]);
    // The Graph body's secrets give the keys' codes, as oathtool computes them.
    let rows = read(Format::GraphJson, &graph);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        for t in TIMES {
            let code = d.cli(&["code", &r.serial, "--at", &t.to_string()]);
            assert_eq!(
                stdout(&code).trim(),
                oathtool(r, t),
                "graph-json: {} at {t}",
                r.serial
            );
        }
    }
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

    // QR codes, one private PNG per token, each holding its token's otpauth URI: decoded,
    // it is the line of the otpauth export for that serial.
    let qr = dir.join("qr");
    let exported = d.cli(&[
        "export",
        "--format",
        "otpauth",
        "--qr-dir",
        qr.to_str().expect("utf8"),
    ]);
    assert_exit(&exported, 0);
    let uris: Vec<String> = stdout(&exported).lines().map(str::to_owned).collect();
    assert_eq!(uris.len(), 4);
    let mut pngs: Vec<_> = std::fs::read_dir(&qr)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 4);
    for p in pngs {
        assert_eq!(mode(&p), 0o600);
        let bytes = std::fs::read(&p).expect("png");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoded = decode_qr(&bytes);
        let serial = p.file_stem().expect("name").to_string_lossy().into_owned();
        assert!(
            decoded.ends_with(&format!("&serial={serial}")),
            "{serial}: {decoded}"
        );
        assert!(uris.contains(&decoded), "{decoded} is not in {uris:?}");
        // And the secret it carries gives the key's codes.
        let parsed = oathkey_seedfile::read(Format::Otpauth, decoded.as_bytes());
        assert!(parsed.is_clean(), "{:?}", parsed.problems);
        let r = &parsed.records[0].1;
        assert_eq!(r.serial, serial);
        let code = d.cli(&["code", &serial, "--at", "1234567890"]);
        assert_eq!(stdout(&code).trim(), oathtool(r, 1_234_567_890), "{serial}");
    }
}

/// The text of the one QR code in a PNG (8-bit grayscale, as `export --qr-dir` writes it).
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Grayscale, png::BitDepth::Eight)
    );
    let (width, height) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        pixels[y * info.line_size + x]
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, text) = grids[0].decode().expect("decodes");
    text
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
        Command::new(oathkey_testkit::bin("oathkey"))
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
    let missing = Command::new(oathkey_testkit::bin("oathkey"))
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
    let out = Command::new(oathkey_testkit::bin("oathkey"))
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
        &Command::new(oathkey_testkit::bin("oathkey"))
            .args(["seedfile", "check"])
            .arg(&good)
            .output()
            .expect("runs"),
        0,
    );
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 255, 10, 1, 2]).expect("written");
    let out = Command::new(oathkey_testkit::bin("oathkey"))
        .args(["seedfile", "check", "--format", "azure-csv"])
        .arg(&garbage)
        .output()
        .expect("runs");
    assert_exit(&out, 10);
}

/// The keys' ids, in the daemon's order.
fn key_ids(d: &Daemon) -> Vec<String> {
    let list: oathkey_protocol::types::KeyList =
        d.client().call("keys.list", Value::Null).expect("lists");
    list.keys.into_iter().map(|k| k.id).collect()
}

/// How many tokens each key holds, by id.
fn tokens_per_key(d: &Daemon) -> Vec<(String, usize)> {
    key_ids(d)
        .into_iter()
        .map(|k| {
            let tokens: Vec<Value> = d
                .client()
                .call("tokens.list", json!({"key": k}))
                .expect("lists");
            (k, tokens.len())
        })
        .collect()
}

fn provision(d: &Daemon, users: &Path, out: &Path, extra: &[&str]) -> oathkey_testkit::Ran {
    let mut args = vec![
        "provision",
        "--users",
        users.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        "--keys-present",
    ];
    args.extend_from_slice(extra);
    d.cli(&args)
}

fn seeds(d: &Daemon) -> Vec<Value> {
    let list = d.cli(&["seeds", "list", "--json"]);
    assert_exit(&list, 0);
    serde_json::from_slice(&list.stdout).expect("JSON")
}

/// Every user is checked against Azure's rules before any key is touched, each bad line
/// listed with its number; `#` starts a comment only at the start of a line, so a guest's
/// `#EXT#` UPN is read whole (and is then refused as a guest, not mangled into another name).
/// A line that breaks the one UPN rule (`oathkey_seedfile::upn_problem`, which the seed-file
/// check uses too) is refused even with `--force`; `--force` seeds the rows Azure rejects for
/// its own policies (a guest).
#[test]
fn provision_checks_every_user_before_touching_a_key() {
    let d = Daemon::start(&["--emulate", "4"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(
        &users,
        "alice@contoso.com\n\
         # a comment\n\
         \x20  # an indented comment\n\
         bob_gmail.com#EXT#@contoso.onmicrosoft.com\n\
         dave@contoso.com\n",
    )
    .expect("written");
    let out = dir.join("tseed.csv");
    let run = provision(&d, &users, &out, &[]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    let file = users.display();
    assert!(
        err.contains(&format!(
            "{file} line 4: upn \"bob_gmail.com#EXT#@contoso.onmicrosoft.com\" is a guest account"
        )),
        "{err}"
    );
    assert!(
        !err.contains("line 1:") && !err.contains("line 5:"),
        "only the bad lines: {err}"
    );
    assert!(
        tokens_per_key(&d).iter().all(|(_, n)| *n == 0),
        "no key was touched"
    );
    assert!(seeds(&d).is_empty(), "no seed was made");
    assert!(!out.exists());

    // Lines that are no users at all are refused even with --force, every one listed.
    let bad = dir.join("bad.txt");
    std::fs::write(
        &bad,
        "eve\nalice@contoso.com\nbob smith@contoso.com\nALICE@contoso.com\ncarol@contoso..com\n",
    )
    .expect("written");
    let run = provision(&d, &bad, &out, &["--force"]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    for needle in [
        "line 1: upn \"eve\" is not a user principal name",
        "line 3: upn \"bob smith@contoso.com\" is not a user principal name",
        "line 4: ALICE@contoso.com is listed twice (first on line 2)",
        "line 5: upn \"carol@contoso..com\" is not a user principal name (name@domain.tld, no spaces)",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(tokens_per_key(&d).iter().all(|(_, n)| *n == 0));

    // --force seeds the guest, with a warning for the line and for the row.
    let run = provision(&d, &users, &out, &["--force"]);
    assert_exit(&run, 0);
    let err = stderr(&run);
    assert!(
        err.contains(&format!(
            "warning: {file} line 4: upn \"bob_gmail.com#EXT#@contoso.onmicrosoft.com\""
        )),
        "{err}"
    );
    let csv = out.display();
    let row_warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("warning: {csv}: line ")))
        .collect();
    assert_eq!(row_warnings.len(), 1, "one per forced row: {err}");
    let bytes = std::fs::read(&out).expect("written");
    let parsed = oathkey_seedfile::read(Format::AzureCsv, &bytes);
    let who: Vec<&str> = parsed
        .records
        .iter()
        .map(|(_, r)| r.user.as_str())
        .collect();
    assert_eq!(
        who,
        [
            "alice@contoso.com",
            "bob_gmail.com#EXT#@contoso.onmicrosoft.com",
            "dave@contoso.com"
        ]
    );
    // The warnings name the rows the check names.
    for p in &parsed.problems {
        assert!(
            row_warnings.iter().any(|w| w.contains(&p.to_string())),
            "{p} not warned about: {err}"
        );
    }
    assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
}

/// Resuming restores only seeds not yet exported: a user already in an earlier file gets a
/// new key in a new file (the replacement-key workflow), while a seed whose row never reached
/// a file (an interrupted run, or `token new`) is restored instead of seeding another key.
#[test]
fn provision_restores_only_seeds_not_yet_exported() {
    let d = Daemon::start(&["--emulate", "3"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice@contoso.com\n").expect("written");
    let first = dir.join("first.csv");
    assert_exit(&provision(&d, &users, &first, &[]), 0);
    let old = read(Format::AzureCsv, &first);
    assert_eq!(old.len(), 1);
    let old_serial = old[0].serial.clone();

    // Bob's seed, made by hand on a key and never written to a file.
    let used: Vec<String> = tokens_per_key(&d)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k)
        .collect();
    let bob_key = key_ids(&d)
        .into_iter()
        .find(|k| !used.contains(k))
        .expect("a blank key");
    assert_exit(
        &d.cli(&[
            "--key",
            &bob_key,
            "token",
            "new",
            "--user",
            "bob@contoso.com",
            "--serial",
            "B0001",
        ]),
        0,
    );

    std::fs::write(&users, "alice@contoso.com\nbob@contoso.com\n").expect("written");
    let second = dir.join("second.csv");
    let run = provision(&d, &users, &second, &[]);
    assert_exit(&run, 0);
    let err = stderr(&run);
    assert!(
        err.contains("bob@contoso.com: restored serial B0001 from the ledger"),
        "{err}"
    );
    assert!(
        !err.contains(&old_serial),
        "alice's old seed not restored: {err}"
    );
    let rows = read(Format::AzureCsv, &second);
    let alice = rows
        .iter()
        .find(|r| r.user == "alice@contoso.com")
        .expect("alice has a row");
    let bob = rows
        .iter()
        .find(|r| r.user == "bob@contoso.com")
        .expect("bob has a row");
    assert_eq!(bob.serial, "B0001");
    assert_ne!(alice.serial, old_serial, "a new key, not the old row again");
    assert!(
        tokens_per_key(&d).iter().all(|(_, n)| *n == 1),
        "the third key was seeded for alice: {:?}",
        tokens_per_key(&d)
    );
    for r in [alice, bob] {
        let code = d.cli(&["code", &r.serial, "--at", "1234567890"]);
        assert_eq!(
            stdout(&code).trim(),
            oathtool(r, 1_234_567_890),
            "{}",
            r.serial
        );
    }
    // Every seed is now exported, each once.
    assert!(
        seeds(&d).iter().all(|s| s["exported_at"].is_u64()),
        "{:?}",
        seeds(&d)
    );
}

/// `--keyboard` and `--key-press` (Mode and Key Press) really reach each seeded key, read back
/// through `oathkey config --json`; a key not seeded keeps its settings.
#[test]
fn provision_applies_mode_and_key_press_to_each_key() {
    let d = Daemon::start(&["--emulate", "3"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(&users, "ivan@contoso.com\njudy@contoso.com\n").expect("written");
    let out = dir.join("tseed.csv");
    let defaults = json!({"keyboard": true, "u2f": true, "key_press": false});
    for k in key_ids(&d) {
        let config = d.cli(&["--key", &k, "config", "--json"]);
        assert_exit(&config, 0);
        let config: Value = serde_json::from_slice(&config.stdout).expect("JSON");
        assert_eq!(config, defaults, "{k} starts with the defaults");
    }
    // Both differ from the defaults, so only applying them makes the test pass.
    let run = provision(
        &d,
        &users,
        &out,
        &["--keyboard", "off", "--key-press", "on"],
    );
    assert_exit(&run, 0);
    let mut seeded = 0;
    for (k, tokens) in tokens_per_key(&d) {
        let config = d.cli(&["--key", &k, "config", "--json"]);
        assert_exit(&config, 0);
        let config: Value = serde_json::from_slice(&config.stdout).expect("JSON");
        if tokens > 0 {
            seeded += 1;
            assert_eq!(
                config,
                json!({"keyboard": false, "u2f": true, "key_press": true}),
                "{k} was seeded with the settings"
            );
        } else {
            assert_eq!(
                config, defaults,
                "{k} was not seeded and keeps its settings"
            );
        }
    }
    assert_eq!(seeded, 2);
    // Key Press on: the codes still read (the virtual keys approve touches), and match.
    for r in read(Format::AzureCsv, &out) {
        let code = d.cli(&["code", &r.serial, "--at", "59"]);
        assert_exit(&code, 0);
        assert_eq!(stdout(&code).trim(), oathtool(&r, 59));
    }
}

/// `--force` writes rows the target rejects, with a warning per row (line, serial, reason),
/// to a file and to standard output alike.
#[test]
fn forced_exports_warn_about_every_row() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    for (user, serial) in [
        ("alice@contoso.com", "F1"),
        ("bob", "F2"),
        ("erin_fabrikam.com#EXT#@contoso.onmicrosoft.com", "F3"),
    ] {
        assert_exit(
            &d.cli(&["token", "new", "--user", user, "--serial", serial]),
            0,
        );
    }
    let file = dir.join("forced.csv");
    let refused = d.cli(&["export", "-o", file.to_str().expect("utf8")]);
    assert_exit(&refused, 10);
    assert!(!file.exists());
    let forced = d.cli(&["export", "--force", "-o", file.to_str().expect("utf8")]);
    assert_exit(&forced, 0);
    let err = stderr(&forced);
    let parsed = oathkey_seedfile::read(Format::AzureCsv, &std::fs::read(&file).expect("file"));
    assert_eq!(parsed.records.len(), 3);
    assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    for p in &parsed.problems {
        let line = p.line.expect("a line");
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("warning: {}: {p}", file.display()))),
            "no warning for line {line}: {err}"
        );
    }
    assert!(
        err.contains("(serial F2): upn \"bob\" is not a user principal name"),
        "{err}"
    );
    // To standard output: the same warnings, on stderr; the rows on stdout.
    let to_stdout = d.cli(&["export", "--force"]);
    assert_exit(&to_stdout, 0);
    let err = stderr(&to_stdout);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("warning: standard output: line "))
            .count(),
        2,
        "{err}"
    );
    assert!(stdout(&to_stdout).contains(",F3,"));
    assert!(!stdout(&to_stdout).contains("warning"));
}

/// Writing to standard output marks seeds exported only when it goes into a file: a pipe
/// (`oathkey export | head`) may drop the rows, and `seeds purge --exported` must then keep
/// the seeds. `--mark-exported` marks them anyway.
#[test]
fn export_to_a_pipe_does_not_mark_seeds_exported() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    assert_exit(
        &d.cli(&["token", "new", "--user", "p1@contoso.com", "--serial", "P1"]),
        0,
    );
    let piped = d.cli(&["export"]);
    assert_exit(&piped, 0);
    assert!(stdout(&piped).contains(",P1,"), "{}", stdout(&piped));
    assert!(
        stderr(&piped).contains("Not marked exported"),
        "{}",
        stderr(&piped)
    );
    assert!(seeds(&d)[0]["exported_at"].is_null(), "{:?}", seeds(&d));
    let purge = d.cli(&["seeds", "purge", "--exported"]);
    assert_exit(&purge, 0);
    assert_eq!(seeds(&d).len(), 1, "the seed never saved is kept");

    // Redirected into a file: kept, so marked.
    let saved = dir.join("saved.csv");
    let status = Command::new(oathkey_testkit::bin("oathkey"))
        .arg("export")
        .env("OATHKEY_SOCKET", &d.socket)
        .stdout(std::fs::File::create(&saved).expect("file"))
        .status()
        .expect("runs");
    assert!(status.success());
    assert_eq!(read(Format::AzureCsv, &saved).len(), 1);
    assert!(seeds(&d)[0]["exported_at"].is_u64(), "{:?}", seeds(&d));

    // A second seed, to a pipe with --mark-exported: marked.
    assert_exit(
        &d.cli(&["token", "new", "--user", "p2@contoso.com", "--serial", "P2"]),
        0,
    );
    let marked = d.cli(&["export", "--new-only", "--mark-exported"]);
    assert_exit(&marked, 0);
    assert!(stdout(&marked).contains(",P2,"));
    assert!(!stdout(&marked).contains(",P1,"), "--new-only");
    assert!(!stderr(&marked).contains("Not marked"));
    assert!(seeds(&d).iter().all(|s| s["exported_at"].is_u64()));
    assert_exit(&d.cli(&["seeds", "purge", "--exported"]), 0);
    assert!(seeds(&d).is_empty());
}

fn check_file(path: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(oathkey_testkit::bin("oathkey"))
        .args(["seedfile", "check"])
        .arg(path)
        .args(extra)
        .output()
        .expect("runs")
}

/// Files a spreadsheet or an editor damaged are read as Azure CSV (for `--target azure`, or a
/// `.csv` name) and get their problems row by row, not "cannot tell the format".
#[test]
fn seedfile_check_reports_damaged_azure_files_row_by_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = "upn,serial number,secret key,time interval,manufacturer,model";
    let row = "alice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,key";

    // No header a detector knows, `;` between fields, a name that says nothing: --target.
    let semicolons = dir.path().join("tokens.txt");
    std::fs::write(&semicolons, format!("{}\n", row.replace(',', ";"))).expect("written");
    let out = check_file(&semicolons, &[]);
    assert_exit(&out, 10);
    assert!(
        stderr(&out).contains("cannot tell the format"),
        "{}",
        stderr(&out)
    );
    let out = check_file(&semicolons, &["--target", "azure"]);
    assert_exit(&out, 10);
    assert_eq!(
        stdout(&out),
        format!(
            "line 1: wrong header: the fields are separated by ';', not ','; the first line must be `{header}`\n"
        )
    );
    assert!(
        stderr(&out).contains("reading it as azure-csv"),
        "{}",
        stderr(&out)
    );

    // A trailing comma on every line, five columns, `;`: each line says what is wrong.
    for (name, text, expected) in [
        (
            "trailing.csv",
            format!("{header},\n{row},\n"),
            vec![
                format!("line 1: wrong header: a trailing ',' adds an empty seventh column; the first line must be `{header}`"),
                format!("line 2: expected 6 fields ({header}), found 7: a trailing ',' adds an empty seventh field"),
            ],
        ),
        (
            "five.csv",
            "upn,serial number,secret key,time interval,manufacturer\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey\n".to_string(),
            vec![
                format!("line 1: wrong header; the first line must be `{header}`"),
                format!("line 2: expected 6 fields ({header}), found 5"),
            ],
        ),
        (
            "semicolons.csv",
            format!("{}\n{}\n", header.replace(',', ";"), row.replace(',', ";")),
            vec![
                format!("line 1: wrong header: the fields are separated by ';', not ','; the first line must be `{header}`"),
                format!("line 2: expected 6 fields ({header}), found 1: the fields are separated by ';'; Azure's CSV needs ',' (save as \"CSV UTF-8 (comma delimited)\")"),
            ],
        ),
        (
            "case.csv",
            format!("UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model\n{row}\n"),
            vec![format!("line 1: header is \"UPN,Serial Number,Secret Key,Time Interval,Manufacturer,Model\", not exactly `{header}`; Azure requires this header exactly (lower case, no spaces around the names)")],
        ),
        (
            "empty.csv",
            format!("{header}\n"),
            vec!["no tokens: the file has no rows".to_string()],
        ),
        (
            "values.csv",
            format!(
                "{header}\n\
                 a@contoso.com,1.23457E+06,JBSWY3DPEHPK3PXP,30,m,k\n\
                 b@contoso.com,0012346,A,30,m,k\n\
                 c@contoso.com,0012347,JBSWY3DP,30,m,k\n"
            ),
            vec![
                "line 2 (serial 1.23457E+06): serial number \"1.23457E+06\" is in scientific notation (a spreadsheet turned it into a number); its digits are lost: take the serial from the original file or the key".to_string(),
                "line 3 (serial 0012346): secret key is too short (one Base32 character holds no whole byte)".to_string(),
                "line 4 (serial 0012347): secret key is too short: 40 bits; at least 80 bits (16 Base32 characters) are needed, and RFC 4226 asks for 128".to_string(),
            ],
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        let out = check_file(&path, &[]);
        assert_exit(&out, 10);
        let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
        assert_eq!(lines, expected, "{name}");
        let json_out = check_file(&path, &["--json"]);
        assert_exit(&json_out, 10);
        let report: Value = serde_json::from_slice(&json_out.stdout).expect("JSON");
        assert_eq!(report["format"], "azure-csv", "{name}");
        assert_eq!(
            report["problems"].as_array().expect("problems").len(),
            expected.len(),
            "{name}"
        );
    }

    // UTF-16, as Excel's "Unicode text" saves it: read (whatever the name: the content says
    // Azure CSV once decoded), with one reason more that says what to do.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        format!("{header}\r\n{row}\r\n")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let reason = "file is saved as UTF-16; its rows were read, but save it as UTF-8 to upload or append to it (in Excel: \"CSV UTF-8 (comma delimited)\")";
    for name in ["tseed.csv", "tseed.dat"] {
        let path = dir.path().join(name);
        std::fs::write(&path, &utf16).expect("written");
        for extra in [&[][..], &["--target", "azure"][..]] {
            let out = check_file(&path, extra);
            assert_exit(&out, 10);
            assert_eq!(stdout(&out), format!("line 1: {reason}\n"), "{name}");
            assert!(
                stderr(&out).contains("1 token(s), 1 problem(s) (azure-csv)"),
                "{name}: {}",
                stderr(&out)
            );
        }
    }
}

/// A secret under 80 bits: the key takes it (with a warning at `token new`), every seed file
/// refuses it, and `--force` writes it with a warning that says why.
#[test]
fn a_short_imported_secret_is_warned_about_and_refused_in_files() {
    let d = Daemon::start(&["--emulate", "1"]);
    let made = d.cli(&[
        "token",
        "new",
        "--user",
        "short@contoso.com",
        "--serial",
        "S40",
        "--secret",
        "JBSWY3DP",
    ]);
    assert_exit(&made, 0);
    assert!(
        stderr(&made).contains(
            "warning: the secret is only 40 bits; seed files refuse secrets under 80 bits"
        ),
        "{}",
        stderr(&made)
    );
    let reason = "secret key is too short: 40 bits; at least 80 bits (16 Base32 characters) are needed, and RFC 4226 asks for 128";
    for format in [
        "azure-csv",
        "graph-json",
        "privacyidea-csv",
        "pskc",
        "otpauth",
    ] {
        let refused = d.cli(&["export", "--format", format]);
        assert_exit(&refused, 10);
        assert!(
            stderr(&refused).contains(&format!("serial S40: {reason}")),
            "{format}: {}",
            stderr(&refused)
        );
    }
    let file = d.dir.path().join("short.csv");
    let forced = d.cli(&["export", "--force", "-o", file.to_str().expect("utf8")]);
    assert_exit(&forced, 0);
    assert!(
        stderr(&forced).contains(&format!(
            "warning: {}: line 2 (serial S40): {reason}",
            file.display()
        )),
        "{}",
        stderr(&forced)
    );
    // The forced file holds the key's seed all the same.
    let parsed = oathkey_seedfile::read(Format::AzureCsv, &std::fs::read(&file).expect("file"));
    let r = &parsed.records[0].1;
    assert_eq!(
        stdout(&d.cli(&["code", "S40", "--at", "59"])).trim(),
        oathtool(r, 59)
    );
}
