//! Text that comes in from people's files and command lines: users files as Notepad and Excel
//! save them (byte order marks, UTF-16, bytes that are no UTF-8), seed files of one format given
//! where another was expected, the one UPN rule that `provision` and `token new` share with the
//! seed-file checks, and formulas in CSV cells.

use std::path::Path;

use oathkey_seedfile::{Format, upn_problem};
use oathkey_testkit::{Daemon, assert_exit, stderr, stdout};
use serde_json::Value;

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

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut bytes = if little_endian {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        bytes.extend(if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    bytes
}

/// Notepad's "UTF-8" starts the file with a byte order mark, its "Unicode" is UTF-16 with one,
/// in either byte order. Each seeds exactly the names the file shows: the mark was part of the
/// first account name, and `oathkey code alice@contoso.com` then found no such token.
#[test]
fn users_files_as_notepad_saves_them_seed_the_names_they_show() {
    let d = Daemon::start(&["--emulate", "3"]);
    let dir = d.dir.path();
    let cases: [(&str, &str, Vec<u8>); 3] = [
        (
            "bom.txt",
            "alice@contoso.com",
            b"\xEF\xBB\xBFalice@contoso.com\r\n".to_vec(),
        ),
        (
            "le.txt",
            "bob@contoso.com",
            utf16("bob@contoso.com\r\n", true),
        ),
        (
            "be.txt",
            "carol@contoso.com",
            utf16("carol@contoso.com\n", false),
        ),
    ];
    for (name, user, bytes) in cases {
        let users = dir.join(name);
        std::fs::write(&users, &bytes).expect("written");
        let out = dir.join(format!("{name}.csv"));
        let run = provision(&d, &users, &out, &[]);
        assert_exit(&run, 0);
        let csv = std::fs::read(&out).expect("csv written");
        let parsed = oathkey_seedfile::read(Format::AzureCsv, &csv);
        assert!(parsed.is_clean(), "{name}: {:?}", parsed.problems);
        assert_eq!(parsed.records.len(), 1, "{name}");
        assert_eq!(parsed.records[0].1.user, user, "{name}");
        assert!(
            !csv.windows(3).any(|w| w == b"\xEF\xBB\xBF"),
            "{name}: no byte order mark in the CSV"
        );
        let seed = seeds(&d)
            .into_iter()
            .find(|s| s["user"] == user)
            .unwrap_or_else(|| panic!("{name}: {user} seeded"));
        let key = seed["key"].as_str().expect("key");
        let code = d.cli(&["--key", key, "code", user]);
        assert_exit(&code, 0);
        assert_eq!(stdout(&code).trim().len(), 6, "{name}");
    }
}

/// A byte that is no UTF-8, or UTF-16 that is broken: the line, the byte and what to do, not
/// "stream did not contain valid UTF-8"; every such line listed, and no key touched.
#[test]
fn users_files_that_are_no_text_say_where_and_what_to_do() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let users = dir.join("users.txt");
    std::fs::write(
        &users,
        b"alice@contoso.com\nbob@contoso.com\nJos\xE9@contoso.com\ndave@contoso.com\n\xFFeve@contoso.com\n",
    )
    .expect("written");
    let out = dir.join("tseed.csv");
    let run = provision(&d, &users, &out, &["--force"]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    let file = users.display();
    for needle in [
        format!("{file} line 3: byte 4 is not UTF-8 (0xE9); save the file as UTF-8"),
        format!("{file} line 5: byte 1 is not UTF-8 (0xFF); save the file as UTF-8"),
    ] {
        assert!(err.contains(&needle), "{needle}: {err}");
    }
    assert!(!err.contains("stream did not contain"), "{err}");
    // UTF-16 with an odd number of bytes: a cut file.
    let mut cut = utf16("alice@contoso.com\r\nbob@contoso.com\r\n", true);
    cut.push(b'x');
    std::fs::write(&users, &cut).expect("written");
    let run = provision(&d, &users, &out, &[]);
    assert_exit(&run, 2);
    assert!(
        stderr(&run).contains(&format!(
            "{file} line 3: the file is UTF-16 but ends in the middle of a character"
        )),
        "{}",
        stderr(&run)
    );
    assert!(seeds(&d).is_empty(), "no key was touched");
    assert!(!out.exists());
}

/// A seed file given where a users file or another format was expected says what it is, in one
/// line, instead of a problem per line of XML.
#[test]
fn a_file_of_another_format_is_named_in_one_line() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let pskc = dir.join("tokens.xml");
    std::fs::write(
        &pskc,
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../seedfile/tests/golden/sample.pskc.xml"),
        )
        .expect("golden file"),
    )
    .expect("written");
    let out = dir.join("tseed.csv");
    let run = provision(&d, &pskc, &out, &[]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    assert!(
        err.contains(&format!(
            "{} is a PSKC (XML) seed file, not a users file (one UPN per line)",
            pskc.display()
        )),
        "{err}"
    );
    assert!(
        err.lines().count() <= 2,
        "one line, not one per XML line: {err}"
    );
    assert!(seeds(&d).is_empty());

    // seedfile check told to read it as Azure CSV.
    let run = d.cli(&[
        "seedfile",
        "check",
        "--format",
        "azure-csv",
        pskc.to_str().expect("utf8"),
    ]);
    assert_exit(&run, 10);
    assert_eq!(
        stdout(&run),
        "line 1: this is a PSKC (XML) seed file, not an Azure CSV file: its format is pskc\n"
    );
    // JSON and otpauth URIs given as Azure CSV.
    for (name, text, what, format) in [
        (
            "graph.csv",
            "{\"value\": []}\n",
            "a Graph JSON seed file",
            "graph-json",
        ),
        (
            "uris.csv",
            "otpauth://totp/a:b@contoso.com?secret=JBSWY3DPEHPK3PXP\n",
            "an otpauth URI seed file",
            "otpauth",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("written");
        let run = d.cli(&[
            "seedfile",
            "check",
            "--format",
            "azure-csv",
            path.to_str().expect("utf8"),
        ]);
        assert_exit(&run, 10);
        assert_eq!(
            stdout(&run),
            format!("line 1: this is {what}, not an Azure CSV file: its format is {format}\n"),
            "{name}"
        );
    }
}

/// provision's users-file check, the seed-file check and `token new` use one UPN rule.
/// What it refuses, provision refuses even with `--force`, every line listed.
#[test]
fn provision_refuses_what_the_upn_rule_refuses_even_forced() {
    let d = Daemon::start(&["--emulate", "1"]);
    let dir = d.dir.path();
    let bad = [
        "=1+1@contoso.com",
        "bob+tag@contoso.com",
        "carol@contoso..com",
        "eve",
        "x@y",
        "dave\u{200B}@contoso.com",
        "-erin@contoso.com",
    ];
    let users = dir.join("users.txt");
    let mut text = String::from("alice@contoso.com\n");
    for u in bad {
        text.push_str(u);
        text.push('\n');
    }
    std::fs::write(&users, text).expect("written");
    let out = dir.join("tseed.csv");
    let run = provision(&d, &users, &out, &["--force"]);
    assert_exit(&run, 2);
    let err = stderr(&run);
    let file = users.display();
    for (i, upn) in bad.iter().enumerate() {
        let reason = upn_problem(upn).expect("no UPN");
        let needle = format!("{file} line {}: {reason}", i + 2);
        assert!(err.contains(&needle), "{needle}: {err}");
    }
    assert!(!err.contains("line 1:"), "{err}");
    assert!(seeds(&d).is_empty(), "no key was touched");
}

/// `token new` takes any name (the key is not only for Azure, and ykman and oathtool take any
/// name too), but says at once which exports will refuse the token, and whether `--force`
/// helps, instead of `export` failing later.
#[test]
fn token_new_warns_at_once_about_names_exports_refuse() {
    let d = Daemon::start(&["--emulate", "1"]);
    for (n, user) in [
        "not a upn",
        "eve",
        "x@y",
        "bob_gmail.com#EXT#@contoso.onmicrosoft.com",
    ]
    .into_iter()
    .enumerate()
    {
        let serial = format!("W{n}");
        let run = d.cli(&["token", "new", "--user", user, "--serial", &serial]);
        assert_exit(&run, 0);
        let err = stderr(&run);
        let reason = upn_problem(user).unwrap_or_else(|| {
            format!("upn {user:?} is a guest account; Azure does not give OATH tokens to guests")
        });
        assert!(
            err.contains(&format!(
                "warning: an azure-csv export refuses this token: {reason} (export --force writes it anyway)"
            )),
            "{user}: {err}"
        );
        assert_eq!(err.matches("warning:").count(), 1, "{user}: {err}");
        // The export does refuse it, for that reason.
        let export = d.cli(&["export", "--format", "azure-csv", "--serial", &serial]);
        assert_exit(&export, 10);
        assert!(stderr(&export).contains(&reason), "{}", stderr(&export));
    }
    let run = d.cli(&["token", "new", "--user=-erin@contoso.com", "--serial", "W9"]);
    assert_exit(&run, 0);
    assert!(
        stderr(&run).contains(
            "warning: an azure-csv export refuses this token: Azure CSV cannot carry a user starting with '-'"
        ) && stderr(&run).contains("(not even with --force; export it in another format)"),
        "{}",
        stderr(&run)
    );
    let run = d.cli(&["token", "new", "--user", "alice@contoso.com"]);
    assert_exit(&run, 0);
    assert!(!stderr(&run).contains("warning"), "{}", stderr(&run));
}

/// A 206-character Base32 secret holds 128 bytes and 6 bits that belong to no byte. It was
/// refused as "not Base32"; the key takes its 128 bytes (as authenticator apps and the seed-file
/// readers do), and the exports that cannot carry so long a secret say so with the numbers.
#[test]
fn a_206_character_secret_is_no_base32_error() {
    let d = Daemon::start(&["--emulate", "1"]);
    let secret: String = "JBSWY3DPEHPK3PXP".repeat(13).chars().take(206).collect();
    let run = d.cli(&[
        "token",
        "new",
        "--user",
        "long@contoso.com",
        "--serial",
        "L206",
        "--secret",
        &secret,
    ]);
    assert_exit(&run, 0);
    let err = stderr(&run);
    assert!(!err.contains("not Base32"), "{err}");
    assert!(
        err.contains(
            "warning: an azure-csv export refuses this token: secret key is 128 bytes (205 Base32 characters); Azure accepts at most 128 characters (80 bytes)"
        ),
        "{err}"
    );
    let bytes = oathkey_seedfile::Secret::from_base32(&secret).expect("Base32");
    assert_eq!(bytes.expose().len(), 128);
    let expected = oathkey_testkit::reference_totp_b32("sha1", 6, 30, &bytes.base32(), 59);
    let code = d.cli(&["code", "L206", "--at", "59"]);
    assert_exit(&code, 0);
    assert_eq!(stdout(&code).trim(), expected);
}

/// Formulas, byte order marks and invisible characters in a seed file are problems with their
/// line in `seedfile check`.
#[test]
fn seedfile_check_reports_formulas_and_invisible_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tseed.csv");
    std::fs::write(
        &file,
        "upn,serial number,secret key,time interval,manufacturer,model\n\
         alice@contoso.com,0001,JBSWY3DPEHPK3PXP,30,\"=HYPERLINK(\"\"http://x\"\")\",key\n\
         \u{FEFF}bob@contoso.com,0002,JBSWY3DPEHPK3PXP,30,oathkey,key\n\
         carol\u{200B}@contoso.com,0003,JBSWY3DPEHPK3PXP,30,oathkey,key\n",
    )
    .expect("written");
    let out = std::process::Command::new(oathkey_testkit::bin("oathkey"))
        .args(["seedfile", "check"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_exit(&out, 10);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "line 2 (serial 0001): manufacturer \"=HYPERLINK(\\\"http://x\\\")\" starts with '=', which spreadsheet programs run as a formula (CSV injection); change it",
            "line 3: the line starts with a byte order mark (U+FEFF), as joined files leave it; the target reads it as part of the line: remove it",
            "line 4 (serial 0003): user has an invisible character U+200B (zero width space)",
        ]
    );
}
