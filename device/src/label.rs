//! The token label convention: `[period/]serial:account`.
//!
//! The key stores a name per credential and nothing else about it, not even the TOTP period
//! (the host sends the time step). So the name carries what the host needs: the period, when it
//! is not the default 30 s (YKOATH's `period/` prefix), the token serial (in the issuer position
//! of YKOATH's `issuer:account`), and the account, the user's UPN.
//!
//! Names made by other tools (`github.com:alice`, `backup-codes`) parse too: their issuer is
//! taken as the serial, and a name without `:` has no serial at all. Display gives the canonical
//! form, which may differ from a foreign name (`30/` is dropped), so callers address
//! credentials on the key by their raw name, never by a re-displayed label.

use std::fmt;
use std::str::FromStr;

use crate::oath::MAX_NAME_LEN;

/// The period TOTP tokens use when the label does not say.
pub const DEFAULT_PERIOD: u32 = 30;

/// Longest period accepted in a label (one day); anything longer is a typo.
pub const MAX_PERIOD: u32 = 86_400;

/// A parsed credential name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenLabel {
    /// TOTP period in seconds.
    pub period: u32,
    /// Token serial number (the issuer position); `None` for names without `:`.
    pub serial: Option<String>,
    /// The account, for this project the user's UPN.
    pub account: String,
}

/// Why a label cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Empty serial, or one with characters the convention cannot carry.
    #[error(
        "serial {0:?} must be 1 to 32 characters of A-Z, a-z, 0-9, '-', '_' or '.' (no ':' or '/')"
    )]
    BadSerial(String),
    /// Empty account, or one with control or invisible characters (a byte-order mark a
    /// Notepad file left in front of a name, a zero-width space): the name on the key would
    /// not be the one people type.
    #[error("account {0}")]
    BadAccount(String),
    /// Period out of range.
    #[error("period must be 1 to {MAX_PERIOD} seconds, not {0}")]
    BadPeriod(u32),
    /// The whole name is longer than the key stores.
    #[error("label {0:?} is {1} bytes; a key name holds at most {MAX_NAME_LEN}")]
    TooLong(String, usize),
}

/// Characters that print as nothing (Unicode format characters, the byte-order mark, the
/// soft hyphen, bidirectional controls) or as a space that is not one: in a name they make two
/// names that look alike differ, and a search by the typed name fail.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}'
            | '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{2000}'..='\u{200F}'
            | '\u{2028}'..='\u{202F}'
            | '\u{205F}'..='\u{206F}'
            | '\u{3000}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

fn valid_serial(serial: &str) -> bool {
    (1..=32).contains(&serial.len())
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl TokenLabel {
    /// Builds this project's label for a token, checking every part.
    pub fn new(serial: &str, account: &str, period: u32) -> Result<Self, LabelError> {
        if !valid_serial(serial) {
            return Err(LabelError::BadSerial(serial.into()));
        }
        if account.is_empty() {
            return Err(LabelError::BadAccount("must not be empty".into()));
        }
        if let Some((at, c)) = account
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() || is_invisible(*c))
        {
            return Err(LabelError::BadAccount(format!(
                "{account:?} has an invisible or control character (U+{:04X}) at character {}; \
                 retype it, or save the file it came from as plain UTF-8",
                u32::from(c),
                at + 1
            )));
        }
        if period == 0 || period > MAX_PERIOD {
            return Err(LabelError::BadPeriod(period));
        }
        let label = Self {
            period,
            serial: Some(serial.into()),
            account: account.into(),
        };
        let text = label.to_string();
        if text.len() > MAX_NAME_LEN {
            return Err(LabelError::TooLong(text.clone(), text.len()));
        }
        Ok(label)
    }

    /// Parses any credential name. Never fails: a name outside the convention becomes a label
    /// with no serial, and a `period/` prefix that is not a valid period stays in the account.
    pub fn parse(name: &str) -> Self {
        let (period, rest) = match name.split_once('/') {
            Some((p, rest))
                if !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && p.parse::<u32>()
                        .is_ok_and(|n| (1..=MAX_PERIOD).contains(&n)) =>
            {
                (p.parse().unwrap_or(DEFAULT_PERIOD), rest)
            }
            _ => (DEFAULT_PERIOD, name),
        };
        match rest.split_once(':') {
            Some((serial, account)) if !serial.is_empty() => Self {
                period,
                serial: Some(serial.into()),
                account: account.into(),
            },
            _ => Self {
                period,
                serial: None,
                account: rest.into(),
            },
        }
    }

    /// Whether this label follows the convention exactly: a valid serial and account.
    pub fn is_conventional(&self) -> bool {
        self.serial.as_deref().is_some_and(valid_serial) && !self.account.is_empty()
    }
}

impl fmt::Display for TokenLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.period != DEFAULT_PERIOD {
            write!(f, "{}/", self.period)?;
        }
        if let Some(serial) = &self.serial {
            write!(f, "{serial}:")?;
        }
        f.write_str(&self.account)
    }
}

impl FromStr for TokenLabel {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_period_is_omitted() {
        let l = TokenLabel::new("0012345", "alice@contoso.com", 30).expect("valid");
        assert_eq!(l.to_string(), "0012345:alice@contoso.com");
        let l = TokenLabel::new("0012345", "alice@contoso.com", 60).expect("valid");
        assert_eq!(l.to_string(), "60/0012345:alice@contoso.com");
    }

    #[test]
    fn parse_reads_period_serial_and_account() {
        let l = TokenLabel::parse("60/0012345:alice@contoso.com");
        assert_eq!(l.period, 60);
        assert_eq!(l.serial.as_deref(), Some("0012345"));
        assert_eq!(l.account, "alice@contoso.com");
        assert!(l.is_conventional());
    }

    #[test]
    fn foreign_names_parse_without_loss() {
        let l = TokenLabel::parse("backup-codes");
        assert_eq!(
            (l.period, l.serial, l.account.as_str()),
            (30, None, "backup-codes")
        );
        // Not a period: stays part of the name.
        let l = TokenLabel::parse("abc/def:ghi");
        assert_eq!(l.serial.as_deref(), Some("abc/def"));
        assert!(!l.is_conventional());
        assert_eq!(l.to_string(), "abc/def:ghi");
        let l = TokenLabel::parse("0/x:y");
        assert_eq!(l.period, 30);
        assert_eq!(l.to_string(), "0/x:y");
        // An account may itself contain ':'.
        let l = TokenLabel::parse("S1:a:b");
        assert_eq!(
            (l.serial.as_deref(), l.account.as_str()),
            (Some("S1"), "a:b")
        );
    }

    #[test]
    fn new_rejects_what_the_convention_cannot_carry() {
        assert_eq!(
            TokenLabel::new("", "a", 30),
            Err(LabelError::BadSerial(String::new()))
        );
        assert!(matches!(
            TokenLabel::new("a:b", "a", 30),
            Err(LabelError::BadSerial(_))
        ));
        assert!(matches!(
            TokenLabel::new("a/b", "a", 30),
            Err(LabelError::BadSerial(_))
        ));
        assert!(matches!(
            TokenLabel::new("s", "", 30),
            Err(LabelError::BadAccount(_))
        ));
        assert!(matches!(
            TokenLabel::new("s", "a\nb", 30),
            Err(LabelError::BadAccount(_))
        ));
        // A byte-order mark (Notepad, Excel) or a zero-width space inside a name is refused with
        // where it is, so the name on the key is the one people type.
        for (account, at) in [
            ("\u{FEFF}alice@contoso.com", "U+FEFF) at character 1"),
            ("al\u{200B}ice@contoso.com", "U+200B) at character 3"),
            ("alice@contoso.com\u{00A0}", "U+00A0) at character 18"),
        ] {
            let err = TokenLabel::new("s", account, 30)
                .expect_err(account)
                .to_string();
            assert!(err.contains(at), "{err}");
        }
        // Names in other scripts are fine.
        assert!(TokenLabel::new("s", "jürgen.müller@beispiel.de", 30).is_ok());
        assert!(TokenLabel::new("s", "用户@例子.中国", 30).is_ok());
        assert_eq!(TokenLabel::new("s", "a", 0), Err(LabelError::BadPeriod(0)));
        let long = "x".repeat(60) + "@example.com";
        assert!(matches!(
            TokenLabel::new("s", &long, 30),
            Err(LabelError::TooLong(_, 74))
        ));
    }

    proptest! {
        #[test]
        fn conventional_labels_round_trip(
            serial in "[A-Za-z0-9._-]{1,16}",
            account in "[a-z0-9.]{1,20}@[a-z]{1,10}\\.com",
            period in prop_oneof![Just(30u32), Just(60u32), 1u32..=3600],
        ) {
            let label = TokenLabel::new(&serial, &account, period).expect("valid");
            let parsed = TokenLabel::parse(&label.to_string());
            prop_assert_eq!(parsed, label);
        }

        #[test]
        fn parsing_is_stable(name in "\\PC{0,64}") {
            // Display gives the canonical form ("30/" dropped, "007/" as "7/"); parsing that
            // form again must give the same label. Callers keep the raw name to address a key.
            let label = TokenLabel::parse(&name);
            prop_assert_eq!(TokenLabel::parse(&label.to_string()), label);
        }
    }
}
