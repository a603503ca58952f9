//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running `oathkey-emulator serve --udp` process, killed when dropped.
pub struct UdpEmulator {
    pub child: Child,
    pub port: u16,
}

impl Drop for UdpEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the emulator binary on a free loopback port and waits for its "listening" line.
pub fn spawn_udp(extra: &[&str]) -> UdpEmulator {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oathkey-emulator"))
        .args(["serve", "--udp", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the emulator binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the listening line");
    // "listening on udp://127.0.0.1:PORT serial XXXXXXXX"
    let port = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("udp://"))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    UdpEmulator { child, port }
}

/// The Python interpreter with python-fido2, nitrokey and pyotp: `OATHKEY_PYTHON`, or the
/// virtualenv `scripts/setup` makes in the cargo target directory (wherever
/// `CARGO_TARGET_DIR` puts it).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OATHKEY_PYTHON") {
        return PathBuf::from(p);
    }
    // CARGO_TARGET_TMPDIR is `tmp/` inside the target directory.
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("pyvenv/bin/python3");
    assert!(
        venv.exists(),
        "no Python test environment at {}: run scripts/setup (or set OATHKEY_PYTHON)",
        venv.display()
    );
    venv
}

/// Runs a check script from tests/python against the emulator; panics with its output if it fails.
pub fn run_python_check(script: &str, port: u16) -> String {
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
