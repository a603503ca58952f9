//! A real `oathkeyd` process in a temporary directory of its own: its socket, state directory,
//! config file and log are all in there, so tests never meet each other's daemons.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oathkey_protocol::client::Client;
use oathkey_protocol::types::KeyList;
use serde_json::Value;
use tempfile::TempDir;

use crate::bins::bin;
use crate::output::Ran;

/// When a starting daemon counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// Its socket takes a connection.
    Connects,
    /// It lists at least one key (virtual keys attach just after the socket opens).
    ListsAKey,
}

/// How to start a daemon: `oathkeyd --user --no-hid --no-pcsc --log-level debug` (no real
/// keys: a test never meets the machine's own keys), a socket and a state directory in the
/// daemon's own temporary directory, then what the builder adds.
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    program: Option<PathBuf>,
    log_level: Option<String>,
    config: Option<String>,
    admin_self: bool,
    pcscd: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    parent: Option<PathBuf>,
    prefix: Option<String>,
    ready: Ready,
    ready_within: Duration,
    poll: Duration,
}

impl Default for DaemonBuilder {
    fn default() -> Self {
        Self {
            program: None,
            log_level: Some("debug".into()),
            config: None,
            admin_self: false,
            pcscd: None,
            args: Vec::new(),
            env: Vec::new(),
            parent: None,
            prefix: None,
            ready: Ready::Connects,
            ready_within: Duration::from_secs(20),
            poll: Duration::from_millis(25),
        }
    }
}

impl DaemonBuilder {
    /// The program to run instead of the workspace's `oathkeyd` (the benchmark runs the
    /// release build).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// `--log-level`; `None` leaves the daemon's default (`info`). Default: `debug`.
    pub fn log_level(mut self, level: Option<&str>) -> Self {
        self.log_level = level.map(str::to_owned);
        self
    }

    /// A config file with this text (written into the daemon's directory, `--config`).
    pub fn config(mut self, text: &str) -> Self {
        self.config = Some(text.to_string());
        self
    }

    /// This process's user as an admin (`--admin-user UID`), which it is anyway when it runs as
    /// root.
    pub fn admin_self(mut self) -> Self {
        self.admin_self = true;
        self
    }

    /// Watches PC/SC readers through the pcscd whose socket is `socket` (a private one:
    /// [`crate::Pcscd::socket`]) instead of leaving PC/SC off.
    pub fn pcscd(mut self, socket: impl Into<PathBuf>) -> Self {
        self.pcscd = Some(socket.into());
        self
    }

    /// More arguments (after the ones above, so a repeated option here wins).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// An environment variable for the daemon process only.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Where the daemon's temporary directory goes (default: the system's temporary
    /// directory), and a prefix for its name.
    pub fn dir_in(mut self, parent: impl Into<PathBuf>, prefix: &str) -> Self {
        self.parent = Some(parent.into());
        self.prefix = Some(prefix.to_string());
        self
    }

    /// Ready once it lists a key, not merely once its socket answers.
    pub fn ready_when_it_lists_a_key(mut self) -> Self {
        self.ready = Ready::ListsAKey;
        self
    }

    /// How long it may take to be ready, and how often to look (default 20 s, every 25 ms).
    pub fn ready_within(mut self, within: Duration, poll: Duration) -> Self {
        self.ready_within = within;
        self.poll = poll;
        self
    }

    /// Starts the daemon and waits until it is ready.
    pub fn start(self) -> Daemon {
        let mut dir = tempfile::Builder::new();
        if let Some(prefix) = &self.prefix {
            dir.prefix(prefix);
        }
        let dir = match &self.parent {
            Some(parent) => dir.tempdir_in(parent),
            None => dir.tempdir(),
        }
        .expect("tempdir");
        // Other uids (the reader tests) must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let socket = dir.path().join("oathkeyd.sock");
        let log = dir.path().join("oathkeyd.log");
        let config = self.config.as_ref().map(|text| {
            let path = dir.path().join("oathkeyd.toml");
            std::fs::write(&path, text).expect("config written");
            path
        });
        let program = self.program.clone().unwrap_or_else(|| bin("oathkeyd"));
        let mut daemon = Daemon {
            child: None,
            dir,
            socket,
            log,
            program,
            config,
            how: self,
            ready_after: Duration::ZERO,
        };
        daemon.spawn();
        daemon
    }
}

/// A daemon running in its own temporary directory; killed when dropped. It can be killed and
/// started again on the same socket and state ([`Daemon::restart`]).
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    /// Its directory (socket, state, config, log); removed when dropped.
    pub dir: TempDir,
    /// Its socket.
    pub socket: PathBuf,
    /// Its log (stderr), kept across restarts.
    pub log: PathBuf,
    program: PathBuf,
    config: Option<PathBuf>,
    how: DaemonBuilder,
    ready_after: Duration,
}

impl Daemon {
    /// How to start one with more than arguments.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// Starts `oathkeyd --user --no-hid` with `args`, waiting until it answers.
    pub fn start(args: &[&str]) -> Self {
        Self::builder().args(args).start()
    }

    /// Same, with a config file.
    pub fn start_with_config(config: Option<&str>, args: &[&str]) -> Self {
        Self::start_with_env(config, args, &[])
    }

    /// Same, with extra environment variables for the daemon process.
    pub fn start_with_env(config: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut how = Self::builder().args(args);
        if let Some(text) = config {
            how = how.config(text);
        }
        for (k, v) in env {
            how = how.env(k, v);
        }
        how.start()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(&self.program);
        cmd.args(["--user", "--no-hid"]);
        match &self.how.pcscd {
            Some(socket) => {
                cmd.env("PCSCLITE_CSOCK_NAME", socket);
            }
            None => {
                cmd.arg("--no-pcsc");
            }
        }
        if let Some(level) = &self.how.log_level {
            cmd.args(["--log-level", level]);
        }
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"));
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        if self.how.admin_self {
            cmd.args(["--admin-user", &nix::unistd::geteuid().to_string()]);
        }
        for (k, v) in &self.how.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .args(&self.how.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("oathkeyd starts");
        self.child = Some(child);
        self.wait_ready(started);
    }

    fn wait_ready(&mut self, started: Instant) {
        let deadline = started + self.how.ready_within;
        while Instant::now() < deadline {
            if let Ok(mut c) = Client::connect(&self.socket) {
                let ready = match self.how.ready {
                    Ready::Connects => true,
                    Ready::ListsAKey => c
                        .call::<_, KeyList>("keys.list", Value::Null)
                        .is_ok_and(|l| !l.keys.is_empty()),
                };
                if ready {
                    self.ready_after = started.elapsed();
                    return;
                }
            }
            if let Some(status) = self.try_wait() {
                panic!("oathkeyd exited early ({status}):\n{}", self.log_text());
            }
            std::thread::sleep(self.how.poll);
        }
        panic!("oathkeyd did not come up:\n{}", self.log_text());
    }

    /// From spawning it to its first answer (the last start's).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// The daemon's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("client connects")
    }

    /// The CLI against this daemon, with nothing on stdin, to its end.
    pub fn cli(&self, args: &[&str]) -> Ran {
        Ran::run(self.cli_command(args).stdin(Stdio::null()))
    }

    /// A CLI command against this daemon (`OATHKEY_SOCKET` set), to add to and run.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("oathkey"));
        cmd.args(args).env("OATHKEY_SOCKET", &self.socket);
        cmd
    }

    /// Starts the CLI against this daemon with its stdout and stderr piped, for a test that
    /// acts while it runs (presses a key, signals the daemon).
    pub fn spawn_cli(&self, args: &[&str]) -> Child {
        self.cli_command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("oathkey runs")
    }

    /// Sends a signal (`TERM`, `HUP`, ...) to the daemon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the daemon to exit; fails after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
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

    /// Kills it (SIGKILL: no goodbye to the clients, no cleanup).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it and starts it again on the same socket, state and config.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The id of the only key (or the first).
    pub fn key_id(&self) -> String {
        let list: KeyList = self.client().call("keys.list", Value::Null).expect("lists");
        list.keys.first().expect("a key").id.clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
