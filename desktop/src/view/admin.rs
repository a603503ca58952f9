//! The admin view: the vendor admin tool's form for one key, then the seed-file export.

use eframe::egui::{self, Button, ComboBox, Grid, Response, RichText, TextEdit, Ui};
use oathkey_protocol::types::{Algorithm, KeyFamily, OtpKind};
use oathkey_seedfile::{Format, WriteMode};

use super::style;
use crate::model::{Action, AdminForm, AppState, ExportScope, Status};

/// Draws the admin form.
pub fn show(ui: &mut Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    super::codes::touch_banners(ui, state);
    let Some(key) = state.admin_key() else {
        ui.label("No key is plugged in. Insert one to configure it.");
        return;
    };
    let key_id = key.info.id.clone();
    let settings = key.settings;
    let family = key.info.family;
    let ids: Vec<(String, String)> = state
        .keys
        .iter()
        .map(|k| {
            (
                k.info.id.clone(),
                format!("{} ({})", k.info.id, k.info.model),
            )
        })
        .collect();
    ui.horizontal(|ui| {
        let label = ui.label("Key:");
        if ids.len() > 1 {
            let shown = ids
                .iter()
                .find(|(id, _)| *id == key_id)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            ComboBox::from_id_salt("admin-key")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (id, text) in &ids {
                        if ui.selectable_label(*id == key_id, text).clicked() {
                            actions.push(Action::SelectKey(id.clone()));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        } else if let Some((_, text)) = ids.first() {
            ui.label(RichText::new(text).strong());
        }
    });

    let form = &mut state.admin;
    mode_section(ui, form, settings.as_ref(), actions);
    key_press_section(ui, form, settings.as_ref(), family, actions);
    ui.separator();
    token_section(ui, form, &key_id, actions);
    ui.separator();
    export_section(ui, form, actions);
}

fn status(ui: &mut Ui, status: &Status) {
    match status {
        Status::Idle => {}
        Status::Busy => {
            ui.spinner();
            ui.label("Working… (touch the key if it asks)");
        }
        Status::Done(text) => {
            ui.colored_label(style::ok(ui), text);
        }
        Status::Failed(e) => {
            ui.add(egui::Label::new(RichText::new(e.to_string()).color(style::error(ui))).wrap());
        }
    }
}

/// An error (red) or a hint for an empty field (grey) under a field.
fn field_note(ui: &mut Ui, error: Option<&String>, empty: bool) {
    if let Some(e) = error {
        let color = if empty {
            style::weak(ui)
        } else {
            style::error(ui)
        };
        ui.label(RichText::new(e).color(color).size(12.5));
    }
}

fn mode_section(
    ui: &mut Ui,
    form: &mut AdminForm,
    settings: Option<&oathkey_protocol::types::Settings>,
    actions: &mut Vec<Action>,
) {
    style::section(ui, "Mode");
    let (keyboard, u2f) = form.mode_shown(settings);
    ui.horizontal(|ui| {
        if let Some(mut on) = keyboard
            && ui.checkbox(&mut on, "Keyboard").changed()
        {
            form.keyboard = Some(on);
        }
        if let Some(mut on) = u2f
            && ui.checkbox(&mut on, "U2F").changed()
        {
            form.u2f = Some(on);
        }
        if keyboard.is_none() && u2f.is_none() {
            ui.label(RichText::new("This key has no Mode setting.").color(style::weak(ui)));
            return;
        }
        let (keyboard, u2f) = form.mode_shown(settings);
        let error = AdminForm::mode_error(keyboard, u2f);
        let apply = ui
            .add_enabled(
                error.is_none() && !form.mode_status.is_busy(),
                Button::new("Apply"),
            )
            .accessible_name("Apply Mode");
        if apply.clicked() {
            actions.push(Action::ApplyMode);
        }
        status(ui, &form.mode_status);
        if let Some(e) = error {
            ui.colored_label(style::error(ui), e);
        }
    });
}

fn key_press_section(
    ui: &mut Ui,
    form: &mut AdminForm,
    settings: Option<&oathkey_protocol::types::Settings>,
    family: KeyFamily,
    actions: &mut Vec<Action>,
) {
    style::section(ui, "Key Press");
    let Some(mut on) = form.key_press_shown(settings) else {
        let why = if family == KeyFamily::YkoathPcsc {
            "This key has no Key Press setting: a YubiKey asks for a touch per token. Tick \"Touch\" for each new token that should need one."
        } else {
            "This key has no Key Press setting."
        };
        ui.label(RichText::new(why).color(style::weak(ui)));
        return;
    };
    ui.horizontal(|ui| {
        let a = ui.radio_value(&mut on, true, "Enabled");
        let b = ui.radio_value(&mut on, false, "Disabled");
        if a.changed() || b.changed() {
            form.key_press = Some(on);
        }
        let apply = ui
            .add_enabled(!form.key_press_status.is_busy(), Button::new("Apply"))
            .accessible_name("Apply Key Press");
        if apply.clicked() {
            actions.push(Action::ApplyKeyPress);
        }
        status(ui, &form.key_press_status);
    });
    ui.label(
        RichText::new(
            "Enabled: every code needs a touch of the key. Each change needs a touch too.",
        )
        .color(style::weak(ui))
        .size(12.5),
    );
}

/// A labelled row of the grid; returns the label's response (to tie the field to it).
fn row_label(ui: &mut Ui, text: &str) -> Response {
    ui.label(text)
}

fn token_section(ui: &mut Ui, form: &mut AdminForm, key_id: &str, actions: &mut Vec<Action>) {
    style::section(ui, "New Token");
    let errors = form.token_errors(Some(key_id));
    Grid::new("new-token")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            row_label(ui, "Algorithm");
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.kind, OtpKind::Totp, "TOTP");
                ui.radio_value(&mut form.kind, OtpKind::Hotp, "HOTP");
            });
            ui.end_row();

            row_label(ui, "Hash");
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.algorithm, Algorithm::Sha1, "SHA1");
                ui.radio_value(&mut form.algorithm, Algorithm::Sha256, "SHA256");
                ui.radio_value(&mut form.algorithm, Algorithm::Sha512, "SHA512");
            });
            ui.end_row();

            row_label(ui, "Digits");
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.digits, 6, "6 digits");
                ui.radio_value(&mut form.digits, 8, "8 digits");
            });
            ui.end_row();

            row_label(ui, "Period");
            ui.add_enabled_ui(form.kind == OtpKind::Totp, |ui| {
                ui.horizontal(|ui| {
                    ui.radio_value(&mut form.period, 30, "30 seconds");
                    ui.radio_value(&mut form.period, 60, "60 seconds");
                });
            });
            ui.end_row();

            row_label(ui, "Touch");
            ui.checkbox(&mut form.touch, "Every code needs a touch");
            ui.end_row();

            ui.label("");
            ui.horizontal(|ui| {
                if ui
                    .button("Generate")
                    .on_hover_text("A random 8-digit serial and a 160-bit seed")
                    .clicked()
                {
                    actions.push(Action::Generate);
                }
                if let Some(e) = &form.generate_error {
                    ui.colored_label(style::error(ui), e);
                }
            });
            ui.end_row();

            let label = row_label(ui, "Serial");
            ui.vertical(|ui| {
                ui.add(
                    TextEdit::singleline(&mut form.serial)
                        .hint_text("8 digits, from Generate")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                field_note(ui, errors.serial.as_ref(), form.serial.is_empty());
            });
            ui.end_row();

            let label = row_label(ui, "Seed");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    let edit = ui
                        .add(
                            TextEdit::singleline(&mut form.seed)
                                .password(!form.show_seed)
                                .hint_text("Base32, from Generate")
                                .char_limit(240)
                                .desired_width(300.0),
                        )
                        .labelled_by(label.id);
                    forget_undo_history(ui, edit.id);
                    ui.toggle_value(&mut form.show_seed, "Show")
                        .accessible_name("Show seed");
                });
                field_note(ui, errors.seed.as_ref(), form.seed.is_empty());
            });
            ui.end_row();

            let label = row_label(ui, "Username (UPN)");
            ui.vertical(|ui| {
                let edit = ui
                    .add(
                        TextEdit::singleline(&mut form.upn)
                            .hint_text("alice@contoso.com")
                            .desired_width(300.0),
                    )
                    .labelled_by(label.id);
                if edit.lost_focus()
                    && ui.input(|i| i.key_pressed(egui::Key::Enter))
                    && errors.is_empty()
                {
                    actions.push(Action::Save);
                }
                field_note(ui, errors.upn.as_ref(), form.upn.trim().is_empty());
                field_note(ui, errors.name.as_ref(), false);
            });
            ui.end_row();
        });
    if !azure_compatible(form) {
        ui.label(
            RichText::new(
                "Azure's CSV upload takes only TOTP, SHA1, 6 digits, 30 or 60 seconds: export \
                 this token in another format.",
            )
            .color(style::warn(ui))
            .size(12.5),
        );
    }
    ui.horizontal(|ui| {
        let save = ui.add_enabled(
            errors.is_empty() && !form.save_status.is_busy(),
            Button::new("Save"),
        );
        if save.clicked() {
            actions.push(Action::Save);
        }
        status(ui, &form.save_status);
    });
}

fn azure_compatible(form: &AdminForm) -> bool {
    form.kind == OtpKind::Totp
        && form.algorithm == Algorithm::Sha1
        && form.digits == 6
        && matches!(form.period, 30 | 60)
}

/// egui keeps an undo history of every text field; the seed field's would hold copies of the
/// seed, so it is dropped every frame (the seed field has no undo).
fn forget_undo_history(ui: &Ui, id: egui::Id) {
    if let Some(mut state) = egui::text_edit::TextEditState::load(ui.ctx(), id) {
        state.clear_undoer();
        state.store(ui.ctx(), id);
    }
}

fn format_label(f: Format) -> &'static str {
    match f {
        Format::AzureCsv => "Azure / Entra CSV (tseed.csv)",
        Format::Otpauth => "otpauth URIs",
        Format::Pskc => "PSKC XML",
        Format::GraphJson => "Microsoft Graph JSON",
        Format::PrivacyIdeaCsv => "privacyIDEA CSV",
    }
}

fn export_section(ui: &mut Ui, form: &mut AdminForm, actions: &mut Vec<Action>) {
    style::section(ui, "Export seed file");
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let path_error = crate::validate::export_path(
        &form.export.path,
        form.export.mode,
        home.as_deref(),
        crate::validate::probe_fs,
    )
    .err();
    let saved = form.saved_serials.len();
    Grid::new("export")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let label = row_label(ui, "Format");
            let mut format = form.export.format;
            ComboBox::from_id_salt("export-format")
                .selected_text(format_label(format))
                .show_ui(ui, |ui| {
                    for f in Format::ALL {
                        ui.selectable_value(&mut format, f, format_label(f));
                    }
                })
                .response
                .labelled_by(label.id);
            if format != form.export.format {
                form.export.set_format(format);
            }
            ui.end_row();

            row_label(ui, "Seeds");
            ui.horizontal_wrapped(|ui| {
                ui.radio_value(
                    &mut form.export.scope,
                    ExportScope::SavedHere,
                    format!("Saved here ({saved})"),
                );
                ui.radio_value(
                    &mut form.export.scope,
                    ExportScope::NotExported,
                    "Not yet exported",
                );
                ui.radio_value(
                    &mut form.export.scope,
                    ExportScope::All,
                    "All in the ledger",
                );
            });
            ui.end_row();

            let label = row_label(ui, "File");
            ui.vertical(|ui| {
                ui.add(TextEdit::singleline(&mut form.export.path).desired_width(300.0))
                    .labelled_by(label.id);
                field_note(ui, path_error.as_ref(), false);
            });
            ui.end_row();

            row_label(ui, "If it exists");
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.export.mode, WriteMode::CreateNew, "Create new");
                ui.radio_value(&mut form.export.mode, WriteMode::Append, "Append");
                ui.radio_value(&mut form.export.mode, WriteMode::Replace, "Replace");
            });
            ui.end_row();
        });
    ui.horizontal(|ui| {
        let ready = path_error.is_none()
            && !(form.export.scope == ExportScope::SavedHere && saved == 0)
            && !form.export.status.is_busy();
        if ui.add_enabled(ready, Button::new("Export")).clicked() {
            actions.push(Action::Export);
        }
        status(ui, &form.export.status);
    });
    ui.label(
        RichText::new("The file holds the seeds in the clear: it is created 0600; keep it safe.")
            .color(style::weak(ui))
            .size(12.5),
    );
}
