//! The glue: one frame = take the backend's updates, let time pass, draw, act on what the
//! user did, hand the resulting requests to the backend, and ask to be drawn again in time
//! for the next second of the countdown.

use std::path::PathBuf;
use std::time::Duration;

use eframe::egui::{self, OutputCommand, Ui};
use oathkey_protocol::paths::client_socket;

use crate::backend::Backend;
use crate::model::{AppState, Level};
use crate::view;

/// Tells whether the clipboard still holds a text: `Some(true)` yes, `Some(false)` something
/// else was copied since, `None` cannot tell.
pub type ClipboardCheck = Box<dyn FnMut(&str) -> Option<bool>>;

/// The socket to use: `--socket`, else `$OATHKEY_SOCKET`, else the default places (the
/// same order as the CLI).
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(client_socket)
}

/// The running app: its state and its backend.
pub struct DesktopApp {
    /// Everything shown.
    pub state: AppState,
    backend: Option<Backend>,
    clipboard_check: ClipboardCheck,
    applied_zoom: f32,
}

impl std::fmt::Debug for DesktopApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DesktopApp {
    /// An app over `state`, talking to the daemon through `backend` (none: the state alone,
    /// for tests of the view).
    pub fn new(state: AppState, backend: Option<Backend>) -> Self {
        Self {
            state,
            backend,
            clipboard_check: Box::new(|_| None),
            applied_zoom: 1.0,
        }
    }

    /// Sets how the clipboard is read back before it is cleared.
    pub fn with_clipboard_check(mut self, check: ClipboardCheck) -> Self {
        self.clipboard_check = check;
        self
    }

    /// One frame.
    pub fn frame(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        if let Some(backend) = &self.backend {
            for update in backend.updates() {
                self.state.apply(update);
            }
        }
        self.state.tick();
        self.clear_clipboard_when_due(&ctx);
        view::sync_prefs(&ctx, &mut self.state, &mut self.applied_zoom);

        let actions = view::show(ui, &mut self.state);
        let mut ours = None;
        for action in actions {
            if let Some(text) = self.state.act(action) {
                ctx.copy_text(text.to_string());
                ours = Some(text);
            }
        }
        // Text copied by anything else in this window (a selected label) is not ours to clear.
        let foreign = ctx.output(|o| {
            o.commands.iter().any(|c| match c {
                OutputCommand::CopyText(t) => ours.as_ref().is_none_or(|o| o.as_str() != t),
                _ => false,
            })
        });
        if foreign {
            self.state.clipboard_replaced();
        }
        view::sync_prefs(&ctx, &mut self.state, &mut self.applied_zoom);

        if let Some(backend) = &self.backend {
            for command in self.state.take_commands() {
                backend.send(command);
            }
        }
        // Once a second for the countdown: at the next whole second, so it never lags.
        let now = self.state.clock.now();
        let to_next_second = 1.0 - now.fract() + 0.01;
        ctx.request_repaint_after(Duration::from_secs_f64(to_next_second));
    }

    fn clear_clipboard_when_due(&mut self, ctx: &egui::Context) {
        let Some(text) = self.state.take_expired_clipboard() else {
            return;
        };
        match (self.clipboard_check)(&text) {
            // Something else was copied since: leave it.
            Some(false) => {}
            // Ours, or we cannot tell: a stale code is worth less than the risk of leaving it.
            Some(true) | None => {
                ctx.copy_text(String::new());
                self.state
                    .message(Level::Info, "Cleared the copied code from the clipboard.");
            }
        }
    }
}

impl eframe::App for DesktopApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }
}

/// Reads the system clipboard through arboard (X11, and Wayland compositors with the
/// data-control protocol).
pub fn system_clipboard_check() -> ClipboardCheck {
    let mut clipboard = arboard::Clipboard::new().ok();
    Box::new(move |expected| {
        let text = clipboard.as_mut()?.get_text().ok()?;
        Some(text == expected)
    })
}
