//! The admin view's form: the vendor admin tool's Mode, Key Press, New Token and Save, then
//! the seed-file export. Field checks live in [`crate::validate`]; this turns the form into
//! requests.

use std::path::{Path, PathBuf};

use oathkey_protocol::SecretText;
use oathkey_protocol::types::{Algorithm, CreateTokenParams, OtpKind, SeedsParams, Settings};
use oathkey_seedfile::{Format, WriteMode};

use crate::error::DaemonError;
use crate::secret::{NoRandomness, SecretBuffer, generate_seed, generate_serial};
use crate::validate::{self, PathKind};

/// Where a form section stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Nothing asked yet.
    #[default]
    Idle,
    /// Sent; waiting for the daemon (and maybe a touch).
    Busy,
    /// Done, with what to tell.
    Done(String),
    /// The daemon (or the file system) said no.
    Failed(DaemonError),
}

impl Status {
    /// Whether a request is running.
    pub fn is_busy(&self) -> bool {
        *self == Status::Busy
    }
}

/// Which part of the key's settings a `keys.set_config` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPart {
    /// Mode: Keyboard and U2F.
    Mode,
    /// Key Press.
    KeyPress,
}

/// Which seeds go into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportScope {
    /// The tokens saved in this window since it opened.
    SavedHere,
    /// Every seed in the daemon's ledger not yet written to a seed file.
    NotExported,
    /// Every seed in the ledger.
    All,
}

/// The export part of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportForm {
    /// File format.
    pub format: Format,
    /// File path as typed (`~/` allowed).
    pub path: String,
    /// What to do when the file exists.
    pub mode: WriteMode,
    /// Which seeds.
    pub scope: ExportScope,
    /// The last export's outcome.
    pub status: Status,
}

impl Default for ExportForm {
    fn default() -> Self {
        Self {
            format: Format::AzureCsv,
            path: "~/tseed.csv".into(),
            mode: WriteMode::CreateNew,
            scope: ExportScope::SavedHere,
            status: Status::Idle,
        }
    }
}

impl ExportForm {
    /// Changes the format, and the path's extension with it if the path has the old one.
    pub fn set_format(&mut self, format: Format) {
        let old = format!(".{}", self.format.extension());
        if let Some(stem) = self.path.strip_suffix(&old) {
            self.path = format!("{stem}.{}", format.extension());
        }
        self.format = format;
    }
}

/// A seed-file export to run.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// Which seeds.
    pub params: SeedsParams,
    /// Format.
    pub format: Format,
    /// The file.
    pub path: PathBuf,
    /// Create, append or replace.
    pub mode: WriteMode,
}

/// What is wrong with the New Token part, field by field (`None`: fine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFormErrors {
    /// No key to save to.
    pub key: Option<String>,
    /// Serial.
    pub serial: Option<String>,
    /// Seed.
    pub seed: Option<String>,
    /// Username (UPN).
    pub upn: Option<String>,
    /// Serial and UPN together do not fit the key.
    pub name: Option<String>,
}

impl TokenFormErrors {
    /// Whether the form can be saved.
    pub fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.serial.is_none()
            && self.seed.is_none()
            && self.upn.is_none()
            && self.name.is_none()
    }
}

/// The admin form.
#[derive(Debug, Default)]
pub struct AdminForm {
    /// The key the form works on; `None`: the first key.
    pub key: Option<String>,
    /// Mode Keyboard as the user set it; `None`: as the key has it.
    pub keyboard: Option<bool>,
    /// Mode U2F as the user set it; `None`: as the key has it.
    pub u2f: Option<bool>,
    /// Key Press as the user set it; `None`: as the key has it.
    pub key_press: Option<bool>,
    /// Mode's Apply.
    pub mode_status: Status,
    /// Key Press's Apply.
    pub key_press_status: Status,
    /// TOTP or HOTP.
    pub kind: OtpKind,
    /// Hash.
    pub algorithm: Algorithm,
    /// 6 or 8 (0 until set: see [`AdminForm::new`]).
    pub digits: u8,
    /// 30 or 60.
    pub period: u32,
    /// Every code needs a touch of the key.
    pub touch: bool,
    /// Token serial (Generate, or typed).
    pub serial: String,
    /// The seed in Base32 (Generate, or typed): wiped after Save and on drop.
    pub seed: SecretBuffer,
    /// Show the seed instead of dots.
    pub show_seed: bool,
    /// Username (UPN).
    pub upn: String,
    /// Save's outcome.
    pub save_status: Status,
    /// Serials saved from this window (the export's default selection).
    pub saved_serials: Vec<String>,
    /// The export.
    pub export: ExportForm,
    /// Generate failed (no randomness).
    pub generate_error: Option<String>,
}

impl AdminForm {
    /// A form with the admin tool's defaults: TOTP, SHA-1, 6 digits, 30 s.
    pub fn new() -> Self {
        Self {
            digits: 6,
            period: 30,
            ..Self::default()
        }
    }

    /// The Mode checkboxes as shown: the user's choice, else the key's.
    pub fn mode_shown(&self, settings: Option<&Settings>) -> (Option<bool>, Option<bool>) {
        let s = settings.copied().unwrap_or_default();
        (
            s.keyboard.map(|k| self.keyboard.unwrap_or(k)),
            s.u2f.map(|u| self.u2f.unwrap_or(u)),
        )
    }

    /// Key Press as shown.
    pub fn key_press_shown(&self, settings: Option<&Settings>) -> Option<bool> {
        settings
            .and_then(|s| s.key_press)
            .map(|k| self.key_press.unwrap_or(k))
    }

    /// Why Mode cannot be applied: a key with neither interface cannot be reached again.
    pub fn mode_error(keyboard: Option<bool>, u2f: Option<bool>) -> Option<String> {
        (keyboard == Some(false) && u2f == Some(false))
            .then(|| "Keep Keyboard or U2F on: a key with neither cannot be reached".into())
    }

    /// Fills in a random serial and seed (the admin tool's Generate).
    pub fn generate(&mut self) -> Result<(), NoRandomness> {
        let result = generate_serial().and_then(|serial| Ok((serial, generate_seed()?)));
        match result {
            Ok((serial, seed)) => {
                self.serial = serial;
                self.seed.set(&seed);
                self.generate_error = None;
                Ok(())
            }
            Err(e) => {
                self.generate_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The New Token part's problems; `key` is the key it would be saved to.
    pub fn token_errors(&self, key: Option<&str>) -> TokenFormErrors {
        let serial = validate::serial(&self.serial).err();
        let upn = validate::upn(&self.upn).err();
        let name = if serial.is_none() && upn.is_none() {
            validate::name_length(&self.serial, &self.upn, self.period_sent()).err()
        } else {
            None
        };
        TokenFormErrors {
            key: key
                .is_none()
                .then(|| "No key to save to: plug one in".into()),
            serial,
            seed: validate::seed(self.seed.expose()).err(),
            upn,
            name,
        }
    }

    /// The period sent to the daemon (HOTP has none; the default keeps its name short).
    fn period_sent(&self) -> u32 {
        if self.kind == OtpKind::Hotp {
            30
        } else {
            self.period
        }
    }

    /// The `tokens.create` request for this form, or why there is none.
    pub fn create_params(&self, key: Option<&str>) -> Result<CreateTokenParams, TokenFormErrors> {
        let errors = self.token_errors(key);
        let (Some(key), true) = (key, errors.is_empty()) else {
            return Err(errors);
        };
        let seed = validate::seed(self.seed.expose()).map_err(|_| errors.clone())?;
        Ok(CreateTokenParams {
            key: Some(key.to_owned()),
            account: self.upn.trim().to_owned(),
            serial: Some(self.serial.clone()),
            // The daemon records exactly this seed in its ledger before writing the key, so
            // the seed file exported later matches what this form showed.
            secret: Some(SecretText::new(seed.as_str().to_owned())),
            kind: self.kind,
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period_sent(),
            touch: self.touch,
            counter: 0,
        })
    }

    /// After a successful Save: the seed is wiped, the fields are emptied for the next token.
    pub fn saved(&mut self, serial: &str) {
        self.seed.wipe();
        self.show_seed = false;
        self.serial.clear();
        self.upn.clear();
        if !self.saved_serials.iter().any(|s| s == serial) {
            self.saved_serials.push(serial.to_owned());
        }
    }

    /// The export request, or why there is none.
    pub fn export_request(
        &self,
        home: Option<&Path>,
        probe: impl Fn(&Path) -> PathKind,
    ) -> Result<ExportRequest, String> {
        let path = validate::export_path(&self.export.path, self.export.mode, home, probe)?;
        let params = match self.export.scope {
            ExportScope::SavedHere if self.saved_serials.is_empty() => {
                return Err("No token saved in this window yet".into());
            }
            ExportScope::SavedHere => SeedsParams {
                serials: Some(self.saved_serials.clone()),
                ..SeedsParams::default()
            },
            ExportScope::NotExported => SeedsParams {
                not_exported: true,
                ..SeedsParams::default()
            },
            ExportScope::All => SeedsParams::default(),
        };
        Ok(ExportRequest {
            params,
            format: self.export.format,
            path,
            mode: self.export.mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> AdminForm {
        let mut f = AdminForm::new();
        f.generate().expect("rng");
        f.upn = " alice@contoso.com ".into();
        f
    }

    #[test]
    fn a_generated_form_becomes_the_create_request() {
        let f = filled();
        let p = f.create_params(Some("0754237c")).expect("valid");
        assert_eq!(p.key.as_deref(), Some("0754237c"));
        assert_eq!(p.account, "alice@contoso.com");
        assert_eq!(p.serial.as_deref(), Some(f.serial.as_str()));
        assert_eq!(
            p.secret.as_ref().map(SecretText::expose),
            Some(f.seed.expose())
        );
        assert_eq!(
            (p.kind, p.algorithm, p.digits, p.period),
            (OtpKind::Totp, Algorithm::Sha1, 6, 30)
        );
    }

    #[test]
    fn a_bad_form_is_refused_with_a_reason_per_field() {
        let mut f = AdminForm::new();
        f.serial = "12 34".into();
        f.seed.set("not base32!");
        f.upn = "alice".into();
        let errors = f.create_params(None).expect_err("invalid");
        assert!(errors.key.is_some());
        assert!(errors.serial.is_some());
        assert!(errors.seed.is_some());
        assert!(errors.upn.is_some());
        let empty = AdminForm::new().token_errors(Some("k"));
        assert!(empty.serial.is_some() && empty.seed.is_some() && empty.upn.is_some());
    }

    #[test]
    fn save_wipes_the_seed_and_remembers_the_serial() {
        let mut f = filled();
        let serial = f.serial.clone();
        f.show_seed = true;
        f.saved(&serial);
        assert!(f.seed.is_empty() && f.serial.is_empty() && f.upn.is_empty() && !f.show_seed);
        assert_eq!(f.saved_serials, std::slice::from_ref(&serial));
        let req = f
            .export_request(Some(Path::new("/tmp")), |p| {
                if p == Path::new("/tmp") {
                    PathKind::Directory
                } else {
                    PathKind::Missing
                }
            })
            .expect("export");
        assert_eq!(req.params.serials, Some(vec![serial]));
        assert_eq!(req.path, PathBuf::from("/tmp/tseed.csv"));
    }

    #[test]
    fn mode_cannot_turn_both_interfaces_off() {
        assert!(AdminForm::mode_error(Some(false), Some(false)).is_some());
        assert!(AdminForm::mode_error(Some(true), Some(false)).is_none());
        assert!(AdminForm::mode_error(None, Some(false)).is_none());
        let settings = Settings {
            keyboard: Some(true),
            u2f: Some(true),
            key_press: None,
        };
        let mut f = AdminForm::new();
        f.u2f = Some(false);
        assert_eq!(f.mode_shown(Some(&settings)), (Some(true), Some(false)));
        assert_eq!(
            f.key_press_shown(Some(&settings)),
            None,
            "not supported stays so"
        );
    }

    #[test]
    fn the_export_extension_follows_the_format() {
        let mut e = ExportForm::default();
        e.set_format(Format::Pskc);
        assert_eq!(e.path, "~/tseed.xml");
        e.path = "/tmp/seeds".into();
        e.set_format(Format::GraphJson);
        assert_eq!(e.path, "/tmp/seeds");
    }

    #[test]
    fn hotp_tokens_are_sent_with_the_default_period() {
        let mut f = filled();
        f.kind = OtpKind::Hotp;
        f.period = 60;
        assert_eq!(f.create_params(Some("k")).expect("valid").period, 30);
    }
}
