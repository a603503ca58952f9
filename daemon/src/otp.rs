//! The daemon's own TOTP computation, independent of any key: used to check that a key computes
//! what the seed says (verification after write) and, later, for activation checks.

use oathkey_protocol::types::Algorithm;

/// The TOTP code of `secret` at `unix_time` (RFC 6238), computed with totp-rs.
pub fn totp(alg: Algorithm, digits: u8, period: u32, secret: &[u8], unix_time: u64) -> String {
    let algorithm = match alg {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    // build_noncompliant: 80-bit seeds are common in hardware tokens; the 128-bit rule of
    // build() is a policy for new seeds, and the daemon generates 160-bit ones itself.
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(u64::from(period))
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(unix_time)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        assert_eq!(
            totp(Algorithm::Sha1, 8, 30, b"12345678901234567890", 59),
            "94287082"
        );
        assert_eq!(
            totp(Algorithm::Sha1, 6, 30, b"12345678901234567890", 59),
            "287082"
        );
    }
}
