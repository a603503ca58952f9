//! One token as every format sees it: [`TokenRecord`], and its secret, [`Secret`].
//!
//! The record is the common ground of the five formats: each reader produces records and each
//! writer consumes them, and the target rules in [`mod@crate::validate`] are checked on records.
//! A format that cannot carry a field (Azure CSV has no hash or digits column) yields this
//! module's defaults when read and refuses other values when written.
//!
//! Secrets are raw bytes in zeroizing memory. Base32 decoding is deliberately lenient about
//! what people paste (any case, spaces, `-` group separators, `=` padding, leftover bits at the
//! end, as authenticator apps are; the decoder is `oathkey-otp`'s, shared with the daemon); the
//! strict alphabet checks a target applies to the text of
//! a file live in the readers.

use std::fmt;

use data_encoding::{BASE32_NOPAD, HEXLOWER};
use oathkey_otp::decode_base32;
use zeroize::Zeroizing;

/// TOTP time step when nothing says otherwise, in seconds.
pub const DEFAULT_PERIOD: u32 = 30;

/// Code length when nothing says otherwise.
pub const DEFAULT_DIGITS: u8 = 6;

/// A token's HMAC key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps raw key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Decodes Base32 as people write it: any case, with spaces, `-` and trailing `=` padding
    /// ignored, and bits left over after the last whole byte dropped ([`decode_base32`], the
    /// decoder the daemon uses too). Refuses text that is empty or has any other character;
    /// the message never quotes the text.
    pub fn from_base32(text: &str) -> Result<Self, String> {
        decode_base32(text).map(Self).map_err(|e| e.to_string())
    }

    /// The key as Base32: upper case, no padding.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.0))
    }

    /// The key as lower-case hex.
    pub fn hex(&self) -> Zeroizing<String> {
        Zeroizing::new(HEXLOWER.encode(&self.0))
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// How many Base32 characters [`Secret::base32`] produces, without producing them.
    pub fn base32_len(&self) -> usize {
        BASE32_NOPAD.encode_len(self.0.len())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Time-based or counter-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// RFC 6238: the moving factor is the time step.
    Totp,
    /// RFC 4226: the moving factor is a counter.
    Hotp,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Totp => "TOTP",
            Self::Hotp => "HOTP",
        })
    }
}

/// The HMAC hash: `oathkey-otp`'s, shared with every crate. The spellings seed files use are
/// [`AlgorithmNames`].
pub use oathkey_otp::Algorithm;

/// How seed files spell a hash. These spellings belong to the file formats, so they live here
/// rather than with [`Algorithm`].
pub trait AlgorithmNames: Sized {
    /// The otpauth spelling: `SHA1`, `SHA256`, `SHA512`.
    fn otpauth_name(self) -> &'static str;

    /// Parses the spellings seen in the wild (`SHA1`, `sha-256`, `HMAC-SHA512`, `hmacsha256`),
    /// case-insensitively.
    fn parse_loose(text: &str) -> Option<Self>;
}

impl AlgorithmNames for Algorithm {
    fn otpauth_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    fn parse_loose(text: &str) -> Option<Self> {
        let t: String = text
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match t.strip_prefix("hmac").unwrap_or(&t) {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// One OATH token, as written to and read from seed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's serial number: text, because leading zeros are significant.
    pub serial: String,
    /// The user's UPN (the account the token belongs to).
    pub user: String,
    /// The HMAC key.
    pub secret: Secret,
    /// TOTP or HOTP.
    pub kind: Kind,
    /// The HMAC hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
    /// TOTP time step in seconds; ignored for HOTP.
    pub period: u32,
    /// HOTP moving factor to start from; ignored for TOTP.
    pub counter: u64,
    /// Who made the token (e.g. `oathkey`); Azure and Graph show it.
    pub manufacturer: String,
    /// The token model (e.g. `virtual key`, `Nitrokey 3`).
    pub model: String,
}

impl TokenRecord {
    /// A TOTP record with the usual parameters (SHA-1, 6 digits, 30 s) and empty manufacturer
    /// and model.
    pub fn totp(serial: impl Into<String>, user: impl Into<String>, secret: Secret) -> Self {
        Self {
            serial: serial.into(),
            user: user.into(),
            secret,
            kind: Kind::Totp,
            algorithm: Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period: DEFAULT_PERIOD,
            counter: 0,
            manufacturer: String::new(),
            model: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_lenient_on_input_and_canonical_on_output() {
        let s = Secret::from_base32("jbsw y3dp-ehpk 3pxp====").expect("valid");
        assert_eq!(s.expose(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(s.base32().as_str(), "JBSWY3DPEHPK3PXP");
        assert_eq!(s.base32_len(), 16);
        assert_eq!(s.hex().as_str(), "48656c6c6f21deadbeef");
    }

    #[test]
    fn base32_drops_leftover_bits() {
        // 26 characters carry 130 bits: 16 bytes and 2 bits that belong to no byte.
        let s = Secret::from_base32("2234567abcdef2234567abcdef").expect("valid");
        assert_eq!(s.expose().len(), 16);
    }

    #[test]
    fn base32_refuses_garbage_without_quoting_it() {
        for bad in [
            "",
            "====",
            "   ",
            "A",
            "JBSWY3DP1",
            "JBSW=Y3DP",
            "JBSWY3DPé",
        ] {
            let err = Secret::from_base32(bad).expect_err(bad);
            assert!(!err.is_empty());
            assert!(!err.contains("JBSW"), "{err}");
        }
        assert_eq!(
            Secret::from_base32("JBSWY3DP0").expect_err("0 is not Base32"),
            "secret key is not Base32"
        );
        assert_eq!(
            Secret::from_base32("").expect_err("empty"),
            "secret key is empty"
        );
        assert_eq!(
            Secret::from_base32(" - ").expect_err("only separators"),
            "secret key is empty"
        );
        assert_eq!(
            Secret::from_base32("A").expect_err("5 bits"),
            "secret key is too short (one Base32 character holds no whole byte)"
        );
        assert_eq!(
            Secret::from_base32("AB")
                .expect("10 bits hold a byte")
                .expose(),
            [0]
        );
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::new(b"12345678901234567890".to_vec());
        assert_eq!(format!("{s:?}"), "[redacted]");
        let r = TokenRecord::totp("1", "a@b.c", s);
        assert!(!format!("{r:?}").contains("1234567890"));
    }

    #[test]
    fn algorithm_spellings() {
        for (text, alg) in [
            ("SHA1", Algorithm::Sha1),
            ("sha-256", Algorithm::Sha256),
            ("HMAC-SHA512", Algorithm::Sha512),
            ("hmacsha256", Algorithm::Sha256),
        ] {
            assert_eq!(Algorithm::parse_loose(text), Some(alg), "{text}");
        }
        assert_eq!(Algorithm::parse_loose("md5"), None);
    }
}
