//! The YubiKey's OATH application (YKOATH) as a YubiKey 5 answers it over CCID: data first,
//! status word last (the card front adds the status word and chains long answers).
//!
//! Facts from Yubico's `yubikit/oath.py` and `ykman/_cli/oath.py` (yubikey-manager 5.9.2):
//! tags and instructions, PUT's raw `78 02` touch property, keys padded by the host to at least
//! 14 bytes, the access key = PBKDF2-HMAC-SHA1(password, salt, 1000, 16) derived on the host,
//! VALIDATE as a mutual HMAC-SHA1 challenge-response, CALCULATE ALL answering `7C` (touch) and
//! `77` (HOTP) without a code, `69 82` when a touch times out, `6A 80` for a wrong access key,
//! `6A 84` when the key is full; `69 84` "no such object" from Yubico's .NET SDK
//! (`OathSWConstants.NoSuchObject`).

use oathkey_device::apdu::StatusWord;
use oathkey_device::{Algorithm, AlgorithmBits};
use zeroize::Zeroizing;

use crate::apdu::{Apdu, Reader, put_tlv};
use crate::state::{AccessKey, CardState, KeyState, StoredCredential};

/// The application version SELECT reports: a YubiKey 5 firmware recent enough for RENAME
/// (yubikit requires 5.3.1) and SHA-512 (4.3.1).
pub const VERSION: [u8; 3] = [5, 4, 3];
/// Credentials a YubiKey 5 before 5.7 holds.
pub const MAX_CREDENTIALS: usize = 32;
/// Longest credential name (yubikit's CLI refuses longer ones, the key does too).
pub const MAX_NAME: usize = 64;
/// Shortest HMAC key the app takes: hosts pad shorter secrets with zeros (which leaves the HMAC
/// unchanged).
pub const MIN_KEY: usize = 14;

/// YKOATH instructions and tags: the host driver's own table, one source for both ends (as
/// CTAPHID's `wire` is); yubikit's interop tests hold both to Yubico's values.
pub use oathkey_device::ykoath::proto::{ins, tag};

const KIND_HOTP: u8 = 0x10;
const KIND_TOTP: u8 = 0x20;
const PROP_TOUCH: u8 = 0x02;

/// The YubiKey status words this app answers with.
pub mod sw {
    use oathkey_device::apdu::StatusWord;
    /// No such credential (Yubico: "no such object").
    pub const NO_SUCH_OBJECT: StatusWord = StatusWord(0x6984);
    /// Access code not validated in this session, or a touch that did not come.
    pub const AUTH_REQUIRED: StatusWord = StatusWord::SECURITY_STATUS_NOT_SATISFIED;
    /// Malformed data, or a wrong access key.
    pub const WRONG_SYNTAX: StatusWord = StatusWord::INCORRECT_DATA;
    /// No room for another credential.
    pub const NO_SPACE: StatusWord = StatusWord::NOT_ENOUGH_MEMORY;
}

/// A CALCULATE parked until the user touches the key.
#[derive(Debug)]
pub struct Deferred {
    name: Vec<u8>,
    challenge: Vec<u8>,
    truncate: bool,
}

/// What a command came to.
#[derive(Debug)]
pub enum Outcome {
    /// Answer data, or the status word of a failure.
    Done(Result<Vec<u8>, StatusWord>),
    /// The command waits for a touch; finish it with [`YkOath::resume`].
    NeedsTouch(Deferred),
}

/// The app's session state (RAM): lost on re-SELECT, reset and power off.
#[derive(Debug, Default)]
pub struct YkOath {
    /// The access code was proven in this session (or set in it).
    validated: bool,
    /// The challenge the last SELECT handed out, while one is outstanding.
    challenge: Option<Zeroizing<[u8; 8]>>,
}

fn ensure(cond: bool, sw: StatusWord) -> Result<(), StatusWord> {
    if cond { Ok(()) } else { Err(sw) }
}

/// HMAC with the access key's hash (SHA-1 unless SET CODE named SHA-256).
fn access_mac(key: &AccessKey, message: &[u8]) -> Zeroizing<Vec<u8>> {
    let alg = Algorithm::from_bits(key.kind_alg).unwrap_or(Algorithm::Sha1);
    oathkey_otp::hmac(alg, &key.key, message)
}

/// Constant-time comparison of two MACs.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// PBKDF2-HMAC-SHA1 with 1000 iterations and a 16-byte output: the access key a host derives
/// from a password and the salt SELECT reports. The card never runs this (it stores the key);
/// `--access-code` uses it to start a card with a code already set.
pub fn derive_access_key(password: &[u8], salt: &[u8]) -> Zeroizing<Vec<u8>> {
    // One output block (16 bytes fit in one SHA-1 block of 20): U1 = HMAC(P, S || 1),
    // Ui = HMAC(P, Ui-1), the key is the XOR of all Ui.
    let mut message = Zeroizing::new(salt.to_vec());
    message.extend_from_slice(&1u32.to_be_bytes());
    let mut u = oathkey_otp::hmac(Algorithm::Sha1, password, &message);
    let mut out = Zeroizing::new(u.to_vec());
    for _ in 1..1000 {
        u = oathkey_otp::hmac(Algorithm::Sha1, password, &u);
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out.truncate(16);
    out
}

impl YkOath {
    /// SELECT: a new session. Answers version, salt and, with an access code set, a fresh
    /// challenge and the key's algorithm. A YubiKey names no serial here (the Management app
    /// does).
    pub fn select(&mut self, state: &KeyState) -> Vec<u8> {
        self.validated = false;
        self.challenge = None;
        let mut out = Vec::with_capacity(32);
        put_tlv(&mut out, tag::VERSION, &VERSION);
        put_tlv(&mut out, tag::NAME, &state.card.oath_salt);
        if let Some(key) = &state.card.access_key {
            let mut challenge = Zeroizing::new([0u8; 8]);
            let _ = getrandom::fill(challenge.as_mut());
            put_tlv(&mut out, tag::CHALLENGE, challenge.as_ref());
            put_tlv(&mut out, tag::ALGORITHM, &[key.kind_alg & 0x0F]);
            self.challenge = Some(challenge);
        }
        out
    }

    /// Whether the session may run commands other than VALIDATE and RESET.
    fn unlocked(&self, state: &KeyState) -> bool {
        state.card.access_key.is_none() || self.validated
    }

    /// Handles one command (not SELECT, not SEND REMAINING: the card does those).
    pub fn handle(&mut self, state: &mut KeyState, apdu: &Apdu, dirty: &mut bool) -> Outcome {
        let data = apdu.data.as_slice();
        let done = Outcome::Done;
        match apdu.ins {
            ins::VALIDATE => return done(self.validate(state, data)),
            ins::RESET => {
                return done(if (apdu.p1, apdu.p2) == (0xDE, 0xAD) {
                    self.reset(state, dirty);
                    Ok(vec![])
                } else {
                    Err(StatusWord::INCORRECT_P1P2)
                });
            }
            _ => {}
        }
        let known = matches!(
            apdu.ins,
            ins::PUT
                | ins::DELETE
                | ins::SET_CODE
                | ins::RENAME
                | ins::LIST
                | ins::CALCULATE
                | ins::CALCULATE_ALL
        );
        if !known {
            return done(Err(StatusWord::INS_NOT_SUPPORTED));
        }
        if !self.unlocked(state) {
            return done(Err(sw::AUTH_REQUIRED));
        }
        match apdu.ins {
            ins::PUT => done(put(state, data, dirty)),
            ins::DELETE => done(delete(state, data, dirty)),
            ins::SET_CODE => done(self.set_code(state, data, dirty)),
            ins::RENAME => done(rename(state, data, dirty)),
            ins::LIST => done(Ok(list(state))),
            ins::CALCULATE => match calculate_request(state, apdu) {
                Ok((deferred, true)) => Outcome::NeedsTouch(deferred),
                Ok((deferred, false)) => done(calculate(state, &deferred, dirty)),
                Err(sw) => done(Err(sw)),
            },
            _ => done(calculate_all(state, apdu)),
        }
    }

    /// Finishes a CALCULATE that waited for a touch: `69 82` when none came, as a YubiKey
    /// answers after its touch timeout.
    pub fn resume(
        &mut self,
        state: &mut KeyState,
        deferred: &Deferred,
        touched: bool,
        dirty: &mut bool,
    ) -> Result<Vec<u8>, StatusWord> {
        ensure(touched, sw::AUTH_REQUIRED)?;
        calculate(state, deferred, dirty)
    }

    fn validate(&mut self, state: &KeyState, data: &[u8]) -> Result<Vec<u8>, StatusWord> {
        let key = state.card.access_key.as_ref().ok_or(sw::NO_SUCH_OBJECT)?;
        let challenge = self.challenge.as_ref().ok_or(sw::NO_SUCH_OBJECT)?;
        let mut r = Reader::new(data);
        let response = r.expect(tag::RESPONSE)?;
        let host_challenge = r.expect(tag::CHALLENGE)?;
        // A wrong key leaves the challenge in place: ykman retries with another key in the
        // same session after `6A 80`.
        ensure(
            same(&access_mac(key, challenge.as_ref()), response),
            sw::WRONG_SYNTAX,
        )?;
        self.validated = true;
        self.challenge = None;
        let mut out = Vec::with_capacity(22);
        put_tlv(&mut out, tag::RESPONSE, &access_mac(key, host_challenge));
        Ok(out)
    }

    fn set_code(
        &mut self,
        state: &mut KeyState,
        data: &[u8],
        dirty: &mut bool,
    ) -> Result<Vec<u8>, StatusWord> {
        let mut r = Reader::new(data);
        let key = if r.is_empty() {
            &[][..]
        } else {
            r.expect(tag::KEY)?
        };
        if key.is_empty() {
            // `73 00` (or nothing): remove the code.
            ensure(r.is_empty(), sw::WRONG_SYNTAX)?;
            state.card.access_key = None;
            *dirty = true;
            return Ok(vec![]);
        }
        let (&kind_alg, secret) = key.split_first().ok_or(sw::WRONG_SYNTAX)?;
        ensure(
            kind_alg & 0xF0 == KIND_TOTP
                && matches!(
                    Algorithm::from_bits(kind_alg),
                    Some(Algorithm::Sha1 | Algorithm::Sha256)
                )
                && (1..=64).contains(&secret.len()),
            sw::WRONG_SYNTAX,
        )?;
        let challenge = r.expect(tag::CHALLENGE)?;
        let response = r.expect(tag::RESPONSE)?;
        ensure(r.is_empty(), sw::WRONG_SYNTAX)?;
        let new = AccessKey {
            kind_alg,
            key: Zeroizing::new(secret.to_vec()),
        };
        // The host proves it holds the key it sends (no typo in a half-sent key).
        ensure(
            same(&access_mac(&new, challenge), response),
            sw::WRONG_SYNTAX,
        )?;
        state.card.access_key = Some(new);
        // The session that set the code stays usable, as yubikit expects.
        self.validated = true;
        *dirty = true;
        Ok(vec![])
    }

    fn reset(&mut self, state: &mut KeyState, dirty: &mut bool) {
        state.credentials.clear();
        state.card.access_key = None;
        state.card.oath_salt = CardState::new_salt();
        self.validated = false;
        self.challenge = None;
        *dirty = true;
    }
}

fn put(state: &mut KeyState, data: &[u8], dirty: &mut bool) -> Result<Vec<u8>, StatusWord> {
    let mut r = Reader::new(data);
    let name = r.expect(tag::NAME)?;
    ensure((1..=MAX_NAME).contains(&name.len()), sw::WRONG_SYNTAX)?;
    let key = r.expect(tag::KEY)?;
    let [kind_alg, digits, secret @ ..] = key else {
        return Err(sw::WRONG_SYNTAX);
    };
    let kind = kind_alg & 0xF0;
    let alg = Algorithm::from_bits(*kind_alg).ok_or(sw::WRONG_SYNTAX)?;
    ensure(kind == KIND_HOTP || kind == KIND_TOTP, sw::WRONG_SYNTAX)?;
    ensure((6..=8).contains(digits), sw::WRONG_SYNTAX)?;
    // Hosts hash keys longer than the hash's block and pad short ones to 14 bytes.
    ensure(
        (MIN_KEY..=alg.block_size()).contains(&secret.len()),
        sw::WRONG_SYNTAX,
    )?;
    // The property is the raw pair `78 pp`, no length byte.
    let props = if r.peek_tag() == Some(tag::PROPERTY) {
        r.raw(2)?[1]
    } else {
        0
    };
    let mut counter = 0;
    if r.peek_tag() == Some(tag::IMF) {
        let imf = r.expect(tag::IMF)?;
        let bytes: [u8; 4] = imf.try_into().map_err(|_| sw::WRONG_SYNTAX)?;
        if kind == KIND_HOTP {
            counter = u32::from_be_bytes(bytes);
        }
    }
    ensure(r.is_empty(), sw::WRONG_SYNTAX)?;
    let cred = StoredCredential {
        name: name.to_vec(),
        kind_alg: *kind_alg,
        digits: *digits,
        secret: Zeroizing::new(secret.to_vec()),
        touch: props & PROP_TOUCH != 0,
        pin_encrypted: false,
        counter,
    };
    // A PUT with an existing name overwrites that credential.
    match state.credentials.iter().position(|c| c.name == cred.name) {
        Some(i) => state.credentials[i] = cred,
        None => {
            ensure(state.credentials.len() < MAX_CREDENTIALS, sw::NO_SPACE)?;
            state.credentials.push(cred);
        }
    }
    *dirty = true;
    Ok(vec![])
}

fn position(state: &KeyState, name: &[u8]) -> Result<usize, StatusWord> {
    state
        .credentials
        .iter()
        .position(|c| c.name == name)
        .ok_or(sw::NO_SUCH_OBJECT)
}

fn delete(state: &mut KeyState, data: &[u8], dirty: &mut bool) -> Result<Vec<u8>, StatusWord> {
    let name = Reader::new(data).expect(tag::NAME)?;
    let index = position(state, name)?;
    state.credentials.remove(index);
    *dirty = true;
    Ok(vec![])
}

fn rename(state: &mut KeyState, data: &[u8], dirty: &mut bool) -> Result<Vec<u8>, StatusWord> {
    let mut r = Reader::new(data);
    let old = r.expect(tag::NAME)?;
    let new = r.expect(tag::NAME)?;
    ensure(r.is_empty(), sw::WRONG_SYNTAX)?;
    let index = position(state, old)?;
    ensure((1..=MAX_NAME).contains(&new.len()), sw::WRONG_SYNTAX)?;
    // Renaming onto another credential's name would leave two with one name.
    ensure(
        !state.credentials.iter().any(|c| c.name == new) || old == new,
        sw::WRONG_SYNTAX,
    )?;
    state.credentials[index].name = new.to_vec();
    *dirty = true;
    Ok(vec![])
}

fn list(state: &KeyState) -> Vec<u8> {
    let mut out = Vec::new();
    for cred in &state.credentials {
        let mut value = Vec::with_capacity(1 + cred.name.len());
        value.push(cred.kind_alg);
        value.extend_from_slice(&cred.name);
        put_tlv(&mut out, tag::NAME_LIST, &value);
    }
    out
}

/// Checks a CALCULATE; returns the work and whether it needs a touch first.
fn calculate_request(state: &KeyState, apdu: &Apdu) -> Result<(Deferred, bool), StatusWord> {
    ensure(apdu.p1 == 0 && apdu.p2 <= 1, StatusWord::INCORRECT_P1P2)?;
    let mut r = Reader::new(&apdu.data);
    let name = r.expect(tag::NAME)?.to_vec();
    let challenge = r.expect(tag::CHALLENGE)?.to_vec();
    let cred = &state.credentials[position(state, &name)?];
    let touch = cred.touch;
    Ok((
        Deferred {
            name,
            challenge,
            truncate: apdu.p2 == 1,
        },
        touch,
    ))
}

/// The response TLV for one credential: `76 05 digits value` or `75 n digits hmac`.
fn response(cred: &StoredCredential, message: &[u8], truncate: bool) -> Vec<u8> {
    let alg = Algorithm::from_bits(cred.kind_alg).unwrap_or(Algorithm::Sha1);
    let mut out = Vec::with_capacity(70);
    if truncate {
        // The shared computation (`oathkey-otp`): dynamic truncation, top bit cleared.
        let value = oathkey_otp::truncated(alg, &cred.secret, message);
        out.extend_from_slice(&[tag::TRUNCATED, 5, cred.digits]);
        out.extend_from_slice(&value.to_be_bytes());
    } else {
        let mac = oathkey_otp::hmac(alg, &cred.secret, message);
        let mut value = Vec::with_capacity(1 + mac.len());
        value.push(cred.digits);
        value.extend_from_slice(&mac);
        put_tlv(&mut out, tag::RESPONSE, &value);
    }
    out
}

fn calculate(
    state: &mut KeyState,
    deferred: &Deferred,
    dirty: &mut bool,
) -> Result<Vec<u8>, StatusWord> {
    let index = position(state, &deferred.name)?;
    let cred = &mut state.credentials[index];
    let message = if cred.kind_alg & 0xF0 == KIND_HOTP {
        // The counter moves on (and is saved) with the code computed from its old value; the
        // challenge is ignored.
        let current = cred.counter;
        cred.counter = current.wrapping_add(1);
        *dirty = true;
        u64::from(current).to_be_bytes().to_vec()
    } else {
        deferred.challenge.clone()
    };
    Ok(response(cred, &message, deferred.truncate))
}

fn calculate_all(state: &KeyState, apdu: &Apdu) -> Result<Vec<u8>, StatusWord> {
    ensure(apdu.p1 == 0 && apdu.p2 <= 1, StatusWord::INCORRECT_P1P2)?;
    let challenge = Reader::new(&apdu.data).expect(tag::CHALLENGE)?;
    let mut out = Vec::new();
    for cred in &state.credentials {
        put_tlv(&mut out, tag::NAME, &cred.name);
        // HOTP first: yubikit reads `7C` as a TOTP credential that needs a touch.
        if cred.kind_alg & 0xF0 == KIND_HOTP {
            put_tlv(&mut out, tag::HOTP, &[cred.digits]);
        } else if cred.touch {
            put_tlv(&mut out, tag::TOUCH, &[cred.digits]);
        } else {
            out.extend_from_slice(&response(cred, challenge, apdu.p2 == 1));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    #[test]
    fn pbkdf2_matches_rfc_6070_for_the_first_16_bytes() {
        // RFC 6070 gives 1 and 4096 iterations; the 1000-iteration key of yubikit is checked
        // against Python's hashlib in the interop test. Here: the construction itself.
        let one = {
            let mut m = b"salt".to_vec();
            m.extend_from_slice(&1u32.to_be_bytes());
            oathkey_otp::hmac(Algorithm::Sha1, b"password", &m)
        };
        assert_eq!(
            HEXLOWER.encode(&one),
            "0c60c80f961f0e71f3a9b524af6012062fe037a6"
        );
        // hashlib.pbkdf2_hmac("sha1", b"password", b"salt", 1000, 16)
        assert_eq!(
            HEXLOWER.encode(&derive_access_key(b"password", b"salt")),
            "6e88be8bad7eae9d9e10aa061224034f"
        );
    }
}
