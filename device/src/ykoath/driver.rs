//! [`YkoathKey`]: a YKOATH smart card (YubiKey, Nitrokey 3 over CCID, other OATH cards) as a
//! [`KeyDriver`].
//!
//! Every operation is one transaction on the [`CardChannel`] that starts by selecting the OATH
//! application again (another application may have selected its own, or reset the card) and,
//! when the card has an access code, validating the key held in memory. Status words become
//! typed errors here, where the request they answer is known.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::SecretString;
use tracing::{debug, instrument};

use crate::admin::Setting;
use crate::apdu::{Command, StatusWord};
use crate::error::Error;
use crate::family::{Capabilities, Family, Identity, KeyDriver};
use crate::key::{TouchHook, TouchWait};
use crate::oath::{CredentialInfo, NewCredential, Otp, OtpKind};
use crate::ykoath::access::{self, AccessKey, CHALLENGE_LEN, Validate};
use crate::ykoath::channel::{CardChannel, CardLink};
use crate::ykoath::management::{self, DeviceInfo, capability};
use crate::ykoath::proto::{self, Dialect, YkSelect, ins};
use crate::ykoath::wire::{self, Reply};

/// A source of random challenges for VALIDATE and SET CODE (replaceable in tests).
pub type ChallengeSource = Box<dyn FnMut() -> [u8; CHALLENGE_LEN] + Send>;

/// A clock in Unix seconds (replaceable in tests).
pub type Clock = Box<dyn Fn() -> u64 + Send>;

/// What the card model is, and how it was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardModel {
    /// A YubiKey: its Management application answered (or its ATR names it).
    Yubikey,
    /// A Nitrokey 3: the secrets-app dialect in a reader whose name says Nitrokey 3.
    Nitrokey3,
    /// Another key with the trussed secrets app (its SELECT answer has a serial number).
    SecretsApp,
    /// Any other card with a YKOATH application.
    Generic,
}

/// A YKOATH card as a [`KeyDriver`].
pub struct YkoathKey<C> {
    channel: C,
    /// The OATH application as of the last SELECT.
    select: YkSelect,
    /// The Management application's answer (YubiKeys), read when the card was opened.
    device: Option<DeviceInfo>,
    model: CardModel,
    /// The access key, once given; validated again in every transaction.
    key: Option<AccessKey>,
    /// HOTP or TOTP by name, from the last list: HOTP credentials are calculated with an
    /// empty challenge, as yubikit does.
    kinds: HashMap<String, OtpKind>,
    cancel: Option<Arc<AtomicBool>>,
    touch_hook: Option<TouchHook>,
    challenges: ChallengeSource,
    clock: Clock,
}

impl<C: CardChannel + std::fmt::Debug> std::fmt::Debug for YkoathKey<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YkoathKey")
            .field("channel", &self.channel)
            .field("select", &self.select)
            .field("device", &self.device)
            .field("model", &self.model)
            .field("unlocked", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// How the access code stood in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// No access code set.
    Open,
    /// The held key was validated.
    Validated,
    /// An access code is set and no key is held.
    Locked,
    /// The held key was refused (the code was changed elsewhere): forget it.
    Refused,
}

impl<C: CardChannel> YkoathKey<C> {
    /// Opens a card: selects the OATH application and, on a YubiKey, reads the Management
    /// application's device information, in one transaction.
    pub fn open(mut channel: C) -> Result<Self, Error> {
        let (select, device) = channel.transaction(|link| {
            let select = select_oath(link)?;
            let device = if select.dialect() == Dialect::Yubikey {
                read_device_info(link).unwrap_or_else(|e| {
                    debug!("reading the management application: {e}");
                    None
                })
            } else {
                None
            };
            Ok((select, device))
        })?;
        let model = identify(&select, device.as_ref(), channel.reader(), channel.atr());
        debug!(version = ?select.version, ?model, locked = select.has_access_code(),
               "YKOATH card opened");
        Ok(Self {
            channel,
            select,
            device,
            model,
            key: None,
            kinds: HashMap::new(),
            cancel: None,
            touch_hook: None,
            challenges: Box::new(random_challenge),
            clock: Box::new(unix_now),
        })
    }

    /// Replaces the source of our random challenges (tests: fixed bytes for byte-exact APDUs).
    pub fn set_challenge_source(&mut self, source: ChallengeSource) {
        self.challenges = source;
    }

    /// Replaces the clock (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The OATH application as of the last SELECT.
    pub fn app_info(&self) -> &YkSelect {
        &self.select
    }

    /// The Management application's device information (YubiKeys).
    pub fn device_info(&self) -> Option<&DeviceInfo> {
        self.device.as_ref()
    }

    /// What the card is.
    pub fn model(&self) -> CardModel {
        self.model
    }

    /// The channel underneath (tests).
    pub fn channel_mut(&mut self) -> &mut C {
        &mut self.channel
    }

    fn check_cancel(&self) -> Result<(), Error> {
        match &self.cancel {
            Some(flag) if flag.load(Ordering::SeqCst) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }

    /// One operation: a transaction that selects the OATH app, validates the held key when an
    /// access code is set, then runs `op` (refused with [`Error::Locked`] when the code is set
    /// and not given).
    fn run<R>(
        &mut self,
        op: impl FnOnce(&mut dyn CardLink, &YkSelect) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.check_cancel()?;
        let key = self.key.clone();
        let ours = (self.challenges)();
        let (select, auth, result) = self.channel.transaction(|link| {
            let select = select_oath(link)?;
            let auth = authenticate(link, &select, key.as_ref(), ours)?;
            let result = match auth {
                Auth::Open | Auth::Validated => op(link, &select),
                Auth::Locked | Auth::Refused => Err(Error::Locked),
            };
            Ok((select, auth, result))
        })?;
        self.select = select;
        if auth == Auth::Refused {
            debug!("the held access key was refused; the code was changed elsewhere");
            self.key = None;
        }
        if !self.select.has_access_code() {
            // The code was cleared (here or elsewhere): nothing to hold on to.
            self.key = None;
        }
        result
    }

    fn touch_hook(&self) -> impl Fn() + use<C> {
        let hook = self.touch_hook.clone();
        move || {
            if let Some(h) = &hook {
                h();
            }
        }
    }

    /// The management app's settings this key has: Keyboard (OTP) and U2F, when the key
    /// reports a writable USB-enabled mask (YubiKey 5) and supports the application.
    fn settings(&self) -> Vec<Setting> {
        let Some(info) = &self.device else {
            return Vec::new();
        };
        if info.writable_usb_enabled().is_none() {
            return Vec::new();
        }
        [
            (Setting::ModeKeyboard, capability::OTP),
            (Setting::ModeU2f, capability::U2F),
        ]
        .into_iter()
        .filter(|(_, bit)| info.usb_supported & bit != 0)
        .map(|(s, _)| s)
        .collect()
    }

    fn setting_bit(&self, setting: Setting) -> Result<u16, Error> {
        if !self.settings().contains(&setting) {
            return Err(self.unsupported(&match setting {
                Setting::OtpKeyPress => format!(
                    "the {setting} setting (touch is a property of each token on this key: \
                     create tokens with touch required instead)"
                ),
                _ => format!("the {setting} setting"),
            }));
        }
        Ok(match setting {
            Setting::ModeKeyboard => capability::OTP,
            _ => capability::U2F,
        })
    }
}

impl<C: CardChannel> KeyDriver for YkoathKey<C> {
    fn family(&self) -> Family {
        Family::YkoathPcsc
    }

    fn capabilities(&self) -> Capabilities {
        let s = &self.select;
        Capabilities {
            codes: true,
            create: true,
            delete: true,
            rename: s.can_rename(),
            touch: s.can_touch(),
            hotp: true,
            algorithms: s.algorithms(),
            settings: self.settings(),
            // The secrets app protects single credentials with a PIN instead.
            access_code: s.dialect() == Dialect::Yubikey,
            wink: false,
        }
    }

    fn identity(&self) -> Identity {
        let s = &self.select;
        let serial = match (&self.device, s.serial) {
            // YubiKeys print their serial in decimal, on the key and in ykman.
            (
                Some(DeviceInfo {
                    serial: Some(n), ..
                }),
                _,
            ) => Some(n.to_string()),
            // The secrets app's serial as the Nitrokey 3 HID family shows it.
            (_, Some(n)) => Some(format!("{n:08x}")),
            _ => None,
        };
        let model = match self.model {
            CardModel::Yubikey => {
                let major = self
                    .device
                    .as_ref()
                    .and_then(|d| d.version)
                    .map_or(s.version.0, |v| v.0);
                match self.device.as_ref().and_then(DeviceInfo::form_factor_name) {
                    Some(ff) => format!("YubiKey {major} {ff}"),
                    None => format!("YubiKey {major}"),
                }
            }
            CardModel::Nitrokey3 => "Nitrokey 3".to_string(),
            CardModel::SecretsApp => "OATH card (trussed secrets app)".to_string(),
            CardModel::Generic => "OATH smart card".to_string(),
        };
        Identity {
            serial,
            model,
            firmware: format!("{}.{}.{}", s.version.0, s.version.1, s.version.2),
            path: self.channel.reader().to_string(),
            pin_set: s.pin_retries.is_some(),
        }
    }

    fn locked(&self) -> bool {
        self.select.has_access_code() && self.key.is_none()
    }

    #[instrument(level = "debug", skip_all)]
    fn list(&mut self) -> Result<Vec<CredentialInfo>, Error> {
        let ctx = ListCtx {
            now: (self.clock)(),
        };
        let list = self.run(|link, select| ctx.list(link, select))?;
        self.kinds = list
            .iter()
            .filter_map(|c| c.kind.map(|k| (c.name.clone(), k)))
            .collect();
        Ok(list)
    }

    #[instrument(level = "debug", skip(self))]
    fn calculate(&mut self, name: &str, challenge: u64, touch: TouchWait) -> Result<Otp, Error> {
        // yubikit sends HOTP credentials an empty challenge; the secrets app (like its HID
        // dialect) gets the 8 bytes, which it ignores for HOTP.
        let hotp = self.kinds.get(name) == Some(&OtpKind::Hotp);
        let challenge = match (hotp, self.select.dialect()) {
            (true, Dialect::Yubikey) => None,
            _ => Some(challenge),
        };
        let command = proto::calculate_command(name, challenge)?;
        let hook = self.touch_hook();
        self.run(|link, _| {
            if touch == TouchWait::Expected {
                hook();
            }
            let reply = oath_call(link, &command)?;
            match reply.sw {
                StatusWord::OK => proto::parse_calculate(&reply.data),
                StatusWord::CONDITIONS_NOT_SATISFIED => Err(Error::Unsupported(format!(
                    "{name:?} is not an HOTP or TOTP credential"
                ))),
                sw => Err(proto::touch_error(sw)),
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(name = %credential.name))]
    fn put(&mut self, credential: &NewCredential) -> Result<(), Error> {
        if !self.select.algorithms().contains(&credential.algorithm) {
            return Err(self.unsupported(&format!("HMAC-{}", credential.algorithm)));
        }
        if credential.touch_required && !self.select.can_touch() {
            return Err(self.unsupported("tokens that require touch (YubiKey 4.2.6 and later)"));
        }
        let command = proto::put_command(credential)?;
        let hook = self.touch_hook();
        let name = credential.name.clone();
        self.run(|link, select| {
            // YKOATH's PUT silently overwrites a credential of the same name: refuse, so no
            // seed on record is ever replaced by accident.
            let reply = oath_call(link, &proto::list_command(false))?;
            if !reply.ok() {
                return Err(proto::common_error(reply.sw));
            }
            let existing = proto::parse_list(&reply.data, false)?;
            if existing.iter().any(|c| c.name == name) {
                return Err(Error::AlreadyExists);
            }
            if select.has_overwrite_bug()
                && existing.iter().any(|c| c.name.starts_with(name.as_str()))
            {
                return Err(Error::InvalidArgument(format!(
                    "{name:?} begins another token's name; YubiKey 4 before 4.3.5 would damage \
                     that token"
                )));
            }
            let touch = select.dialect() == Dialect::SecretsApp;
            if touch {
                // The secrets app asks for a touch before every PUT.
                hook();
            }
            let reply = oath_call(link, &command)?;
            match reply.sw {
                StatusWord::OK => Ok(()),
                StatusWord::OPERATION_BLOCKED => Err(Error::AlreadyExists),
                sw if touch => Err(proto::touch_error(sw)),
                sw => Err(proto::common_error(sw)),
            }
        })?;
        self.kinds.insert(credential.name.clone(), credential.kind);
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    fn delete(&mut self, name: &str) -> Result<(), Error> {
        let command = proto::delete_command(name)?;
        let hook = self.touch_hook();
        self.run(|link, select| {
            let touch = select.dialect() == Dialect::SecretsApp;
            if touch {
                hook();
            }
            let reply = oath_call(link, &command)?;
            match reply.sw {
                StatusWord::OK => Ok(()),
                sw if touch => Err(proto::touch_error(sw)),
                sw => Err(proto::common_error(sw)),
            }
        })?;
        self.kinds.remove(name);
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    fn rename(&mut self, name: &str, new_name: &str) -> Result<(), Error> {
        if !self.select.can_rename() {
            return Err(self.unsupported("renaming a token (YubiKey 5.3.1 and later)"));
        }
        let command = proto::rename_command(name, new_name)?;
        self.run(|link, _| {
            let reply = oath_call(link, &proto::list_command(false))?;
            if !reply.ok() {
                return Err(proto::common_error(reply.sw));
            }
            let existing = proto::parse_list(&reply.data, false)?;
            if !existing.iter().any(|c| c.name == name) {
                return Err(Error::NotFound);
            }
            if existing.iter().any(|c| c.name == new_name) {
                return Err(Error::AlreadyExists);
            }
            let reply = oath_call(link, &command)?;
            if reply.ok() {
                Ok(())
            } else {
                Err(proto::common_error(reply.sw))
            }
        })?;
        if let Some(kind) = self.kinds.remove(name) {
            self.kinds.insert(new_name.to_string(), kind);
        }
        Ok(())
    }

    fn setting(&mut self, setting: Setting) -> Result<bool, Error> {
        let bit = self.setting_bit(setting)?;
        self.check_cancel()?;
        let info = self.channel.transaction(|link| {
            read_device_info(link)?
                .ok_or_else(|| Error::Protocol("the management application went away".into()))
        })?;
        let enabled = info
            .writable_usb_enabled()
            .ok_or_else(|| Error::Protocol("the key no longer reports its USB config".into()))?;
        self.device = Some(info);
        Ok(enabled & bit != 0)
    }

    fn set_setting(&mut self, setting: Setting, value: bool) -> Result<(), Error> {
        let bit = self.setting_bit(setting)?;
        self.check_cancel()?;
        let field = setting.field();
        let info = self.channel.transaction(|link| {
            // Read-modify-write in one transaction: only our bit changes.
            let info = read_device_info(link)?
                .ok_or_else(|| Error::Protocol("the management application went away".into()))?;
            if info.config_locked {
                return Err(Error::Config {
                    field: field.into(),
                    reason: "the YubiKey's configuration is protected by a lock code",
                });
            }
            let enabled = info.writable_usb_enabled().ok_or_else(|| {
                Error::Protocol("the key no longer reports its USB config".into())
            })?;
            let wanted = if value { enabled | bit } else { enabled & !bit };
            if wanted == enabled {
                return Ok(info);
            }
            if wanted & !(capability::OTP | capability::U2F) == 0 {
                // Unreachable while we talk over CCID, but never write a key into silence.
                return Err(Error::Config {
                    field: field.into(),
                    reason: "that would turn off every USB application",
                });
            }
            let reply = wire::exchange(
                link,
                &management::write_usb_enabled_command(wanted),
                management::GET_RESPONSE,
            )?;
            if !reply.ok() {
                return Err(Error::Status(reply.sw));
            }
            let mut info = info;
            info.usb_enabled = Some(wanted);
            Ok(info)
        })?;
        debug!(%setting, value, "USB applications written; effective after replug");
        self.device = Some(info);
        Ok(())
    }

    fn ping(&mut self) -> Result<(), Error> {
        self.check_cancel()?;
        let select = self.channel.transaction(|link| select_oath(link))?;
        self.select = select;
        Ok(())
    }

    #[instrument(level = "debug", skip_all)]
    fn unlock(&mut self, code: &SecretString) -> Result<(), Error> {
        if self.select.dialect() != Dialect::Yubikey {
            return Err(self.unsupported("an access code"));
        }
        self.check_cancel()?;
        let ours = (self.challenges)();
        let (select, key) = self.channel.transaction(|link| {
            let select = select_oath(link)?;
            let Some(challenge) = &select.challenge else {
                // No code set: nothing to unlock.
                return Ok((select, None));
            };
            let key = AccessKey::derive(code, &select.salt);
            let validate = Validate::new(&key, select.algorithm, challenge, ours)?;
            let reply = oath_call(link, &validate.command)?;
            match reply.sw {
                StatusWord::OK => {
                    validate.check(&reply.data)?;
                    Ok((select, Some(key)))
                }
                StatusWord::INCORRECT_DATA => Err(Error::WrongAccessCode),
                sw => Err(proto::common_error(sw)),
            }
        })?;
        self.select = select;
        self.key = key;
        Ok(())
    }

    #[instrument(level = "debug", skip_all)]
    fn set_access_code(&mut self, code: Option<&SecretString>) -> Result<(), Error> {
        if self.select.dialect() != Dialect::Yubikey {
            return Err(self.unsupported("an access code"));
        }
        let challenge = (self.challenges)();
        let new_key = self.run(|link, select| {
            let (command, key) = match code {
                Some(code) => {
                    let key = AccessKey::derive(code, &select.salt);
                    (access::set_code_command(&key, challenge)?, Some(key))
                }
                None => (access::clear_code_command(), None),
            };
            let reply = oath_call(link, &command)?;
            if reply.ok() {
                Ok(key)
            } else {
                Err(proto::common_error(reply.sw))
            }
        })?;
        self.select.challenge = new_key.as_ref().map(|_| Vec::new());
        self.key = new_key;
        Ok(())
    }

    fn set_cancel_flag(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.cancel = flag;
    }

    fn set_touch_hook(&mut self, hook: Option<TouchHook>) {
        self.touch_hook = hook;
    }
}

/// What `list` needs inside its transaction.
struct ListCtx {
    now: u64,
}

impl ListCtx {
    fn list(
        &self,
        link: &mut dyn CardLink,
        select: &YkSelect,
    ) -> Result<Vec<CredentialInfo>, Error> {
        let extended = select.has_extended_list();
        let reply = oath_call(link, &proto::list_command(extended))?;
        if !reply.ok() {
            return Err(proto::common_error(reply.sw));
        }
        let mut list = proto::parse_list(&reply.data, extended)?;
        if select.dialect() == Dialect::Yubikey {
            // LIST does not tell touch; CALCULATE ALL does (7C). The time step does not matter
            // (the codes are thrown away), but a real one keeps an "only increasing"
            // credential's last challenge sane.
            let reply = oath_call(link, &proto::calculate_all_command(self.now / 30)?)?;
            if reply.ok() {
                proto::merge_touch(&mut list, &proto::parse_calculate_all(&reply.data)?);
            } else {
                debug!(sw = %reply.sw, "CALCULATE ALL refused; touch stays unknown");
            }
        }
        Ok(list)
    }
}

/// One OATH request with its chained answer.
fn oath_call(link: &mut dyn CardLink, command: &Command) -> Result<Reply, Error> {
    wire::exchange(link, command, ins::SEND_REMAINING)
}

/// SELECT of the OATH application.
fn select_oath(link: &mut dyn CardLink) -> Result<YkSelect, Error> {
    let reply = oath_call(link, &YkSelect::command())?;
    if reply.ok() {
        YkSelect::parse(&reply.data)
    } else if management::absent(reply.sw) {
        Err(Error::Unsupported(
            "this card has no OATH application".into(),
        ))
    } else {
        Err(Error::Status(reply.sw))
    }
}

/// Validates the held key when the card has an access code.
fn authenticate(
    link: &mut dyn CardLink,
    select: &YkSelect,
    key: Option<&AccessKey>,
    ours: [u8; CHALLENGE_LEN],
) -> Result<Auth, Error> {
    let Some(challenge) = &select.challenge else {
        return Ok(Auth::Open);
    };
    let Some(key) = key else {
        return Ok(Auth::Locked);
    };
    let validate = Validate::new(key, select.algorithm, challenge, ours)?;
    let reply = oath_call(link, &validate.command)?;
    match reply.sw {
        StatusWord::OK => {
            validate.check(&reply.data)?;
            Ok(Auth::Validated)
        }
        StatusWord::INCORRECT_DATA => Ok(Auth::Refused),
        sw => Err(proto::common_error(sw)),
    }
}

/// Reads the Management application's device information; `None` when the card has none.
fn read_device_info(link: &mut dyn CardLink) -> Result<Option<DeviceInfo>, Error> {
    let reply = wire::exchange(
        link,
        &management::select_command(),
        management::GET_RESPONSE,
    )?;
    if management::absent(reply.sw) {
        return Ok(None);
    }
    if !reply.ok() {
        return Err(Error::Status(reply.sw));
    }
    let mut info = DeviceInfo {
        version: management::parse_select(&reply.data),
        ..DeviceInfo::default()
    };
    // READ CONFIG exists from YubiKey 4.1.0 on.
    if info.version.is_some_and(|v| v >= (4, 1, 0)) {
        for page in 0..=u8::MAX {
            let reply = wire::exchange(
                link,
                &management::read_config_command(page),
                management::GET_RESPONSE,
            )?;
            if !reply.ok() {
                return Err(Error::Status(reply.sw));
            }
            if !info.add_page(&reply.data)? {
                break;
            }
        }
    }
    Ok(Some(info))
}

/// Tells the model from what the card said. Relies on, in order: the Management application
/// answering (only YubiKeys have it); the ATR's historical bytes naming "YubiKey" (YubiKey
/// NEO and later put it there); the secrets app's serial tag with a reader name that says
/// "Nitrokey 3" (pcsc-lite names readers after the USB product string); the serial tag alone.
fn identify(select: &YkSelect, device: Option<&DeviceInfo>, reader: &str, atr: &[u8]) -> CardModel {
    let atr_says_yubikey = atr.windows(7).any(|w| w.eq_ignore_ascii_case(b"yubikey"));
    match select.dialect() {
        Dialect::Yubikey if device.is_some() || atr_says_yubikey => CardModel::Yubikey,
        Dialect::Yubikey => CardModel::Generic,
        Dialect::SecretsApp if reader.contains("Nitrokey 3") => CardModel::Nitrokey3,
        Dialect::SecretsApp => CardModel::SecretsApp,
    }
}

fn random_challenge() -> [u8; CHALLENGE_LEN] {
    let mut bytes = [0u8; CHALLENGE_LEN];
    // The OS CSPRNG does not fail on supported systems; a zero challenge would still only
    // weaken the card's proof, not our own.
    if let Err(e) = getrandom::fill(&mut bytes) {
        tracing::warn!("no randomness for the access-code challenge: {e}");
    }
    bytes
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_told_apart() {
        let yk = YkSelect::parse(&[0x79, 3, 5, 4, 3, 0x71, 1, 0]).expect("valid");
        let nk =
            YkSelect::parse(&[0x79, 3, 4, 13, 0, 0x71, 1, 0, 0x8F, 4, 0, 0, 0, 1]).expect("valid");
        let info = DeviceInfo::default();
        assert_eq!(identify(&yk, Some(&info), "r", &[]), CardModel::Yubikey);
        assert_eq!(
            identify(
                &yk,
                None,
                "r",
                b"\x3b\xf8\x13\x00\x00\x81\x31\xfe\x15YubikeyG"
            ),
            CardModel::Yubikey
        );
        assert_eq!(
            identify(&yk, None, "Virtual PCD 00 00", &[0x3B, 0x80]),
            CardModel::Generic
        );
        assert_eq!(
            identify(
                &nk,
                None,
                "Nitrokey Nitrokey 3 [CCID/ICCD Interface] 00 00",
                &[]
            ),
            CardModel::Nitrokey3
        );
        assert_eq!(
            identify(&nk, None, "Virtual PCD 00 01", &[]),
            CardModel::SecretsApp
        );
    }
}
