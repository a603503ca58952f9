//! Independent clients drive the virtual key over UDP: python-fido2's CTAPHID client, and
//! Nitrokey's Python SDK (the code behind `nitropy nk3 secrets`).

use std::path::PathBuf;
use std::process::Command;

use oathkey_testkit::{UdpKey, python};

/// Runs a check script from tests/python against the emulator; panics with its output if it fails.
fn run_python_check(script: &str, port: u16) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let out = Command::new(python())
        .arg(dir.join(script))
        .args(["127.0.0.1", &port.to_string()])
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

#[test]
fn python_fido2_speaks_ctaphid_with_the_virtual_key() {
    let emulator = UdpKey::start("127.0.0.1:0", &[]);
    let out = run_python_check("check_fido2.py", emulator.port);
    assert!(out.contains("PING ok: 5 and 7609 bytes echoed"), "{out}");
    assert!(out.contains("FIDO2 CHECKS PASSED"), "{out}");
}

#[test]
fn nitrokey_sdk_manages_credentials_on_the_virtual_key() {
    let emulator = UdpKey::start("127.0.0.1:0", &[]);
    let out = run_python_check("check_nitrokey.py", emulator.port);
    assert!(out.contains("CALCULATE ok"), "{out}");
    assert!(out.contains("NITROKEY SDK CHECKS PASSED"), "{out}");
}
