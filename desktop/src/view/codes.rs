//! The main view: every key, every token on it, its code and how long it stays valid.

use eframe::egui::{
    self, Align, Color32, CornerRadius, Layout, Rect, RichText, Sense, Ui, WidgetInfo,
};
use oathkey_protocol::types::{KeyFamily, Operation, OtpKind};

use super::style;
use crate::model::{
    Action, AppState, CodeState, Connection, KeyState, ShownCode, TokenState, TouchPrompt,
};

/// Draws the codes view.
pub fn show(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    match &state.connection {
        Connection::Connecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "Connecting to oathkeyd at {}…",
                    state.socket.display()
                ));
            });
            return;
        }
        Connection::Unreachable(error) => {
            unreachable(ui, &error.message);
            return;
        }
        Connection::Connected => {}
    }
    touch_banners(ui, state);
    if state.keys.is_empty() {
        ui.add_space(12.0);
        ui.label(RichText::new("No key is plugged in.").size(18.0));
        ui.label("Insert a key: it appears here by itself.");
    }
    for u in &state.unavailable {
        ui.colored_label(
            style::warn(ui),
            format!("A key at {} cannot be used: {}", u.path, u.reason),
        );
    }
    for key in &state.keys {
        key_section(ui, state, key, actions);
    }
}

/// The daemon cannot be reached: what to do about it.
pub fn unreachable(ui: &mut Ui, message: &str) {
    ui.add_space(12.0);
    style::banner(style::warn(ui)).show(ui, |ui| {
        ui.label(RichText::new("oathkeyd is not running").strong().size(18.0));
        ui.add(egui::Label::new(message).wrap());
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Trying again every second…");
        });
    });
}

fn touch_text(key: &KeyState, prompt: &TouchPrompt) -> String {
    let account = |name: &Option<String>| {
        name.as_deref()
            .map(|n| n.rsplit_once(':').map_or(n, |(_, a)| a).to_owned())
    };
    let what = match (prompt.operation, account(&prompt.token)) {
        (Operation::Code, Some(a)) => format!("to read the code for {a}"),
        (Operation::Code, None) => "to read a code".into(),
        (Operation::Create, _) => "to save the new token".into(),
        (Operation::Verify, _) => "to check the new token".into(),
        (Operation::Delete, _) => "to delete a token".into(),
        (Operation::Config, _) => "to change its settings".into(),
        (Operation::List, _) => "to list its tokens".into(),
        (Operation::Wink, _) => "(it blinks to show which key it is)".into(),
        (Operation::Rename, _) => "to rename a token".into(),
        (Operation::AccessCode, _) => "to change its access code".into(),
    };
    format!("Touch your key {} {what}", key.info.id)
}

/// One banner per key that waits for a touch (shown in both views).
pub fn touch_banners(ui: &mut Ui, state: &AppState) {
    for (key, prompt) in state.touch_prompts() {
        style::banner(style::warn(ui)).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(
                RichText::new(touch_text(key, prompt))
                    .strong()
                    .color(style::warn(ui)),
            );
        });
        ui.add_space(6.0);
    }
}

/// The family as people call it.
pub fn family_name(f: KeyFamily) -> &'static str {
    match f {
        KeyFamily::Nk3Hid => "Nitrokey 3 secrets app over USB HID",
        KeyFamily::YkoathPcsc => "YKOATH smart card (PC/SC)",
    }
}

fn key_section(ui: &mut Ui, state: &AppState, key: &KeyState, actions: &mut Vec<Action>) {
    ui.add_space(8.0);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&key.info.model).heading());
        ui.label(
            RichText::new(format!(
                "key {} · firmware {} · {} · {}",
                key.info.id,
                key.info.firmware,
                format!("{:?}", key.info.source).to_lowercase(),
                family_name(key.info.family)
            ))
            .color(style::weak(ui)),
        );
    });
    ui.add_space(4.0);
    if let Some(why) = &key.info.busy {
        // Another application holds the smart card; codes come back when it lets go.
        ui.label(RichText::new(why).color(style::weak(ui)));
    }
    if key.info.locked {
        ui.label("Its tokens are locked with an access code.");
        ui.label(
            RichText::new(format!(
                "An administrator unlocks it for oathkeyd with `oathkey --key {} unlock`; it stays unlocked until the key is unplugged.",
                key.info.id
            ))
            .color(style::weak(ui)),
        );
        return;
    }
    if !key.tokens_loaded {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading the tokens…");
        });
        return;
    }
    if key.tokens.is_empty() {
        ui.label("No tokens on this key yet.");
        ui.label(
            RichText::new("Admins add them in the Admin view, or with `oathkey token new`.")
                .color(style::weak(ui)),
        );
    }
    for token in &key.tokens {
        token_card(ui, state, key, token, actions);
        ui.add_space(8.0);
    }
}

fn details(token: &TokenState) -> String {
    let info = &token.info;
    let mut parts = vec![format!(
        "serial {}",
        info.serial.as_deref().unwrap_or("none")
    )];
    parts.push(
        match info.kind {
            OtpKind::Totp => "TOTP",
            OtpKind::Hotp => "HOTP",
            OtpKind::Other => "other",
        }
        .into(),
    );
    if let Some(a) = info.algorithm {
        // The standard names: `SHA-1`, `SHA-256`, `SHA-512`.
        parts.push(a.to_string());
    }
    if info.kind == OtpKind::Totp {
        parts.push(format!("{} s", info.period));
    }
    if token.on_demand && info.kind == OtpKind::Totp {
        parts.push("touch".into());
    }
    parts.join(" · ")
}

fn token_card(
    ui: &mut Ui,
    state: &AppState,
    key: &KeyState,
    token: &TokenState,
    actions: &mut Vec<Action>,
) {
    let now = state.clock.now();
    let now_secs = state.clock.now_secs();
    let t = token.token_ref();
    let account = token.info.account.as_str();
    let selected = state.selected.as_ref() == Some(&t);
    let current = token.current(now_secs);
    style::card(ui, selected).show(ui, |ui| {
        ui.set_width(ui.available_width());
        let mut focused = false;
        ui.horizontal(|ui| {
            ui.label(RichText::new(account).strong().size(style::ACCOUNT_SIZE));
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                if current.is_some() {
                    let copy = ui
                        .button("Copy")
                        .accessible_name(format!("Copy code for {account}"))
                        .on_hover_text("Copy the code; the clipboard is cleared after 30 s");
                    focused |= copy.has_focus();
                    if copy.clicked() {
                        actions.push(Action::Copy(t.clone()));
                    }
                }
                // Shown even between two codes: the clipboard's timer does not depend on them.
                if let Some(left) = state.clipboard_left(&t) {
                    ui.label(
                        RichText::new(format!("copied, clears in {left} s")).color(style::ok(ui)),
                    );
                }
                let wants_button = token.on_demand
                    && !matches!(token.code, CodeState::Requested)
                    && (current.is_none() || token.info.kind == OtpKind::Hotp);
                if wants_button {
                    let get = ui
                        .button("Get code")
                        .accessible_name(format!("Get code for {account}"));
                    focused |= get.has_focus();
                    if get.clicked() {
                        actions.push(Action::GetCode(t.clone()));
                    }
                }
            });
        });
        ui.label(RichText::new(details(token)).color(style::weak(ui)));
        ui.add_space(2.0);
        match &token.code {
            CodeState::Shown(c) => focused |= code_block(ui, token, c, now, actions),
            CodeState::Loading => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Reading…");
                });
            }
            CodeState::NeedsTouch => {
                ui.label("Each code needs a touch of the key: press Get code, then touch it.");
            }
            CodeState::Hotp => {
                ui.label("HOTP: each code is used up once read. Press Get code for the next one.");
            }
            CodeState::Requested if key.touch_is_for(token) => {
                ui.label(
                    RichText::new("Touch your key")
                        .size(24.0)
                        .strong()
                        .color(style::warn(ui)),
                );
                ui.label(format!("Key {} is waiting (about 15 s).", key.info.id));
            }
            CodeState::Requested => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Waiting for the key…");
                });
            }
            CodeState::Unsupported => {
                ui.label("Not an OTP token this app can read.");
            }
            CodeState::Failed(e) => {
                ui.colored_label(style::error(ui), e.to_string());
            }
        }
        if focused && !selected {
            actions.push(Action::Select(t.clone()));
        }
    });
}

/// The code, its countdown and (in the last seconds) the next code. Returns whether the code
/// has keyboard focus.
fn code_block(
    ui: &mut Ui,
    token: &TokenState,
    c: &ShownCode,
    now: f64,
    actions: &mut Vec<Action>,
) -> bool {
    let now_secs = now.max(0.0) as u64;
    let valid = c.is_valid_at(now_secs);
    let account = &token.info.account;
    let left = c.seconds_left(now);
    let ending = c.ending_soon(now_secs);
    let color = if !valid {
        style::weak(ui)
    } else if ending {
        style::warn(ui)
    } else {
        ui.visuals().strong_text_color()
    };
    let spoken = match left {
        Some(s) if valid => format!("code {} for {account}, {s} seconds left", c.code),
        Some(_) => format!(
            "code {} for {account}, expired; reading the next one",
            c.code
        ),
        None => format!("code {} for {account}", c.code),
    };
    let label = ui
        .add(egui::Label::new(style::code_text(&c.code, color)).sense(Sense::click()))
        .accessible_name(spoken)
        .on_hover_text("Click to select; Ctrl+C copies the selected code");
    if label.clicked() {
        actions.push(Action::Select(token.token_ref()));
    }
    if let (Some(fraction), Some(left)) = (c.fraction_left(now), left) {
        ui.horizontal(|ui| {
            let bar_color = if ending {
                style::warn(ui)
            } else {
                style::accent(ui)
            };
            let width = (ui.available_width() - 90.0).clamp(80.0, 360.0);
            countdown_bar(ui, width, fraction, bar_color, left);
            let text = if valid {
                format!("{left} s left")
            } else {
                "refreshing…".into()
            };
            ui.label(RichText::new(text).strong().color(bar_color));
        });
    }
    if ending && let Some(next) = &token.next {
        ui.horizontal(|ui| {
            ui.label(RichText::new("next").color(style::weak(ui)));
            ui.label(
                RichText::new(style::group_digits(&next.code))
                    .monospace()
                    .size(18.0)
                    .color(style::weak(ui)),
            )
            .accessible_name(format!("next code {} for {account}", next.code));
        });
    }
    label.has_focus()
}

/// The countdown as a bar: the share of the period left, on a track visible in both themes.
fn countdown_bar(ui: &mut Ui, width: f32, fraction: f32, color: Color32, left: u64) {
    let height = 8.0;
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, height), Sense::hover());
    response.widget_info(|| {
        let mut info = WidgetInfo::labeled(
            egui::Role::ProgressIndicator,
            true,
            format!("{left} seconds left"),
        );
        info.value = Some(f64::from(fraction));
        info
    });
    let radius = CornerRadius::same(4);
    let track = ui.visuals().widgets.inactive.bg_fill;
    ui.painter().rect_filled(rect, radius, track);
    let filled = Rect::from_min_size(rect.min, egui::vec2(width * fraction, height));
    ui.painter().rect_filled(filled, radius, color);
}
