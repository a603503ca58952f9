//! The reference TOTP of the tests: totp-rs, with its own Base32 decoding, independent of the
//! computation the daemon and the virtual key share (`oathkey-otp`), so that a mistake there
//! cannot hide in both the answer and its check.

use std::time::{SystemTime, UNIX_EPOCH};

/// The code of a TOTP token at unix time `t`. `algorithm` is the wire name (`sha1`, `sha256`,
/// `sha512`).
pub fn reference_totp(algorithm: &str, digits: u8, period: u64, secret: &[u8], t: u64) -> String {
    let algorithm = match algorithm {
        "sha1" => totp_rs::Algorithm::SHA1,
        "sha256" => totp_rs::Algorithm::SHA256,
        "sha512" => totp_rs::Algorithm::SHA512,
        other => panic!("unknown algorithm {other}"),
    };
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// [`reference_totp`] of a Base32 secret (no padding), decoded by totp-rs.
pub fn reference_totp_b32(
    algorithm: &str,
    digits: u8,
    period: u64,
    secret_b32: &str,
    t: u64,
) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .unwrap_or_else(|e| panic!("not Base32 ({e:?}): {secret_b32}"));
    reference_totp(algorithm, digits, period, secret.as_bytes(), t)
}

/// The unix time now, in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
