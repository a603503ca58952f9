//! Drawing: a function of [`AppState`] that returns what the user did as [`Action`]s.
//! Form fields are edited in place; everything with an effect beyond the form is an action.
//!
//! - [`codes`]: the main view, every token's code with its countdown.
//! - [`admin`]: the admin tool's form (shown to admins only).
//! - [`style`]: colours and text shapes.

pub mod admin;
pub mod codes;
pub mod style;

use eframe::egui::{
    self, Align, CentralPanel, Event, Key, Layout, Panel, RichText, ScrollArea, ThemePreference,
    Ui, UiBuilder,
};
use oathkey_protocol::types::Role;

use crate::model::{Action, AppState, Connection, Level, Tab};

/// Zoom steps offered in the status bar (egui's Ctrl +/- goes in between).
pub const ZOOMS: [(f32, &str); 3] = [(1.0, "100%"), (1.5, "150%"), (2.0, "200%")];

/// Draws the whole window.
pub fn show(ui: &mut Ui, state: &mut AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    if state.tab == Tab::Codes && copy_shortcut(ui) {
        actions.push(Action::CopySelected);
    }
    Panel::top("top-bar").show(ui, |ui| top_bar(ui, state, &mut actions));
    // egui's Tab order is the order widgets are drawn in, so the middle is drawn before the
    // status bar (in the space the status bar took last frame), for Tab to go top to bottom:
    // tabs, codes or form, then Scale and Theme. Screen readers read in the same order.
    let height_id = egui::Id::unique("oathkey-status-bar-height");
    let status_height = ui
        .ctx()
        .data(|d| d.get_temp::<f32>(height_id))
        .unwrap_or(0.0);
    let mut middle = ui.available_rect_before_wrap();
    middle.max.y = (middle.max.y - status_height).max(middle.min.y);
    let mut middle_ui = ui.new_child(
        UiBuilder::new()
            .id_salt("middle")
            .max_rect(middle)
            .layout(Layout::top_down(Align::Min)),
    );
    central(&mut middle_ui, state, &mut actions);
    let bar = Panel::bottom("status-bar").show(ui, |ui| status_bar(ui, state, &mut actions));
    let height = bar.response.rect.height();
    if (height - status_height).abs() > 0.5 {
        ui.ctx().data_mut(|d| d.insert_temp(height_id, height));
        ui.ctx().request_discard("the status bar changed height");
    }
    actions
}

/// The middle of the window: the codes, or the admin form.
fn central(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    CentralPanel::default().show(ui, |ui| {
        ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.add_space(4.0);
                if state.tab == Tab::Admin && state.is_admin() {
                    admin::show(ui, state, actions);
                } else {
                    codes::show(ui, state, actions);
                }
                ui.add_space(8.0);
            });
    });
}

/// Ctrl+C outside a text field (a focused button or code label is fine: that is how the
/// keyboard selects a token).
fn copy_shortcut(ui: &Ui) -> bool {
    if ui.ctx().text_edit_focused() {
        return false;
    }
    ui.input(|i| {
        i.events.iter().any(|e| match e {
            Event::Copy => true,
            Event::Key {
                key: Key::C,
                pressed: true,
                modifiers,
                ..
            } => modifiers.command,
            _ => false,
        })
    })
}

fn top_bar(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.add_space(4.0);
    let (color, status) = match &state.connection {
        Connection::Connected => {
            let role = match state.role {
                Some(Role::Admin) => "admin",
                _ => "reader",
            };
            let version = state.daemon_version.as_deref().unwrap_or("?");
            (style::ok(ui), format!("oathkeyd {version} · {role}"))
        }
        Connection::Connecting => (style::weak(ui), "connecting…".to_owned()),
        Connection::Unreachable(_) => (style::warn(ui), "oathkeyd not running".to_owned()),
    };
    let status_ui = |ui: &mut Ui| {
        status_dot(ui, color);
        ui.label(RichText::new(&status).color(color));
    };
    let mut status_fits = true;
    ui.horizontal(|ui| {
        ui.label(RichText::new("oathkey").strong().size(18.0));
        ui.add_space(12.0);
        if ui
            .selectable_label(state.tab == Tab::Codes, "Codes")
            .clicked()
        {
            actions.push(Action::SetTab(Tab::Codes));
        }
        if state.is_admin()
            && ui
                .selectable_label(state.tab == Tab::Admin, "Admin")
                .clicked()
        {
            actions.push(Action::SetTab(Tab::Admin));
        }
        // Right-aligned when there is room (large zoom, narrow window: on a row of its own).
        let needed = ui.fonts_mut(|f| {
            f.layout_no_wrap(
                status.clone(),
                egui::TextStyle::Body.resolve(ui.style()),
                color,
            )
            .size()
            .x
        }) + 40.0;
        status_fits = ui.available_width() > needed;
        if status_fits {
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                ui.label(RichText::new(&status).color(color));
                status_dot(ui, color);
            });
        }
    });
    if !status_fits {
        ui.horizontal(status_ui);
    }
    ui.add_space(2.0);
}

/// The connection's colour as a dot, painted: the default fonts have no circle glyph.
fn status_dot(ui: &mut Ui, color: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.5, color);
}

fn status_bar(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    ui.add_space(2.0);
    if let Some(m) = state.recent_messages().next() {
        let color = match m.level {
            Level::Info => ui.visuals().text_color(),
            Level::Error => style::error(ui),
        };
        ui.add(egui::Label::new(RichText::new(&m.text).color(color)).wrap());
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Scale").color(style::weak(ui)));
        for (zoom, name) in ZOOMS {
            let selected = (state.prefs.zoom - zoom).abs() < 0.01;
            let r = ui
                .selectable_label(selected, name)
                .accessible_name(format!("Scale {name}"));
            if r.clicked() {
                actions.push(Action::SetZoom(zoom));
            }
        }
        ui.separator();
        ui.label(RichText::new("Theme").color(style::weak(ui)));
        for (pref, name) in [
            (ThemePreference::System, "System"),
            (ThemePreference::Light, "Light"),
            (ThemePreference::Dark, "Dark"),
        ] {
            let r = ui
                .selectable_label(state.prefs.theme == pref, name)
                .accessible_name(format!("Theme: {name}"));
            if r.clicked() {
                actions.push(Action::SetTheme(pref));
            }
        }
    });
    ui.add_space(2.0);
}

/// Keeps egui's own theme and zoom in step with the state (and the state with egui's
/// Ctrl +/- zoom).
pub fn sync_prefs(ctx: &egui::Context, state: &mut AppState, applied_zoom: &mut f32) {
    let ctx_zoom = ctx.zoom_factor();
    if (ctx_zoom - *applied_zoom).abs() > 0.001 {
        // Ctrl +/- (egui's own shortcut) changed it.
        state.prefs.zoom = ctx_zoom;
        *applied_zoom = ctx_zoom;
    }
    if (state.prefs.zoom - *applied_zoom).abs() > 0.001 {
        ctx.set_zoom_factor(state.prefs.zoom);
        *applied_zoom = state.prefs.zoom;
    }
    if ctx.options(|o| o.theme_preference) != state.prefs.theme {
        ctx.set_theme(state.prefs.theme);
    }
}
