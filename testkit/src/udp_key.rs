//! A virtual key served over UDP by `oathkey-emulator serve`: for the daemon's `--udp-key`
//! source and for independent FIDO and Nitrokey clients. Its button is pressed through the
//! emulator's stdin; it is stopped (as if unplugged) when dropped.

use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::bins::bin;
use crate::output::wait_for_line;

/// A running `oathkey-emulator serve --udp`.
#[derive(Debug)]
pub struct UdpKey {
    child: Child,
    stdin: ChildStdin,
    /// The UDP port it serves on.
    pub port: u16,
}

impl UdpKey {
    /// A free local UDP address.
    pub fn free_addr() -> String {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("free port");
        format!("127.0.0.1:{}", probe.local_addr().expect("addr").port())
    }

    /// Serves a virtual key on `addr` (port 0: any free one, see [`UdpKey::port`]), with the
    /// emulator's `args`; returns once it listens.
    pub fn start(addr: &str, args: &[&str]) -> Self {
        let mut child = Command::new(bin("oathkey-emulator"))
            .args(["serve", "--udp", addr])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        // "listening on udp://127.0.0.1:PORT serial XXXXXXXX"
        let line = wait_for_line(&mut out, "listening");
        let port = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("udp://"))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let stdin = child.stdin.take().expect("stdin");
        Self { child, stdin, port }
    }

    /// Presses the button once (a press while nothing waits is lost, as on a real key).
    pub fn press(&mut self) {
        writeln!(self.stdin, "press").expect("pressed");
    }

    /// Presses the button every 100 ms until `cli` ends (the prompt comes just before the key
    /// starts waiting, and a press while nothing waits is lost, as on a real key).
    pub fn press_until_done(&mut self, mut cli: Child) -> Output {
        let deadline = Instant::now() + Duration::from_secs(20);
        while cli.try_wait().expect("waits").is_none() {
            assert!(Instant::now() < deadline, "still running after the presses");
            self.press();
            std::thread::sleep(Duration::from_millis(100));
        }
        cli.wait_with_output().expect("ends")
    }
}

impl Drop for UdpKey {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
