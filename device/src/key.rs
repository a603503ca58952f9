//! The typed driver: one [`Key`] per device, with an operation per thing a key can do.
//!
//! Status words are turned into [`Error`] variants here, where the request they answer is known:
//! `69 82` means "not touched in time" after DELETE but "no PIN set" after VERIFY PIN.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, instrument};

use crate::admin::{self, AdminStatus, ConfigField, ConfigStatus, Setting};
use crate::apdu::{Command, StatusWord};
use crate::ctaphid::wire::{cmd, err};
use crate::ctaphid::{CallOptions, CtapHid, InitInfo, Timeouts, Wait};
use crate::error::Error;
use crate::label::TokenLabel;
use crate::oath::{self, CredentialInfo, NewCredential, Otp, SelectInfo, ins};
use crate::transport::{DeviceInfo, Transport};

/// A callback run when the key is about to wait for a touch.
pub type TouchHook = Arc<dyn Fn() + Send + Sync>;

/// What the caller knows about whether computing a code waits for a touch.
///
/// The key is silent while it waits (no KEEPALIVE), so the driver cannot tell a lost answer
/// from a slow finger: a read that may wait for a touch must wait the `touch` timeout. A read
/// known not to wait uses the `quick` one, so a lost answer costs seconds, not the touch timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchWait {
    /// The token needs a touch: the touch hook runs, and the driver waits for the touch.
    Expected,
    /// Not known (no extended list, a setting the key does not report): wait as long as a
    /// touch may take, without a prompt.
    Possible,
    /// The token is known not to need one: the key answers at once.
    Never,
}

impl TouchWait {
    fn wait(self) -> Wait {
        match self {
            TouchWait::Expected | TouchWait::Possible => Wait::Touch,
            TouchWait::Never => Wait::Quick,
        }
    }
}

/// A connected key: CTAPHID channel plus what SELECT told about the secrets app.
pub struct Key<T> {
    hid: CtapHid<T>,
    app: SelectInfo,
    /// Raised by another thread to abandon the current request (the caller went away).
    cancel: Option<Arc<AtomicBool>>,
    /// Told before a request the key will hold for a touch, so a UI can prompt the user.
    touch_hook: Option<TouchHook>,
}

impl<T> std::fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("hid", &self.hid)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// The outcome of a secrets-app request: the data, or the status word the app refused it with.
type AppResult = Result<Vec<u8>, StatusWord>;

impl<T: Transport> Key<T> {
    /// Opens a key with the default timeouts: allocates a channel and selects the secrets app.
    pub fn open(transport: T) -> Result<Self, Error> {
        Self::open_with(transport, Timeouts::default())
    }

    /// Opens a key with the given timeouts.
    pub fn open_with(transport: T, timeouts: Timeouts) -> Result<Self, Error> {
        let mut hid = CtapHid::new(transport, timeouts);
        hid.init()?;
        let app = select(&mut hid)?;
        debug!(version = ?app.version, serial = ?app.serial_hex(), "secrets app selected");
        Ok(Self {
            hid,
            app,
            cancel: None,
            touch_hook: None,
        })
    }

    /// What enumeration knows about the device.
    pub fn device_info(&self) -> &DeviceInfo {
        self.hid.transport().info()
    }

    /// The CTAPHID INIT answer (device version, capabilities).
    pub fn init_info(&self) -> Option<InitInfo> {
        self.hid.init_info()
    }

    /// The secrets app's version, serial and PIN state as of the last SELECT.
    pub fn app_info(&self) -> &SelectInfo {
        &self.app
    }

    /// The CTAPHID layer (for PING tests and fault injection).
    pub fn hid_mut(&mut self) -> &mut CtapHid<T> {
        &mut self.hid
    }

    /// Sets the flag that cancels the request in progress when raised.
    pub fn set_cancel_flag(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.cancel = flag;
    }

    /// Sets the callback told before the key waits for a touch.
    pub fn set_touch_hook(&mut self, hook: Option<TouchHook>) {
        self.touch_hook = hook;
    }

    /// Selects the secrets app again and refreshes [`Self::app_info`].
    pub fn refresh(&mut self) -> Result<&SelectInfo, Error> {
        self.app = select(&mut self.hid)?;
        Ok(&self.app)
    }

    fn touch_coming(&self) {
        if let Some(hook) = &self.touch_hook {
            hook();
        }
    }

    /// Sends one secrets-app request, fetching the rest of long answers with SEND REMAINING.
    fn app_call(&mut self, command: &Command, wait: Wait) -> Result<AppResult, Error> {
        let (cancel, hook) = (self.cancel.clone(), self.touch_hook.clone());
        secrets_call(&mut self.hid, command, call_options(wait, &cancel, &hook))
    }

    /// Verifies the PIN right before a request that needs it (it authorises one request).
    fn unlock(&mut self, pin: Option<&SecretString>) -> Result<(), Error> {
        match pin {
            Some(pin) => self.verify_pin(pin),
            None => Ok(()),
        }
    }

    /// Lists the credentials; with a PIN, the PIN-protected ones too.
    #[instrument(level = "debug", skip_all)]
    pub fn list(&mut self, pin: Option<&SecretString>) -> Result<Vec<CredentialInfo>, Error> {
        self.unlock(pin)?;
        let extended = self.app.has_extended_list();
        match self.app_call(&oath::list_command(extended), Wait::Quick)? {
            Ok(data) => oath::parse_list(&data, extended),
            Err(sw) => Err(common_error(sw)),
        }
    }

    /// Registers a credential. A PIN is needed for a PIN-protected one.
    #[instrument(level = "debug", skip_all, fields(name = %cred.name))]
    pub fn put(&mut self, cred: &NewCredential, pin: Option<&SecretString>) -> Result<(), Error> {
        let command = cred.to_command()?;
        self.unlock(pin)?;
        let touch = cred.touch_required && !cred.pin_protected;
        if touch {
            self.touch_coming();
        }
        match self.app_call(&command, if touch { Wait::Touch } else { Wait::Quick })? {
            Ok(_) => Ok(()),
            Err(StatusWord::OPERATION_BLOCKED) => Err(Error::AlreadyExists),
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED) if cred.pin_protected => {
                Err(Error::PinRequired)
            }
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED) => Err(Error::TouchTimeout),
            Err(sw) => Err(common_error(sw)),
        }
    }

    /// Deletes a credential (the key always asks for a touch first).
    #[instrument(level = "debug", skip(self, pin))]
    pub fn delete(&mut self, name: &str, pin: Option<&SecretString>) -> Result<(), Error> {
        let command = oath::name_command(ins::DELETE, name)?;
        self.unlock(pin)?;
        self.touch_coming();
        self.app_call(&command, Wait::Touch)?
            .map(drop)
            .map_err(touch_error)
    }

    /// Wipes every credential and the PIN (touch needed).
    #[instrument(level = "debug", skip(self))]
    pub fn reset(&mut self) -> Result<(), Error> {
        self.touch_coming();
        let command = Command::new(ins::RESET, 0xDE, 0xAD, vec![]);
        self.app_call(&command, Wait::Touch)?.map_err(touch_error)?;
        self.refresh()?;
        Ok(())
    }

    /// Computes a code for `name` with the given challenge (TOTP: the time step).
    ///
    /// `touch` says whether to prompt (touch hook) and how long the key may stay silent; the
    /// key decides whether it waits for a touch.
    #[instrument(level = "debug", skip(self, pin))]
    pub fn calculate(
        &mut self,
        name: &str,
        challenge: u64,
        touch: TouchWait,
        pin: Option<&SecretString>,
    ) -> Result<Otp, Error> {
        let command = oath::calculate_command(name, challenge)?;
        self.unlock(pin)?;
        if touch == TouchWait::Expected {
            self.touch_coming();
        }
        match self.app_call(&command, touch.wait())? {
            Ok(data) => oath::parse_calculate(&data),
            Err(StatusWord::CONDITIONS_NOT_SATISFIED) => Err(Error::Unsupported(format!(
                "{name:?} is not an HOTP or TOTP credential"
            ))),
            Err(StatusWord(0x6A81)) => Err(Error::Unsupported(
                "this key cannot compute that hash algorithm".into(),
            )),
            Err(StatusWord::STATE_NOT_CHANGED) => Err(Error::Unsupported(format!(
                "{name:?} gives no more codes: the key cannot move its HOTP counter on (it is at \
                 its last value); create the token again"
            ))),
            Err(sw) => Err(touch_error(sw)),
        }
    }

    /// The TOTP code of `name` at `unix_time`, with the period its label carries.
    pub fn totp(
        &mut self,
        name: &str,
        unix_time: u64,
        touch: TouchWait,
        pin: Option<&SecretString>,
    ) -> Result<Otp, Error> {
        let period = TokenLabel::parse(name).period;
        self.calculate(name, unix_time / u64::from(period), touch, pin)
    }

    /// Renames a credential and/or changes whether it needs a touch (touch needed).
    #[instrument(level = "debug", skip(self, pin))]
    pub fn update(
        &mut self,
        name: &str,
        new_name: Option<&str>,
        touch_required: Option<bool>,
        pin: Option<&SecretString>,
    ) -> Result<(), Error> {
        let command = oath::update_command(name, new_name, touch_required)?;
        self.unlock(pin)?;
        self.touch_coming();
        match self.app_call(&command, Wait::Touch)? {
            Ok(_) => Ok(()),
            Err(StatusWord::OPERATION_BLOCKED) => Err(Error::AlreadyExists),
            Err(sw) => Err(touch_error(sw)),
        }
    }

    /// Sets the first PIN (touch needed). Fails if a PIN exists: use [`Self::change_pin`].
    #[instrument(level = "debug", skip_all)]
    pub fn set_pin(&mut self, pin: &SecretString) -> Result<(), Error> {
        let command = oath::pin_command(ins::SET_PIN, pin.expose_secret().as_bytes(), None)?;
        self.touch_coming();
        let result = self.app_call(&command, Wait::Touch)?;
        self.refresh()?;
        match result {
            Ok(_) => Ok(()),
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED) if self.app.pin_retries.is_some() => {
                Err(Error::PinAlreadySet)
            }
            Err(sw) => Err(touch_error(sw)),
        }
    }

    /// Changes the PIN (touch needed).
    #[instrument(level = "debug", skip_all)]
    pub fn change_pin(&mut self, old: &SecretString, new: &SecretString) -> Result<(), Error> {
        let command = oath::pin_command(
            ins::CHANGE_PIN,
            old.expose_secret().as_bytes(),
            Some(new.expose_secret().as_bytes()),
        )?;
        self.touch_coming();
        let result = self.app_call(&command, Wait::Touch)?;
        self.pin_result(result)?;
        // The attempt counter is back to full; keep app_info truthful.
        self.refresh().map(drop)
    }

    /// Verifies the PIN (touch needed); this authorises exactly the next request.
    #[instrument(level = "debug", skip_all)]
    pub fn verify_pin(&mut self, pin: &SecretString) -> Result<(), Error> {
        let command = oath::pin_command(ins::VERIFY_PIN, pin.expose_secret().as_bytes(), None)?;
        self.touch_coming();
        let result = self.app_call(&command, Wait::Touch)?;
        self.pin_result(result)
    }

    /// Maps the answer of VERIFY or CHANGE PIN. A failure re-selects the app to learn the
    /// attempts left, which is also the only way to tell "blocked" from "wrong" (both `63 00`).
    fn pin_result(&mut self, result: AppResult) -> Result<(), Error> {
        let Err(sw) = result else { return Ok(()) };
        self.refresh()?;
        match (sw, self.app.pin_retries) {
            (StatusWord::SECURITY_STATUS_NOT_SATISFIED, None) => Err(Error::PinNotSet),
            (StatusWord::VERIFICATION_FAILED, Some(0)) => Err(Error::PinBlocked),
            (StatusWord::VERIFICATION_FAILED, retries) => Err(Error::WrongPin {
                retries_left: retries,
            }),
            (sw, _) => Err(touch_error(sw)),
        }
    }

    /// PING: sends `payload` and checks the echo.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.hid.ping(payload)
    }

    /// WINK: makes the key blink.
    pub fn wink(&mut self) -> Result<(), Error> {
        self.hid.wink()
    }

    /// Sends one admin-app request; `None` when the key has no admin app or no such command.
    fn admin_call(&mut self, payload: &[u8], wait: Wait) -> Result<Option<Vec<u8>>, Error> {
        let (cancel, hook) = (self.cancel.clone(), self.touch_hook.clone());
        match self.hid.call(
            cmd::VENDOR_ADMIN,
            payload,
            call_options(wait, &cancel, &hook),
        ) {
            Ok(data) => Ok(Some(data)),
            Err(Error::Ctaphid {
                code: err::INVALID_CMD,
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The admin app's STATUS; `None` when the key has no admin app.
    pub fn admin_status(&mut self) -> Result<Option<AdminStatus>, Error> {
        match self.admin_call(&[admin::command::STATUS], Wait::Quick)? {
            Some(data) => admin::parse_status(&data).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a configuration field as text.
    pub fn get_config(&mut self, field: &str) -> Result<String, Error> {
        let mut payload = vec![admin::command::GET_CONFIG];
        payload.extend_from_slice(field.as_bytes());
        let Some(data) = self.admin_call(&payload, Wait::Quick)? else {
            return Err(Error::Unsupported(
                "this key has no configuration fields".into(),
            ));
        };
        match data.split_first() {
            Some((0, value)) => String::from_utf8(value.to_vec())
                .map_err(|_| Error::Protocol(format!("field {field} is not UTF-8 text"))),
            Some((&status, _)) => Err(config_error(field, status)),
            None => Err(Error::Protocol("empty GET_CONFIG answer".into())),
        }
    }

    /// Writes a configuration field (some fields need a touch).
    pub fn set_config(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let payload = admin::set_config_payload(field, value)?;
        let Some(data) = self.admin_call(&payload, Wait::Touch)? else {
            return Err(Error::Unsupported(
                "this key has no configuration fields".into(),
            ));
        };
        match data.as_slice() {
            [0] => Ok(()),
            [status] => Err(config_error(field, *status)),
            other => Err(Error::Protocol(format!(
                "SET_CONFIG answer must be one byte, got {}",
                other.len()
            ))),
        }
    }

    /// The configuration fields the key knows (empty when it cannot tell).
    pub fn config_fields(&mut self) -> Result<Vec<ConfigField>, Error> {
        match self.admin_call(&[admin::command::LIST_AVAILABLE_FIELDS], Wait::Quick)? {
            Some(data) if !data.is_empty() => admin::parse_fields(&data),
            _ => Ok(Vec::new()),
        }
    }

    /// Reads one of the vendor tool's settings.
    pub fn setting(&mut self, setting: Setting) -> Result<bool, Error> {
        let text = self.get_config(setting.field())?;
        admin::parse_bool(setting.field(), &text)
    }

    /// Changes one of the vendor tool's settings.
    pub fn set_setting(&mut self, setting: Setting, value: bool) -> Result<(), Error> {
        self.touch_coming();
        self.set_config(setting.field(), admin::bool_text(value))
    }
}

fn call_options<'a>(
    wait: Wait,
    cancel: &'a Option<Arc<AtomicBool>>,
    hook: &'a Option<TouchHook>,
) -> CallOptions<'a> {
    CallOptions {
        wait: Some(wait),
        cancel: cancel.as_deref(),
        on_touch_needed: hook.as_deref().map(|h| h as &(dyn Fn() + Sync)),
    }
}

fn select<T: Transport>(hid: &mut CtapHid<T>) -> Result<SelectInfo, Error> {
    match secrets_call(hid, &SelectInfo::command(), CallOptions::default())? {
        Ok(data) => SelectInfo::parse(&data),
        Err(StatusWord::NOT_FOUND) | Err(StatusWord::INS_NOT_SUPPORTED) => Err(Error::Unsupported(
            "this key has no OATH secrets app".into(),
        )),
        Err(sw) => Err(Error::Status(sw)),
    }
}

/// One secrets-app request over CTAPHID, with paging.
fn secrets_call<T: Transport>(
    hid: &mut CtapHid<T>,
    command: &Command,
    opts: CallOptions<'_>,
) -> Result<AppResult, Error> {
    let answer = match hid.call(cmd::VENDOR_SECRETS, &command.to_bytes(), opts) {
        Err(Error::Ctaphid {
            code: err::INVALID_CMD,
        }) => {
            return Err(Error::Unsupported(
                "this key has no OATH secrets app".into(),
            ));
        }
        other => other?,
    };
    let (mut sw, data) = oath::split_status(&answer)?;
    let mut collected = data.to_vec();
    // A long LIST comes in chunks; each more-data status asks for SEND REMAINING.
    let mut rounds = 0;
    while sw.is_more_data() {
        rounds += 1;
        if rounds > 64 {
            return Err(Error::Protocol("the key kept answering 'more data'".into()));
        }
        let more = Command::new(ins::SEND_REMAINING, 0, 0, vec![]);
        let answer = hid.call(cmd::VENDOR_SECRETS, &more.to_bytes(), opts)?;
        let (next_sw, data) = oath::split_status(&answer)?;
        if next_sw == StatusWord::OK || next_sw.is_more_data() {
            collected.extend_from_slice(data);
        }
        sw = next_sw;
    }
    Ok(if sw == StatusWord::OK {
        Ok(collected)
    } else {
        Err(sw)
    })
}

/// Status words with one meaning whatever the request.
fn common_error(sw: StatusWord) -> Error {
    match sw {
        StatusWord::NOT_FOUND | StatusWord::REFERENCE_NOT_USABLE => Error::NotFound,
        StatusWord::NOT_ENOUGH_MEMORY => Error::NoSpace,
        StatusWord::INS_NOT_SUPPORTED => Error::Unsupported("instruction not supported".into()),
        other => Error::Status(other),
    }
}

/// For requests that wait for a touch, `69 82` means the touch did not come.
fn touch_error(sw: StatusWord) -> Error {
    match sw {
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => Error::TouchTimeout,
        other => common_error(other),
    }
}

fn config_error(field: &str, status: u8) -> Error {
    match ConfigStatus::from_byte(status) {
        Some(ConfigStatus::InvalidKey) => {
            Error::Unsupported(format!("this key has no config field {field}"))
        }
        Some(ConfigStatus::NotConfirmed) => Error::TouchTimeout,
        Some(s) => Error::Config {
            field: field.into(),
            reason: s.reason(),
        },
        None => Error::Config {
            field: field.into(),
            reason: "unknown status",
        },
    }
}
