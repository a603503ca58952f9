//! HOTP (RFC 4226) and TOTP (RFC 6238): HMAC over a moving factor, dynamic truncation to 31
//! bits, and reduction to a number of decimal digits.
//!
//! The steps are public one by one because the key and the host split them: the key answers
//! CALCULATE with the truncated value ([`truncated`]), the host reduces it ([`code`]).

use hmac::{Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;

/// Most digits a code can have: the truncated value is below 2^31, which has 10 digits, so a
/// longer code would only add leading zeros.
pub const MAX_DIGITS: u8 = 10;

/// Parameters no code can be computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Digits outside 1 to [`MAX_DIGITS`].
    #[error("a code has 1 to {MAX_DIGITS} digits, not {0}")]
    Digits(u8),
    /// A TOTP period of 0 seconds: there is no time step.
    #[error("a TOTP period is at least 1 second, not 0")]
    ZeroPeriod,
}

/// HMAC(`key`, `message`) with the given hash. Keys of any length are taken (HMAC hashes longer
/// ones first); the result is wiped when dropped.
pub fn hmac(alg: Algorithm, key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
        // HMAC takes keys of every length, so this never fails; an empty MAC would make
        // `truncate` refuse rather than produce a code.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return Zeroizing::new(Vec::new());
        };
        mac.update(message);
        Zeroizing::new(mac.finalize().into_bytes().to_vec())
    }
    match alg {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
    }
}

/// RFC 4226 section 5.3 dynamic truncation: the 31 bits at the offset the last nibble names.
/// `None` when `mac` is too short for that offset (no HMAC this crate computes is: the
/// shortest, SHA-1's, has 20 bytes and the offset reaches byte 18 at most).
pub fn truncate(mac: &[u8]) -> Option<u32> {
    let offset = usize::from(mac.last()? & 0x0F);
    let word: [u8; 4] = mac.get(offset..offset + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(word) & 0x7FFF_FFFF)
}

/// HMAC then dynamic truncation: what an OATH key answers to CALCULATE with `message` as the
/// challenge (for TOTP, the time step as 8 big-endian bytes; for HOTP, the counter).
pub fn truncated(alg: Algorithm, key: &[u8], message: &[u8]) -> u32 {
    // Every MAC of `hmac` is long enough to truncate (see `truncate`).
    truncate(&hmac(alg, key, message)).unwrap_or_default()
}

/// The code of a truncated value: `(value & 0x7FFFFFFF) mod 10^digits`, zero-padded to
/// `digits`.
pub fn code(value: u32, digits: u8) -> Result<String, ParamError> {
    if !(1..=MAX_DIGITS).contains(&digits) {
        return Err(ParamError::Digits(digits));
    }
    let n = u64::from(value & 0x7FFF_FFFF) % 10u64.pow(u32::from(digits));
    Ok(format!("{n:0width$}", width = usize::from(digits)))
}

/// The HOTP code of `secret` at `counter` (RFC 4226).
pub fn hotp(alg: Algorithm, secret: &[u8], counter: u64, digits: u8) -> Result<String, ParamError> {
    // Checked first, so that bad parameters cost no HMAC.
    if !(1..=MAX_DIGITS).contains(&digits) {
        return Err(ParamError::Digits(digits));
    }
    code(truncated(alg, secret, &counter.to_be_bytes()), digits)
}

/// The TOTP code of `secret` at `unix_time` (RFC 6238 with T0 = 0): the HOTP code of the time
/// step `unix_time / period`. Any period of 1 second or more, and secrets of any length (80-bit
/// hardware seeds included: a minimum length is a policy for new seeds, not part of the
/// computation).
pub fn totp(
    alg: Algorithm,
    secret: &[u8],
    period: u64,
    digits: u8,
    unix_time: u64,
) -> Result<String, ParamError> {
    if period == 0 {
        return Err(ParamError::ZeroPeriod);
    }
    hotp(alg, secret, unix_time / period, digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_intermediate_values() {
        // RFC 4226 appendix D: HMAC-SHA-1 of count 0 and its truncation.
        let mac = hmac(
            Algorithm::Sha1,
            b"12345678901234567890",
            &0u64.to_be_bytes(),
        );
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "cc93cf18508d94934c64b65d8ba7667fb7cde4b0");
        assert_eq!(truncate(&mac), Some(0x4c93cf18));
        assert_eq!(truncate(&mac).map(|v| v % 1_000_000), Some(755224));
    }

    #[test]
    fn truncation_reads_where_the_last_nibble_points() {
        // RFC 4226 section 5.4's example: offset 0xa, value 0x50ef7f19.
        let mac = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19,
            0xda, 0x8e, 0x94, 0x5b, 0x55, 0x5a,
        ];
        assert_eq!(truncate(&mac), Some(0x50ef7f19));
        assert_eq!(code(0x50ef7f19, 6).as_deref(), Ok("872921"));
        // The top bit is masked away (sign-safe on every platform, the RFC says).
        let mut high = [0u8; 20];
        high[0] = 0xff;
        assert_eq!(truncate(&high), Some(0x7f00_0000));
    }

    #[test]
    fn truncation_refuses_a_mac_too_short_for_its_offset() {
        assert_eq!(truncate(&[]), None);
        // Offset 15 needs bytes 15..19.
        let mut short = [0u8; 18];
        short[17] = 0x0f;
        assert_eq!(truncate(&short), None);
        short[17] = 0x0e;
        assert_eq!(truncate(&short), Some(0x0e));
    }

    #[test]
    fn every_hash_gives_a_mac_long_enough_for_any_offset() {
        for alg in Algorithm::ALL {
            for key in [&b""[..], b"k", &[0xAB; 200]] {
                let mac = hmac(alg, key, b"message");
                assert_eq!(mac.len(), alg.mac_len(), "{alg}");
                assert!(mac.len() >= 15 + 4);
            }
        }
    }

    #[test]
    fn code_pads_and_checks_digits() {
        assert_eq!(code(7, 6).as_deref(), Ok("000007"));
        assert_eq!(code(0x7FFF_FFFF, 10).as_deref(), Ok("2147483647"));
        assert_eq!(code(0xFFFF_FFFF, 10).as_deref(), Ok("2147483647"));
        assert_eq!(code(1_234_567_891, 1).as_deref(), Ok("1"));
        assert_eq!(code(1, 0), Err(ParamError::Digits(0)));
        assert_eq!(code(1, 11), Err(ParamError::Digits(11)));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let key = b"12345678901234567890";
        assert_eq!(
            totp(Algorithm::Sha1, key, 0, 6, 59),
            Err(ParamError::ZeroPeriod)
        );
        assert_eq!(
            totp(Algorithm::Sha1, key, 30, 0, 59),
            Err(ParamError::Digits(0))
        );
        assert_eq!(
            hotp(Algorithm::Sha1, key, 0, 11),
            Err(ParamError::Digits(11))
        );
        assert_eq!(
            ParamError::Digits(11).to_string(),
            "a code has 1 to 10 digits, not 11"
        );
    }
}
