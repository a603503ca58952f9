//! Test harness: a real `oathkeyd` on a private socket with a virtual key (the testkit's
//! daemon), the app in an egui_kittest harness (no display), and the reference TOTP.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eframe::egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use oathkey_desktop::{AppState, Backend, Clock, DesktopApp};
use oathkey_protocol::SecretText;
use oathkey_protocol::client::Client;
use oathkey_protocol::types::{CreateTokenParams, CreatedToken, method};
pub use oathkey_testkit::{Daemon, reference_totp_b32, unix_now};
use serde_json::Value;

/// A known seed (RFC 6238's SHA-1 test key).
pub const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// `oathkeyd --user --no-hid --emulate 1 --dbus off` plus `args`, ready once it lists its
/// key, with this process's user as an admin.
pub fn start_daemon(args: &[&str]) -> Daemon {
    Daemon::builder()
        .args(["--emulate", "1", "--dbus", "off"])
        .admin_self()
        .ready_when_it_lists_a_key()
        .args(args)
        .start()
}

/// Tokens made through the daemon with known seeds.
pub trait Tokens {
    /// Creates a token with the known [`SEED`]; with `touch`, presses the virtual key's
    /// button until the daemon has written and verified it (for daemons started with
    /// `--emulate-touch button`).
    fn create_token(&self, account: &str, serial: &str, touch: bool) -> CreatedToken;

    /// [`Tokens::create_token`] with another seed (Base32).
    fn create_token_with_seed(
        &self,
        account: &str,
        serial: &str,
        seed: &str,
        touch: bool,
    ) -> CreatedToken;
}

impl Tokens for Daemon {
    fn create_token(&self, account: &str, serial: &str, touch: bool) -> CreatedToken {
        self.create_token_with_seed(account, serial, SEED, touch)
    }

    fn create_token_with_seed(
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
        created.unwrap_or_else(|e| panic!("tokens.create: {e}\n{}", self.log_text()))
    }
}

/// The reference code (totp-rs, with its own Base32 decoding) of a SHA-1, 6-digit, 30 s
/// token.
pub fn totp(secret_b32: &str, t: u64) -> String {
    reference_totp_b32("sha1", 6, 30, secret_b32, t)
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
