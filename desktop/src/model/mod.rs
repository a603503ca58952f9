//! The app's state as plain data, changed only by [`AppState::apply`] (what the daemon said),
//! [`AppState::act`] (what the user did) and [`AppState::tick`] (time passing). Requests for
//! the daemon collect in an outbox ([`AppState::take_commands`]); nothing here does I/O, so
//! every rule is a unit test away.
//!
//! - [`messages`]: [`Update`] (from the backend), [`Command`] (to it), [`Action`] (the user's).
//! - [`tokens`]: keys, tokens and codes, and how a code's time runs out.
//! - [`admin`]: the admin form and the requests it turns into.
//! - [`clipboard`]: the copied code's timer.
//! - `actions`: what each [`Action`] does.

mod actions;
pub mod admin;
pub mod clipboard;
pub mod messages;
pub mod tokens;

use std::path::PathBuf;

use eframe::egui::ThemePreference;
use oathkey_protocol::types::{Code, Event, KeyList, OtpKind, Role, Settings, UnavailableKey};
use zeroize::Zeroizing;

pub use admin::{AdminForm, ConfigPart, ExportRequest, ExportScope, Status};
pub use clipboard::ClipboardTimer;
pub use messages::{Action, Command, CreatedSummary, ExportSummary, Purpose, Update};
pub use tokens::{CodeState, KeyState, ShownCode, TokenRef, TokenState, TouchPrompt};

use crate::clock::Clock;
use crate::error::DaemonError;

/// How the app stands with the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Trying for the first time.
    Connecting,
    /// Connected; `hello` answered.
    Connected,
    /// Cannot reach it; retrying every second.
    Unreachable(DaemonError),
}

/// The two views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Every token's code.
    Codes,
    /// The admin tool's form (admins only).
    Admin,
}

/// Display settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prefs {
    /// Zoom factor (1.0, 1.5, 2.0...); egui's Ctrl +/- changes it too.
    pub zoom: f32,
    /// Light, dark, or as the system says.
    pub theme: ThemePreference,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            theme: ThemePreference::System,
        }
    }
}

/// How much a message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something happened.
    Info,
    /// Something failed.
    Error,
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Info or error.
    pub level: Level,
    /// What to tell.
    pub text: String,
    /// When (unix seconds), to let it fade.
    pub at: f64,
}

/// Seconds a status-bar message stays.
pub const MESSAGE_SECS: f64 = 15.0;

#[derive(Debug, Default)]
struct RefreshState {
    /// A refresh is running (one at a time).
    in_flight: bool,
    /// A refresh is wanted: `Some(true)` with the key list.
    wanted: Option<bool>,
    /// The second of the last refresh asked for by a period's end (at most one a second).
    last_rollover: Option<u64>,
    /// When to try again after a refresh failed.
    retry_at: Option<u64>,
}

/// Seconds before a failed refresh is tried again.
pub const REFRESH_RETRY_SECS: u64 = 2;

/// Everything the window shows.
#[derive(Debug)]
pub struct AppState {
    /// The daemon's socket (shown when it cannot be reached).
    pub socket: PathBuf,
    /// The time codes are shown for.
    pub clock: Clock,
    /// Connected or not.
    pub connection: Connection,
    /// Our role, from `hello`.
    pub role: Option<Role>,
    /// The daemon's version, from `hello`.
    pub daemon_version: Option<String>,
    /// The keys, in the daemon's order.
    pub keys: Vec<KeyState>,
    /// Devices the daemon found but cannot use.
    pub unavailable: Vec<UnavailableKey>,
    /// The copied code's timer.
    pub clipboard: Option<ClipboardTimer>,
    /// Status-bar messages, oldest first.
    pub messages: Vec<Message>,
    /// The admin form.
    pub admin: AdminForm,
    /// The view shown.
    pub tab: Tab,
    /// The token Ctrl+C copies.
    pub selected: Option<TokenRef>,
    /// Zoom and theme.
    pub prefs: Prefs,
    outbox: Vec<Command>,
    refresh: RefreshState,
}

impl AppState {
    /// The state before the first connection.
    pub fn new(socket: PathBuf, clock: Clock) -> Self {
        Self {
            socket,
            clock,
            connection: Connection::Connecting,
            role: None,
            daemon_version: None,
            keys: Vec::new(),
            unavailable: Vec::new(),
            clipboard: None,
            messages: Vec::new(),
            admin: AdminForm::new(),
            tab: Tab::Codes,
            selected: None,
            prefs: Prefs::default(),
            outbox: Vec::new(),
            refresh: RefreshState::default(),
        }
    }

    /// Whether the daemon said we are an admin (the admin view is shown only then).
    pub fn is_admin(&self) -> bool {
        self.connection == Connection::Connected && self.role == Some(Role::Admin)
    }

    /// The requests collected since the last call.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.outbox)
    }

    /// A key by id.
    pub fn key(&self, id: &str) -> Option<&KeyState> {
        self.keys.iter().find(|k| k.info.id == id)
    }

    fn key_mut(&mut self, id: &str) -> Option<&mut KeyState> {
        self.keys.iter_mut().find(|k| k.info.id == id)
    }

    /// A token by reference.
    pub fn token(&self, t: &TokenRef) -> Option<&TokenState> {
        self.key(&t.key)?
            .tokens
            .iter()
            .find(|x| x.info.name == t.name)
    }

    fn token_mut(&mut self, t: &TokenRef) -> Option<&mut TokenState> {
        self.key_mut(&t.key)?.token_mut(&t.name)
    }

    /// The key the admin form works on: the chosen one while it is present, else the first.
    pub fn admin_key(&self) -> Option<&KeyState> {
        self.admin
            .key
            .as_deref()
            .and_then(|id| self.key(id))
            .or_else(|| self.keys.first())
    }

    /// Adds a status-bar message.
    pub fn message(&mut self, level: Level, text: impl Into<String>) {
        self.messages.push(Message {
            level,
            text: text.into(),
            at: self.clock.now(),
        });
        // A status bar, not a log.
        if self.messages.len() > 20 {
            self.messages.remove(0);
        }
    }

    /// Messages young enough to show, newest first.
    pub fn recent_messages(&self) -> impl Iterator<Item = &Message> {
        let now = self.clock.now();
        self.messages
            .iter()
            .rev()
            .filter(move |m| now - m.at < MESSAGE_SECS)
    }

    fn want_refresh(&mut self, keys: bool) {
        self.refresh.wanted = Some(self.refresh.wanted.unwrap_or(false) || keys);
        self.flush_refresh();
    }

    fn flush_refresh(&mut self) {
        if self.connection != Connection::Connected || self.refresh.in_flight {
            return;
        }
        if let Some(keys) = self.refresh.wanted.take() {
            self.refresh.in_flight = true;
            self.outbox.push(Command::Refresh {
                keys,
                at: self.clock.at_param(),
            });
        }
    }

    /// Takes what the backend reports.
    pub fn apply(&mut self, update: Update) {
        let now = self.clock.now_secs();
        match update {
            Update::Connected { hello } => {
                self.connection = Connection::Connected;
                self.role = Some(hello.role);
                self.daemon_version = Some(hello.daemon);
                if hello.role != Role::Admin && self.tab == Tab::Admin {
                    self.tab = Tab::Codes;
                }
                self.refresh = RefreshState::default();
                self.want_refresh(true);
            }
            Update::Disconnected { error } => {
                if self.connection == Connection::Connected {
                    // The view says why and what to do; the status bar keeps when.
                    self.message(Level::Error, "Lost the connection to oathkeyd.");
                }
                self.connection = Connection::Unreachable(error);
                self.role = None;
                self.keys.clear();
                self.unavailable.clear();
                self.refresh = RefreshState::default();
                for status in [
                    &mut self.admin.mode_status,
                    &mut self.admin.key_press_status,
                    &mut self.admin.save_status,
                    &mut self.admin.export.status,
                ] {
                    if status.is_busy() {
                        *status = Status::Idle;
                    }
                }
            }
            Update::EventsConnected => self.want_refresh(true),
            Update::Keys(list) => self.set_keys(list),
            Update::Settings { key, settings } => {
                if let Some(k) = self.key_mut(&key) {
                    k.settings = Some(settings);
                }
            }
            Update::Codes(entries) => {
                self.refresh.in_flight = false;
                for key in &mut self.keys {
                    let id = key.info.id.clone();
                    key.merge_entries(entries.iter().filter(|e| e.token.key == id), now);
                }
                self.flush_refresh();
            }
            Update::RefreshFailed { error } => {
                self.refresh.in_flight = false;
                if !error.is_unreachable() {
                    self.message(Level::Error, format!("Could not read the codes: {error}"));
                    self.refresh.retry_at = Some(now + REFRESH_RETRY_SECS);
                }
                self.flush_refresh();
            }
            Update::Code {
                token,
                purpose,
                result,
            } => self.code_arrived(&token, purpose, result),
            Update::ConfigApplied { key, part, result } => self.config_applied(&key, part, result),
            Update::TokenCreated(result) => match result {
                Ok(created) => {
                    self.admin.saved(&created.serial);
                    self.admin.save_status = Status::Done(format!(
                        "Saved token {} for {} on key {}.",
                        created.serial, created.account, created.key
                    ));
                    self.want_refresh(false);
                }
                Err(e) => self.admin.save_status = Status::Failed(e),
            },
            Update::Exported(result) => {
                self.admin.export.status = match result {
                    Ok(s) if s.count == 0 => {
                        Status::Done("No seeds match; nothing written.".into())
                    }
                    Ok(s) => Status::Done(format!(
                        "Wrote {} seed(s) to {} ({}).",
                        s.count,
                        s.path.display(),
                        s.format
                    )),
                    Err(e) => Status::Failed(e),
                }
            }
            Update::Event(event) => self.event(event),
        }
    }

    fn set_keys(&mut self, list: KeyList) {
        let mut old = std::mem::take(&mut self.keys);
        for info in list.keys {
            let key = match old.iter().position(|k| k.info.id == info.id) {
                Some(i) => {
                    let mut k = old.swap_remove(i);
                    k.info = info;
                    k
                }
                None => KeyState::new(info),
            };
            self.keys.push(key);
        }
        self.unavailable = list.unavailable;
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::KeyAdded { key } => {
                if self.key(&key.id).is_none() {
                    self.message(
                        Level::Info,
                        format!("Key {} ({}) was plugged in.", key.id, key.model),
                    );
                    self.keys.push(KeyState::new(key));
                }
                self.want_refresh(true);
            }
            Event::KeyRemoved { key } => {
                if self.key(&key).is_some() {
                    self.message(Level::Info, format!("Key {key} was removed."));
                }
                self.keys.retain(|k| k.info.id != key);
                if self.selected.as_ref().is_some_and(|s| s.key == key) {
                    self.selected = None;
                }
            }
            Event::TouchNeeded {
                key,
                operation,
                token,
            } => {
                if let Some(k) = self.key_mut(&key) {
                    k.touch = Some(TouchPrompt { operation, token });
                }
            }
            Event::TouchDone { key } => {
                if let Some(k) = self.key_mut(&key) {
                    k.touch = None;
                }
            }
            Event::TokensChanged { .. } => self.want_refresh(false),
            Event::ConfigChanged { key, settings } => {
                if let Some(k) = self.key_mut(&key) {
                    k.settings = Some(settings);
                }
            }
            Event::ClaimChanged { key, claimed } => {
                if let Some(k) = self.key_mut(&key) {
                    k.info.claimed = claimed;
                }
            }
            Event::LockChanged { key, locked } => {
                if let Some(k) = self.key_mut(&key) {
                    k.info.locked = locked;
                }
                // Unlocked: its tokens can be listed now.
                self.want_refresh(true);
            }
            Event::BusyChanged { key, busy } => {
                let released = busy.is_none();
                if let Some(k) = self.key_mut(&key) {
                    k.info.busy = busy;
                }
                // Released: its codes can be read again.
                if released {
                    self.want_refresh(true);
                }
            }
            Event::EventsLost { .. } => self.want_refresh(true),
        }
    }

    fn code_arrived(&mut self, t: &TokenRef, purpose: Purpose, result: Result<Code, DaemonError>) {
        let account = self.token(t).map(|x| x.info.account.clone());
        let Some(token) = self.token_mut(t) else {
            return;
        };
        match (purpose, result) {
            (Purpose::Next, Ok(code)) => {
                let shown = ShownCode::from_code(&code);
                let follows =
                    matches!(&token.code, CodeState::Shown(c) if c.valid_until == shown.valid_from);
                if follows {
                    token.next = Some(shown);
                }
            }
            // A missing next code is not worth a message: the current one is still right, and
            // the refresh at the period's end reads the new one anyway.
            (Purpose::Next, Err(_)) => {}
            (Purpose::OnDemand, Ok(code)) => {
                token.code = CodeState::Shown(ShownCode::from_code(&code))
            }
            (Purpose::OnDemand, Err(e)) => {
                token.code = CodeState::Failed(e.clone());
                let who = account.unwrap_or_default();
                self.message(Level::Error, format!("No code for {who}: {e}"));
            }
        }
    }

    fn config_applied(
        &mut self,
        key: &str,
        part: ConfigPart,
        result: Result<Settings, DaemonError>,
    ) {
        let status = match result {
            Ok(settings) => {
                if let Some(k) = self.key_mut(key) {
                    k.settings = Some(settings);
                }
                match part {
                    ConfigPart::Mode => {
                        self.admin.keyboard = None;
                        self.admin.u2f = None;
                    }
                    ConfigPart::KeyPress => self.admin.key_press = None,
                }
                Status::Done("Applied.".into())
            }
            Err(e) => Status::Failed(e),
        };
        match part {
            ConfigPart::Mode => self.admin.mode_status = status,
            ConfigPart::KeyPress => self.admin.key_press_status = status,
        }
    }

    /// Lets time pass: rolls codes over at their period's end (showing the next code at once
    /// if it was fetched, and reading all codes again), asks for the next code in a period's
    /// last seconds, and puts on-demand codes that ran out back to "Get code".
    pub fn tick(&mut self) {
        let now = self.clock.now_secs();
        let connected = self.connection == Connection::Connected;
        let mut rollover = false;
        let mut asks = Vec::new();
        for token in self.keys.iter_mut().flat_map(|k| k.tokens.iter_mut()) {
            if let CodeState::Shown(c) = &token.code
                && !c.is_valid_at(now)
            {
                if token.on_demand {
                    token.code = token.idle_state();
                    token.next = None;
                } else {
                    if let Some(next) = token.next.take()
                        && next.is_valid_at(now)
                        && next.valid_from.is_none_or(|f| f <= now)
                    {
                        token.code = CodeState::Shown(next);
                    }
                    rollover = true;
                }
            }
            if let CodeState::Shown(c) = &token.code
                && connected
                && !token.on_demand
                && token.info.kind == OtpKind::Totp
                && token.next.is_none()
                && c.ending_soon(now)
                && token.next_asked_for != c.valid_until
            {
                token.next_asked_for = c.valid_until;
                asks.push(Command::GetCode {
                    token: token.token_ref(),
                    at: c.valid_until,
                    purpose: Purpose::Next,
                });
            }
        }
        self.outbox.extend(asks);
        if self.refresh.retry_at.is_some_and(|t| now >= t) {
            self.refresh.retry_at = None;
            self.want_refresh(true);
        }
        if rollover && self.refresh.last_rollover != Some(now) {
            self.refresh.last_rollover = Some(now);
            self.want_refresh(false);
        }
        self.flush_refresh();
    }

    /// Copies a token's current code: starts the clipboard timer and returns the text.
    pub fn copy(&mut self, t: &TokenRef) -> Option<Zeroizing<String>> {
        let now = self.clock.now();
        let code = self.token(t)?.current(self.clock.now_secs())?.code.clone();
        self.clipboard = Some(ClipboardTimer::start(t.clone(), &code, now));
        self.selected = Some(t.clone());
        Some(Zeroizing::new(code))
    }

    /// The token Ctrl+C copies: the selected one, else the first with a code.
    pub fn copy_target(&self) -> Option<TokenRef> {
        let now = self.clock.now_secs();
        if let Some(t) = &self.selected
            && self.token(t).and_then(|x| x.current(now)).is_some()
        {
            return Some(t.clone());
        }
        self.keys
            .iter()
            .flat_map(|k| k.tokens.iter())
            .find(|t| t.current(now).is_some())
            .map(TokenState::token_ref)
    }

    /// Seconds until the clipboard is cleared, if it holds this token's code.
    pub fn clipboard_left(&self, t: &TokenRef) -> Option<u64> {
        self.clipboard
            .as_ref()
            .filter(|c| c.token == *t)
            .map(|c| c.seconds_left(self.clock.now()))
    }

    /// The copied text, once its time is up (the caller clears the clipboard if it still
    /// holds it).
    pub fn take_expired_clipboard(&mut self) -> Option<Zeroizing<String>> {
        let now = self.clock.now();
        if self.clipboard.as_ref().is_some_and(|c| c.expired(now)) {
            return self.clipboard.take().map(|c| c.text);
        }
        None
    }

    /// Something else was copied: the clipboard is no longer ours to clear.
    pub fn clipboard_replaced(&mut self) {
        self.clipboard = None;
    }

    /// Touch prompts of every key, for the banner.
    pub fn touch_prompts(&self) -> impl Iterator<Item = (&KeyState, &TouchPrompt)> {
        self.keys
            .iter()
            .filter_map(|k| k.touch.as_ref().map(|t| (k, t)))
    }
}

#[cfg(test)]
mod tests;
