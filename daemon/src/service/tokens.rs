//! Tokens on the keys: the cached lists (and keeping the ledger true to them), the search
//! by name, serial or account, and deleting a token.

use std::sync::Arc;

use oathkey_device::{CredentialInfo, OtpKind as DevKind, TokenLabel};
use oathkey_protocol::ErrorCode;
use oathkey_protocol::types::{
    Event, Operation, OtpKind, RenameParams, SeedState, TokenInfo, TokenParams,
};
use tracing::{info, warn};

use super::{Result, Service, ServiceError, device_error};
use crate::auth::Caller;
use crate::keys::KeyEntry;
use crate::ledger::Held;

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
        // The key's hash is the protocol's: one type (`oathkey-otp`).
        algorithm: cred.algorithm,
        touch: cred.touch_required,
    }
}
impl Service {
    pub(super) async fn credentials(
        &self,
        entry: &KeyEntry,
        fresh: bool,
    ) -> Result<Vec<CredentialInfo>> {
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
        let ledger = self.ledger.clone();
        let (tokens, listed_at) = entry
            .actor
            .run_quick(Operation::List, move |k| {
                // Read on the key's own thread, just before it lists: every record changed by
                // then was written before this list (see `Ledger::generation`).
                let listed_at = ledger.generation();
                k.list().map(|t| (t, listed_at))
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
    pub(super) async fn follow_key(&self, key: &str, present: &[CredentialInfo], listed_at: u64) {
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
    pub(super) async fn find_token(
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

    /// `tokens.delete` (admin).
    pub async fn delete_token(&self, caller: &Caller, p: TokenParams) -> Result<()> {
        Self::require_admin(caller, "deleting a token")?;
        let (entry, cred) = self.find_token(p.key.as_deref(), Some(&p.token)).await?;
        Self::check_claim(&entry, caller)?;
        let name = cred.name.clone();
        let result = entry
            .actor
            .run(Operation::Delete, Some(name.clone()), move |k| {
                k.delete(&name)
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

    /// `tokens.rename` (admin): the token keeps its seed, serial and period; its account
    /// changes, on the key (where the key renames in place) and in the ledger.
    pub async fn rename_token(&self, caller: &Caller, p: RenameParams) -> Result<TokenInfo> {
        Self::require_admin(caller, "renaming a token")?;
        // A key named up front is judged before the search: no need to look for a token on a
        // key that cannot rename it.
        if let Some(id) = p.key.as_deref() {
            Self::check_can_rename(&*self.key(Some(id))?)?;
        }
        let (entry, cred) = self.find_token(p.key.as_deref(), Some(&p.token)).await?;
        Self::check_claim(&entry, caller)?;
        Self::check_can_rename(&entry)?;
        let old = TokenLabel::parse(&cred.name);
        let Some(serial) = old.serial.as_deref() else {
            return Err(ServiceError::params(format!(
                "{:?} has no serial in its name (another tool made it); rename it with that tool",
                cred.name
            )));
        };
        let label = TokenLabel::new(serial, p.account.trim(), old.period)
            .map_err(|e| ServiceError::params(e.to_string()))?;
        let new_name = label.to_string();
        if new_name == cred.name {
            return Ok(token_info(&entry.id, &cred));
        }
        if self
            .credentials(&entry, true)
            .await?
            .iter()
            .any(|c| c.name == new_name)
        {
            return Err(ServiceError::new(
                ErrorCode::AlreadyExists,
                format!("key {} already has a token named {new_name:?}", entry.id),
            ));
        }
        let (from, to) = (cred.name.clone(), new_name.clone());
        let result = entry
            .actor
            .run(Operation::Rename, Some(cred.name.clone()), move |k| {
                k.rename(&from, &to)
            })
            .await;
        entry.invalidate_tokens();
        result.map_err(|e| device_error(&entry.id, e))?;
        // The ledger follows: every record whose seed this key may hold under the old name.
        for id in self.ledger.maybe_on_key(&entry.id, &cred.name) {
            let (name, user) = (new_name.clone(), label.account.clone());
            if let Err(e) = self.ledger_do(move |l| l.rename(&id, &name, &user)).await {
                warn!(key = %entry.id, token = %new_name, "cannot record the rename: {}", e.message);
            }
        }
        info!(key = %entry.id, from = %cred.name, to = %new_name, uid = ?caller.uid, "token renamed");
        let _ = self.registry.events().send(Event::TokensChanged {
            key: entry.id.clone(),
        });
        let renamed = CredentialInfo {
            name: new_name,
            ..cred
        };
        Ok(token_info(&entry.id, &renamed))
    }

    fn check_can_rename(entry: &KeyEntry) -> Result<()> {
        let info = entry.info();
        if info.capabilities.rename {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::Unsupported,
            format!(
                "key {} ({}, {}) cannot rename a token in place",
                entry.id,
                info.model,
                info.family.name()
            ),
        ))
    }
}
