//! The service core: every operation the daemon offers, with its authorization. Frontends
//! (JSON-RPC on the socket, D-Bus) only translate; nothing here knows which one called.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::BASE32_NOPAD;
use oathkey_device::{
    CredentialInfo, Error as DeviceError, HashAlg, NewCredential, OtpKind as DevKind, Setting,
    TokenLabel, TouchWait,
};
use oathkey_protocol::types::{
    Algorithm, Code, CodeEntry, CodeParams, CodesParams, CreateTokenParams, CreatedToken, Event,
    Hello, KeyInfo, KeyList, MarkExportedParams, OtpKind, PurgeParams, Role, SeedInfo, SeedRecord,
    SeedState, SeedsParams, SetConfigParams, Settings, TokenInfo, TokenParams,
};
use oathkey_protocol::{ErrorCode, PROTOCOL_VERSION, SecretText};
use secrecy::SecretSlice;
use tokio::sync::broadcast;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::auth::{Authorizer, Caller};
use crate::keys::sources::attach_virtual;
use crate::keys::{CancelOnDrop, KeyEntry, Registry, TouchTurn};
use crate::ledger::{Held, Ledger, LedgerError, seed_info};
use crate::otp;

/// An error for a client: a stable code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// Stable code.
    pub code: ErrorCode,
    /// Message for people.
    pub message: String,
}

impl ServiceError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }
}

impl From<ServiceError> for oathkey_protocol::jsonrpc::ErrorObject {
    fn from(e: ServiceError) -> Self {
        Self::new(e.code, e.message)
    }
}

/// Maps a device error to a client error, naming the key.
pub fn device_error(key: &str, e: DeviceError) -> ServiceError {
    let code = match &e {
        DeviceError::Removed => ErrorCode::KeyRemoved,
        DeviceError::TouchTimeout => ErrorCode::TouchTimeout,
        DeviceError::PinRequired | DeviceError::PinNotSet => ErrorCode::PinRequired,
        DeviceError::WrongPin { .. } | DeviceError::PinBlocked | DeviceError::PinAlreadySet => {
            ErrorCode::PinInvalid
        }
        DeviceError::Busy(_) => ErrorCode::Busy,
        DeviceError::AlreadyExists => ErrorCode::AlreadyExists,
        DeviceError::NoSpace => ErrorCode::NoSpace,
        DeviceError::Unsupported(_) => ErrorCode::Unsupported,
        DeviceError::NotFound => ErrorCode::TokenNotFound,
        DeviceError::Cancelled => ErrorCode::Cancelled,
        DeviceError::InvalidArgument(_) | DeviceError::Config { .. } => ErrorCode::InvalidParams,
        _ => ErrorCode::DeviceError,
    };
    let message = match &e {
        DeviceError::Removed => format!("key {key} was removed"),
        DeviceError::TouchTimeout => {
            format!("key {key} was not touched in time; touch it when it blinks")
        }
        other => format!("key {key}: {other}"),
    };
    ServiceError::new(code, message)
}

/// The unix time now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a code read waits, from what the key told about the token (`touch_required`, known from
/// an extended list) and its Key Press setting (`None`: the key has no such setting).
///
/// Only a read known not to wait gets the quick timeout: a lost answer then blocks the key for
/// seconds instead of the touch timeout, and a wrong guess cannot cut a user's touch short.
pub fn touch_wait(touch_required: Option<bool>, key_press: Option<bool>) -> TouchWait {
    match (touch_required, key_press) {
        (Some(true), _) | (_, Some(true)) => TouchWait::Expected,
        (Some(false), _) => TouchWait::Never,
        (None, _) => TouchWait::Possible,
    }
}

type Result<T> = std::result::Result<T, ServiceError>;

/// Requests one reader (uid) may have waiting for a touch on one key.
pub const READER_TOUCH_WAITS: usize = 1;

/// The daemon's operations.
#[derive(Debug)]
pub struct Service {
    registry: Arc<Registry>,
    auth: RwLock<Authorizer>,
    ledger: Arc<Ledger>,
    /// One reconciliation at a time: a key's records are settled once, not twice in parallel.
    reconciling: tokio::sync::Mutex<()>,
}

fn ledger_error(e: LedgerError) -> ServiceError {
    ServiceError::new(ErrorCode::InternalError, e.to_string())
}

/// Adds what the failed ledger write means for the key to its error.
fn ledger_context(what: &'static str) -> impl FnOnce(ServiceError) -> ServiceError {
    move |e| ServiceError::new(e.code, format!("{}; {what}", e.message))
}

fn algorithm(alg: HashAlg) -> Algorithm {
    match alg {
        HashAlg::Sha1 => Algorithm::Sha1,
        HashAlg::Sha256 => Algorithm::Sha256,
        HashAlg::Sha512 => Algorithm::Sha512,
    }
}

fn hash_alg(alg: Algorithm) -> HashAlg {
    match alg {
        Algorithm::Sha1 => HashAlg::Sha1,
        Algorithm::Sha256 => HashAlg::Sha256,
        Algorithm::Sha512 => HashAlg::Sha512,
    }
}

/// A token as clients see it.
pub fn token_info(key: &str, cred: &CredentialInfo) -> TokenInfo {
    let label = TokenLabel::parse(&cred.name);
    TokenInfo {
        key: key.to_string(),
        name: cred.name.clone(),
        serial: label.serial,
        account: label.account,
        period: label.period,
        kind: match cred.kind {
            Some(DevKind::Totp) => OtpKind::Totp,
            Some(DevKind::Hotp) => OtpKind::Hotp,
            None => OtpKind::Other,
        },
        algorithm: cred.algorithm.map(algorithm),
        touch: cred.touch_required,
    }
}

/// Decodes a Base32 secret as people type it: any case, spaces, dashes, `=` padding.
pub fn decode_base32(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let bytes = BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|_| ServiceError::params("secret is not Base32 (A-Z and 2-7)"))?;
    if bytes.is_empty() || bytes.len() > oathkey_device::oath::MAX_SECRET_LEN {
        return Err(ServiceError::params(format!(
            "secret must be 1 to {} bytes, not {}",
            oathkey_device::oath::MAX_SECRET_LEN,
            bytes.len()
        )));
    }
    Ok(Zeroizing::new(bytes))
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf)
        .map_err(|e| ServiceError::new(ErrorCode::InternalError, format!("no randomness: {e}")))?;
    Ok(buf)
}

impl Service {
    /// A service over `registry` with the given admin rules, recording seeds in `ledger`.
    pub fn new(registry: Arc<Registry>, auth: Authorizer, ledger: Arc<Ledger>) -> Self {
        Self {
            registry,
            auth: RwLock::new(auth),
            ledger,
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    /// The seed ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Runs a ledger write off the async threads (it fsyncs).
    async fn ledger_do<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> std::result::Result<T, LedgerError> + Send + 'static,
    ) -> Result<T> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || f(&ledger))
            .await
            .map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(ledger_error)
    }

    /// The key registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Replaces the admin rules (SIGHUP).
    pub fn set_authorizer(&self, auth: Authorizer) {
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = auth;
    }

    /// Builds the caller for a connection from its peer credentials.
    pub fn caller(
        &self,
        conn: u64,
        uid: Option<u32>,
        gid: Option<u32>,
        pid: Option<i32>,
    ) -> Caller {
        let role = self
            .auth
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .role(uid, gid);
        Caller {
            conn,
            uid,
            gid,
            pid,
            role,
            frontend: Default::default(),
        }
    }

    fn require_admin(caller: &Caller, what: &str) -> Result<()> {
        if caller.is_admin() {
            Ok(())
        } else {
            caller.log_denied(&format!("{what} needs an admin"));
            Err(ServiceError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "{what} needs an admin; ask your administrator (admins are root and the configured admin users and groups)"
                ),
            ))
        }
    }

    fn check_claim(entry: &KeyEntry, caller: &Caller) -> Result<()> {
        match entry.claimant() {
            Some(conn) if conn != caller.conn => Err(ServiceError::new(
                ErrorCode::Claimed,
                format!(
                    "key {} is claimed by another client for a multi-step job; try again when it is done",
                    entry.id
                ),
            )),
            _ => Ok(()),
        }
    }

    fn key(&self, id: Option<&str>) -> Result<Arc<KeyEntry>> {
        match id {
            Some(id) => self.registry.get(id).ok_or_else(|| {
                let present: Vec<String> =
                    self.registry.list().iter().map(|e| e.id.clone()).collect();
                ServiceError::new(
                    ErrorCode::KeyNotFound,
                    if present.is_empty() {
                        format!("no key {id}: no key is plugged in")
                    } else {
                        format!("no key {id}; present: {}", present.join(", "))
                    },
                )
            }),
            None => {
                let keys = self.registry.list();
                match keys.as_slice() {
                    [] => Err(ServiceError::new(
                        ErrorCode::KeyNotFound,
                        "no key is plugged in",
                    )),
                    [one] => Ok(one.clone()),
                    many => Err(ServiceError::params(format!(
                        "{} keys are present ({}); choose one (oathkey --key ID, or the `key` param)",
                        many.len(),
                        many.iter()
                            .map(|e| e.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }

    /// `hello`.
    pub fn hello(&self, caller: &Caller) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            daemon: env!("CARGO_PKG_VERSION").to_string(),
            role: caller.role,
            uid: caller.uid,
        }
    }

    /// `keys.list`.
    pub fn keys(&self, _caller: &Caller) -> KeyList {
        KeyList {
            keys: self.registry.list().iter().map(|e| e.info()).collect(),
            unavailable: self.registry.unavailable(),
        }
    }

    /// `keys.info`.
    pub fn key_info(&self, _caller: &Caller, id: Option<&str>) -> Result<KeyInfo> {
        Ok(self.key(id)?.info())
    }

    /// `keys.wink`.
    pub async fn wink(&self, _caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.key(id)?;
        let cancel = CancelOnDrop::new();
        entry
            .actor
            .run("wink", None, &cancel, |k| k.wink())
            .await
            .map_err(|e| device_error(&entry.id, e))
    }

    /// `keys.get_config`.
    pub fn get_config(&self, _caller: &Caller, id: Option<&str>) -> Result<Settings> {
        Ok(self.key(id)?.settings())
    }

    /// `keys.set_config` (admin): each change needs a touch of the key.
    pub async fn set_config(&self, caller: &Caller, p: SetConfigParams) -> Result<Settings> {
        Self::require_admin(caller, "changing a key's settings")?;
        let entry = self.key(p.key.as_deref())?;
        Self::check_claim(&entry, caller)?;
        let current = entry.settings();
        let wanted = [
            (Setting::ModeKeyboard, p.keyboard, current.keyboard),
            (Setting::ModeU2f, p.u2f, current.u2f),
            (Setting::OtpKeyPress, p.key_press, current.key_press),
        ];
        if wanted.iter().all(|(_, new, _)| new.is_none()) {
            return Ok(current);
        }
        for (setting, new, now) in wanted {
            if new.is_some() && now.is_none() {
                return Err(ServiceError::new(
                    ErrorCode::Unsupported,
                    format!("key {} has no {setting} setting", entry.id),
                ));
            }
        }
        let keyboard = p.keyboard.or(current.keyboard);
        let u2f = p.u2f.or(current.u2f);
        if keyboard == Some(false) && u2f == Some(false) {
            return Err(ServiceError::params(
                "Mode needs at least one of Keyboard and U2F: a key with neither cannot be reached",
            ));
        }
        // Enable before disabling, so the key never passes through a state it refuses.
        let mut changes: Vec<(Setting, bool)> = wanted
            .iter()
            .filter_map(|(s, new, now)| new.filter(|v| Some(*v) != *now).map(|v| (*s, v)))
            .collect();
        changes.sort_by_key(|(_, v)| !*v);
        let mut settings = current;
        for (setting, value) in changes {
            let cancel = CancelOnDrop::new();
            entry
                .actor
                .run("config", None, &cancel, move |k| {
                    k.set_setting(setting, value)
                })
                .await
                .map_err(|e| device_error(&entry.id, e))?;
            match setting {
                Setting::ModeKeyboard => settings.keyboard = Some(value),
                Setting::ModeU2f => settings.u2f = Some(value),
                Setting::OtpKeyPress => settings.key_press = Some(value),
            }
            entry.set_settings(settings);
        }
        info!(key = %entry.id, ?settings, uid = ?caller.uid, "settings changed");
        let _ = self.registry.events().send(Event::ConfigChanged {
            key: entry.id.clone(),
            settings,
        });
        Ok(settings)
    }

    /// `keys.claim` (admin).
    pub fn claim(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        Self::require_admin(caller, "claiming a key")?;
        let entry = self.key(id)?;
        let was_claimed = entry.claimant().is_some();
        entry.claim(caller.conn).map_err(|_| {
            ServiceError::new(
                ErrorCode::Claimed,
                format!("key {} is already claimed by another client", entry.id),
            )
        })?;
        if !was_claimed {
            let _ = self.registry.events().send(Event::ClaimChanged {
                key: entry.id.clone(),
                claimed: true,
            });
        }
        Ok(())
    }

    /// `keys.release`.
    pub fn release(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.key(id)?;
        if entry.release(caller.conn) {
            let _ = self.registry.events().send(Event::ClaimChanged {
                key: entry.id.clone(),
                claimed: false,
            });
            Ok(())
        } else {
            Err(ServiceError::params(format!(
                "you hold no claim on key {}",
                entry.id
            )))
        }
    }

    /// A connection closed: its claims end.
    pub fn disconnected(&self, conn: u64) {
        self.registry.release_claims(conn);
    }

    async fn credentials(&self, entry: &KeyEntry, fresh: bool) -> Result<Vec<CredentialInfo>> {
        if !fresh && let Some(tokens) = entry.cached_tokens() {
            return Ok(tokens);
        }
        // An expired cache is refilled by one LIST, not by one per client that finds it expired
        // (under load, hundreds of LISTs queued on the key at every expiry).
        let _turn = if fresh {
            None
        } else {
            let turn = entry.refill_turn().await;
            if let Some(tokens) = entry.cached_tokens() {
                return Ok(tokens);
            }
            Some(turn)
        };
        let cancel = CancelOnDrop::new();
        let ledger = self.ledger.clone();
        let (tokens, listed_at) = entry
            .actor
            .run_quick("list", &cancel, move |k| {
                // Read on the key's own thread, just before it lists: every record changed by
                // then was written before this list (see `Ledger::generation`).
                let listed_at = ledger.generation();
                k.list(None).map(|t| (t, listed_at))
            })
            .await
            .map_err(|e| device_error(&entry.id, e))?;
        entry.store_tokens(tokens.clone());
        self.follow_key(&entry.id, &tokens, listed_at).await;
        Ok(tokens)
    }

    /// Keeps the ledger true to a key's list: a seed the ledger says the key holds, absent from
    /// a list taken after it was written, is marked missing (deleted by another tool, or the
    /// key was reset), so it is no longer exported or restored.
    async fn follow_key(&self, key: &str, present: &[CredentialInfo], listed_at: u64) {
        let gone: Vec<Held> = self
            .ledger
            .held_by(key)
            .into_iter()
            .filter(|h| h.changed <= listed_at && !present.iter().any(|c| c.name == h.name))
            .collect();
        for held in gone {
            warn!(key, token = %held.name, "a seed the ledger says is on the key is not there; marked missing");
            let reason = Some(format!(
                "not on key {key} when its tokens were listed: deleted by another tool, or the key was reset"
            ));
            let id = held.id.clone();
            if let Err(e) = self
                .ledger_do(move |l| l.mark(&id, SeedState::Missing, reason))
                .await
            {
                warn!(key, "cannot record a missing seed: {}", e.message);
            }
        }
    }

    /// Marks the other records of `name` on `key` that the key may hold with `state` (the
    /// credential was deleted, or written again).
    async fn supersede(&self, key: &str, name: &str, keep: Option<&str>, state: SeedState) {
        let ids: Vec<String> = self
            .ledger
            .maybe_on_key(key, name)
            .into_iter()
            .filter(|id| Some(id.as_str()) != keep)
            .collect();
        for id in ids {
            let reason = Some(match state {
                SeedState::Deleted => format!("deleted from key {key}"),
                _ => format!("key {key} holds a newer seed under the same name"),
            });
            if let Err(e) = self.ledger_do(move |l| l.mark(&id, state, reason)).await {
                warn!(key, token = %name, "cannot record the token's change: {}", e.message);
            }
        }
    }

    /// `tokens.list`: one key, or all keys.
    pub async fn tokens(&self, _caller: &Caller, id: Option<&str>) -> Result<Vec<TokenInfo>> {
        let entries = match id {
            Some(id) => vec![self.key(Some(id))?],
            None => self.registry.list(),
        };
        let mut out = Vec::new();
        for entry in entries {
            match self.credentials(&entry, false).await {
                Ok(creds) => out.extend(creds.iter().map(|c| token_info(&entry.id, c))),
                // A key removed while we list all keys is simply no longer there.
                Err(e) if id.is_none() && e.code == ErrorCode::KeyRemoved => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Finds the token a query names: its exact name, else its serial, else its account.
    async fn find_token(
        &self,
        key: Option<&str>,
        query: Option<&str>,
    ) -> Result<(Arc<KeyEntry>, CredentialInfo)> {
        let entries = match key {
            Some(id) => vec![self.key(Some(id))?],
            None if self.registry.list().is_empty() => {
                return Err(ServiceError::new(
                    ErrorCode::KeyNotFound,
                    "no key is plugged in",
                ));
            }
            None => self.registry.list(),
        };
        let named = key.is_some();
        // A miss in a cached list may be stale: look once more with fresh lists.
        for fresh in [false, true] {
            let mut all = Vec::new();
            let mut failed = None;
            for entry in &entries {
                match self.credentials(entry, fresh).await {
                    Ok(creds) => all.extend(creds.into_iter().map(|c| (entry.clone(), c))),
                    // Searching every key: one that is unplugged or busy right now must not
                    // hide a token on another; its error matters only if nothing is found.
                    Err(e) if !named => failed = Some(e),
                    Err(e) => return Err(e),
                }
            }
            let matches: Vec<(Arc<KeyEntry>, CredentialInfo)> = match query {
                None => all,
                Some(q) => {
                    let by = |f: &dyn Fn(&CredentialInfo) -> bool| -> Vec<_> {
                        all.iter().filter(|(_, c)| f(c)).cloned().collect()
                    };
                    let exact = by(&|c| c.name == q);
                    if !exact.is_empty() {
                        exact
                    } else {
                        let serial =
                            by(&|c| TokenLabel::parse(&c.name).serial.as_deref() == Some(q));
                        if !serial.is_empty() {
                            serial
                        } else {
                            by(&|c| TokenLabel::parse(&c.name).account.eq_ignore_ascii_case(q))
                        }
                    }
                }
            };
            if let [single] = matches.as_slice() {
                return Ok(single.clone());
            }
            if matches.len() > 1 {
                let names: Vec<String> = matches
                    .iter()
                    .map(|(e, c)| format!("{}/{}", e.id, c.name))
                    .collect();
                let several_keys = matches.iter().any(|(e, _)| e.id != matches[0].0.id);
                let advice = if several_keys {
                    "choose the key (`key`, or --key with the CLI) or name the token exactly"
                } else {
                    "name the token exactly"
                };
                return Err(ServiceError::params(format!(
                    "{} tokens match: {}; {advice}",
                    names.len(),
                    names.join(", ")
                )));
            }
            if fresh {
                return Err(failed.unwrap_or_else(|| {
                    ServiceError::new(
                        ErrorCode::TokenNotFound,
                        match query {
                            Some(q) => format!("no token named {q:?} (by name, serial or account)"),
                            None => {
                                "no token on the key; create one with `oathkey token new`".into()
                            }
                        },
                    )
                }));
            }
        }
        Err(ServiceError::new(ErrorCode::TokenNotFound, "no such token"))
    }

    fn check_time(caller: &Caller, at: Option<u64>, period: u64) -> Result<u64> {
        let now = unix_now();
        match at {
            None => Ok(now),
            // Future codes would let a reader use a key's codes after losing access to it.
            Some(t) if !caller.is_admin() && t.abs_diff(now) > period => {
                caller.log_denied("a code for a time more than one period away needs an admin");
                Err(ServiceError::new(
                    ErrorCode::PermissionDenied,
                    "only admins may compute codes for times more than one period away from now",
                ))
            }
            // The answer says when the code stops being valid: that second must exist.
            Some(t)
                if (t / period)
                    .checked_add(1)
                    .and_then(|s| s.checked_mul(period))
                    .is_none() =>
            {
                Err(ServiceError::params(format!(
                    "`at` {t} is out of range: the end of its {period} s period does not fit in 64 bits"
                )))
            }
            Some(t) => Ok(t),
        }
    }

    /// `codes.get`.
    pub async fn code(&self, caller: &Caller, p: CodeParams) -> Result<Code> {
        let (entry, cred) = self
            .find_token(p.key.as_deref(), p.token.as_deref())
            .await?;
        match self.read_code(caller, &p, entry, cred).await {
            // The token was in a list the key no longer matches (another tool deleted it):
            // search once more on a fresh list, which also brings the ledger up to date.
            Err(e) if e.code == ErrorCode::TokenNotFound => {
                let (entry, cred) = self
                    .find_token(p.key.as_deref(), p.token.as_deref())
                    .await?;
                self.read_code(caller, &p, entry, cred).await
            }
            other => other,
        }
    }

    async fn read_code(
        &self,
        caller: &Caller,
        p: &CodeParams,
        entry: Arc<KeyEntry>,
        cred: CredentialInfo,
    ) -> Result<Code> {
        let token = token_info(&entry.id, &cred);
        let touch = touch_wait(cred.touch_required, entry.settings().key_press);
        let _turn = self.touch_turn(caller, &entry, touch)?;
        let cancel = CancelOnDrop::new();
        match token.kind {
            OtpKind::Totp => {
                let period = u64::from(token.period);
                let t = Self::check_time(caller, p.at, period)?;
                let step = t / period;
                let otp = entry
                    .actor
                    .code(cred.name.clone(), step, touch, &cancel)
                    .await
                    .map_err(|e| self.code_error(&entry, e))?;
                Ok(Code {
                    digits: otp.digits,
                    code: otp.code,
                    valid_from: Some(step * period),
                    valid_until: Some((step + 1) * period),
                    token,
                })
            }
            OtpKind::Hotp => {
                let name = cred.name.clone();
                let otp = entry
                    .actor
                    .run("code", Some(name.clone()), &cancel, move |k| {
                        k.calculate(&name, 0, touch, None)
                    })
                    .await
                    .map_err(|e| self.code_error(&entry, e))?;
                Ok(Code {
                    digits: otp.digits,
                    code: otp.code,
                    valid_from: None,
                    valid_until: None,
                    token,
                })
            }
            OtpKind::Other => Err(ServiceError::new(
                ErrorCode::Unsupported,
                format!("{} is not an OTP token", cred.name),
            )),
        }
    }

    /// A reader may have one request waiting for a touch per key: each can hold the key for
    /// the touch timeout, and one user queueing many would hold it for everyone who comes
    /// after (admins are not limited).
    fn touch_turn(
        &self,
        caller: &Caller,
        entry: &Arc<KeyEntry>,
        touch: TouchWait,
    ) -> Result<Option<TouchTurn>> {
        if caller.is_admin() || touch == TouchWait::Never {
            return Ok(None);
        }
        entry
            .touch_turn(caller.uid, READER_TOUCH_WAITS)
            .map(Some)
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::Busy,
                    format!(
                        "you already have a request waiting for a touch on key {}; touch the key (or cancel that request) first",
                        entry.id
                    ),
                )
            })
    }

    fn code_error(&self, entry: &KeyEntry, e: DeviceError) -> ServiceError {
        if e == DeviceError::NotFound {
            entry.invalidate_tokens();
        }
        device_error(&entry.id, e)
    }

    /// `codes.all`: every TOTP token that needs no touch (and, if asked, those that do).
    pub async fn codes(&self, caller: &Caller, p: CodesParams) -> Result<Vec<CodeEntry>> {
        let entries = match p.key.as_deref() {
            Some(id) => vec![self.key(Some(id))?],
            None => self.registry.list(),
        };
        let mut out = Vec::new();
        for entry in entries {
            let key_press = entry.settings().key_press;
            for cred in self.credentials(&entry, false).await? {
                let token = token_info(&entry.id, &cred);
                let wait = touch_wait(cred.touch_required, key_press);
                let touch = wait == TouchWait::Expected;
                let mut item = CodeEntry {
                    token: token.clone(),
                    code: None,
                    digits: None,
                    valid_from: None,
                    valid_until: None,
                    error: None,
                };
                if token.kind != OtpKind::Totp {
                    // Reading an HOTP code uses it up; only an explicit codes.get does that.
                    item.error = Some(
                        if token.kind == OtpKind::Hotp {
                            "HotpNotRead"
                        } else {
                            "Unsupported"
                        }
                        .into(),
                    );
                } else if touch && !p.include_touch {
                    item.error = Some("TouchRequired".into());
                } else {
                    let period = u64::from(token.period);
                    let t = Self::check_time(caller, p.at, period)?;
                    let step = t / period;
                    let _turn = match self.touch_turn(caller, &entry, wait) {
                        Ok(turn) => turn,
                        Err(e) => {
                            item.error = Some(e.code.name().to_string());
                            out.push(item);
                            continue;
                        }
                    };
                    let cancel = CancelOnDrop::new();
                    match entry
                        .actor
                        .code(cred.name.clone(), step, wait, &cancel)
                        .await
                    {
                        Ok(otp) => {
                            item.code = Some(otp.code.clone());
                            item.digits = Some(otp.digits);
                            item.valid_from = Some(step * period);
                            item.valid_until = Some((step + 1) * period);
                        }
                        Err(e) => {
                            item.error = Some(self.code_error(&entry, e).code.name().to_string())
                        }
                    }
                }
                out.push(item);
            }
        }
        Ok(out)
    }

    /// `tokens.create` (admin): the vendor admin tool's New Token / Generate / Save.
    pub async fn create_token(
        &self,
        caller: &Caller,
        p: CreateTokenParams,
    ) -> Result<CreatedToken> {
        Self::require_admin(caller, "creating a token")?;
        let entry = self.key(p.key.as_deref())?;
        Self::check_claim(&entry, caller)?;
        if !matches!(p.digits, 6 | 8) {
            return Err(ServiceError::params(format!(
                "digits must be 6 or 8, not {}",
                p.digits
            )));
        }
        let kind = match p.kind {
            OtpKind::Totp => DevKind::Totp,
            OtpKind::Hotp => DevKind::Hotp,
            OtpKind::Other => return Err(ServiceError::params("kind must be totp or hotp")),
        };
        let secret = match &p.secret {
            Some(text) => decode_base32(text.expose())?,
            None => random_bytes(20)?,
        };
        let existing = self.credentials(&entry, true).await?;
        let serial = match &p.serial {
            Some(s) => s.clone(),
            None => loop {
                let digits = random_bytes(8)?;
                let serial: String = digits.iter().map(|b| char::from(b'0' + b % 10)).collect();
                if !existing
                    .iter()
                    .any(|c| TokenLabel::parse(&c.name).serial.as_deref() == Some(&serial))
                {
                    break serial;
                }
            },
        };
        let label = TokenLabel::new(&serial, p.account.trim(), p.period)
            .map_err(|e| ServiceError::params(e.to_string()))?;
        let name = label.to_string();
        if existing
            .iter()
            .any(|c| TokenLabel::parse(&c.name).serial.as_deref() == Some(serial.as_str()))
        {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("key {} already has a token with serial {serial}", entry.id),
            ));
        }
        let credential = NewCredential {
            name: name.clone(),
            kind,
            algorithm: hash_alg(p.algorithm),
            digits: p.digits,
            secret: SecretSlice::from(secret.to_vec()),
            touch_required: p.touch,
            pin_protected: false,
            initial_counter: p.counter,
        };
        // Everything the key would refuse is refused before the ledger records anything.
        credential
            .validate()
            .map_err(|e| device_error(&entry.id, e))?;
        let secret_text = SecretText::new(BASE32_NOPAD.encode(&secret));
        // Write ahead: the seed is on disk before the key is touched.
        let info = seed_info(
            &entry.id,
            &name,
            &serial,
            &label.account,
            p.kind,
            p.algorithm,
            p.digits,
            p.period,
            p.counter,
            &entry.info().model,
        );
        let seed_id = info.id.clone();
        let record = (info, secret_text.clone());
        self.ledger_do(move |l| l.begin(record.0, record.1))
            .await
            .map_err(ledger_context("nothing was written to the key"))?;

        let cancel = CancelOnDrop::new();
        let written = entry
            .actor
            .run("create", Some(name.clone()), &cancel, move |k| {
                k.put(&credential, None)
            })
            .await;
        entry.invalidate_tokens();
        if let Err(e) = written {
            // A refusal before writing leaves the key as it was; anything else (removed,
            // timed out) leaves it unknown until the key is seen again.
            let (state, reason) = match &e {
                DeviceError::AlreadyExists
                | DeviceError::NoSpace
                | DeviceError::TouchTimeout
                | DeviceError::Unsupported(_)
                | DeviceError::InvalidArgument(_) => {
                    (SeedState::NotOnKey, format!("the key refused it: {e}"))
                }
                other => (
                    SeedState::Pending,
                    format!(
                        "the write did not report back ({other}); checked when the key is seen again"
                    ),
                ),
            };
            let id = seed_id.clone();
            let _ = self
                .ledger_do(move |l| l.mark(&id, state, Some(reason)))
                .await;
            return Err(device_error(&entry.id, e));
        }
        let id = seed_id.clone();
        self.ledger_do(move |l| l.mark(&id, SeedState::Written, None))
            .await?;
        self.supersede(&entry.id, &name, Some(&seed_id), SeedState::Replaced)
            .await;

        if kind == DevKind::Totp {
            self.verify(
                &entry,
                &seed_id,
                &name,
                p.algorithm,
                p.digits,
                p.period,
                &secret,
            )
            .await?;
        }
        info!(key = %entry.id, token = %name, uid = ?caller.uid, "token created");
        let _ = self.registry.events().send(Event::TokensChanged {
            key: entry.id.clone(),
        });
        let info = TokenInfo {
            key: entry.id.clone(),
            name: name.clone(),
            serial: Some(serial.clone()),
            account: label.account.clone(),
            period: p.period,
            kind: p.kind,
            algorithm: Some(p.algorithm),
            touch: Some(p.touch),
        };
        Ok(CreatedToken {
            seed_id: Some(seed_id),
            token: info,
            serial,
            secret: secret_text,
            digits: p.digits,
            algorithm: p.algorithm,
            period: p.period,
            kind: p.kind,
        })
    }

    /// Reads a code back from the key and compares it with the daemon's own computation; the
    /// ledger records the outcome. A mismatch removes the token from the key.
    #[allow(clippy::too_many_arguments)]
    async fn verify(
        &self,
        entry: &Arc<KeyEntry>,
        seed_id: &str,
        name: &str,
        algorithm: Algorithm,
        digits: u8,
        period: u32,
        secret: &[u8],
    ) -> Result<()> {
        let listed = self
            .credentials(entry, true)
            .await?
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.touch_required);
        let touch = touch_wait(listed.flatten(), entry.settings().key_press);
        let now = unix_now();
        let cancel = CancelOnDrop::new();
        let read_name = name.to_string();
        let read = entry
            .actor
            .run("verify", Some(name.to_string()), &cancel, move |k| {
                k.totp(&read_name, now, touch, None)
            })
            .await;
        let expected = otp::totp(algorithm, digits, period, secret, now);
        let id = seed_id.to_string();
        match read {
            Ok(otp) if otp.code == expected => {
                self.ledger_do(move |l| l.mark(&id, SeedState::Verified, None))
                    .await?;
                Ok(())
            }
            Ok(_) => {
                warn!(key = %entry.id, token = %name, "verification after write failed; removing the token");
                let cancel = CancelOnDrop::new();
                let delete_name = name.to_string();
                let deleted = entry
                    .actor
                    .run("delete", Some(name.to_string()), &cancel, move |k| {
                        k.delete(&delete_name, None)
                    })
                    .await;
                entry.invalidate_tokens();
                let reason = match deleted {
                    Ok(()) => {
                        "the key computed a different code; the token was deleted from the key"
                            .to_string()
                    }
                    Err(e) => format!(
                        "the key computed a different code; deleting it failed ({e}): the key still holds it"
                    ),
                };
                self.ledger_do(move |l| l.mark(&id, SeedState::Failed, Some(reason)))
                    .await?;
                Err(ServiceError::new(
                    ErrorCode::DeviceError,
                    format!(
                        "key {} computed a different code than the seed gives; the token was not kept",
                        entry.id
                    ),
                ))
            }
            Err(e) => {
                let reason = format!("on the key, but reading a code back failed: {e}");
                self.ledger_do(move |l| l.mark(&id, SeedState::Written, Some(reason)))
                    .await?;
                Err(device_error(&entry.id, e))
            }
        }
    }

    /// Settles the ledger records of a key that (re)appeared: a pending or written seed is
    /// either on the key (then verified) or not (then marked so).
    pub async fn reconcile(&self, key: &str) {
        let _one_at_a_time = self.reconciling.lock().await;
        let unsettled = self.ledger.unsettled(key);
        if unsettled.is_empty() {
            return;
        }
        let Some(entry) = self.registry.get(key) else {
            return;
        };
        let present = match self.credentials(&entry, true).await {
            Ok(c) => c,
            Err(e) => {
                warn!(key, "cannot check unsettled seeds now: {}", e.message);
                return;
            }
        };
        let secrets: std::collections::HashMap<String, SeedRecord> = self
            .ledger
            .records()
            .into_iter()
            .map(|r| (r.info.id.clone(), r))
            .collect();
        let key_press = entry.settings().key_press == Some(true);
        for info in unsettled {
            let id = info.id.clone();
            let Some(cred) = present.iter().find(|c| c.name == info.name) else {
                if info.state != SeedState::Pending {
                    // Written, then gone: listing the key marked it missing.
                    continue;
                }
                let reason = Some("not on the key: the write never reached it".to_string());
                let _ = self
                    .ledger_do(move |l| l.mark(&id, SeedState::NotOnKey, reason))
                    .await;
                continue;
            };
            // Never wait for a touch here: nobody is at the key when a daemon starts or a key is
            // plugged in. Such seeds are on the key; say that they are not verified.
            let needs_touch = cred.touch_required == Some(true) || key_press;
            if info.kind != OtpKind::Totp || needs_touch {
                if info.state == SeedState::Pending {
                    let reason = (info.kind == OtpKind::Totp).then(|| {
                        "on the key; not verified (reading a code needs a touch)".to_string()
                    });
                    let _ = self
                        .ledger_do(move |l| l.mark(&id, SeedState::Written, reason))
                        .await;
                }
                continue;
            }
            let Some(record) = secrets.get(&info.id) else {
                continue;
            };
            let Ok(secret) = decode_base32(record.secret.expose()) else {
                continue;
            };
            match self
                .verify(
                    &entry,
                    &info.id,
                    &info.name,
                    info.algorithm,
                    info.digits,
                    info.period,
                    &secret,
                )
                .await
            {
                Ok(()) => {
                    info!(key, serial = %info.serial, "unsettled seed found on the key and verified")
                }
                Err(e) => warn!(key, serial = %info.serial, "unsettled seed: {}", e.message),
            }
        }
    }

    fn select_seeds(&self, p: &SeedsParams) -> Vec<SeedRecord> {
        self.ledger
            .records()
            .into_iter()
            .filter(|r| p.include_incomplete || p.stale || r.info.state.exportable())
            .filter(|r| !p.stale || r.info.state.stale())
            .filter(|r| !p.not_exported || r.info.exported_at.is_none())
            .filter(|r| {
                p.serials
                    .as_ref()
                    .is_none_or(|s| s.contains(&r.info.serial))
            })
            .filter(|r| {
                p.users
                    .as_ref()
                    .is_none_or(|u| u.iter().any(|u| u.eq_ignore_ascii_case(&r.info.user)))
            })
            .collect()
    }

    /// `seeds.list` (admin): records without secrets.
    pub fn seeds_list(&self, caller: &Caller, p: SeedsParams) -> Result<Vec<SeedInfo>> {
        Self::require_admin(caller, "reading the seed ledger")?;
        Ok(self.select_seeds(&p).into_iter().map(|r| r.info).collect())
    }

    /// `seeds.export` (admin): records with secrets.
    pub fn seeds_export(&self, caller: &Caller, p: SeedsParams) -> Result<Vec<SeedRecord>> {
        Self::require_admin(caller, "exporting seeds")?;
        let records = self.select_seeds(&p);
        info!(count = records.len(), uid = ?caller.uid, "seeds exported to an admin");
        Ok(records)
    }

    /// `seeds.mark_exported` (admin).
    pub async fn seeds_mark_exported(
        &self,
        caller: &Caller,
        p: MarkExportedParams,
    ) -> Result<usize> {
        Self::require_admin(caller, "marking seeds exported")?;
        self.ledger_do(move |l| l.mark_exported(&p.ids, &p.format))
            .await
    }

    /// `seeds.purge` (admin): deletes exported seeds and/or seeds no key holds; a seed a key
    /// may hold is never deleted before it was exported.
    pub async fn seeds_purge(&self, caller: &Caller, p: PurgeParams) -> Result<usize> {
        Self::require_admin(caller, "purging seeds")?;
        if !p.exported && !p.stale {
            return Err(ServiceError::params(
                "say which seeds to purge: exported = true (seeds already in a seed file) and/or stale = true (seeds no key holds)",
            ));
        }
        self.ledger_do(move |l| {
            l.purge(|info| {
                (p.exported && info.exported_at.is_some()) || (p.stale && info.state.stale())
            })
        })
        .await
    }

    /// `tokens.delete` (admin).
    pub async fn delete_token(&self, caller: &Caller, p: TokenParams) -> Result<()> {
        Self::require_admin(caller, "deleting a token")?;
        let (entry, cred) = self.find_token(p.key.as_deref(), Some(&p.token)).await?;
        Self::check_claim(&entry, caller)?;
        let cancel = CancelOnDrop::new();
        let name = cred.name.clone();
        let result = entry
            .actor
            .run("delete", Some(name.clone()), &cancel, move |k| {
                k.delete(&name, None)
            })
            .await;
        entry.invalidate_tokens();
        result.map_err(|e| device_error(&entry.id, e))?;
        self.supersede(&entry.id, &cred.name, None, SeedState::Deleted)
            .await;
        info!(key = %entry.id, token = %cred.name, uid = ?caller.uid, "token deleted");
        let _ = self.registry.events().send(Event::TokensChanged {
            key: entry.id.clone(),
        });
        Ok(())
    }

    /// Events for subscribers.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.registry.events().subscribe()
    }

    fn virtual_key(&self, caller: &Caller, id: Option<&str>) -> Result<Arc<KeyEntry>> {
        Self::require_admin(caller, "controlling a virtual key")?;
        let entry = self.key(id)?;
        if entry.virtual_handle.is_none() {
            return Err(ServiceError::new(
                ErrorCode::Unsupported,
                format!("key {} is not an in-process virtual key", entry.id),
            ));
        }
        Ok(entry)
    }

    /// `virtual.unplug` (admin).
    pub fn virtual_unplug(&self, caller: &Caller, id: Option<&str>) -> Result<()> {
        let entry = self.virtual_key(caller, id)?;
        if let Some(handle) = &entry.virtual_handle {
            handle.unplug();
            self.registry.park(&entry.id, handle.clone());
        }
        self.registry.remove(&entry.id, None);
        Ok(())
    }

    /// `virtual.plug` (admin).
    pub async fn virtual_plug(&self, caller: &Caller, id: Option<&str>) -> Result<String> {
        Self::require_admin(caller, "controlling a virtual key")?;
        let id =
            id.ok_or_else(|| ServiceError::params("name the unplugged virtual key with `key`"))?;
        let handle = self.registry.unpark(id).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::KeyNotFound,
                format!("no unplugged virtual key {id}"),
            )
        })?;
        handle.replug();
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || attach_virtual(&registry, handle))
            .await
            .map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))?
            .map_err(|e| ServiceError::new(ErrorCode::DeviceError, e.to_string()))
    }

    /// `virtual.press` (admin): whether a request was waiting for the touch.
    pub fn virtual_press(&self, caller: &Caller, id: Option<&str>) -> Result<bool> {
        let entry = self.virtual_key(caller, id)?;
        Ok(entry.virtual_handle.as_ref().is_some_and(|h| h.press()))
    }

    /// Whether `caller` is an admin (for frontends that filter by role).
    pub fn role(&self, caller: &Caller) -> Role {
        caller.role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_known_not_to_wait_for_a_touch_gets_the_quick_timeout() {
        assert_eq!(touch_wait(Some(false), Some(false)), TouchWait::Never);
        assert_eq!(touch_wait(Some(false), None), TouchWait::Never);
        assert_eq!(touch_wait(Some(true), Some(false)), TouchWait::Expected);
        assert_eq!(touch_wait(Some(false), Some(true)), TouchWait::Expected);
        assert_eq!(touch_wait(None, Some(true)), TouchWait::Expected);
        assert_eq!(touch_wait(None, Some(false)), TouchWait::Possible);
        assert_eq!(touch_wait(None, None), TouchWait::Possible);
    }
}
