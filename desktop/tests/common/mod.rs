//! Test harness: a real `oathkeyd` on a private socket with a virtual key, the app in an
//! egui_kittest harness (no display), and an independent TOTP computation.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eframe::egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use oathkey_desktop::{AppState, Backend, Clock, DesktopApp};
use oathkey_protocol::SecretText;
use oathkey_protocol::client::Client;
use oathkey_protocol::types::{CreateTokenParams, CreatedToken, KeyList, method};
use serde_json::Value;
use tempfile::TempDir;

/// A known seed (RFC 6238's SHA-1 test key).
pub const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// A workspace binary next to this package's own, built on demand when this package's tests
/// run alone.
pub fn bin(name: &str) -> PathBuf {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_oathkey-desktop"));
    let path = ours.with_file_name(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", name, "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// A daemon in its own temporary directory; restartable on the same socket and state.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: TempDir,
    pub socket: PathBuf,
    args: Vec<String>,
}

impl Daemon {
    /// `oathkeyd --user --no-hid --emulate 1` plus `args`, ready to answer, with this
    /// process's user as an admin.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("s.sock");
        let mut d = Self {
            child: None,
            dir,
            socket,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn();
        d
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("oathkeyd.log")
    }

    /// The daemon's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log");
        // The temporary directory is ours: its owner is our uid.
        let uid =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(self.dir.path()).expect("stat"));
        let child = Command::new(bin("oathkeyd"))
            .args(["--user", "--no-hid", "--emulate", "1", "--dbus", "off"])
            .args(["--log-level", "debug", "--admin-user", &uid.to_string()])
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("oathkeyd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut c) = Client::connect(&self.socket)
                && c.call::<_, KeyList>(method::KEYS_LIST, Value::Null)
                    .is_ok_and(|l| !l.keys.is_empty())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("oathkeyd did not come up:\n{}", self.log());
    }

    /// Kills it (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same socket and state.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("client connects")
    }

    /// The id of the (only) key.
    pub fn key_id(&self) -> String {
        let list: KeyList = self
            .client()
            .call(method::KEYS_LIST, Value::Null)
            .expect("keys.list");
        list.keys.first().expect("a key").id.clone()
    }

    /// Creates a token with the known [`SEED`]; with `touch`, presses the virtual key's
    /// button until the daemon has written and verified it (for daemons started with
    /// `--emulate-touch button`).
    pub fn create_token(&self, account: &str, serial: &str, touch: bool) -> CreatedToken {
        self.create_token_with_seed(account, serial, SEED, touch)
    }

    /// [`Daemon::create_token`] with another seed (Base32).
    pub fn create_token_with_seed(
        &self,
        account: &str,
        serial: &str,
        seed: &str,
        touch: bool,
    ) -> CreatedToken {
        let params = CreateTokenParams {
            account: account.into(),
            serial: Some(serial.into()),
            secret: Some(SecretText::new(seed.into())),
            digits: 6,
            period: 30,
            touch,
            ..CreateTokenParams::default()
        };
        let done = Arc::new(AtomicBool::new(false));
        let presser = touch.then(|| {
            let (socket, done) = (self.socket.clone(), done.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).expect("connects");
                while !done.load(Ordering::Relaxed) {
                    let _: Result<bool, _> = c.call(method::VIRTUAL_PRESS, Value::Null);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        });
        let created = self.client().call(method::TOKENS_CREATE, params);
        done.store(true, Ordering::Relaxed);
        if let Some(p) = presser {
            p.join().expect("presser");
        }
        created.unwrap_or_else(|e| panic!("tokens.create: {e}\n{}", self.log()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The unix time now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

/// An independent TOTP computation (totp-rs, with its own Base32 decoding), SHA-1, 6 digits,
/// 30 s.
pub fn totp(secret_b32: &str, t: u64) -> String {
    totp_with(secret_b32, t, totp_rs::Algorithm::SHA1, 6, 30)
}

/// [`totp`] with another hash, number of digits and period.
pub fn totp_with(
    secret_b32: &str,
    t: u64,
    algorithm: totp_rs::Algorithm,
    digits: u8,
    period: u64,
) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32");
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret)
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// The app under test, and every text it put on the clipboard (egui's output is per frame,
/// and one click or key press can take several frames).
pub struct TestApp {
    /// The app.
    pub app: DesktopApp,
    /// Texts copied, oldest first.
    pub copied: Vec<String>,
}

/// A harness over the app under test.
pub type H = Harness<'static, TestApp>;

/// The app, connected to the daemon at `socket`, in a harness with no display.
pub fn app(socket: &Path, clock: Clock) -> H {
    let state = AppState::new(socket.to_owned(), clock);
    let backend = Backend::start(socket.to_owned(), Arc::new(|| {})).expect("threads");
    harness(DesktopApp::new(state, Some(backend)))
}

/// A harness around an app (with or without a backend).
pub fn harness(app: DesktopApp) -> H {
    Harness::builder()
        .with_size([640.0, 1100.0])
        .build_ui_state(
            |ui, t: &mut TestApp| {
                t.app.frame(ui);
                let copied: Vec<String> = ui.ctx().output(|o| {
                    o.commands
                        .iter()
                        .filter_map(|c| match c {
                            eframe::egui::OutputCommand::CopyText(t) => Some(t.clone()),
                            _ => None,
                        })
                        .collect()
                });
                t.copied.extend(copied);
            },
            TestApp {
                app,
                copied: Vec::new(),
            },
        )
}

/// Steps the harness until `cond` holds, at most `timeout`.
#[track_caller]
pub fn wait_for(h: &mut H, what: &str, timeout: Duration, mut cond: impl FnMut(&H) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        h.step();
        if cond(h) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\nconnection: {:?}\nkeys: {:#?}\nmessages: {:#?}\nadmin: {:#?}",
                h.state().app.state.connection,
                h.state().app.state.keys,
                h.state().app.state.messages,
                h.state().app.state.admin,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The accessible name of the code label for `account`, if shown:
/// `code 123456 for alice@contoso.com, 12 seconds left`.
pub fn code_label(h: &H, account: &str) -> Option<String> {
    let suffix = format!(" for {account}");
    h.query_all_by(move |n| {
        n.label()
            .is_some_and(|l| l.starts_with("code ") && l.contains(&suffix))
    })
    .next()
    .and_then(|n| n.accesskit_node().label())
}

/// The code in a code label.
pub fn code_of(label: &str) -> String {
    label
        .strip_prefix("code ")
        .and_then(|r| r.split_whitespace().next())
        .expect("a code label")
        .to_owned()
}

/// The seconds left in a code label.
pub fn seconds_of(label: &str) -> Option<u64> {
    let (_, rest) = label.rsplit_once(", ")?;
    rest.strip_suffix(" seconds left")?.parse().ok()
}

/// Whether a node with exactly this label (or visible text) is shown.
pub fn shows(h: &H, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

/// Whether a node whose label (or visible text) contains `part` is shown.
pub fn shows_part(h: &H, part: &str) -> bool {
    h.query_all_by_label_contains(part).next().is_some()
}

/// The text last put on the clipboard, if any.
pub fn copied(h: &H) -> Option<String> {
    h.state().copied.last().cloned()
}

/// The accessible name of the widget with the keyboard focus, if one has it.
pub fn focused(h: &H) -> Option<String> {
    h.query_by(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().label())
}

/// Presses a key (with modifiers) as the keyboard would, lets egui act on it, and returns the
/// name of the widget that has the focus after it. Shift+Tab takes effect a frame later than
/// Tab in egui, so every press gets two frames.
pub fn press(h: &mut H, modifiers: Modifiers, key: Key) -> Option<String> {
    if modifiers.any() {
        h.key_press_modifiers(modifiers, key);
    } else {
        h.key_press(key);
    }
    h.step();
    h.step();
    focused(h)
}

/// Tab (Shift+Tab with `back`) until the focus is on a widget whose name satisfies `want`;
/// returns the names passed on the way, the last one included. Fails after `limit` presses.
#[track_caller]
pub fn tab_to(h: &mut H, back: bool, limit: usize, want: impl Fn(&str) -> bool) -> Vec<String> {
    let modifiers = if back {
        Modifiers::SHIFT
    } else {
        Modifiers::NONE
    };
    let mut seen = Vec::new();
    for _ in 0..limit {
        let name = press(h, modifiers, Key::Tab).unwrap_or_default();
        seen.push(name.clone());
        if want(&name) {
            return seen;
        }
    }
    panic!("Tab did not reach the widget; it went through {seen:?}");
}
