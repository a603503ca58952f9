//! The OATH secrets app (Nitrokey 3 dialect) as data: instructions, tags, credential types, and
//! the encoding and decoding of its requests and answers.
//!
//! Byte values come from `reference/device-protocol.md`. The app answers with the status word
//! first (`SW1 SW2 | data`), which differs from YKOATH over CCID where it comes last.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use crate::apdu::{self, Command, StatusWord, TlvError, tlvs};
use crate::error::Error;

/// The secrets app's application identifier, sent with SELECT.
pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

/// Longest credential name the app stores.
pub const MAX_NAME_LEN: usize = 64;
/// Longest secret the Nitrokey 3 stores (YKOATH hosts hash longer HMAC keys first).
pub const MAX_SECRET_LEN: usize = 128;
/// Largest data chunk in one answer; more is fetched with SEND REMAINING.
pub const MAX_CHUNK: usize = 3072;

/// Instruction bytes.
pub mod ins {
    /// Select the app; answers version, salt or PIN counter, serial.
    pub const SELECT: u8 = 0xA4;
    /// Register a credential.
    pub const PUT: u8 = 0x01;
    /// Delete a credential.
    pub const DELETE: u8 = 0x02;
    /// Wipe every credential and the PIN.
    pub const RESET: u8 = 0x04;
    /// List credentials.
    pub const LIST: u8 = 0xA1;
    /// Compute one code.
    pub const CALCULATE: u8 = 0xA2;
    /// Fetch the rest of a long answer.
    pub const SEND_REMAINING: u8 = 0xA5;
    /// Check a code on the device (reverse HOTP).
    pub const VERIFY_CODE: u8 = 0xB1;
    /// Verify the PIN; authorises the next request.
    pub const VERIFY_PIN: u8 = 0xB2;
    /// Change the PIN.
    pub const CHANGE_PIN: u8 = 0xB3;
    /// Set the first PIN.
    pub const SET_PIN: u8 = 0xB4;
    /// Rename a credential or change its touch property.
    pub const UPDATE_CREDENTIAL: u8 = 0xB7;
}

/// TLV tags.
pub mod tag {
    /// Credential name (id).
    pub const NAME: u8 = 0x71;
    /// One LIST entry.
    pub const NAME_LIST: u8 = 0x72;
    /// Key: `kind|alg, digits, secret`.
    pub const KEY: u8 = 0x73;
    /// Challenge: 8-byte big-endian counter.
    pub const CHALLENGE: u8 = 0x74;
    /// Full response.
    pub const RESPONSE: u8 = 0x75;
    /// Truncated response: `digits, 4 bytes`.
    pub const TRUNCATED: u8 = 0x76;
    /// Property byte; in PUT written without a length byte.
    pub const PROPERTY: u8 = 0x78;
    /// App version, 3 bytes.
    pub const VERSION: u8 = 0x79;
    /// Initial HOTP counter, u32 big-endian.
    pub const INITIAL_COUNTER: u8 = 0x7A;
    /// PIN.
    pub const PIN: u8 = 0x80;
    /// New PIN.
    pub const NEW_PIN: u8 = 0x81;
    /// PIN attempts left.
    pub const PIN_COUNTER: u8 = 0x82;
    /// Device serial number, 4 bytes.
    pub const SERIAL: u8 = 0x8F;
}

/// Property bits as written in PUT (`78 pp`) and CREDENTIAL UPDATE (`78 01 pp`).
pub mod put_property {
    /// Every code needs a touch.
    pub const TOUCH: u8 = 0x02;
    /// The secret is encrypted with a key derived from the PIN.
    pub const PIN_ENCRYPTED: u8 = 0x04;
}

/// Property bits as reported by the extended LIST.
pub mod list_property {
    /// Every code needs a touch.
    pub const TOUCH: u8 = 0x01;
    /// PIN-encrypted.
    pub const PIN_ENCRYPTED: u8 = 0x02;
    /// Password-safe data present.
    pub const PWS_DATA: u8 = 0x04;
}

/// HOTP (counter based) or TOTP (time based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtpKind {
    /// RFC 4226: the key keeps a counter.
    Hotp,
    /// RFC 6238: the host sends floor(time / period).
    Totp,
}

impl OtpKind {
    /// The high nibble of the kind|algorithm byte.
    pub const fn bits(self) -> u8 {
        match self {
            OtpKind::Hotp => 0x10,
            OtpKind::Totp => 0x20,
        }
    }

    /// Decodes the high nibble; other kinds (reverse HOTP, HMAC, password safe) give `None`.
    pub const fn from_bits(byte: u8) -> Option<Self> {
        match byte & 0xF0 {
            0x10 => Some(OtpKind::Hotp),
            0x20 => Some(OtpKind::Totp),
            _ => None,
        }
    }
}

impl fmt::Display for OtpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OtpKind::Hotp => "HOTP",
            OtpKind::Totp => "TOTP",
        })
    }
}

/// The HMAC hash: `oathkey-otp`'s, shared with every crate. Its encoding on the key is
/// [`AlgorithmBits`].
pub use oathkey_otp::Algorithm;

/// The secrets app's encoding of a hash (YKOATH's): the low nibble of the kind|algorithm byte.
/// It lives here, not with [`Algorithm`], because only the key's protocol uses it.
pub trait AlgorithmBits: Sized {
    /// The low nibble of the kind|algorithm byte.
    fn bits(self) -> u8;
    /// Decodes the low nibble; `None` for a hash the app does not name.
    fn from_bits(byte: u8) -> Option<Self>;
    /// The hash's block size in bytes: YKOATH hosts hash HMAC keys longer than this first.
    fn block_size(self) -> usize;
}

impl AlgorithmBits for Algorithm {
    fn bits(self) -> u8 {
        match self {
            Algorithm::Sha1 => 0x01,
            Algorithm::Sha256 => 0x02,
            Algorithm::Sha512 => 0x03,
        }
    }

    fn from_bits(byte: u8) -> Option<Self> {
        match byte & 0x0F {
            0x01 => Some(Algorithm::Sha1),
            0x02 => Some(Algorithm::Sha256),
            0x03 => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn block_size(self) -> usize {
        match self {
            Algorithm::Sha1 | Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A credential to register with PUT.
#[derive(Debug)]
pub struct NewCredential {
    /// The name on the key (see [`crate::label`] for this project's convention).
    pub name: String,
    /// HOTP or TOTP.
    pub kind: OtpKind,
    /// Hash function.
    pub algorithm: Algorithm,
    /// Code length, 6 or 8.
    pub digits: u8,
    /// The shared secret (raw bytes, not Base32).
    pub secret: SecretSlice<u8>,
    /// Every code needs a touch.
    pub touch_required: bool,
    /// Encrypt the secret with the PIN; the credential stays hidden until a PIN is verified.
    pub pin_protected: bool,
    /// The first HOTP counter value (HOTP only).
    pub initial_counter: u32,
}

impl NewCredential {
    /// Checks what the key would refuse anyway, so that nothing malformed is sent.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidArgument(format!(
                "credential name must be 1 to {MAX_NAME_LEN} bytes, not {}",
                self.name.len()
            )));
        }
        if !matches!(self.digits, 6 | 8) {
            return Err(Error::InvalidArgument(format!(
                "digits must be 6 or 8, not {}",
                self.digits
            )));
        }
        // The key adds one to an HOTP counter before each code and refuses to wrap it: a token
        // written with the last value could never give a code.
        if self.kind == OtpKind::Hotp && self.initial_counter == u32::MAX {
            return Err(Error::InvalidArgument(format!(
                "the HOTP counter must be below {}: the key moves it on before every code",
                u32::MAX
            )));
        }
        let secret_len = self.secret.expose_secret().len();
        if secret_len == 0 || secret_len > MAX_SECRET_LEN {
            return Err(Error::InvalidArgument(format!(
                "secret must be 1 to {MAX_SECRET_LEN} bytes, not {secret_len}"
            )));
        }
        Ok(())
    }

    /// The PUT command for this credential.
    pub fn to_command(&self) -> Result<Command, Error> {
        self.validate()?;
        let mut data = Vec::with_capacity(96);
        push(&mut data, tag::NAME, self.name.as_bytes())?;
        let mut key = Zeroizing::new(Vec::with_capacity(2 + self.secret.expose_secret().len()));
        key.push(self.kind.bits() | self.algorithm.bits());
        key.push(self.digits);
        key.extend_from_slice(self.secret.expose_secret());
        push(&mut data, tag::KEY, &key)?;
        let mut properties = 0;
        if self.touch_required {
            properties |= put_property::TOUCH;
        }
        if self.pin_protected {
            properties |= put_property::PIN_ENCRYPTED;
        }
        // PUT writes the property as tag + value, with no length byte.
        data.extend_from_slice(&[tag::PROPERTY, properties]);
        if self.kind == OtpKind::Hotp {
            push(
                &mut data,
                tag::INITIAL_COUNTER,
                &self.initial_counter.to_be_bytes(),
            )?;
        }
        Ok(Command::new(ins::PUT, 0, 0, data))
    }
}

fn push(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), Error> {
    apdu::push_tlv(out, tag, value).map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn protocol(e: TlvError) -> Error {
    Error::Protocol(e.to_string())
}

/// What SELECT tells about the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectInfo {
    /// App version (the Nitrokey 3 reports major 4 for YubiKey tooling).
    pub version: (u8, u8, u8),
    /// PIN attempts left, present only when a PIN is set.
    pub pin_retries: Option<u8>,
    /// The device's serial number.
    pub serial: Option<u32>,
}

impl SelectInfo {
    /// The SELECT command.
    pub fn command() -> Command {
        Command::new(ins::SELECT, 0x04, 0x00, AID.to_vec())
    }

    /// Parses the SELECT answer's data.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut version = None;
        let mut pin_retries = None;
        let mut serial = None;
        for item in tlvs(data) {
            match item.map_err(protocol)? {
                (tag::VERSION, &[a, b, c]) => version = Some((a, b, c)),
                (tag::PIN_COUNTER, &[n]) => pin_retries = Some(n),
                (tag::SERIAL, &[a, b, c, d]) => serial = Some(u32::from_be_bytes([a, b, c, d])),
                _ => {}
            }
        }
        let version =
            version.ok_or_else(|| Error::Protocol("SELECT answer has no version".into()))?;
        Ok(Self {
            version,
            pin_retries,
            serial,
        })
    }

    /// Whether the app reports the extended LIST (with a property byte per entry).
    pub fn has_extended_list(&self) -> bool {
        self.version >= (4, 11, 0)
    }

    /// The serial number as the eight hex digits tools print.
    pub fn serial_hex(&self) -> Option<String> {
        self.serial.map(|s| format!("{s:08x}"))
    }
}

/// One credential as LIST reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// The name on the key.
    pub name: String,
    /// HOTP or TOTP; `None` for other kinds (password safe, HMAC slots).
    pub kind: Option<OtpKind>,
    /// Hash function, when the kind byte names one.
    pub algorithm: Option<Algorithm>,
    /// Touch required, when the key reports properties (extended LIST).
    pub touch_required: Option<bool>,
    /// PIN-encrypted, when the key reports properties.
    pub pin_protected: Option<bool>,
}

/// The LIST command; `extended` asks for the property byte per entry (app 4.11 and later).
pub fn list_command(extended: bool) -> Command {
    Command::new(ins::LIST, 0, 0, if extended { vec![1] } else { vec![] })
}

/// Parses LIST answer data.
pub fn parse_list(data: &[u8], extended: bool) -> Result<Vec<CredentialInfo>, Error> {
    let mut out = Vec::new();
    for item in tlvs(data) {
        let (t, value) = item.map_err(protocol)?;
        if t != tag::NAME_LIST {
            return Err(Error::Protocol(format!(
                "unexpected tag {t:#04x} in LIST answer"
            )));
        }
        let min = if extended { 2 } else { 1 };
        if value.len() < min {
            return Err(Error::Protocol("LIST entry too short".into()));
        }
        let kind_alg = value[0];
        let (name, props) = if extended {
            (&value[1..value.len() - 1], Some(value[value.len() - 1]))
        } else {
            (&value[1..], None)
        };
        out.push(CredentialInfo {
            name: String::from_utf8_lossy(name).into_owned(),
            kind: OtpKind::from_bits(kind_alg),
            algorithm: Algorithm::from_bits(kind_alg),
            touch_required: props.map(|p| p & list_property::TOUCH != 0),
            pin_protected: props.map(|p| p & list_property::PIN_ENCRYPTED != 0),
        });
    }
    Ok(out)
}

/// A one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct Otp {
    /// The code, zero-padded to its digits.
    pub code: String,
    /// Number of digits.
    pub digits: u8,
}

impl fmt::Debug for Otp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A code is short-lived but still a credential; keep it out of logs.
        f.debug_struct("Otp")
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

impl Otp {
    /// The code from a truncated HMAC value: `(value & 0x7FFFFFFF) mod 10^digits`.
    pub fn from_truncated(value: u32, digits: u8) -> Result<Self, Error> {
        // The reduction is the shared one (`oathkey_otp::code`), the same the virtual key and
        // the daemon's own check use.
        let code = oathkey_otp::code(value, digits)
            .map_err(|_| Error::Protocol(format!("key answered with {digits} digits")))?;
        Ok(Self { code, digits })
    }
}

/// The CALCULATE command for `name` with an 8-byte challenge (TOTP: floor(time / period)).
pub fn calculate_command(name: &str, challenge: u64) -> Result<Command, Error> {
    let mut data = Vec::with_capacity(name.len() + 12);
    push(&mut data, tag::NAME, name.as_bytes())?;
    push(&mut data, tag::CHALLENGE, &challenge.to_be_bytes())?;
    Ok(Command::new(ins::CALCULATE, 0x00, 0x01, data))
}

/// Parses a CALCULATE answer: `76 05 <digits> <4 bytes>`.
pub fn parse_calculate(data: &[u8]) -> Result<Otp, Error> {
    match data {
        [tag::TRUNCATED, 5, digits, a, b, c, d] => {
            Otp::from_truncated(u32::from_be_bytes([*a, *b, *c, *d]), *digits)
        }
        _ => Err(Error::Protocol(format!(
            "CALCULATE answer is not a truncated response ({} bytes)",
            data.len()
        ))),
    }
}

/// A command whose data is one name TLV (DELETE).
pub fn name_command(ins: u8, name: &str) -> Result<Command, Error> {
    let mut data = Vec::with_capacity(name.len() + 2);
    push(&mut data, tag::NAME, name.as_bytes())?;
    Ok(Command::new(ins, 0, 0, data))
}

/// The CREDENTIAL UPDATE command: rename and/or change the touch property.
pub fn update_command(
    name: &str,
    new_name: Option<&str>,
    touch_required: Option<bool>,
) -> Result<Command, Error> {
    let mut data = Vec::new();
    push(&mut data, tag::NAME, name.as_bytes())?;
    if let Some(new) = new_name {
        if new.is_empty() || new.len() > MAX_NAME_LEN {
            return Err(Error::InvalidArgument(format!(
                "credential name must be 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        push(&mut data, tag::NAME, new.as_bytes())?;
    }
    if let Some(touch) = touch_required {
        push(
            &mut data,
            tag::PROPERTY,
            &[if touch { put_property::TOUCH } else { 0 }],
        )?;
    }
    Ok(Command::new(ins::UPDATE_CREDENTIAL, 0, 0, data))
}

/// A PIN command: VERIFY/SET carry one PIN, CHANGE the old and the new one.
pub fn pin_command(ins: u8, pin: &[u8], new_pin: Option<&[u8]>) -> Result<Command, Error> {
    let mut data = Vec::new();
    push(&mut data, tag::PIN, pin)?;
    if let Some(new) = new_pin {
        push(&mut data, tag::NEW_PIN, new)?;
    }
    Ok(Command::new(ins, 0, 0, data))
}

/// Splits an answer into its status word and data (the status word comes first here).
pub fn split_status(answer: &[u8]) -> Result<(StatusWord, &[u8]), Error> {
    match answer {
        [sw1, sw2, data @ ..] => Ok((StatusWord(u16::from_be_bytes([*sw1, *sw2])), data)),
        _ => Err(Error::Protocol(format!(
            "answer of {} bytes has no status word",
            answer.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp(name: &str, secret: &[u8]) -> NewCredential {
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

    #[test]
    fn put_encodes_name_key_and_untagged_property() {
        let mut cred = totp("a", &[0xAA; 3]);
        cred.touch_required = true;
        let cmd = cred.to_command().expect("valid");
        assert_eq!(cmd.ins, ins::PUT);
        assert_eq!(
            cmd.data,
            vec![
                0x71, 1, b'a', 0x73, 5, 0x21, 6, 0xAA, 0xAA, 0xAA, 0x78, 0x02
            ]
        );
    }

    #[test]
    fn put_of_hotp_carries_counter() {
        let mut cred = totp("h", &[1]);
        cred.kind = OtpKind::Hotp;
        cred.algorithm = Algorithm::Sha256;
        cred.pin_protected = true;
        cred.initial_counter = 0x01020304;
        let cmd = cred.to_command().expect("valid");
        assert_eq!(&cmd.data[3..6], &[0x73, 3, 0x12]);
        assert_eq!(
            &cmd.data[cmd.data.len() - 8..],
            &[0x78, 0x04, 0x7A, 4, 1, 2, 3, 4]
        );
    }

    #[test]
    fn an_hotp_counter_the_key_could_never_move_on_is_refused() {
        let mut cred = totp("h", &[1]);
        cred.kind = OtpKind::Hotp;
        cred.initial_counter = u32::MAX;
        let err = cred.to_command().expect_err("the last counter value");
        assert!(err.to_string().contains("below 4294967295"), "{err}");
        cred.initial_counter = u32::MAX - 1;
        assert!(cred.to_command().is_ok(), "one code left is fine");
        // TOTP carries no counter: the field is not looked at.
        cred.kind = OtpKind::Totp;
        cred.initial_counter = u32::MAX;
        assert!(cred.to_command().is_ok());
    }

    #[test]
    fn put_refuses_bad_input_before_sending() {
        let mut cred = totp("", &[1]);
        assert!(matches!(cred.to_command(), Err(Error::InvalidArgument(_))));
        cred.name = "x".repeat(65);
        assert!(matches!(cred.to_command(), Err(Error::InvalidArgument(_))));
        cred.name = "ok".into();
        cred.digits = 7;
        assert!(matches!(cred.to_command(), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn select_parses_with_and_without_pin() {
        let no_pin = [
            0x79, 3, 4, 13, 0, 0x71, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x8F, 4, 0, 0, 1, 2,
        ];
        let info = SelectInfo::parse(&no_pin).expect("valid");
        assert_eq!(
            info,
            SelectInfo {
                version: (4, 13, 0),
                pin_retries: None,
                serial: Some(258)
            }
        );
        assert!(info.has_extended_list());
        assert_eq!(info.serial_hex().as_deref(), Some("00000102"));

        let pin = [
            0x79, 3, 4, 10, 0, 0x82, 1, 8, 0x8F, 4, 0xDE, 0xAD, 0xBE, 0xEF,
        ];
        let info = SelectInfo::parse(&pin).expect("valid");
        assert_eq!(info.pin_retries, Some(8));
        assert!(!info.has_extended_list());
        assert!(matches!(
            SelectInfo::parse(&[0x8F, 4, 0, 0, 0, 1]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn list_parses_plain_and_extended_entries() {
        let plain = [0x72, 3, 0x21, b'a', b'b', 0x72, 2, 0x12, b'c'];
        let items = parse_list(&plain, false).expect("valid");
        assert_eq!(items[0].name, "ab");
        assert_eq!(items[0].kind, Some(OtpKind::Totp));
        assert_eq!(items[1].algorithm, Some(Algorithm::Sha256));
        assert_eq!(items[1].touch_required, None);

        let extended = [0x72, 4, 0x21, b'a', b'b', 0x03];
        let items = parse_list(&extended, true).expect("valid");
        assert_eq!(items[0].name, "ab");
        assert_eq!(items[0].touch_required, Some(true));
        assert_eq!(items[0].pin_protected, Some(true));

        assert!(matches!(
            parse_list(&[0x72, 5, 0x21], false),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            parse_list(&[0x75, 1, 0], false),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn truncation_matches_rfc4226_example() {
        // RFC 4226 section 5.4: truncated value 0x50ef7f19 gives 872921 for 6 digits.
        let otp = Otp::from_truncated(0x50ef7f19, 6).expect("valid");
        assert_eq!(otp.code, "872921");
        // The top bit is masked off, and short codes are zero-padded.
        assert_eq!(
            Otp::from_truncated(0x8000_0007, 6).expect("valid").code,
            "000007"
        );
        let parsed = parse_calculate(&[0x76, 5, 8, 0x50, 0xef, 0x7f, 0x19]).expect("valid");
        // 0x50ef7f19 = 1357872921, so 8 digits give 57872921.
        assert_eq!(parsed.code, "57872921");
    }

    #[test]
    fn algorithm_nibble_round_trips_and_ignores_the_kind() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_bits(alg.bits()), Some(alg));
            assert_eq!(Algorithm::from_bits(0x20 | alg.bits()), Some(alg));
        }
        assert_eq!(Algorithm::ALL.map(AlgorithmBits::bits), [0x01, 0x02, 0x03]);
        assert_eq!(Algorithm::from_bits(0x20), None);
        assert_eq!(Algorithm::from_bits(0x14), None);
        assert_eq!(Algorithm::Sha256.block_size(), 64);
        assert_eq!(Algorithm::Sha512.block_size(), 128);
    }

    #[test]
    fn otp_debug_hides_the_code() {
        let otp = Otp::from_truncated(0x50ef7f19, 6).expect("valid");
        assert!(!format!("{otp:?}").contains("872921"));
    }

    #[test]
    fn calculate_command_layout() {
        let cmd = calculate_command("t", 1).expect("short");
        assert_eq!((cmd.ins, cmd.p1, cmd.p2), (0xA2, 0x00, 0x01));
        assert_eq!(
            cmd.data,
            vec![0x71, 1, b't', 0x74, 8, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn status_comes_first() {
        let (sw, data) = split_status(&[0x90, 0x00, 1, 2]).expect("valid");
        assert_eq!(sw, StatusWord::OK);
        assert_eq!(data, &[1, 2]);
        assert!(matches!(split_status(&[0x90]), Err(Error::Protocol(_))));
    }
}
