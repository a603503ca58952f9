//! What the user's actions do to the state: the codes view's (copy, select, Get code, tabs,
//! zoom, theme) and the admin form's (Apply, Generate, Save, Export), which readers cannot
//! trigger even if a view offered them.

use std::path::PathBuf;

use oathkey_protocol::types::SetConfigParams;
use zeroize::Zeroizing;

use super::{Action, AdminForm, AppState, CodeState, Command, ConfigPart, Purpose, Status, Tab};
use crate::error::{DaemonError, Kind};

impl AppState {
    /// Does what the user asked; returns text to put on the clipboard, if any.
    pub fn act(&mut self, action: Action) -> Option<Zeroizing<String>> {
        match action {
            Action::Copy(t) => return self.copy(&t),
            Action::CopySelected => {
                let t = self.copy_target()?;
                return self.copy(&t);
            }
            Action::Select(t) => self.selected = Some(t),
            Action::GetCode(t) => {
                let at = self.clock.at_param();
                if let Some(token) = self.token_mut(&t)
                    && token.code != CodeState::Requested
                {
                    token.code = CodeState::Requested;
                    self.outbox.push(Command::GetCode {
                        token: t,
                        at,
                        purpose: Purpose::OnDemand,
                    });
                }
            }
            Action::SetTab(tab) => {
                self.tab = if tab == Tab::Admin && !self.is_admin() {
                    Tab::Codes
                } else {
                    tab
                }
            }
            Action::SetZoom(z) => self.prefs.zoom = z.clamp(0.5, 3.0),
            Action::SetTheme(t) => self.prefs.theme = t,
            admin if self.is_admin() => self.admin_act(admin),
            _ => {}
        }
        None
    }

    fn admin_act(&mut self, action: Action) {
        let key = self.admin_key().map(|k| (k.info.id.clone(), k.settings));
        match action {
            Action::SelectKey(id) => {
                self.admin.key = Some(id);
                self.admin.keyboard = None;
                self.admin.u2f = None;
                self.admin.key_press = None;
            }
            Action::ApplyMode => {
                let Some((id, settings)) = key else { return };
                let (keyboard, u2f) = self.admin.mode_shown(settings.as_ref());
                if AdminForm::mode_error(keyboard, u2f).is_some()
                    || self.admin.mode_status.is_busy()
                {
                    return;
                }
                self.admin.mode_status = Status::Busy;
                self.outbox.push(Command::SetConfig {
                    part: ConfigPart::Mode,
                    params: SetConfigParams {
                        key: Some(id),
                        keyboard,
                        u2f,
                        key_press: None,
                    },
                });
            }
            Action::ApplyKeyPress => {
                let Some((id, settings)) = key else { return };
                let Some(key_press) = self.admin.key_press_shown(settings.as_ref()) else {
                    return;
                };
                if self.admin.key_press_status.is_busy() {
                    return;
                }
                self.admin.key_press_status = Status::Busy;
                self.outbox.push(Command::SetConfig {
                    part: ConfigPart::KeyPress,
                    params: SetConfigParams {
                        key: Some(id),
                        key_press: Some(key_press),
                        ..SetConfigParams::default()
                    },
                });
            }
            Action::Generate => {
                // A failure is kept in the form (generate_error) and shown there.
                let _ = self.admin.generate();
            }
            Action::Save => {
                if self.admin.save_status.is_busy() {
                    return;
                }
                match self
                    .admin
                    .create_params(key.as_ref().map(|(id, _)| id.as_str()))
                {
                    Ok(params) => {
                        self.admin.save_status = Status::Busy;
                        self.outbox.push(Command::CreateToken(params));
                    }
                    Err(_) => {
                        self.admin.save_status = Status::Failed(DaemonError::new(
                            Kind::InvalidForm,
                            "Not saved: correct the fields marked above",
                        ));
                    }
                }
            }
            Action::Export => {
                if self.admin.export.status.is_busy() {
                    return;
                }
                let home = std::env::var_os("HOME").map(PathBuf::from);
                match self
                    .admin
                    .export_request(home.as_deref(), crate::validate::probe_fs)
                {
                    Ok(req) => {
                        self.admin.export.status = Status::Busy;
                        self.outbox.push(Command::Export(req));
                    }
                    Err(e) => {
                        self.admin.export.status =
                            Status::Failed(DaemonError::new(Kind::InvalidForm, e));
                    }
                }
            }
            _ => {}
        }
    }
}
