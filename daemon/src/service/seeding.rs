//! Write-ahead seeding and its reconciliation: a seed is in the ledger before the key is
//! touched, verified by reading a code back, and settled against the key whenever the key
//! appears (after a crash, a seed may be pending or unverified).

use std::sync::Arc;

use data_encoding::BASE32_NOPAD;
use oathkey_device::oath::MAX_SECRET_LEN;
use oathkey_device::{Error as DeviceError, NewCredential, OtpKind as DevKind, TokenLabel};
use oathkey_otp::Base32Error;
use oathkey_protocol::types::{
    Algorithm, CreateTokenParams, CreatedToken, Event, Operation, OtpKind, SeedRecord, SeedState,
    TokenInfo,
};
use oathkey_protocol::{ErrorCode, SecretText};
use secrecy::SecretSlice;
use tracing::{info, warn};
use zeroize::Zeroizing;

use super::error::ledger_context;
use super::{Result, Service, ServiceError, device_error, touch_wait};
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::keys::KeyEntry;
use crate::ledger::seed_info;

/// Decodes a Base32 secret as people type it and checks that a key can hold it. The decoding is
/// the shared one ([`oathkey_otp::decode_base32`]: any case, spaces, dashes, `=` padding, and the
/// bits after the last whole byte dropped), so the daemon takes what the CLI, the seed files and
/// authenticator apps take: a 206-character secret is its 128 bytes, not "not Base32".
pub fn decode_base32(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = oathkey_otp::decode_base32(text).map_err(|e| {
        ServiceError::params(match e {
            Base32Error::NotBase32 => "secret is not Base32 (A-Z and 2-7)".to_string(),
            Base32Error::Empty | Base32Error::NoWholeByte => e.to_string(),
        })
    })?;
    if bytes.len() > MAX_SECRET_LEN {
        return Err(ServiceError::params(format!(
            "secret is {} bytes; a key holds at most {MAX_SECRET_LEN}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf)
        .map_err(|e| ServiceError::new(ErrorCode::InternalError, format!("no randomness: {e}")))?;
    Ok(buf)
}
impl Service {
    /// Settles what an earlier run left unsettled before anyone can ask, so that a client never
    /// sees a seed as pending that is in fact on a key (this never waits for a touch); then
    /// settles each key that (re)appears, as it comes.
    pub async fn settle_and_follow(self: &Arc<Self>) {
        for entry in self.registry.list() {
            self.reconcile(&entry.id).await;
        }
        // Subscribing only now keeps the keys above from being settled twice.
        let mut added = self.registry.events().subscribe();
        let service = self.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match added.recv().await {
                    Ok(Event::KeyAdded { key }) => service.reconcile(&key.id).await,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
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
        Self::check_can_create(&entry, &p)?;
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
            algorithm: p.algorithm,
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

        let written = entry
            .actor
            .run(Operation::Create, Some(name.clone()), move |k| {
                k.put(&credential)
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

    /// Refuses, before anything is recorded or sent, a token the key's family cannot hold.
    fn check_can_create(entry: &KeyEntry, p: &CreateTokenParams) -> Result<()> {
        let info = entry.info();
        let caps = &info.capabilities;
        let cannot = |what: String| {
            Err(ServiceError::new(
                ErrorCode::Unsupported,
                format!(
                    "key {} ({}, {}) cannot {what}",
                    entry.id,
                    info.model,
                    info.family.name()
                ),
            ))
        };
        if !caps.create {
            return cannot("store tokens".into());
        }
        if p.touch && !caps.touch {
            return cannot("make a token need a touch".into());
        }
        if p.kind == OtpKind::Hotp && !caps.hotp {
            return cannot("hold HOTP tokens".into());
        }
        if !caps.algorithms.contains(&p.algorithm) {
            return cannot(format!("compute {}", p.algorithm));
        }
        Ok(())
    }

    /// Reads a code back from the key and compares it with the daemon's own computation; the
    /// ledger records the outcome. A mismatch removes the token from the key.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn verify(
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
        // The same computation the virtual key makes (`oathkey-otp`): a difference can only come
        // from the key or the seed. Parameters it cannot compute with were refused before the
        // write; should a ledger record hold such, the token stays rather than being deleted
        // for a mismatch that never was.
        let expected = oathkey_otp::totp(algorithm, secret, u64::from(period), digits, now)
            .map_err(|e| {
                ServiceError::new(
                    ErrorCode::InternalError,
                    format!("cannot compute the expected code: {e}"),
                )
            })?;
        let read_name = name.to_string();
        let read = entry
            .actor
            .run(Operation::Verify, Some(name.to_string()), move |k| {
                k.totp(&read_name, now, touch)
            })
            .await;
        let id = seed_id.to_string();
        match read {
            Ok(otp) if otp.code == expected => {
                self.ledger_do(move |l| l.mark(&id, SeedState::Verified, None))
                    .await?;
                Ok(())
            }
            Ok(_) => {
                warn!(key = %entry.id, token = %name, "verification after write failed; removing the token");
                let delete_name = name.to_string();
                let deleted = entry
                    .actor
                    .run(Operation::Delete, Some(name.to_string()), move |k| {
                        k.delete(&delete_name)
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

    /// Marks the other records of `name` on `key` that the key may hold with `state` (the
    /// credential was deleted, or written again).
    pub(super) async fn supersede(
        &self,
        key: &str,
        name: &str,
        keep: Option<&str>,
        state: SeedState,
    ) {
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
}
