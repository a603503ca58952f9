//! The key's HMAC computation: HMAC over the challenge, then RFC 4226 dynamic truncation.
//!
//! The key returns the 31-bit truncated value; the host reduces it to the code's digits.

use hmac::{Hmac, KeyInit, Mac};
use oathkey_device::HashAlg;

/// HMAC(secret, message) with the given hash.
pub fn hmac(alg: HashAlg, secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length (longer ones are hashed), so new_from_slice cannot fail.
    fn run<M: Mac + KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
        match <M as KeyInit>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match alg {
        HashAlg::Sha1 => run::<Hmac<sha1::Sha1>>(secret, message),
        HashAlg::Sha256 => run::<Hmac<sha2::Sha256>>(secret, message),
        HashAlg::Sha512 => run::<Hmac<sha2::Sha512>>(secret, message),
    }
}

/// RFC 4226 section 5.3 dynamic truncation: 31 bits from the offset the last nibble names.
pub fn truncate(mac: &[u8]) -> u32 {
    let Some(last) = mac.last() else { return 0 };
    let offset = usize::from(last & 0x0F);
    let word = [
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    u32::from_be_bytes(word) & 0x7FFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_intermediate_values() {
        // RFC 4226 appendix D: HMAC-SHA-1 of count 0 and its truncation.
        let mac = hmac(HashAlg::Sha1, b"12345678901234567890", &0u64.to_be_bytes());
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mac),
            "cc93cf18508d94934c64b65d8ba7667fb7cde4b0"
        );
        assert_eq!(truncate(&mac), 0x4c93cf18);
        assert_eq!(truncate(&mac) % 1_000_000, 755224);
    }
}
