//! The YKOATH access code: a password that locks every credential until VALIDATE.
//!
//! The card never sees the password. The host derives a 16-byte key from it with
//! PBKDF2-HMAC-SHA1 (1000 iterations, the salt being the 8 bytes the card answers to SELECT
//! under tag `71`), and proves it holds that key by answering the card's challenge (tag `74`
//! of SELECT) with an HMAC; it sends a challenge of its own with the answer and checks the
//! card's HMAC of it, so a card that does not hold the key is caught too (mutual). The
//! authentication lasts until the applet is selected again, which is why the driver keeps the
//! key in memory and validates again inside every transaction.

use oathkey_otp::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::apdu::{self, Command};
use crate::error::Error;
use crate::oath::{AlgorithmBits, OtpKind};
use crate::ykoath::proto::{ins, tag};

/// PBKDF2 iterations, fixed by the protocol.
pub const PBKDF2_ROUNDS: u32 = 1000;
/// Length of the derived key.
pub const KEY_LEN: usize = 16;
/// Length of a challenge, ours and the card's.
pub const CHALLENGE_LEN: usize = 8;

/// The key derived from an access code. Secret: wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(..)")
    }
}

impl AccessKey {
    /// Derives the key from a password and the card's salt.
    pub fn derive(password: &SecretString, salt: &[u8]) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
            password.expose_secret().as_bytes(),
            salt,
            PBKDF2_ROUNDS,
            &mut key[..],
        );
        Self(key)
    }

    /// A key from its raw bytes (tests, and keys remembered elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key (to send with SET CODE).
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HMAC of `challenge` with this key, using the card's access-code hash.
    pub fn respond(&self, algorithm: Algorithm, challenge: &[u8]) -> Zeroizing<Vec<u8>> {
        oathkey_otp::hmac(algorithm, &self.0[..], challenge)
    }
}

/// A VALIDATE request, with what the card must answer to prove it holds the key too.
pub struct Validate {
    /// The command: `75` our response to the card's challenge, `74` our challenge.
    pub command: Command,
    /// The card's expected answer to our challenge (secret-derived: wiped on drop).
    expected: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Validate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The expected answer is an HMAC under the access key: not for logs.
        f.debug_struct("Validate")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl Validate {
    /// Builds VALIDATE for the card's challenge, with our own random challenge `ours`.
    pub fn new(
        key: &AccessKey,
        algorithm: Algorithm,
        card_challenge: &[u8],
        ours: [u8; CHALLENGE_LEN],
    ) -> Result<Self, Error> {
        let mut data = Vec::with_capacity(2 + 64 + 2 + CHALLENGE_LEN);
        push(
            &mut data,
            tag::RESPONSE,
            &key.respond(algorithm, card_challenge),
        )?;
        push(&mut data, tag::CHALLENGE, &ours)?;
        Ok(Self {
            command: Command::new(ins::VALIDATE, 0, 0, data),
            expected: key.respond(algorithm, &ours),
        })
    }

    /// Checks the card's answer (`75` its HMAC of our challenge), in constant time.
    pub fn check(&self, answer: &[u8]) -> Result<(), Error> {
        let theirs = apdu::tlvs(answer)
            .filter_map(Result::ok)
            .find(|(t, _)| *t == tag::RESPONSE)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::Protocol("VALIDATE answer has no response".into()))?;
        let same = theirs.len() == self.expected.len()
            && theirs
                .iter()
                .zip(self.expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(Error::Protocol(
                "the card accepted the access code but could not prove it holds it".into(),
            ))
        }
    }
}

/// SET CODE with a new key: `73` (TOTP|SHA-1, key), `74` a challenge, `75` our HMAC of it (the
/// card checks that it computes the same). The access code is always HMAC-SHA-1, as yubikit
/// sets it.
pub fn set_code_command(key: &AccessKey, challenge: [u8; CHALLENGE_LEN]) -> Result<Command, Error> {
    let mut keydata = Zeroizing::new(Vec::with_capacity(1 + KEY_LEN));
    keydata.push(OtpKind::Totp.bits() | Algorithm::Sha1.bits());
    keydata.extend_from_slice(key.expose());
    let mut data = Vec::with_capacity(2 + 17 + 2 + 8 + 2 + 20);
    push(&mut data, tag::KEY, &keydata)?;
    push(&mut data, tag::CHALLENGE, &challenge)?;
    push(
        &mut data,
        tag::RESPONSE,
        &key.respond(Algorithm::Sha1, &challenge),
    )?;
    Ok(Command::new(ins::SET_CODE, 0, 0, data))
}

/// SET CODE that removes the access code: an empty key TLV, `73 00`.
pub fn clear_code_command() -> Command {
    Command::new(ins::SET_CODE, 0, 0, vec![tag::KEY, 0])
}

fn push(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), Error> {
    apdu::push_tlv(out, tag, value).map_err(|e| Error::InvalidArgument(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed once with Python's hashlib.pbkdf2_hmac("sha1", ...) and
    // hmac.new(key, msg, "sha1"), independently of this code, and pasted here.
    const SALT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const KEY_HEX: &str = "49561f12fb17065dd680fc5a61d740a6";
    const CARD_CHALLENGE: [u8; 8] = [8, 7, 6, 5, 4, 3, 2, 1];
    const RESPONSE_TO_CARD: &str = "6dea1f92b004612e43a9c37f4347ce9d2638c3e8";
    const OURS: [u8; 8] = [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8];
    const CARD_RESPONSE_TO_OURS: &str = "a51bc17e7acfa44e5f1a04ced4b938af52ee691d";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn key_derivation_matches_python_pbkdf2() {
        let key = AccessKey::derive(&SecretString::from("correct horse"), &SALT);
        assert_eq!(&key.expose()[..], &hex(KEY_HEX)[..]);
        assert_eq!(format!("{key:?}"), "AccessKey(..)");
    }

    #[test]
    fn validate_is_mutual() {
        let key = AccessKey::derive(&SecretString::from("correct horse"), &SALT);
        let v = Validate::new(&key, Algorithm::Sha1, &CARD_CHALLENGE, OURS).expect("fits");
        let mut want = vec![0x75, 20];
        want.extend(hex(RESPONSE_TO_CARD));
        want.extend([0x74, 8]);
        want.extend(OURS);
        assert_eq!((v.command.ins, v.command.p1, v.command.p2), (0xA3, 0, 0));
        assert_eq!(v.command.data, want);

        let mut answer = vec![0x75, 20];
        answer.extend(hex(CARD_RESPONSE_TO_OURS));
        v.check(&answer).expect("the card holds the key");
        answer[5] ^= 1;
        assert!(matches!(v.check(&answer), Err(Error::Protocol(_))));
        assert!(matches!(v.check(&[]), Err(Error::Protocol(_))));
        assert!(
            !format!("{v:?}").contains("6d"),
            "no secret in Debug: {v:?}"
        );
    }

    #[test]
    fn set_and_clear_code_layouts() {
        let key = AccessKey::derive(&SecretString::from("new code"), &SALT);
        assert_eq!(
            &key.expose()[..],
            &hex("f64f371f5e814519674508ed5d97921f")[..]
        );
        let cmd = set_code_command(&key, OURS).expect("fits");
        let mut want = vec![0x73, 17, 0x21];
        want.extend(hex("f64f371f5e814519674508ed5d97921f"));
        want.extend([0x74, 8]);
        want.extend(OURS);
        want.extend([0x75, 20]);
        want.extend(hex("a462b971d2cbd7c95471b2167b9e52ea643b24a0"));
        assert_eq!(cmd.ins, 0x03);
        assert_eq!(cmd.data, want);
        assert_eq!(clear_code_command().data, vec![0x73, 0]);
    }
}
