//! Keys and tokens as the window shows them, and how a code's time runs out.

use oathkey_protocol::ErrorCode;
use oathkey_protocol::types::{
    Code, CodeEntry, KeyInfo, NoCode, Operation, OtpKind, Settings, TokenInfo,
};

use crate::error::{DaemonError, Kind};

/// Within this many seconds of a code's end, the next code is fetched and shown.
pub const NEXT_CODE_LEAD_SECS: u64 = 5;

/// Names a token: its key and its exact name on the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenRef {
    /// Key id.
    pub key: String,
    /// The token's raw name (`[period/]serial:account`).
    pub name: String,
}

/// A code on screen, with the time it is valid (TOTP) or without (HOTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownCode {
    /// The digits.
    pub code: String,
    /// First second it is valid (TOTP).
    pub valid_from: Option<u64>,
    /// First second of the next code (TOTP).
    pub valid_until: Option<u64>,
}

impl ShownCode {
    /// From a `codes.get` answer.
    pub fn from_code(c: &Code) -> Self {
        Self {
            code: c.code.clone(),
            valid_from: c.valid_from,
            valid_until: c.valid_until,
        }
    }

    /// Whether it is still valid at `now` (an HOTP code stays until replaced).
    pub fn is_valid_at(&self, now: u64) -> bool {
        self.valid_until.is_none_or(|u| now < u)
    }

    /// Whole seconds left, rounded up (so the display reaches 1, never 0, while valid).
    pub fn seconds_left(&self, now: f64) -> Option<u64> {
        self.valid_until
            .map(|u| (u as f64 - now).max(0.0).ceil() as u64)
    }

    /// The share of its period left, 1.0 when it starts, 0.0 when it ends.
    pub fn fraction_left(&self, now: f64) -> Option<f32> {
        let (from, until) = (self.valid_from?, self.valid_until?);
        let period = until.saturating_sub(from).max(1) as f64;
        Some(((until as f64 - now) / period).clamp(0.0, 1.0) as f32)
    }

    /// Whether the code is in its last [`NEXT_CODE_LEAD_SECS`] seconds.
    pub fn ending_soon(&self, now: u64) -> bool {
        self.valid_until
            .is_some_and(|u| now < u && u - now <= NEXT_CODE_LEAD_SECS)
    }
}

/// What a token shows in place of its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// Not read yet.
    Loading,
    /// A code.
    Shown(ShownCode),
    /// It needs a touch for every code: "Get code".
    NeedsTouch,
    /// An HOTP token: reading uses up a code, so only "Get code" reads it.
    Hotp,
    /// "Get code" was clicked; waiting for the daemon (and the touch, if the key asks for one).
    Requested,
    /// Not an OTP token this app can read.
    Unsupported,
    /// Reading it failed.
    Failed(DaemonError),
}

/// A token on a key and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenState {
    /// The token as listed.
    pub info: TokenInfo,
    /// Its code, or why there is none.
    pub code: CodeState,
    /// The next code, fetched near the end of the current one.
    pub next: Option<ShownCode>,
    /// Codes only on request ("Get code"): touch tokens and HOTP. Never read automatically,
    /// since each read costs a touch or an HOTP counter value.
    pub on_demand: bool,
    /// The `valid_until` of the code whose successor was asked for (asked once per period).
    pub next_asked_for: Option<u64>,
}

impl TokenState {
    /// A token not read yet.
    pub fn new(info: TokenInfo) -> Self {
        Self {
            info,
            code: CodeState::Loading,
            next: None,
            on_demand: false,
            next_asked_for: None,
        }
    }

    /// Its reference.
    pub fn token_ref(&self) -> TokenRef {
        TokenRef {
            key: self.info.key.clone(),
            name: self.info.name.clone(),
        }
    }

    /// The code to show (and copy) at `now`, if any.
    pub fn current(&self, now: u64) -> Option<&ShownCode> {
        match &self.code {
            CodeState::Shown(c) if c.is_valid_at(now) => Some(c),
            _ => None,
        }
    }

    /// Takes a `codes.all` entry, keeping what the entry cannot know: a code fetched on
    /// request that is still valid, a request still running, the next code.
    pub fn update_from_entry(&mut self, entry: &CodeEntry, now: u64) {
        self.info = entry.token.clone();
        let kept_on_demand = match &self.code {
            CodeState::Shown(c) if self.on_demand && c.is_valid_at(now) => true,
            CodeState::Requested => true,
            _ => false,
        };
        match (&entry.code, entry.error) {
            (Some(code), _) => {
                self.on_demand = false;
                let shown = ShownCode {
                    code: code.clone(),
                    valid_from: entry.valid_from,
                    valid_until: entry.valid_until,
                };
                if self
                    .next
                    .as_ref()
                    .is_some_and(|n| n.valid_until <= shown.valid_until)
                {
                    self.next = None;
                }
                self.code = CodeState::Shown(shown);
            }
            (None, Some(reason @ (NoCode::TouchRequired | NoCode::HotpNotRead))) => {
                self.on_demand = true;
                self.next = None;
                if !kept_on_demand {
                    self.code = if reason == NoCode::TouchRequired {
                        CodeState::NeedsTouch
                    } else {
                        CodeState::Hotp
                    };
                }
            }
            (None, Some(NoCode::NotOtp)) => self.code = CodeState::Unsupported,
            (None, Some(NoCode::Failed(code))) => {
                self.code =
                    CodeState::Failed(DaemonError::new(Kind::Daemon(code), describe_reason(code)));
            }
            (None, None) => self.code = CodeState::Loading,
        }
    }

    /// What to show once an on-demand code has run out.
    pub fn idle_state(&self) -> CodeState {
        if self.info.kind == OtpKind::Hotp && self.info.touch != Some(true) {
            CodeState::Hotp
        } else {
            CodeState::NeedsTouch
        }
    }
}

/// A message for a `codes.all` error.
pub fn describe_reason(code: ErrorCode) -> String {
    match code {
        ErrorCode::TouchTimeout => "the key was not touched in time".into(),
        ErrorCode::KeyRemoved => "the key was unplugged".into(),
        ErrorCode::PinRequired => {
            "this token needs the key's PIN, which this app cannot enter".into()
        }
        ErrorCode::Busy => "the key is busy; trying again shortly".into(),
        other => format!("the key could not compute a code ({})", other.name()),
    }
}

/// The key waits for a touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchPrompt {
    /// What for.
    pub operation: Operation,
    /// The token concerned, if any.
    pub token: Option<String>,
}

/// A key and its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// The key as listed.
    pub info: KeyInfo,
    /// Mode and Key Press, once read.
    pub settings: Option<Settings>,
    /// Its tokens, in the key's order.
    pub tokens: Vec<TokenState>,
    /// Whether its tokens have been read at least once.
    pub tokens_loaded: bool,
    /// Set while the key waits for a touch.
    pub touch: Option<TouchPrompt>,
}

impl KeyState {
    /// A key whose tokens are not read yet.
    pub fn new(info: KeyInfo) -> Self {
        Self {
            info,
            settings: None,
            tokens: Vec::new(),
            tokens_loaded: false,
            touch: None,
        }
    }

    /// Replaces its tokens with those of a `codes.all` answer, keeping per-token state.
    pub fn merge_entries<'a>(&mut self, entries: impl Iterator<Item = &'a CodeEntry>, now: u64) {
        let mut old = std::mem::take(&mut self.tokens);
        for entry in entries {
            let mut token = match old.iter().position(|t| t.info.name == entry.token.name) {
                Some(i) => old.swap_remove(i),
                None => TokenState::new(entry.token.clone()),
            };
            token.update_from_entry(entry, now);
            self.tokens.push(token);
        }
        self.tokens_loaded = true;
    }

    /// A token by name.
    pub fn token_mut(&mut self, name: &str) -> Option<&mut TokenState> {
        self.tokens.iter_mut().find(|t| t.info.name == name)
    }

    /// Whether the touch prompt is about this token (or about no token in particular while
    /// this token waits for a code).
    pub fn touch_is_for(&self, token: &TokenState) -> bool {
        self.touch.as_ref().is_some_and(|t| match &t.token {
            Some(name) => *name == token.info.name,
            None => token.code == CodeState::Requested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(from: u64, until: u64) -> ShownCode {
        ShownCode {
            code: "123456".into(),
            valid_from: Some(from),
            valid_until: Some(until),
        }
    }

    #[test]
    fn countdown_is_computed_from_valid_until() {
        let c = shown(90, 120);
        assert_eq!(c.seconds_left(90.0), Some(30));
        assert_eq!(c.seconds_left(108.2), Some(12));
        assert_eq!(c.seconds_left(119.9), Some(1));
        assert_eq!(c.seconds_left(125.0), Some(0));
        assert_eq!(c.fraction_left(105.0), Some(0.5));
        assert!(c.is_valid_at(119) && !c.is_valid_at(120));
        assert!(!c.ending_soon(114) && c.ending_soon(115) && c.ending_soon(119));
        assert!(!c.ending_soon(120));
    }

    #[test]
    fn hotp_codes_have_no_countdown() {
        let c = ShownCode {
            code: "1".into(),
            valid_from: None,
            valid_until: None,
        };
        assert_eq!(c.seconds_left(5.0), None);
        assert_eq!(c.fraction_left(5.0), None);
        assert!(c.is_valid_at(u64::MAX) && !c.ending_soon(0));
    }
}
