//! The virtual smart card behind real middleware: a private pcscd with vsmartcard's vpcd
//! reader driver, `oathkey-emulator serve --vpcd`, and independent clients: Yubico's yubikit
//! and ykman for the `yubikey` profile, OpenSC's opensc-tool for the `nk3` profile. Codes are
//! held to oathtool.
//!
//! Needs root, pcscd, vsmartcard-vpcd, oathtool and opensc (scripts/setup installs them) and
//! the Python test environment; outside CI a missing piece skips the test with the reason, under
//! `CI=true` it fails. Each test runs its own pcscd (see `pcsc/mod.rs`) on its own port pair.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oathkey_testkit::pcscd::{self as pcsc, Emulator, Pcscd, READER};

fn python_ready() -> bool {
    let python = oathkey_testkit::python();
    if python.exists() {
        return true;
    }
    let why = format!(
        "no Python test environment at {} (run scripts/setup or set OATHKEY_PYTHON)",
        python.display()
    );
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI=true: {why}"
    );
    eprintln!("SKIPPED (outside CI): {why}");
    false
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

fn oathtool_totp(secret_hex: &str, digits: u32, at: u64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-d",
            &digits.to_string(),
            "-N",
            &format!("@{at}"),
            secret_hex,
        ])
        .output()
        .expect("oathtool runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn yubikit_and_ykman_drive_the_yubikey_card_through_pcscd() {
    if !pcsc::available(&["oathtool"]) || !python_ready() {
        return;
    }
    let pcscd = Pcscd::start();
    let mut emulator = Emulator::start(
        pcscd.port,
        &[
            "--profile",
            "yubikey",
            "--touch",
            "button",
            "--serial",
            "00BC614E",
        ],
    );
    assert!(
        emulator.banner.contains("yubikey serial 00BC614E"),
        "{}",
        emulator.banner
    );
    emulator.expect_line("card inserted", Duration::from_secs(10));

    let (var, socket) = pcscd.env();
    let mut child = Command::new(oathkey_testkit::python())
        .arg(script("yubikit_oath.py"))
        .args([READER, "00BC614E"])
        .env(var, &socket)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line == "TOUCH-NEXT" {
            // The card holds the CALCULATE until the button: press when it says it waits.
            emulator.expect_line("touch requested", Duration::from_secs(20));
            emulator.control("press");
        }
        output.push_str(&line);
        output.push('\n');
    }
    let result = child.wait_with_output().expect("python ends");
    assert!(
        result.status.success() && output.contains("YUBIKIT CHECKS PASSED"),
        "yubikit_oath.py failed ({})\nstdout:\n{output}\nstderr:\n{}\npcscd:\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr),
        pcscd.log()
    );
    println!("{output}");

    // ykman, Yubico's CLI, on the credential the script left.
    let ykman = oathkey_testkit::python().with_file_name("ykman");
    let run = |args: &[&str]| {
        let out = Command::new(&ykman)
            .args(["--reader", READER])
            .args(args)
            .env(var, &socket)
            .output()
            .expect("ykman runs");
        assert!(
            out.status.success(),
            "ykman {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let list = run(&["oath", "accounts", "list"]);
    assert_eq!(list, "Example:alice@example.com");
    let info = run(&["info"]);
    assert!(info.contains("12345678"), "serial in decimal: {info}");
    // A code read at a time step boundary may belong to the next step: try twice.
    let secret = "3132333435363738393031323334353637383930";
    let matched = (0..2).any(|_| {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let code = run(&["oath", "accounts", "code", "-s", "alice"]);
        code == oathtool_totp(secret, 6, before)
    });
    assert!(matched, "ykman's code differs from oathtool's");
}

/// Sends APDUs with opensc-tool in one connection; returns each answer as hex with its SW.
fn opensc(pcscd: &Pcscd, apdus: &[&str]) -> Result<Vec<String>, String> {
    let (var, socket) = pcscd.env();
    let mut cmd = Command::new("opensc-tool");
    cmd.args(["-r", READER]).env(var, socket);
    for a in apdus {
        cmd.args(["-s", &a.replace(' ', "")]);
    }
    let out = cmd.output().expect("opensc-tool runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // "Received (SW1=0x90, SW2=0x00):" then lines of hex pairs (and an ASCII column).
    let mut answers = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("Received (SW1=0x") else {
            continue;
        };
        let sw = format!("{}{}", &rest[..2], &rest[10..12]).to_uppercase();
        let mut data = String::new();
        while let Some(next) = lines.peek() {
            if next.starts_with("Sending") || next.starts_with("Received") || next.is_empty() {
                break;
            }
            // 16 hex pairs at most, then the ASCII column.
            for pair in next.split(' ').take(16) {
                if pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit()) {
                    data.push_str(pair);
                }
            }
            lines.next();
        }
        answers.push(format!("{data}{sw}"));
    }
    Ok(answers)
}

fn atr(pcscd: &Pcscd) -> Option<String> {
    let (var, socket) = pcscd.env();
    let out = Command::new("opensc-tool")
        .args(["-r", READER, "-a"])
        .env(var, socket)
        .output()
        .expect("opensc-tool runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_nk3_card_through_pcscd_survives_removal_and_a_pcscd_restart() {
    if !pcsc::available(&["opensc-tool", "oathtool"]) {
        return;
    }
    let mut pcscd = Pcscd::start();
    let port = pcscd.port;
    let mut emulator = Emulator::start(port, &["--profile", "nk3", "--serial", "0A0B0C0D"]);
    emulator.expect_line("card inserted", Duration::from_secs(10));
    eventually("the card in pcscd's reader", || atr(&pcscd).is_some());
    let atr_text = atr(&pcscd).expect("ATR");
    assert_eq!(
        atr_text.to_uppercase().replace(':', ""),
        "3B8C8001805A6F6174686B65792D76638A",
        "the card's own ATR, not a YubiKey's"
    );

    const SELECT: &str = "00A4040007A0000005272101";
    // PUT "t": TOTP SHA-1, 8 digits, RFC 6238's key; CALCULATE at step 1 (T = 59 s).
    const PUT: &str = "000100001B 710174 7316 2108 3132333435363738393031323334353637383930";
    const CALC: &str = "00A200010D 710174 7408 0000000000000001";
    let answers = opensc(
        &pcscd,
        &[
            SELECT,
            PUT,
            CALC,
            "00050000067101747101 75",
            "00A4040008A000000527471117",
        ],
    )
    .expect("APDUs answered");
    assert!(answers[0].starts_with("7903040D00"), "{answers:?}");
    assert!(answers[0].ends_with("8F040A0B0C0D9000"), "{answers:?}");
    assert_eq!(answers[1], "9000");
    let calc = &answers[2];
    assert!(
        calc.starts_with("760508") && calc.ends_with("9000"),
        "{calc}"
    );
    let value = u32::from_str_radix(&calc[6..14], 16).expect("hex") % 100_000_000;
    assert_eq!(
        format!("{value:08}"),
        oathtool_totp("3132333435363738393031323334353637383930", 8, 59)
    );
    assert_eq!(answers[3], "6D00", "no RENAME on a Nitrokey 3");
    assert_eq!(answers[4], "6A82", "no Management app");

    // Out of the reader and back.
    emulator.control("remove");
    emulator.expect_line("card removed", Duration::from_secs(5));
    eventually("pcscd seeing the card leave", || atr(&pcscd).is_none());
    emulator.control("insert");
    emulator.expect_line("card inserted", Duration::from_secs(5));
    eventually("pcscd seeing the card again", || atr(&pcscd).is_some());

    // pcscd stops and comes back on the same port: the card reconnects by itself and still
    // holds its credential.
    pcscd.stop();
    emulator.expect_line("card removed", Duration::from_secs(10));
    drop(pcscd);
    let pcscd = Pcscd::start_on(port);
    emulator.expect_line("card inserted", Duration::from_secs(15));
    eventually("the card in the new pcscd's reader", || {
        atr(&pcscd).is_some()
    });
    let answers = opensc(&pcscd, &[SELECT, CALC]).expect("APDUs answered");
    assert_eq!(&answers[1], calc, "same credential, same code");
}
