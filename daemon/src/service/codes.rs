//! Codes: one token's, every token's, and the rules for touch waits (how long a read may
//! wait, and how many a reader may queue).

use std::sync::Arc;

use oathkey_device::{CredentialInfo, Error as DeviceError, TouchWait};
use oathkey_protocol::ErrorCode;
use oathkey_protocol::types::{
    Code, CodeEntry, CodeParams, CodesParams, NoCode, Operation, OtpKind,
};

use super::{Result, Service, ServiceError, device_error, token_info};
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::keys::{KeyEntry, TouchTurn};

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
/// Requests one reader (uid) may have waiting for a touch on one key.
pub const READER_TOUCH_WAITS: usize = 1;
impl Service {
    pub(super) fn check_time(caller: &Caller, at: Option<u64>, period: u64) -> Result<u64> {
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

    pub(super) async fn read_code(
        &self,
        caller: &Caller,
        p: &CodeParams,
        entry: Arc<KeyEntry>,
        cred: CredentialInfo,
    ) -> Result<Code> {
        let token = token_info(&entry.id, &cred);
        let touch = touch_wait(cred.touch_required, entry.settings().key_press);
        let _turn = self.touch_turn(caller, &entry, touch)?;
        match token.kind {
            OtpKind::Totp => {
                let period = u64::from(token.period);
                let t = Self::check_time(caller, p.at, period)?;
                let step = t / period;
                let otp = entry
                    .actor
                    .code(cred.name.clone(), step, touch)
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
                    .run(Operation::Code, Some(name.clone()), move |k| {
                        k.calculate(&name, 0, touch)
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
    pub(super) fn touch_turn(
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

    pub(super) fn code_error(&self, entry: &KeyEntry, e: DeviceError) -> ServiceError {
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
                    item.error = Some(if token.kind == OtpKind::Hotp {
                        NoCode::HotpNotRead
                    } else {
                        NoCode::NotOtp
                    });
                } else if touch && !p.include_touch {
                    item.error = Some(NoCode::TouchRequired);
                } else {
                    let period = u64::from(token.period);
                    let t = Self::check_time(caller, p.at, period)?;
                    let step = t / period;
                    let _turn = match self.touch_turn(caller, &entry, wait) {
                        Ok(turn) => turn,
                        Err(e) => {
                            item.error = Some(NoCode::Failed(e.code));
                            out.push(item);
                            continue;
                        }
                    };
                    match entry.actor.code(cred.name.clone(), step, wait).await {
                        Ok(otp) => {
                            item.code = Some(otp.code.clone());
                            item.digits = Some(otp.digits);
                            item.valid_from = Some(step * period);
                            item.valid_until = Some((step + 1) * period);
                        }
                        Err(e) => {
                            item.error = Some(NoCode::Failed(self.code_error(&entry, e).code))
                        }
                    }
                }
                out.push(item);
            }
        }
        Ok(out)
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
