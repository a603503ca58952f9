//! The YKOATH family against a scripted card: byte-exact APDUs for every operation, one
//! transaction per operation with the applet selected again, the access code, the touch
//! quirks, the Management application's settings, and the two dialects (YubiKey, Nitrokey 3
//! over CCID).
//!
//! Access-code vectors were computed once, independently of this code, with Python's
//! `hashlib.pbkdf2_hmac("sha1", password, salt, 1000, 16)` and `hmac.new(key, msg, "sha1")`,
//! and pasted here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use oathkey_device::admin::Setting;
use oathkey_device::oath::{Algorithm, NewCredential, OtpKind};
use oathkey_device::ykoath::{Attempt, CardChannel, CardLink, CardModel, SharingPolicy, YkoathKey};
use oathkey_device::{Error, Family, KeyDriver, TouchWait};
use secrecy::{SecretSlice, SecretString};

const YUBIKEY_READER: &str = "Yubico YubiKey OTP+FIDO+CCID 00 00";
const NITROKEY_READER: &str = "Nitrokey Nitrokey 3 [CCID/ICCD Interface] 00 00";

const SELECT_OATH: &str = "00 A4 04 00 07 A0 00 00 05 27 21 01";
const SELECT_MGMT: &str = "00 A4 04 00 08 A0 00 00 05 27 47 11 17";
const READ_CONFIG: &str = "00 1D 00 00 00";
const LIST: &str = "00 A1 00 00 00";
const SEND_REMAINING: &str = "00 A5 00 00 00";
/// CALCULATE ALL, truncated, for time step 1 (the test clock says 59 s).
const CALCULATE_ALL: &str = "00 A4 00 01 0A 74 08 00 00 00 00 00 00 00 01";

/// SELECT of a YubiKey 5.4.3 without an access code: version, salt 01..08.
const YK_OPEN: &str = "79 03 05 04 03 71 08 01 02 03 04 05 06 07 08 90 00";
/// The same with an access code: challenge 08..01, algorithm SHA-1.
const YK_LOCKED: &str =
    "79 03 05 04 03 71 08 01 02 03 04 05 06 07 08 74 08 08 07 06 05 04 03 02 01 7B 01 01 90 00";
/// Management: version "5.4.3".
const MGMT_VERSION: &str = "35 2E 34 2E 33 90 00";
/// READ CONFIG page 0: supported 023F, serial 12345678, enabled 023F, USB-C keychain, 5.4.3.
const CONFIG: &str = "16 01 02 02 3F 02 04 00 BC 61 4E 03 02 02 3F 04 01 03 05 03 05 04 03 90 00";

/// Our challenge in VALIDATE and SET CODE (fixed for byte-exact APDUs).
const OURS: [u8; 8] = [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8];
/// VALIDATE with the key of "correct horse" (salt 01..08) for challenge 08..01, and ours.
const VALIDATE: &str = "00 A3 00 00 20 75 14 6d ea 1f 92 b0 04 61 2e 43 a9 c3 7f 43 47 ce 9d \
                        26 38 c3 e8 74 08 A1 A2 A3 A4 A5 A6 A7 A8";
/// The card's proof: HMAC of our challenge with the same key.
const VALIDATE_OK: &str = "75 14 a5 1b c1 7e 7a cf a4 4e 5f 1a 04 ce d4 b9 38 af 52 ee 69 1d 90 00";

fn h(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// A card that answers from a script and checks every APDU, counting transactions.
#[derive(Debug)]
struct ScriptedCard {
    reader: String,
    atr: Vec<u8>,
    script: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The APDUs of each transaction, in order.
    transactions: Vec<Vec<Vec<u8>>>,
    /// How many more times beginning a transaction meets a sharing violation.
    shared_for: usize,
    /// The pauses taken while the card was held exclusively.
    pauses: Vec<Duration>,
}

impl ScriptedCard {
    fn new(reader: &str) -> Self {
        Self {
            reader: reader.into(),
            atr: vec![0x3B, 0x80, 0x80, 0x01, 0x01],
            script: VecDeque::new(),
            transactions: Vec::new(),
            shared_for: 0,
            pauses: Vec::new(),
        }
    }

    fn expect(&mut self, apdu: &str, answer: &str) -> &mut Self {
        self.script.push_back((h(apdu), h(answer)));
        self
    }

    fn done(&self) {
        assert!(self.script.is_empty(), "unsent: {:02X?}", self.script);
    }
}

struct Link<'a>(&'a mut ScriptedCard);

impl CardLink for Link<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
        let (want, answer) = self
            .0
            .script
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected APDU {apdu:02X?}"));
        assert_eq!(apdu, &want[..], "APDU\n got {apdu:02X?}\nwant {want:02X?}");
        if let Some(current) = self.0.transactions.last_mut() {
            current.push(apdu.to_vec());
        }
        Ok(answer)
    }
}

impl CardChannel for ScriptedCard {
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn CardLink) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut shared = self.shared_for;
        let mut pauses = Vec::new();
        let result = SharingPolicy::default().run(
            &self.reader,
            |d| pauses.push(d),
            || {
                if shared > 0 {
                    shared -= 1;
                    Attempt::Shared
                } else {
                    Attempt::Done(())
                }
            },
        );
        self.shared_for = shared;
        self.pauses.extend(pauses);
        result?;
        self.transactions.push(Vec::new());
        f(&mut Link(self))
    }

    fn reader(&self) -> &str {
        &self.reader
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }
}

/// A YubiKey 5.4.3 opened, its opening transaction checked and forgotten.
fn yubikey(select: &str) -> YkoathKey<ScriptedCard> {
    let mut card = ScriptedCard::new(YUBIKEY_READER);
    card.expect(SELECT_OATH, select)
        .expect(SELECT_MGMT, MGMT_VERSION)
        .expect(READ_CONFIG, CONFIG);
    let mut key = YkoathKey::open(card).expect("opens");
    key.set_challenge_source(Box::new(|| OURS));
    key.set_clock(Box::new(|| 59));
    let card = key.channel_mut();
    card.done();
    assert_eq!(card.transactions.len(), 1, "one transaction to open");
    card.transactions.clear();
    key
}

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

/// Every transaction started by selecting an applet again.
fn each_transaction_selects_first(card: &ScriptedCard) {
    for (i, t) in card.transactions.iter().enumerate() {
        let first = t.first().map(|a| a[..4].to_vec());
        assert_eq!(
            first,
            Some(vec![0x00, 0xA4, 0x04, 0x00]),
            "transaction {i} began with {t:02X?}"
        );
    }
}

#[test]
fn a_yubikey_opens_with_its_identity_and_capabilities() {
    let key = yubikey(YK_OPEN);
    assert_eq!(key.family(), Family::YkoathPcsc);
    assert_eq!(key.model(), CardModel::Yubikey);
    let id = key.identity();
    assert_eq!(id.serial.as_deref(), Some("12345678"));
    assert_eq!(id.model, "YubiKey 5 Keychain (USB-C)");
    assert_eq!(id.firmware, "5.4.3");
    assert_eq!(id.path, YUBIKEY_READER);
    let caps = key.capabilities();
    assert!(caps.rename && caps.touch && caps.hotp && caps.access_code && !caps.wink);
    assert_eq!(
        caps.algorithms,
        vec![Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
    );
    assert_eq!(caps.settings, vec![Setting::ModeKeyboard, Setting::ModeU2f]);
    assert!(!key.locked());
}

#[test]
fn list_joins_chained_chunks_and_takes_touch_from_calculate_all() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        // a (TOTP), h (HOTP) in the first chunk, t (TOTP) after SEND REMAINING.
        .expect(LIST, "72 02 21 61 72 02 11 68 61 04")
        .expect(SEND_REMAINING, "72 02 21 74 90 00")
        .expect(
            CALCULATE_ALL,
            "71 01 61 7C 01 06 71 01 68 77 01 06 71 01 74 76 05 06 50 EF 7F 19 90 00",
        );
    let list = key.list().expect("lists");
    let seen: Vec<_> = list
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.touch_required))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a", Some(OtpKind::Totp), Some(true)),
            ("h", Some(OtpKind::Hotp), None),
            ("t", Some(OtpKind::Totp), Some(false)),
        ]
    );
    key.channel_mut().done();
    assert_eq!(key.channel_mut().transactions.len(), 1);
    each_transaction_selects_first(key.channel_mut());
}

#[test]
fn codes_totp_with_the_time_step_hotp_with_an_empty_challenge_and_touch_prompts() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "72 02 21 61 72 02 11 68 72 02 21 74 90 00")
        .expect(CALCULATE_ALL, "71 01 61 7C 01 06 71 01 68 77 01 06 90 00")
        .expect(SELECT_OATH, YK_OPEN)
        .expect(
            "00 A2 00 01 0D 71 01 74 74 08 00 00 00 00 00 00 00 01",
            "76 05 06 50 EF 7F 19 90 00",
        )
        .expect(SELECT_OATH, YK_OPEN)
        .expect(
            "00 A2 00 01 05 71 01 68 74 00",
            "76 05 08 50 EF 7F 19 90 00",
        )
        .expect(SELECT_OATH, YK_OPEN)
        .expect(
            "00 A2 00 01 0D 71 01 61 74 08 00 00 00 00 00 00 00 01",
            "69 82",
        );
    key.list().expect("lists");
    let prompts = Arc::new(AtomicUsize::new(0));
    let counter = prompts.clone();
    key.set_touch_hook(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })));

    let otp = key.totp("t", 59, TouchWait::Never).expect("a code");
    assert_eq!(otp.code, "872921");
    let otp = key
        .calculate("h", 12345, TouchWait::Possible)
        .expect("a code");
    assert_eq!(otp.code, "57872921");
    assert_eq!(
        prompts.load(Ordering::SeqCst),
        0,
        "no prompt unless touch is expected"
    );
    assert_eq!(
        key.calculate("a", 1, TouchWait::Expected),
        Err(Error::TouchTimeout)
    );
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    key.channel_mut().done();
    assert_eq!(key.channel_mut().transactions.len(), 4, "one per operation");
    each_transaction_selects_first(key.channel_mut());
}

#[test]
fn put_pads_the_key_sends_touch_as_two_raw_bytes_and_never_overwrites() {
    let mut key = yubikey(YK_OPEN);
    let mut cred = totp("n", &[0x9C]);
    cred.touch_required = true;
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "72 02 21 61 90 00")
        .expect(
            "00 01 00 00 17 71 01 6E 73 10 21 06 9C 00 00 00 00 00 00 00 00 00 00 00 00 00 78 02",
            "90 00",
        )
        // The same name again: refused after LIST, PUT never sent.
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "72 02 21 61 72 02 21 6E 90 00");
    key.put(&cred).expect("stored");
    assert_eq!(key.put(&cred), Err(Error::AlreadyExists));
    key.channel_mut().done();

    // What the key cannot do is refused before anything is sent.
    let mut pin = totp("p", &[1]);
    pin.pin_protected = true;
    assert!(matches!(key.put(&pin), Err(Error::Unsupported(_))));
    assert_eq!(key.channel_mut().transactions.len(), 2);
}

#[test]
fn put_of_hotp_with_a_counter_and_no_space_left() {
    let mut key = yubikey(YK_OPEN);
    let mut cred = totp("c", &[0x11; 20]);
    cred.kind = OtpKind::Hotp;
    cred.algorithm = Algorithm::Sha256;
    cred.digits = 8;
    cred.initial_counter = 5;
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "90 00")
        .expect(
            "00 01 00 00 21 71 01 63 73 16 12 08 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 \
             11 11 11 11 7A 04 00 00 00 05",
            "6A 84",
        );
    assert_eq!(key.put(&cred), Err(Error::NoSpace));
    key.channel_mut().done();
}

#[test]
fn delete_and_rename_map_their_status_words() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        .expect("00 02 00 00 03 71 01 61", "90 00")
        .expect(SELECT_OATH, YK_OPEN)
        .expect("00 02 00 00 03 71 01 7A", "69 84")
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "72 02 21 61 90 00")
        .expect("00 05 00 00 06 71 01 61 71 01 62", "90 00")
        .expect(SELECT_OATH, YK_OPEN)
        .expect(LIST, "72 02 21 62 72 02 21 63 90 00");
    key.delete("a").expect("deleted");
    assert_eq!(key.delete("z"), Err(Error::NotFound));
    key.rename("a", "b").expect("renamed");
    assert_eq!(key.rename("b", "c"), Err(Error::AlreadyExists));
    key.channel_mut().done();
}

#[test]
fn rename_needs_yubikey_5_3_1() {
    let mut card = ScriptedCard::new(YUBIKEY_READER);
    card.expect(
        SELECT_OATH,
        "79 03 05 02 04 71 08 4B B7 A7 FA D7 AF 40 1B 90 00",
    )
    .expect(SELECT_MGMT, "6A 82");
    let mut key = YkoathKey::open(card).expect("opens");
    assert!(!key.capabilities().rename);
    assert!(matches!(key.rename("a", "b"), Err(Error::Unsupported(_))));
    // No management app and an ATR that does not name it: a generic card, no settings.
    assert_eq!(key.model(), CardModel::Generic);
    assert!(key.capabilities().settings.is_empty());
    assert_eq!(key.identity().serial, None);
    key.channel_mut().done();
}

#[test]
fn a_locked_card_is_refused_until_unlocked_and_validated_in_every_transaction() {
    let mut key = yubikey(YK_LOCKED);
    assert!(key.locked());
    key.channel_mut().expect(SELECT_OATH, YK_LOCKED);
    assert_eq!(key.list(), Err(Error::Locked), "nothing after SELECT");

    // A wrong code: the card says 6A 80.
    key.channel_mut().expect(SELECT_OATH, YK_LOCKED).expect(
        "00 A3 00 00 20 75 14 86 56 54 90 d5 c7 fd a5 34 b0 97 e9 4f 0b 45 b8 c0 c1 c8 8e 74 08 \
         A1 A2 A3 A4 A5 A6 A7 A8",
        "6A 80",
    );
    assert_eq!(
        key.unlock(&SecretString::from("wrong")),
        Err(Error::WrongAccessCode)
    );
    assert!(key.locked());

    key.channel_mut()
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, VALIDATE_OK);
    key.unlock(&SecretString::from("correct horse"))
        .expect("unlocked");
    assert!(!key.locked());

    // Every later operation selects and validates again inside its transaction.
    key.channel_mut()
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, VALIDATE_OK)
        .expect(LIST, "72 02 21 74 90 00")
        .expect(CALCULATE_ALL, "71 01 74 76 05 06 50 EF 7F 19 90 00")
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, VALIDATE_OK)
        .expect(
            "00 A2 00 01 0D 71 01 74 74 08 00 00 00 00 00 00 00 01",
            "76 05 06 50 EF 7F 19 90 00",
        );
    assert_eq!(key.list().expect("lists").len(), 1);
    assert_eq!(
        key.totp("t", 30, TouchWait::Never).expect("code").code,
        "872921"
    );
    key.channel_mut().done();
    each_transaction_selects_first(key.channel_mut());
}

#[test]
fn a_card_that_cannot_prove_the_code_is_a_protocol_error() {
    let mut key = yubikey(YK_LOCKED);
    key.channel_mut().expect(SELECT_OATH, YK_LOCKED).expect(
        VALIDATE,
        "75 14 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 90 00",
    );
    assert!(matches!(
        key.unlock(&SecretString::from("correct horse")),
        Err(Error::Protocol(_))
    ));
    assert!(key.locked());
}

#[test]
fn a_code_changed_elsewhere_locks_the_key_again() {
    let mut key = yubikey(YK_LOCKED);
    key.channel_mut()
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, VALIDATE_OK)
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, "6A 80")
        .expect(SELECT_OATH, YK_LOCKED);
    key.unlock(&SecretString::from("correct horse"))
        .expect("unlocked");
    assert_eq!(key.delete("a"), Err(Error::Locked));
    assert!(key.locked(), "the refused key is forgotten");
    assert_eq!(key.delete("a"), Err(Error::Locked));
    key.channel_mut().done();
}

#[test]
fn setting_and_clearing_the_access_code() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_OATH, YK_OPEN)
        // SET CODE: 73 (TOTP|SHA-1, key of "new code"), 74 our challenge, 75 our HMAC of it.
        .expect(
            "00 03 00 00 33 73 11 21 f6 4f 37 1f 5e 81 45 19 67 45 08 ed 5d 97 92 1f 74 08 A1 A2 \
             A3 A4 A5 A6 A7 A8 75 14 a4 62 b9 71 d2 cb d7 c9 54 71 b2 16 7b 9e 52 ea 64 3b 24 a0",
            "90 00",
        )
        // Now the card asks; the new key answers it.
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(
            "00 A3 00 00 20 75 14 57 a7 ed 77 47 5e 1b c9 62 65 8e a8 07 52 64 08 8c c0 8e 38 \
             74 08 A1 A2 A3 A4 A5 A6 A7 A8",
            "75 14 a4 62 b9 71 d2 cb d7 c9 54 71 b2 16 7b 9e 52 ea 64 3b 24 a0 90 00",
        )
        .expect("00 03 00 00 02 73 00", "90 00");
    key.set_access_code(Some(&SecretString::from("new code")))
        .expect("set");
    assert!(!key.locked(), "the new key is held");
    key.set_access_code(None).expect("cleared");
    assert!(!key.locked());
    key.channel_mut().done();
}

#[test]
fn keyboard_and_u2f_are_the_usb_applications_read_modify_write() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_MGMT, MGMT_VERSION)
        .expect(READ_CONFIG, CONFIG)
        .expect(SELECT_MGMT, MGMT_VERSION)
        .expect(READ_CONFIG, CONFIG)
        // Only the OTP bit goes: 023F -> 023E.
        .expect("00 1C 00 00 05 04 03 02 02 3E", "90 00")
        .expect(SELECT_MGMT, MGMT_VERSION)
        .expect(READ_CONFIG, CONFIG);
    assert_eq!(key.setting(Setting::ModeKeyboard), Ok(true));
    key.set_setting(Setting::ModeKeyboard, false)
        .expect("written");
    // Already on: nothing written.
    key.set_setting(Setting::ModeU2f, true).expect("unchanged");
    let err = key
        .setting(Setting::OtpKeyPress)
        .expect_err("no global touch");
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("property of each token"), "{err}");
    key.channel_mut().done();
    each_transaction_selects_first(key.channel_mut());
}

#[test]
fn a_configuration_lock_code_is_respected() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut()
        .expect(SELECT_MGMT, MGMT_VERSION)
        .expect(READ_CONFIG, "07 03 02 02 3F 0A 01 01 90 00");
    assert!(matches!(
        key.set_setting(Setting::ModeU2f, false),
        Err(Error::Config { .. })
    ));
    key.channel_mut().done();
}

#[test]
fn a_nitrokey_3_over_ccid_speaks_the_secrets_app_dialect() {
    let select = "79 03 04 0D 00 71 08 01 02 03 04 05 06 07 08 8F 04 DE AD BE EF 90 00";
    let mut card = ScriptedCard::new(NITROKEY_READER);
    card.expect(SELECT_OATH, select);
    let mut key = YkoathKey::open(card).expect("opens: no management app asked");
    assert_eq!(key.model(), CardModel::Nitrokey3);
    let id = key.identity();
    assert_eq!(id.serial.as_deref(), Some("deadbeef"));
    assert_eq!(id.model, "Nitrokey 3");
    let caps = key.capabilities();
    assert!(!caps.access_code && !caps.rename && caps.settings.is_empty());
    assert_eq!(caps.algorithms, vec![Algorithm::Sha1, Algorithm::Sha256]);
    assert!(matches!(
        key.unlock(&SecretString::from("x")),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        key.put(&NewCredential {
            algorithm: Algorithm::Sha512,
            ..totp("s", &[1])
        }),
        Err(Error::Unsupported(_))
    ));

    let prompts = Arc::new(AtomicUsize::new(0));
    let counter = prompts.clone();
    key.set_touch_hook(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })));
    key.channel_mut()
        .expect(SELECT_OATH, select)
        // The extended LIST: a property byte per entry, 01 = touch. No CALCULATE ALL.
        .expect("00 A1 00 00 01 01", "72 03 21 61 01 72 03 21 62 00 90 00")
        .expect(SELECT_OATH, select)
        .expect("00 02 00 00 03 71 01 61", "69 82");
    let list = key.list().expect("lists");
    let touch: Vec<_> = list.iter().map(|c| c.touch_required).collect();
    assert_eq!(touch, vec![Some(true), Some(false)]);
    assert_eq!(
        key.delete("a"),
        Err(Error::TouchTimeout),
        "delete waits for touch"
    );
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    key.channel_mut().done();
}

#[test]
fn the_secrets_app_gets_the_8_byte_challenge_for_hotp_too() {
    let select = "79 03 04 0D 00 71 08 01 02 03 04 05 06 07 08 8F 04 00 00 00 01 90 00";
    let mut card = ScriptedCard::new(NITROKEY_READER);
    card.expect(SELECT_OATH, select)
        .expect(SELECT_OATH, select)
        .expect("00 A1 00 00 01 01", "72 03 11 68 00 90 00")
        .expect(SELECT_OATH, select)
        .expect(
            "00 A2 00 01 0D 71 01 68 74 08 00 00 00 00 00 00 00 07",
            "76 05 06 50 EF 7F 19 90 00",
        );
    let mut key = YkoathKey::open(card).expect("opens");
    assert_eq!(key.list().expect("lists")[0].kind, Some(OtpKind::Hotp));
    let otp = key.calculate("h", 7, TouchWait::Never).expect("a code");
    assert_eq!(otp.code, "872921");
    key.channel_mut().done();
}

#[test]
fn a_card_without_the_oath_application_is_unsupported() {
    let mut card = ScriptedCard::new("Some Reader 00 00");
    card.expect(SELECT_OATH, "6A 82");
    assert!(matches!(YkoathKey::open(card), Err(Error::Unsupported(_))));
}

#[test]
fn a_card_held_exclusively_is_waited_for_then_reported_with_what_to_do() {
    let mut key = yubikey(YK_OPEN);
    key.channel_mut().shared_for = 3;
    key.channel_mut().expect(SELECT_OATH, YK_OPEN);
    key.ping().expect("released after three tries");
    assert_eq!(
        key.channel_mut().pauses,
        [20, 40, 80].map(Duration::from_millis).to_vec()
    );

    key.channel_mut().shared_for = usize::MAX;
    let err = key.ping().expect_err("held for good");
    assert!(matches!(err, Error::HeldExclusively { .. }), "{err}");
    assert!(err.to_string().contains("pcsc-shared"), "{err}");
    key.channel_mut().done();
}

#[test]
fn a_raised_cancel_flag_stops_before_the_card_is_touched() {
    let mut key = yubikey(YK_OPEN);
    let flag = Arc::new(AtomicBool::new(true));
    key.set_cancel_flag(Some(flag));
    assert_eq!(key.list(), Err(Error::Cancelled));
    assert!(key.channel_mut().transactions.is_empty());
}

#[test]
fn debug_shows_no_secrets() {
    let mut key = yubikey(YK_LOCKED);
    key.channel_mut()
        .expect(SELECT_OATH, YK_LOCKED)
        .expect(VALIDATE, VALIDATE_OK);
    key.unlock(&SecretString::from("correct horse"))
        .expect("unlocked");
    let shown = format!("{key:?}");
    assert!(shown.contains("unlocked: true"), "{shown}");
    // The derived key is 49 56 1f 12 ...: neither as bytes nor as decimals.
    assert!(!shown.contains("73, 86, 31"), "{shown}");
}

/// Against a real pcscd with a card in a reader named "Virtual PCD" (vsmartcard's vpcd with
/// the emulator's card, or any YKOATH card renamed so): run with OATHKEY_TEST_PCSC=1 and
/// `--features pcsc -- --ignored`.
#[cfg(feature = "pcsc")]
#[test]
#[ignore = "needs pcscd and a card in a reader named Virtual PCD (OATHKEY_TEST_PCSC=1)"]
fn pcsc_smoke_test_against_a_virtual_pcd_reader() {
    if std::env::var("OATHKEY_TEST_PCSC").as_deref() != Ok("1") {
        eprintln!("OATHKEY_TEST_PCSC is not 1: skipped");
        return;
    }
    let ctx = oathkey_device::pcsc::establish().expect("pcscd answers");
    let mut monitor = oathkey_device::pcsc::ReaderMonitor::with_context(ctx.clone());
    let events = monitor
        .wait(Duration::from_secs(2))
        .expect("the monitor reports readers");
    assert!(!events.is_empty(), "the first wait reports every reader");
    let reader = monitor
        .readers()
        .into_iter()
        .find(|r| r.reader.starts_with("Virtual PCD") && r.present)
        .expect("a card in a Virtual PCD reader")
        .reader;
    let mut key = oathkey_device::pcsc::open_key(&ctx, &reader).expect("opens shared");
    assert_eq!(key.identity().path, reader);
    key.ping().expect("answers");
    if !key.locked() {
        key.list().expect("lists");
    }
}
