//! Test harness: real `oathkeyd` and `oathkey` processes on a private socket.
#![allow(dead_code)]

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use oathkey_protocol::client::Client;
use tempfile::TempDir;

/// A workspace binary: this package's own, or a sibling built by cargo (built on demand when a
/// single package's tests run alone).
pub fn bin(name: &str) -> PathBuf {
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_oathkey"));
    if name == "oathkey" {
        return cli;
    }
    let path = cli.with_file_name(name);
    if !path.exists() {
        // Each binary's package has the binary's name.
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", name, "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// A daemon running in its own temporary directory.
pub struct Daemon {
    pub child: Child,
    pub dir: TempDir,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `oathkeyd --user --no-hid` with `args`, waiting until it answers.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_config(None, args)
    }

    /// Same, with a config file.
    pub fn start_with_config(config: Option<&str>, args: &[&str]) -> Self {
        Self::start_with_env(config, args, &[])
    }

    /// Same, with extra environment variables for the daemon process.
    pub fn start_with_env(config: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Other uids (the reader tests) must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let socket = dir.path().join("oathkeyd.sock");
        let log = dir.path().join("oathkeyd.log");
        let mut cmd = Command::new(bin("oathkeyd"));
        cmd.args(["--user", "--no-hid", "--log-level", "debug"])
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        if let Some(text) = config {
            let path = dir.path().join("oathkeyd.toml");
            std::fs::write(&path, text).expect("config written");
            cmd.arg("--config").arg(path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("oathkeyd starts");
        let mut daemon = Self {
            child,
            dir,
            socket,
            log,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if Client::connect(&self.socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("oathkeyd exited early ({status}):\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("oathkeyd did not come up:\n{}", self.log_text());
    }

    /// The daemon's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("client connects")
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("oathkey"))
            .args(args)
            .env("OATHKEY_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("oathkey runs")
    }

    /// Starts the CLI against this daemon with its stdout and stderr piped, for a test that
    /// acts while it runs (presses a key, signals the daemon).
    pub fn spawn_cli(&self, args: &[&str]) -> std::process::Child {
        Command::new(bin("oathkey"))
            .args(args)
            .env("OATHKEY_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("oathkey runs")
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the daemon to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "oathkeyd did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The id of the only key (or the first).
    pub fn key_id(&self) -> String {
        let list: oathkey_protocol::types::KeyList = self
            .client()
            .call("keys.list", serde_json::Value::Null)
            .expect("lists");
        list.keys.first().expect("a key").id.clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The output's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The output's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts an exit code, showing everything on failure.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// An independent TOTP computation (totp-rs).
pub fn reference_totp(alg: &str, digits: u8, period: u64, secret_b32: &str, t: u64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .expect("base32");
    let algorithm = match alg {
        "sha1" => totp_rs::Algorithm::SHA1,
        "sha256" => totp_rs::Algorithm::SHA256,
        "sha512" => totp_rs::Algorithm::SHA512,
        other => panic!("{other}"),
    };
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret)
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// Reads lines from a child's stdout until one contains `needle`.
pub fn wait_for_line(reader: &mut impl BufRead, needle: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("reads");
        assert!(n > 0, "stream ended before {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

/// Whether the tests run as root (then other uids are reachable with setpriv).
pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    // Our effective uid from /proc, rather than a crate for one call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Copies of programs that any uid may run. The build folder may sit where other uids cannot
/// reach it (a checkout in root's 0700 home, a `mktemp -d` folder, `CARGO_TARGET_DIR` in a
/// private place), so the tests that switch to another uid run these instead: hard links (or
/// copies, across file systems) in a fresh world-readable folder, removed when dropped.
pub struct ForAnyone {
    dir: TempDir,
}

impl ForAnyone {
    /// The programs, linked into one folder (so a program finds its siblings, as `oathkey demo`
    /// finds `oathkeyd`).
    pub fn new(programs: &[PathBuf]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oathkey-bins-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for program in programs {
            let name = program.file_name().expect("a file name");
            let to = dir.path().join(name);
            if std::fs::hard_link(program, &to).is_err() {
                std::fs::copy(program, &to).expect("copied");
            }
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Self { dir }
    }

    /// The workspace's binaries `names` (see [`bin`]).
    pub fn bins(names: &[&str]) -> Self {
        Self::new(&names.iter().map(|n| bin(n)).collect::<Vec<_>>())
    }

    /// The runnable copy of the program named `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs the CLI as uid/gid 65534 (nobody) with no supplementary groups.
pub fn cli_as_nobody(daemon: &Daemon, args: &[&str]) -> Output {
    cli_as(daemon, 65534, args)
}

/// Runs the CLI as `uid` (its gid the same number, no supplementary groups); as ourselves when
/// not root.
pub fn cli_as(daemon: &Daemon, uid: u32, args: &[&str]) -> Output {
    let bins = ForAnyone::bins(&["oathkey"]);
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--",
        ])
        .arg(bins.path("oathkey"));
        c
    } else {
        Command::new(bin("oathkey"))
    };
    cmd.args(args)
        .env("OATHKEY_SOCKET", &daemon.socket)
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

/// A path that certainly holds no socket.
pub fn missing_socket(dir: &Path) -> PathBuf {
    dir.join("nothing-here.sock")
}
