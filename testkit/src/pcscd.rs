//! A private pcscd with vsmartcard's vpcd reader for one test, and the virtual card in it.
//!
//! pcsc-lite 1.9 always serves `/run/pcscd/pcscd.comm` (the server ignores
//! `PCSCLITE_CSOCK_NAME`), so two pcscd instances (two tests, or a system pcscd) would fight
//! over it. Each test's pcscd therefore runs in its own mount namespace (`unshare --mount`,
//! a tmpfs on `/run/pcscd`) and clients reach its socket through
//! `/proc/PID/root/run/pcscd/pcscd.comm`, which libpcsclite takes from `PCSCLITE_CSOCK_NAME`.
//! That needs root (CI runs as root). vpcd listens on TCP (a port pair: its two readers) on all
//! interfaces; each test picks a free pair above 30000 instead of the default 35963, so tests
//! run in parallel and beside a system pcscd.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// vsmartcard's reader driver as Debian installs it.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// The reader name of vpcd's first slot.
pub const READER: &str = "Virtual PCD 00 00";

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file()
}

/// Why the pcscd tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("a private pcscd needs root (a mount namespace for /run/pcscd)".into());
    }
    for program in ["pcscd", "unshare"] {
        if !in_path(program) {
            return Some(format!(
                "{program} is not installed (scripts/setup installs it)"
            ));
        }
    }
    if !Path::new(VPCD_DRIVER).is_file() {
        return Some(format!(
            "vsmartcard's vpcd driver {VPCD_DRIVER} is missing (Debian package vsmartcard-vpcd)"
        ));
    }
    None
}

/// `true` when the test may run; otherwise says why it is skipped, or fails under CI.
pub fn available(extra: &[&str]) -> bool {
    let mut reason = missing();
    for program in extra {
        if reason.is_none() && !in_path(program) {
            reason = Some(format!(
                "{program} is not installed (scripts/setup installs it)"
            ));
        }
    }
    match reason {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the PC/SC test cannot run: {why}")
        }
        Some(why) => {
            eprintln!("SKIPPED (outside CI): {why}");
            false
        }
    }
}

/// Two consecutive free TCP ports (vpcd's two readers).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let Ok(first) = TcpListener::bind("0.0.0.0:0") else {
            continue;
        };
        let Ok(addr) = first.local_addr() else {
            continue;
        };
        let port = addr.port();
        if port < 30000 || port == u16::MAX {
            continue;
        }
        if TcpListener::bind(("0.0.0.0", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free pair of TCP ports for vpcd")
}

/// A pcscd in its own mount namespace, stopped when dropped.
#[derive(Debug)]
pub struct Pcscd {
    child: Child,
    /// vpcd's first reader's port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Pcscd {
    /// Starts one on a fresh port pair.
    pub fn start() -> Self {
        Self::start_on(free_port_pair())
    }

    /// Starts one whose vpcd listens on `port` (and `port + 1`).
    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("reader.conf.d");
        std::fs::create_dir(&conf).expect("conf dir");
        // DEVICENAME and CHANNELID carry the port, as Debian's /etc/reader.conf.d/vpcd does.
        std::fs::write(
            conf.join("vpcd"),
            format!(
                "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x{port:04X}\n\
                 LIBPATH {VPCD_DRIVER}\nCHANNELID 0x{port:04X}\n"
            ),
        )
        .expect("reader.conf");
        // The mount point must exist before the namespace mounts over it.
        std::fs::create_dir_all("/run/pcscd").expect("/run/pcscd");
        let log = std::fs::File::create(dir.path().join("pcscd.log")).expect("log");
        let script = format!(
            "mount -t tmpfs -o mode=0755 tmpfs /run/pcscd && exec pcscd --foreground --apdu -c {}",
            conf.display()
        );
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("unshare starts");
        let pcscd = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pcscd.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "pcscd did not start:\n{}",
                pcscd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        pcscd
    }

    /// The socket, as clients outside the namespace reach it.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root/run/pcscd/pcscd.comm",
            self.child.id()
        ))
    }

    /// The environment variable that points libpcsclite at this pcscd.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("PCSCLITE_CSOCK_NAME", self.socket())
    }

    /// What pcscd logged (with `--apdu`: every APDU).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default()
    }

    /// Stops pcscd (SIGTERM, then SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // pcscd cleans up on SIGTERM; kill(1) sends it to this one process only.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `oathkey-emulator serve --vpcd`, with its stdin (control lines) and stdout lines.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// The first line: profile and serial.
    pub banner: String,
}

impl Emulator {
    /// Starts the card for vpcd on `port`.
    pub fn start(port: u16, args: &[&str]) -> Self {
        let mut child = Command::new(crate::bin("oathkey-emulator"))
            .args(["serve", "--vpcd", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut emulator = Self {
            child,
            stdin,
            lines,
            banner: String::new(),
        };
        emulator.banner = emulator.expect_line("virtual card", Duration::from_secs(10));
        emulator
    }

    /// Waits for a stdout line containing `what`; returns it.
    pub fn expect_line(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("the emulator never said {what:?}")
                }
            }
        }
    }

    /// The next stdout line, if one comes within `timeout`.
    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Sends a control line (`press`, `remove`, `insert`, `touch POLICY`).
    pub fn control(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("control line sent");
        self.stdin.flush().expect("flushed");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
