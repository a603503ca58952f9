//! Checking a code the key shows against a seed record, as Azure does when a token is
//! activated: [`check_code`].
//!
//! Azure wants a 30 s token's code within about a minute and a 60 s token's within two, so a
//! window of one step either side of now is what it accepts. Checking before upload tells a
//! wrong seed (or a wrong clock) from a wrong upload.
//!
//! The codes come from `oathkey-otp`, the computation the key and the daemon use too.

use crate::record::{Kind, TokenRecord};

/// Largest window looked at; a wider one is narrowed to this (checking thousands of steps
/// would accept nearly any code).
pub const MAX_WINDOW: u64 = 100;

/// Checks `code` for `record`. TOTP: the steps from `-window` to `+window` around `unix_time`,
/// nearest first; HOTP: the counters from `record.counter` to `record.counter + window`.
/// Returns the offset (in steps or counter values) of the first match, or `None` when no code
/// in the window matches, the code is not `digits` decimal digits (spaces ignored), or the
/// record cannot produce codes (no secret, 0 s period, more than 9 digits).
pub fn check_code(record: &TokenRecord, code: &str, unix_time: u64, window: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = usize::from(record.digits);
    if !(1..=9).contains(&digits)
        || code.len() != digits
        || !code.bytes().all(|b| b.is_ascii_digit())
        || record.secret.expose().is_empty()
    {
        return None;
    }
    let window = i64::try_from(window.min(MAX_WINDOW)).unwrap_or(0);
    let step = u64::from(record.period);
    if record.kind == Kind::Totp && step == 0 {
        return None;
    }
    let secret = record.secret.expose();
    // `factor` is the time for TOTP and the counter for HOTP.
    let matches = |factor: u64| {
        let expected = match record.kind {
            Kind::Totp => oathkey_otp::totp(record.algorithm, secret, step, record.digits, factor),
            Kind::Hotp => oathkey_otp::hotp(record.algorithm, secret, factor, record.digits),
        };
        // Digits and period were checked above, so an error cannot happen; it matches nothing.
        expected.is_ok_and(|expected| same(expected.as_bytes(), code.as_bytes()))
    };
    match record.kind {
        Kind::Totp => {
            let offsets = (0..=window).flat_map(|n| if n == 0 { vec![0] } else { vec![-n, n] });
            for offset in offsets {
                let shift = offset.unsigned_abs().checked_mul(step)?;
                let time = if offset < 0 {
                    unix_time.checked_sub(shift)
                } else {
                    unix_time.checked_add(shift)
                };
                if time.is_some_and(matches) {
                    return Some(offset);
                }
            }
            None
        }
        Kind::Hotp => (0..=window).find(|&offset| {
            record
                .counter
                .checked_add(offset.unsigned_abs())
                .is_some_and(matches)
        }),
    }
}

/// Compares two codes in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Algorithm, Secret};

    fn rfc_record(algorithm: Algorithm, key: &[u8], digits: u8) -> TokenRecord {
        let mut r = TokenRecord::totp("1", "a@b.c", Secret::new(key.to_vec()));
        r.algorithm = algorithm;
        r.digits = digits;
        r
    }

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 appendix B, 8 digits, with each hash's own key.
        let sha1 = rfc_record(Algorithm::Sha1, b"12345678901234567890", 8);
        let sha256 = rfc_record(Algorithm::Sha256, b"12345678901234567890123456789012", 8);
        let sha512 = rfc_record(
            Algorithm::Sha512,
            b"1234567890123456789012345678901234567890123456789012345678901234",
            8,
        );
        assert_eq!(check_code(&sha1, "94287082", 59, 0), Some(0));
        assert_eq!(check_code(&sha256, "46119246", 59, 0), Some(0));
        assert_eq!(check_code(&sha512, "90693936", 59, 0), Some(0));
        assert_eq!(check_code(&sha1, "07081804", 1_111_111_109, 0), Some(0));
    }

    #[test]
    fn window_is_nearest_first_and_bounded() {
        let r = rfc_record(Algorithm::Sha1, b"12345678901234567890", 6);
        // 287082 is the code of step 1 (T = 30..59).
        assert_eq!(check_code(&r, "287082", 59, 1), Some(0));
        assert_eq!(check_code(&r, "287 082", 59 + 30, 1), Some(-1));
        assert_eq!(check_code(&r, "287082", 59 - 30, 1), Some(1));
        assert_eq!(check_code(&r, "287082", 59 + 60, 1), None);
        // TOTP step n is HOTP counter n with this key: 969429 is step 3, two ahead of 59.
        assert_eq!(check_code(&r, "969429", 59, 1), None);
        assert_eq!(check_code(&r, "969429", 59, 2), Some(2));
        assert_eq!(check_code(&r, "287082", 59 + 60, 2), Some(-2));
        assert_eq!(check_code(&r, "28708", 59, 1), None, "wrong length");
        assert_eq!(check_code(&r, "28708x", 59, 1), None, "not digits");
        // Near time 0 the earlier steps do not exist.
        assert_eq!(check_code(&r, "287082", 0, 1), Some(1));
    }

    #[test]
    fn hotp_counts_forward_only() {
        // RFC 4226 appendix D.
        let mut r = rfc_record(Algorithm::Sha1, b"12345678901234567890", 6);
        r.kind = Kind::Hotp;
        r.counter = 3;
        assert_eq!(check_code(&r, "969429", 0, 0), Some(0));
        assert_eq!(check_code(&r, "520489", 0, 9), Some(6));
        assert_eq!(check_code(&r, "287082", 0, 9), None, "counter 1 is behind");
        assert_eq!(check_code(&r, "520489", 0, 5), None);
    }
}
