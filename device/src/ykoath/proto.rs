//! YKOATH over CCID as data: instructions, tags, and the requests and answers that differ from
//! the Nitrokey 3 dialect in [`crate::oath`].
//!
//! What is the same is used from there: the kind|algorithm byte ([`OtpKind`],
//! [`AlgorithmBits`]), LIST entries ([`oath::parse_list`]), CALCULATE with a truncated answer
//! ([`oath::calculate_command`], [`oath::parse_calculate`]) and DELETE
//! ([`oath::name_command`]). What differs is here: SELECT's answer (salt, access-code
//! challenge and algorithm instead of a PIN counter), PUT (key shortening and padding, the
//! touch property only when set, the counter only when not 0), CALCULATE ALL, RENAME, and the
//! two dialects' quirks ([`Dialect`]).
//!
//! Byte values checked against Yubico's yubikey-manager (`yubikit/oath.py`), the Yubico .NET
//! SDK's OATH command reference (`oath-commands.md`, `SelectOathResponse.cs`,
//! `CalculateAllCredentialsResponse.cs`) and Nitrokey's trussed-secrets-app (`src/command.rs`,
//! `src/authenticator.rs`).

use std::collections::HashMap;

use oathkey_otp::Algorithm;
use secrecy::ExposeSecret;
use sha1::Digest;
use zeroize::Zeroizing;

use crate::apdu::{self, Command, StatusWord, tlvs};
use crate::error::Error;
use crate::oath::{self, AlgorithmBits, CredentialInfo, MAX_NAME_LEN, NewCredential, Otp, OtpKind};

/// The OATH application's identifier (the same on YubiKey, Nitrokey 3 and trussed keys).
pub const AID: [u8; 7] = oath::AID;

/// Instruction bytes.
pub mod ins {
    /// SELECT (ISO 7816), P1 `04`.
    pub const SELECT: u8 = 0xA4;
    /// Store a credential.
    pub const PUT: u8 = 0x01;
    /// Delete a credential.
    pub const DELETE: u8 = 0x02;
    /// Set or clear the access code.
    pub const SET_CODE: u8 = 0x03;
    /// Wipe the application (P1 `DE`, P2 `AD`).
    pub const RESET: u8 = 0x04;
    /// Rename a credential (YubiKey 5.3.1 and later).
    pub const RENAME: u8 = 0x05;
    /// List credentials.
    pub const LIST: u8 = 0xA1;
    /// Compute one code (P2 `01`: truncated).
    pub const CALCULATE: u8 = 0xA2;
    /// Prove the access code (mutual).
    pub const VALIDATE: u8 = 0xA3;
    /// Compute every TOTP code that needs no touch (P2 `01`: truncated).
    pub const CALCULATE_ALL: u8 = 0xA4;
    /// Fetch the next chunk of a long answer.
    pub const SEND_REMAINING: u8 = 0xA5;
}

/// TLV tags.
pub mod tag {
    /// Credential name; in SELECT's answer, the salt.
    pub const NAME: u8 = 0x71;
    /// One LIST entry.
    pub const NAME_LIST: u8 = 0x72;
    /// Key: kind|algorithm, digits, secret (PUT); kind|algorithm, key (SET CODE).
    pub const KEY: u8 = 0x73;
    /// Challenge.
    pub const CHALLENGE: u8 = 0x74;
    /// Full HMAC response (digits first).
    pub const RESPONSE: u8 = 0x75;
    /// Truncated response: digits, 4 bytes.
    pub const TRUNCATED: u8 = 0x76;
    /// CALCULATE ALL: an HOTP credential (no code computed, so its counter does not move).
    pub const HOTP: u8 = 0x77;
    /// Property byte, written in PUT as `78 pp` with no length byte.
    pub const PROPERTY: u8 = 0x78;
    /// Application version.
    pub const VERSION: u8 = 0x79;
    /// Initial moving factor (HOTP counter), 4 bytes.
    pub const IMF: u8 = 0x7A;
    /// SELECT: the access code's hash algorithm.
    pub const ALGORITHM: u8 = 0x7B;
    /// CALCULATE ALL: a credential that needs a touch (no code computed).
    pub const TOUCH: u8 = 0x7C;
    /// Trussed secrets app: PIN attempts left (a PIN is set).
    pub const PIN_COUNTER: u8 = 0x82;
    /// Trussed secrets app: the device serial number.
    pub const SERIAL: u8 = 0x8F;
}

/// The PUT property that makes every code wait for a touch.
pub const PROP_REQUIRE_TOUCH: u8 = 0x02;

/// YubiKeys refuse shorter HMAC keys; zero padding leaves the HMAC unchanged (HMAC pads keys
/// with zeros to the block size anyway).
pub const HMAC_MINIMUM_KEY_SIZE: usize = 14;

/// The two dialects of YKOATH seen over CCID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Yubico's YKOATH (YubiKey NEO, 4, 5) and cards that follow it: LIST without properties,
    /// CALCULATE ALL tells which credentials need touch, an access code, RENAME from 5.3.1.
    Yubikey,
    /// Nitrokey's trussed secrets app over CCID (Nitrokey 3), recognised by the serial number
    /// (`8F`) or PIN counter (`82`) in its SELECT answer: an extended LIST with a property byte
    /// (4.11 and later), a touch for every PUT and DELETE, a PIN instead of an access code, no
    /// RENAME, no CALCULATE ALL (a build option its firmware leaves off).
    SecretsApp,
}

/// What SELECT tells about the OATH application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YkSelect {
    /// Application version (the YubiKey's firmware version; 4.x on a Nitrokey 3).
    pub version: (u8, u8, u8),
    /// The salt for the access-code key (tag `71`; changes on RESET).
    pub salt: Vec<u8>,
    /// The challenge to answer with VALIDATE (tag `74`): present only when an access code is
    /// set.
    pub challenge: Option<Vec<u8>>,
    /// The access code's hash (tag `7B`; SHA-1 when absent).
    pub algorithm: Algorithm,
    /// The device serial number (tag `8F`, trussed secrets app).
    pub serial: Option<u32>,
    /// PIN attempts left (tag `82`, trussed secrets app with a PIN set).
    pub pin_retries: Option<u8>,
}

impl YkSelect {
    /// The SELECT command: `00 A4 04 00 07 A0 00 00 05 27 21 01`.
    pub fn command() -> Command {
        Command::new(ins::SELECT, 0x04, 0x00, AID.to_vec())
    }

    /// Parses SELECT's answer data. Unknown tags are skipped (a later firmware may add some).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut out = Self {
            version: (0, 0, 0),
            salt: Vec::new(),
            challenge: None,
            algorithm: Algorithm::Sha1,
            serial: None,
            pin_retries: None,
        };
        let mut version = None;
        for item in tlvs(data) {
            match item.map_err(|e| Error::Protocol(format!("SELECT answer: {e}")))? {
                (tag::VERSION, &[a, b, c]) => version = Some((a, b, c)),
                (tag::NAME, salt) => out.salt = salt.to_vec(),
                (tag::CHALLENGE, challenge) => out.challenge = Some(challenge.to_vec()),
                (tag::ALGORITHM, &[alg]) => {
                    out.algorithm = Algorithm::from_bits(alg).ok_or_else(|| {
                        Error::Protocol(format!("unknown access-code algorithm {alg:#04x}"))
                    })?;
                }
                (tag::SERIAL, &[a, b, c, d]) => out.serial = Some(u32::from_be_bytes([a, b, c, d])),
                (tag::PIN_COUNTER, &[n]) => out.pin_retries = Some(n),
                _ => {}
            }
        }
        out.version =
            version.ok_or_else(|| Error::Protocol("SELECT answer has no version".into()))?;
        Ok(out)
    }

    /// Which dialect the application speaks.
    pub fn dialect(&self) -> Dialect {
        if self.serial.is_some() || self.pin_retries.is_some() {
            Dialect::SecretsApp
        } else {
            Dialect::Yubikey
        }
    }

    /// Whether an access code is set (SELECT carries a challenge).
    pub fn has_access_code(&self) -> bool {
        self.challenge.is_some()
    }

    /// Whether LIST can report a property byte per entry (trussed secrets app 4.11 and later).
    pub fn has_extended_list(&self) -> bool {
        self.dialect() == Dialect::SecretsApp && self.version >= (4, 11, 0)
    }

    /// Whether RENAME exists: YubiKey 5.3.1 and later (yubikit's `require_version`).
    pub fn can_rename(&self) -> bool {
        self.dialect() == Dialect::Yubikey && self.version >= (5, 3, 1)
    }

    /// Whether credentials can require touch: YubiKey 4.2.6 and later (ykman's check).
    pub fn can_touch(&self) -> bool {
        self.dialect() == Dialect::SecretsApp || self.version >= (4, 2, 6)
    }

    /// The hashes it computes: HMAC-SHA-512 from YubiKey 4.3.1 on; the secrets app has none.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut out = vec![Algorithm::Sha1, Algorithm::Sha256];
        if self.dialect() == Dialect::Yubikey && self.version >= (4, 3, 1) {
            out.push(Algorithm::Sha512);
        }
        out
    }

    /// YubiKey 4 before 4.3.5 corrupts a credential whose name starts with a new one's when
    /// the new one is written (yubikey-manager refuses such names).
    pub fn has_overwrite_bug(&self) -> bool {
        self.dialect() == Dialect::Yubikey && (4, 0, 0) < self.version && self.version < (4, 3, 5)
    }
}

/// The LIST command; `extended` asks the secrets app for a property byte per entry.
pub fn list_command(extended: bool) -> Command {
    oath::list_command(extended)
}

/// Parses LIST answer data (entries are the same as the Nitrokey 3 dialect's).
pub fn parse_list(data: &[u8], extended: bool) -> Result<Vec<CredentialInfo>, Error> {
    oath::parse_list(data, extended)
}

/// What CALCULATE ALL says about one credential.
#[derive(Clone, PartialEq, Eq)]
pub enum CalculatedEntry {
    /// A TOTP credential that needs no touch, with its code for the challenge.
    Code(Otp),
    /// An HOTP credential: no code, so its counter did not move. Whether it needs a touch is
    /// not said.
    Hotp,
    /// A credential that needs a touch: no code.
    Touch,
}

impl std::fmt::Debug for CalculatedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Code(_) => "Code(..)",
            Self::Hotp => "Hotp",
            Self::Touch => "Touch",
        })
    }
}

/// CALCULATE ALL with truncated answers: `A4 00 01`, `74` the 8-byte challenge.
pub fn calculate_all_command(challenge: u64) -> Result<Command, Error> {
    let mut data = Vec::with_capacity(10);
    push(&mut data, tag::CHALLENGE, &challenge.to_be_bytes())?;
    Ok(Command::new(ins::CALCULATE_ALL, 0x00, 0x01, data))
}

/// Parses CALCULATE ALL's answer: pairs of `71` name and `76`/`75` code, `77` HOTP or `7C`
/// touch (each with the digits as value).
pub fn parse_calculate_all(data: &[u8]) -> Result<Vec<(String, CalculatedEntry)>, Error> {
    let mut out = Vec::new();
    let mut items = tlvs(data);
    while let Some(item) = items.next() {
        let (t, name) = item.map_err(|e| Error::Protocol(format!("CALCULATE ALL: {e}")))?;
        if t != tag::NAME {
            return Err(Error::Protocol(format!(
                "CALCULATE ALL: expected a name, got tag {t:#04x}"
            )));
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let (t, value) = items
            .next()
            .ok_or_else(|| Error::Protocol(format!("CALCULATE ALL: {name:?} has no result")))?
            .map_err(|e| Error::Protocol(format!("CALCULATE ALL: {e}")))?;
        let entry = match (t, value) {
            (tag::TRUNCATED, [digits, a, b, c, d]) => CalculatedEntry::Code(Otp::from_truncated(
                u32::from_be_bytes([*a, *b, *c, *d]),
                *digits,
            )?),
            (tag::RESPONSE, [digits, mac @ ..]) => {
                let value = oathkey_otp::truncate(mac).ok_or_else(|| {
                    Error::Protocol(format!("CALCULATE ALL: short response for {name:?}"))
                })?;
                CalculatedEntry::Code(Otp::from_truncated(value, *digits)?)
            }
            (tag::HOTP, _) => CalculatedEntry::Hotp,
            (tag::TOUCH, _) => CalculatedEntry::Touch,
            (t, _) => {
                return Err(Error::Protocol(format!(
                    "CALCULATE ALL: unexpected tag {t:#04x} for {name:?}"
                )));
            }
        };
        out.push((name, entry));
    }
    Ok(out)
}

/// Fills in what LIST does not tell from CALCULATE ALL: a credential answered with `7C` needs
/// touch, one answered with a code does not; an HOTP credential's touch stays unknown.
pub fn merge_touch(list: &mut [CredentialInfo], calculated: &[(String, CalculatedEntry)]) {
    let by_name: HashMap<&str, &CalculatedEntry> =
        calculated.iter().map(|(n, e)| (n.as_str(), e)).collect();
    for cred in list {
        cred.touch_required = match by_name.get(cred.name.as_str()) {
            Some(CalculatedEntry::Touch) => Some(true),
            Some(CalculatedEntry::Code(_)) => Some(false),
            Some(CalculatedEntry::Hotp) | None => cred.touch_required,
        };
    }
}

/// The HMAC key as YKOATH stores it: keys longer than the hash's block size are hashed first
/// (what HMAC does with them anyway), then short keys are zero-padded to
/// [`HMAC_MINIMUM_KEY_SIZE`]. Neither step changes a single code.
pub fn card_key(algorithm: Algorithm, secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut key = if secret.len() > algorithm.block_size() {
        Zeroizing::new(match algorithm {
            Algorithm::Sha1 => sha1::Sha1::digest(secret).to_vec(),
            Algorithm::Sha256 => sha2::Sha256::digest(secret).to_vec(),
            Algorithm::Sha512 => sha2::Sha512::digest(secret).to_vec(),
        })
    } else {
        Zeroizing::new(secret.to_vec())
    };
    if key.len() < HMAC_MINIMUM_KEY_SIZE {
        key.resize(HMAC_MINIMUM_KEY_SIZE, 0);
    }
    key
}

/// The PUT command: `71` name, `73` kind|alg digits key, then `78 02` (raw, no length byte)
/// when every code needs a touch, and `7A` the HOTP counter when it is not 0 (as yubikit
/// writes it; a missing counter means 0).
pub fn put_command(cred: &NewCredential) -> Result<Command, Error> {
    check_name(&cred.name)?;
    if !(6..=8).contains(&cred.digits) {
        return Err(Error::InvalidArgument(format!(
            "digits must be 6 to 8, not {}",
            cred.digits
        )));
    }
    let secret = cred.secret.expose_secret();
    if secret.is_empty() {
        return Err(Error::InvalidArgument("the secret is empty".into()));
    }
    if cred.pin_protected {
        return Err(Error::Unsupported(
            "PIN-protected tokens: YKOATH keys have an access code for all tokens instead".into(),
        ));
    }
    if cred.kind == OtpKind::Hotp && cred.initial_counter == u32::MAX {
        return Err(Error::InvalidArgument(format!(
            "the HOTP counter must be below {}: the key moves it on before every code",
            u32::MAX
        )));
    }
    let key = card_key(cred.algorithm, secret);
    let mut keydata = Zeroizing::new(Vec::with_capacity(2 + key.len()));
    keydata.push(cred.kind.bits() | cred.algorithm.bits());
    keydata.push(cred.digits);
    keydata.extend_from_slice(&key);
    let mut data = Vec::with_capacity(4 + cred.name.len() + keydata.len() + 8);
    push(&mut data, tag::NAME, cred.name.as_bytes())?;
    push(&mut data, tag::KEY, &keydata)?;
    if cred.touch_required {
        // The touch property is tag and value with no length byte: `78 02`.
        data.extend_from_slice(&[tag::PROPERTY, PROP_REQUIRE_TOUCH]);
    }
    if cred.kind == OtpKind::Hotp && cred.initial_counter > 0 {
        push(&mut data, tag::IMF, &cred.initial_counter.to_be_bytes())?;
    }
    Ok(Command::new(ins::PUT, 0, 0, data))
}

/// The CALCULATE command: `A2 00 01`, `71` name, `74` challenge. HOTP credentials get an empty
/// challenge (the card keeps the counter), as yubikit sends them.
pub fn calculate_command(name: &str, challenge: Option<u64>) -> Result<Command, Error> {
    match challenge {
        Some(c) => oath::calculate_command(name, c),
        None => {
            let mut data = Vec::with_capacity(name.len() + 4);
            push(&mut data, tag::NAME, name.as_bytes())?;
            push(&mut data, tag::CHALLENGE, &[])?;
            Ok(Command::new(ins::CALCULATE, 0x00, 0x01, data))
        }
    }
}

/// Parses CALCULATE's truncated answer `76 05 digits value(4)`.
pub fn parse_calculate(data: &[u8]) -> Result<Otp, Error> {
    oath::parse_calculate(data)
}

/// The DELETE command: `02`, `71` name.
pub fn delete_command(name: &str) -> Result<Command, Error> {
    oath::name_command(ins::DELETE, name)
}

/// The RENAME command: `05`, `71` old name, `71` new name.
pub fn rename_command(name: &str, new_name: &str) -> Result<Command, Error> {
    check_name(new_name)?;
    let mut data = Vec::with_capacity(4 + name.len() + new_name.len());
    push(&mut data, tag::NAME, name.as_bytes())?;
    push(&mut data, tag::NAME, new_name.as_bytes())?;
    Ok(Command::new(ins::RENAME, 0, 0, data))
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "credential name must be 1 to {MAX_NAME_LEN} bytes, not {}",
            name.len()
        )));
    }
    Ok(())
}

/// Status words with one meaning after any YKOATH request (YKOATH's "auth required" is
/// `69 82`: the access code was not validated).
pub fn common_error(sw: StatusWord) -> Error {
    match sw {
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => Error::Locked,
        // YubiKey says "no such object" with 69 84, the secrets app with 6A 82.
        StatusWord::REFERENCE_NOT_USABLE | StatusWord::NOT_FOUND => Error::NotFound,
        StatusWord::NOT_ENOUGH_MEMORY => Error::NoSpace,
        StatusWord::INS_NOT_SUPPORTED | StatusWord(0x6A81) => {
            Error::Unsupported("the card does not implement this instruction".into())
        }
        other => Error::Status(other),
    }
}

/// For requests that may wait for a touch, `69 82` means it did not come (the access code,
/// if any, was validated in the same transaction).
pub fn touch_error(sw: StatusWord) -> Error {
    match sw {
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => Error::TouchTimeout,
        other => common_error(other),
    }
}

fn push(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), Error> {
    apdu::push_tlv(out, tag, value).map_err(|e| Error::InvalidArgument(e.to_string()))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretSlice;

    use super::*;

    fn cred(name: &str, secret: &[u8]) -> NewCredential {
        NewCredential {
            name: name.into(),
            kind: OtpKind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            secret: SecretSlice::from(secret.to_vec()),
            touch_required: false,
            pin_protected: false,
            initial_counter: 0,
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn select_of_a_yubikey_with_and_without_access_code() {
        // The .NET SDK's documented answer of a YubiKey 5.2.4 without an access code.
        let open = hex("790305020471084bb7a7fad7af401b");
        let s = YkSelect::parse(&open).expect("valid");
        assert_eq!(s.version, (5, 2, 4));
        assert_eq!(s.salt, hex("4bb7a7fad7af401b"));
        assert!(!s.has_access_code());
        assert_eq!(s.dialect(), Dialect::Yubikey);
        assert!(!s.can_rename());
        assert!(s.can_touch());
        assert_eq!(s.algorithms().len(), 3);

        let locked = hex("790305070171080102030405060708740808070605040302017b0101");
        let s = YkSelect::parse(&locked).expect("valid");
        assert!(s.has_access_code());
        assert_eq!(s.challenge.as_deref(), Some(&[8, 7, 6, 5, 4, 3, 2, 1][..]));
        assert_eq!(s.algorithm, Algorithm::Sha1);
        assert!(s.can_rename());
        assert!(matches!(
            YkSelect::parse(&hex("7108")),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            YkSelect::parse(&hex("710100")),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn select_of_a_nitrokey_3_is_the_secrets_app_dialect() {
        // trussed-secrets-app's answer: version 4.x, salt, serial 8F (and 82 with a PIN).
        let s = YkSelect::parse(&hex("7903040d00710801020304050607088f04deadbeef")).expect("valid");
        assert_eq!(s.dialect(), Dialect::SecretsApp);
        assert_eq!(s.serial, Some(0xDEAD_BEEF));
        assert!(s.has_extended_list());
        assert!(!s.can_rename());
        assert_eq!(s.algorithms(), vec![Algorithm::Sha1, Algorithm::Sha256]);
        assert!(!s.has_overwrite_bug());
    }

    #[test]
    fn put_pads_short_keys_and_sends_touch_as_two_raw_bytes() {
        let mut c = cred("a", &[0x9C]);
        c.touch_required = true;
        let cmd = put_command(&c).expect("valid");
        // As in the .NET SDK's documented PUT: the key padded to 14 bytes, then 78 02.
        let mut want = vec![0x71, 1, b'a', 0x73, 16, 0x21, 6, 0x9C];
        want.extend([0; 13]);
        want.extend([0x78, 0x02]);
        assert_eq!((cmd.ins, cmd.p1, cmd.p2), (0x01, 0, 0));
        assert_eq!(cmd.data, want);

        c.touch_required = false;
        let cmd = put_command(&c).expect("valid");
        assert_eq!(cmd.data.len(), want.len() - 2, "no property without touch");
    }

    #[test]
    fn put_hashes_keys_longer_than_the_block() {
        // Digests computed with Python's hashlib and pasted here.
        let long: Vec<u8> = (0..70).collect();
        let cmd = put_command(&cred("l", &long)).expect("valid");
        assert_eq!(
            &cmd.data[7..],
            &hex("c24887924f92adac5ae367995d12691c662b7362")[..]
        );

        let mut c = cred("l", &long);
        c.algorithm = Algorithm::Sha256;
        let cmd = put_command(&c).expect("valid");
        assert_eq!(cmd.data[5], 0x22);
        assert_eq!(
            &cmd.data[7..],
            &hex("5767d69a906d4860db9079eb7e90ab4a543e5cb032fce846554aef6ceb600e1d")[..]
        );

        // SHA-512's block is 128 bytes: 70 bytes stay, 130 are hashed.
        c.algorithm = Algorithm::Sha512;
        assert_eq!(&put_command(&c).expect("valid").data[7..], &long[..]);
        let longer: Vec<u8> = (0..130).collect();
        let mut c = cred("l", &longer);
        c.algorithm = Algorithm::Sha512;
        assert_eq!(
            &put_command(&c).expect("valid").data[7..],
            &hex(
                "90272b89212c81b9700897f611f13ac1d291c33a437000c1423336b4d962dd39\
                 ce23413160f023963e12f4ccf90d2762b31bfc6818ef865e8a7cbf918a94c1db"
            )[..]
        );
        // Exactly a block: stored as it is.
        let block = [7u8; 64];
        assert_eq!(
            &put_command(&cred("b", &block)).expect("valid").data[7..],
            &block[..]
        );
    }

    #[test]
    fn put_of_hotp_sends_the_counter_only_when_not_zero() {
        let mut c = cred("h", &[1; 20]);
        c.kind = OtpKind::Hotp;
        let zero = put_command(&c).expect("valid");
        assert_eq!(zero.data[5], 0x11);
        assert!(!zero.data.windows(2).any(|w| w == [0x7A, 4]));
        c.initial_counter = 0x0102_0304;
        let cmd = put_command(&c).expect("valid");
        assert_eq!(&cmd.data[cmd.data.len() - 6..], &[0x7A, 4, 1, 2, 3, 4]);
    }

    #[test]
    fn put_refuses_what_the_card_cannot_take() {
        assert!(matches!(
            put_command(&cred("", &[1])),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            put_command(&cred(&"x".repeat(65), &[1])),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            put_command(&cred("a", &[])),
            Err(Error::InvalidArgument(_))
        ));
        let mut c = cred("a", &[1]);
        c.pin_protected = true;
        assert!(matches!(put_command(&c), Err(Error::Unsupported(_))));
        let mut c = cred("a", &[1]);
        c.digits = 9;
        assert!(matches!(put_command(&c), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn calculate_all_tells_touch_and_hotp() {
        // The .NET SDK's documented CALCULATE ALL answer shape: name, full response; name, HOTP.
        let mut data = vec![
            0x71, 3, b't', b'o', b't', 0x76, 5, 6, 0x50, 0xef, 0x7f, 0x19,
        ];
        data.extend([0x71, 1, b'h', 0x77, 1, 6]);
        data.extend([0x71, 1, b'x', 0x7C, 1, 8]);
        let mut full = vec![0x71, 1, b'f', 0x75, 21, 6];
        // RFC 4226 section 5.4's HMAC: truncates to 0x50ef7f19.
        full.extend(hex("1f8698690e02ca16618550ef7f19da8e945b555a"));
        data.extend(full);
        let entries = parse_calculate_all(&data).expect("valid");
        assert_eq!(entries.len(), 4);
        match &entries[0] {
            (n, CalculatedEntry::Code(otp)) => {
                assert_eq!((n.as_str(), otp.code.as_str()), ("tot", "872921"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(entries[1].1, CalculatedEntry::Hotp);
        assert_eq!(entries[2].1, CalculatedEntry::Touch);
        match &entries[3].1 {
            CalculatedEntry::Code(otp) => assert_eq!(otp.code, "872921"),
            other => panic!("{other:?}"),
        }
        assert!(!format!("{:?}", entries[0]).contains("872921"));

        let mut list = parse_list(
            &[
                0x72, 4, 0x21, b't', b'o', b't', 0x72, 2, 0x11, b'h', 0x72, 2, 0x21, b'x', 0x72, 2,
                0x21, b'n',
            ],
            false,
        )
        .expect("valid");
        merge_touch(&mut list, &entries);
        let touch: Vec<_> = list.iter().map(|c| c.touch_required).collect();
        assert_eq!(touch, vec![Some(false), None, Some(true), None]);

        assert!(matches!(
            parse_calculate_all(&[0x76, 0]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            parse_calculate_all(&[0x71, 1, b'a']),
            Err(Error::Protocol(_))
        ));
        assert_eq!(
            calculate_all_command(1).expect("short").data,
            vec![0x74, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn calculate_rename_and_delete_layouts() {
        let totp = calculate_command("t", Some(2)).expect("short");
        assert_eq!((totp.ins, totp.p1, totp.p2), (0xA2, 0, 1));
        assert_eq!(
            totp.data,
            vec![0x71, 1, b't', 0x74, 8, 0, 0, 0, 0, 0, 0, 0, 2]
        );
        let hotp = calculate_command("h", None).expect("short");
        assert_eq!(hotp.data, vec![0x71, 1, b'h', 0x74, 0]);
        let rename = rename_command("a", "bc").expect("short");
        assert_eq!(
            (rename.ins, rename.data.clone()),
            (0x05, vec![0x71, 1, b'a', 0x71, 2, b'b', b'c'])
        );
        assert!(matches!(
            rename_command("a", ""),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            delete_command("a").expect("short").data,
            vec![0x71, 1, b'a']
        );
    }

    #[test]
    fn status_words_become_typed_errors() {
        assert_eq!(common_error(StatusWord(0x6982)), Error::Locked);
        assert_eq!(touch_error(StatusWord(0x6982)), Error::TouchTimeout);
        assert_eq!(common_error(StatusWord(0x6984)), Error::NotFound);
        assert_eq!(common_error(StatusWord(0x6A82)), Error::NotFound);
        assert_eq!(common_error(StatusWord(0x6A84)), Error::NoSpace);
        assert!(matches!(
            common_error(StatusWord(0x6D00)),
            Error::Unsupported(_)
        ));
        assert_eq!(
            common_error(StatusWord(0x6581)),
            Error::Status(StatusWord(0x6581))
        );
    }
}
