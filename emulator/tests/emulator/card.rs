//! The virtual smart card at the APDU level, without pcscd: byte-exact answers of the
//! YubiKey-like card (YKOATH, Management) and of the Nitrokey 3 over CCID, chaining, the access
//! code, touch policies, resets and the state file.

use std::time::{Duration, Instant};

use data_encoding::HEXUPPER;
use oathkey_emulator::card::{ATR, Card, CardProfile, Reply};
use oathkey_emulator::{Config, StateFile, TouchPolicy};
use oathkey_otp::Algorithm;

const OATH: &str = "00A4040007A0000005272101";
const MGMT: &str = "00A4040008A000000527471117";
/// RFC 4226 / RFC 6238's SHA-1 key, "12345678901234567890".
const RFC_KEY: &str = "3132333435363738393031323334353637383930";

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    HEXUPPER
        .decode(clean.to_uppercase().as_bytes())
        .expect("hex")
}

fn card(profile: CardProfile) -> Card {
    card_with(profile, TouchPolicy::Approve)
}

fn card_with(profile: CardProfile, touch: TouchPolicy) -> Card {
    let mut card = Card::new(
        Config {
            touch,
            touch_timeout: Duration::from_secs(15),
            serial: Some(0x0102_0304),
            ..Config::default()
        },
        profile,
    );
    card.power_on();
    card
}

/// Sends an APDU that must be answered at once.
fn tx(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    match card.transmit(apdu, Instant::now()) {
        Reply::Answer(a) => a,
        Reply::Waiting => panic!("{} waits for a touch", HEXUPPER.encode(apdu)),
    }
}

fn txh(card: &mut Card, apdu: &str) -> Vec<u8> {
    tx(card, &hex(apdu))
}

fn sw(answer: &[u8]) -> u16 {
    let n = answer.len();
    u16::from_be_bytes([answer[n - 2], answer[n - 1]])
}

fn ok(answer: Vec<u8>) -> Vec<u8> {
    assert_eq!(sw(&answer), 0x9000, "{}", HEXUPPER.encode(&answer));
    answer[..answer.len() - 2].to_vec()
}

/// BER-TLV as yubikit writes it (`81 xx` from 128 bytes on).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = u8::try_from(value.len()).expect("short");
    let mut out = if len < 0x80 {
        vec![tag, len]
    } else {
        vec![tag, 0x81, len]
    };
    out.extend_from_slice(value);
    out
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, ins, p1, p2, u8::try_from(data.len()).expect("short")];
    out.extend_from_slice(data);
    out
}

/// PUT as yubikit writes it: name, key (type|alg, digits, secret), then the raw `78 02`.
fn put(name: &str, kind_alg: u8, digits: u8, secret: &[u8], touch: bool) -> Vec<u8> {
    let mut key = vec![kind_alg, digits];
    key.extend_from_slice(secret);
    let mut data = tlv(0x71, name.as_bytes());
    data.extend(tlv(0x73, &key));
    if touch {
        data.extend([0x78, 0x02]);
    }
    apdu(0x01, 0, 0, &data)
}

fn calculate(name: &str, challenge: &[u8], truncate: bool) -> Vec<u8> {
    let mut data = tlv(0x71, name.as_bytes());
    data.extend(tlv(0x74, challenge));
    apdu(0xA2, 0, u8::from(truncate), &data)
}

fn code(truncated: &[u8], digits: u32) -> u32 {
    // 76 05 dd vvvvvvvv
    assert_eq!(&truncated[..2], &[0x76, 0x05]);
    u32::from_be_bytes(truncated[3..7].try_into().expect("4 bytes")) % 10u32.pow(digits)
}

fn salt_of(select: &[u8]) -> Vec<u8> {
    assert_eq!(&select[5..7], &[0x71, 0x08]);
    select[7..15].to_vec()
}

#[test]
fn the_atr_is_generic_t1_not_a_yubikeys() {
    let card = card(CardProfile::YubiKey);
    assert_eq!(card.atr(), &ATR);
    assert_eq!(HEXUPPER.encode(&ATR), "3B8C8001805A6F6174686B65792D76638A");
}

#[test]
fn select_answers_version_and_salt_and_no_serial() {
    let mut card = card(CardProfile::YubiKey);
    let select = ok(txh(&mut card, OATH));
    assert_eq!(&select[..5], &hex("79 03 05 04 03")[..]);
    assert_eq!(
        select.len(),
        15,
        "version and salt only: {}",
        HEXUPPER.encode(&select)
    );
    assert_eq!(salt_of(&select), card.state().card.oath_salt);
}

#[test]
fn nothing_selected_and_missing_apps() {
    let mut card = card(CardProfile::YubiKey);
    assert_eq!(txh(&mut card, "00A1000000"), hex("6D00"));
    // PIV, OpenPGP, Yubico OTP, FIDO: this card has none of them.
    for aid in [
        "A000000308",
        "D27600012401",
        "A0000005272001",
        "A0000006472F0001",
    ] {
        let select = format!("00A40400{:02X}{aid}", aid.len() / 2);
        assert_eq!(txh(&mut card, &select), hex("6A82"), "{aid}");
    }
    // A failed SELECT keeps the app that was selected.
    ok(txh(&mut card, OATH));
    assert_eq!(txh(&mut card, "00A4040005A000000308"), hex("6A82"));
    assert_eq!(txh(&mut card, "00A1000000"), hex("9000"));
}

#[test]
fn put_list_and_calculate_are_byte_exact_and_match_the_rfcs() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    let key = hex(RFC_KEY);
    assert_eq!(tx(&mut card, &put("t", 0x21, 8, &key, false)), hex("9000"));
    assert_eq!(tx(&mut card, &put("h", 0x11, 6, &key, false)), hex("9000"));
    // LIST: 72 len type|alg name.
    assert_eq!(
        txh(&mut card, "00A1000000"),
        hex("72 02 21 74  72 02 11 68  9000")
    );
    // RFC 6238 SHA-1 at T = 59 s: step 1, 94287082.
    let step1 = 1u64.to_be_bytes();
    let t = ok(tx(&mut card, &calculate("t", &step1, true)));
    assert_eq!(t[2], 8, "digits");
    assert_eq!(code(&t, 8), 94_287_082);
    // The full response: 75 15 digits HMAC.
    let full = ok(tx(&mut card, &calculate("t", &step1, false)));
    let mac = oathkey_otp::hmac(Algorithm::Sha1, &key, &step1);
    let mut expected = vec![0x75, 21, 8];
    expected.extend_from_slice(&mac);
    assert_eq!(full, expected);
    // RFC 4226 HOTP: the counter moves on at every CALCULATE, the challenge is ignored.
    let h0 = ok(tx(&mut card, &calculate("h", &[], true)));
    let h1 = ok(tx(&mut card, &calculate("h", &step1, true)));
    assert_eq!((code(&h0, 6), code(&h1, 6)), (755_224, 287_082));
    assert_eq!(card.state().credentials[1].counter, 2);
    // Unknown names: "no such object".
    assert_eq!(tx(&mut card, &calculate("x", &step1, true)), hex("6984"));
}

#[test]
fn calculate_all_marks_touch_and_hotp_credentials() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    let key = hex(RFC_KEY);
    ok(tx(&mut card, &put("t", 0x21, 8, &key, false)));
    ok(tx(&mut card, &put("p", 0x21, 6, &key, true)));
    ok(tx(&mut card, &put("h", 0x11, 6, &key, false)));
    let all = ok(tx(
        &mut card,
        &apdu(0xA4, 0, 1, &tlv(0x74, &1u64.to_be_bytes())),
    ));
    let mut expected = hex("71 01 74 76 05 08");
    expected.extend_from_slice(&all[6..10]);
    expected.extend(hex("71 01 70 7C 01 06  71 01 68 77 01 06"));
    assert_eq!(all, expected);
    assert_eq!(code(&all[3..10], 8), 94_287_082);
    // Nothing was counted for the HOTP credential, nothing waited for a touch.
    assert_eq!(card.state().credentials[2].counter, 0);
}

#[test]
fn put_follows_the_yubikey_rules() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    // The host pads keys to 14 bytes: shorter is refused; longer than a block too.
    assert_eq!(
        tx(&mut card, &put("a", 0x21, 6, &[7; 13], false)),
        hex("6A80")
    );
    assert_eq!(
        tx(&mut card, &put("a", 0x21, 6, &[7; 65], false)),
        hex("6A80")
    );
    assert_eq!(
        tx(&mut card, &put("a", 0x23, 6, &[7; 128], false)),
        hex("9000")
    );
    assert_eq!(
        tx(&mut card, &put("a", 0x21, 5, &[7; 14], false)),
        hex("6A80")
    );
    assert_eq!(
        tx(&mut card, &put("a", 0x31, 6, &[7; 14], false)),
        hex("6A80")
    );
    assert_eq!(
        tx(&mut card, &put(&"n".repeat(65), 0x21, 6, &[7; 14], false)),
        hex("6A80")
    );
    // The same name again overwrites.
    ok(tx(&mut card, &put("a", 0x21, 6, &[7; 14], true)));
    assert_eq!(card.state().credentials.len(), 1);
    assert!(
        card.state().credentials[0].touch,
        "78 02 is the touch property"
    );
    // An initial moving factor for HOTP.
    let mut data = put("c", 0x11, 6, &hex(RFC_KEY), false);
    data.extend(tlv(0x7A, &5u32.to_be_bytes()));
    data[4] += 6;
    ok(tx(&mut card, &data));
    assert_eq!(card.state().credentials[1].counter, 5);
    // 32 credentials fill a YubiKey 5.
    for i in 2..32 {
        ok(tx(
            &mut card,
            &put(&format!("x{i}"), 0x21, 6, &[1; 14], false),
        ));
    }
    assert_eq!(
        tx(&mut card, &put("full", 0x21, 6, &[1; 14], false)),
        hex("6A84")
    );
}

#[test]
fn delete_and_rename() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    ok(tx(&mut card, &put("a", 0x21, 6, &[1; 14], false)));
    ok(tx(&mut card, &put("b", 0x21, 6, &[1; 14], false)));
    let mut names = tlv(0x71, b"a");
    names.extend(tlv(0x71, b"c"));
    assert_eq!(tx(&mut card, &apdu(0x05, 0, 0, &names)), hex("9000"));
    assert_eq!(
        txh(&mut card, "00A1000000"),
        hex("72 02 21 63  72 02 21 62  9000")
    );
    assert_eq!(tx(&mut card, &apdu(0x05, 0, 0, &names)), hex("6984"));
    let mut onto = tlv(0x71, b"c");
    onto.extend(tlv(0x71, b"b"));
    assert_eq!(tx(&mut card, &apdu(0x05, 0, 0, &onto)), hex("6A80"));
    assert_eq!(
        tx(&mut card, &apdu(0x02, 0, 0, &tlv(0x71, b"c"))),
        hex("9000")
    );
    assert_eq!(
        tx(&mut card, &apdu(0x02, 0, 0, &tlv(0x71, b"c"))),
        hex("6984")
    );
    assert_eq!(txh(&mut card, "00A1000000"), hex("72 02 21 62 9000"));
}

#[test]
fn long_answers_chain_with_61xx_and_send_remaining() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    let mut expected = Vec::new();
    for i in 0..20 {
        let name = format!("{i:02}:someone.with.a.long.name@example.com");
        ok(tx(&mut card, &put(&name, 0x21, 6, &[1; 14], false)));
        let mut value = vec![0x21];
        value.extend_from_slice(name.as_bytes());
        expected.extend(tlv(0x72, &value));
    }
    assert!(expected.len() > 2 * 256);
    let mut got = Vec::new();
    let mut answer = txh(&mut card, "00A1000000");
    let mut parts = 1;
    while answer[answer.len() - 2] == 0x61 {
        let left = answer[answer.len() - 1];
        got.extend_from_slice(&answer[..answer.len() - 2]);
        assert_eq!(answer.len() - 2, 256, "full chunks");
        let remaining = expected.len() - got.len();
        assert_eq!(
            usize::from(left),
            if remaining > 255 { 0 } else { remaining }
        );
        answer = txh(&mut card, "00A5000000");
        parts += 1;
    }
    got.extend(ok(answer));
    assert_eq!(got, expected);
    assert_eq!(parts, expected.len().div_ceil(256));
    // Another command drops what was left; SEND REMAINING then has nothing to send.
    assert_eq!(sw(&txh(&mut card, "00A1000000")), 0x6100);
    ok(tx(
        &mut card,
        &calculate("00:someone.with.a.long.name@example.com", &[0; 8], true),
    ));
    assert_eq!(txh(&mut card, "00A5000000"), hex("6D00"));
}

#[test]
fn command_chaining_reassembles_a_put() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    let whole = put("chained", 0x21, 6, &hex(RFC_KEY), false);
    let data = &whole[5..];
    let (first, second) = data.split_at(10);
    let mut part = apdu(0x01, 0, 0, first);
    part[0] = 0x10;
    assert_eq!(tx(&mut card, &part), hex("9000"));
    assert!(
        card.state().credentials.is_empty(),
        "nothing before the last part"
    );
    assert_eq!(tx(&mut card, &apdu(0x01, 0, 0, second)), hex("9000"));
    assert_eq!(card.state().credentials[0].name, b"chained");
}

fn set_code(key: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut k = vec![0x21];
    k.extend_from_slice(key);
    let mut data = tlv(0x73, &k);
    data.extend(tlv(0x74, challenge));
    data.extend(tlv(
        0x75,
        &oathkey_otp::hmac(Algorithm::Sha1, key, challenge),
    ));
    apdu(0x03, 0, 0, &data)
}

fn validate(key: &[u8], card_challenge: &[u8], host_challenge: &[u8]) -> Vec<u8> {
    let mut data = tlv(
        0x75,
        &oathkey_otp::hmac(Algorithm::Sha1, key, card_challenge),
    );
    data.extend(tlv(0x74, host_challenge));
    apdu(0xA3, 0, 0, &data)
}

#[test]
fn the_access_code_gates_everything_but_select_validate_and_reset() {
    let mut card = card(CardProfile::YubiKey);
    ok(txh(&mut card, OATH));
    ok(tx(&mut card, &put("a", 0x21, 6, &[1; 14], false)));
    let key = [0x42u8; 16];
    // A response that does not match the key is refused, and nothing is set.
    let mut wrong = set_code(&key, b"12345678");
    let n = wrong.len();
    wrong[n - 1] ^= 1;
    assert_eq!(tx(&mut card, &wrong), hex("6A80"));
    assert_eq!(tx(&mut card, &set_code(&key, b"12345678")), hex("9000"));
    // The session that set it stays open.
    ok(txh(&mut card, "00A1000000"));

    // A new session: challenge and algorithm in SELECT, and locked.
    let select = ok(txh(&mut card, OATH));
    assert_eq!(select.len(), 15 + 10 + 3);
    assert_eq!(&select[15..17], &[0x74, 0x08]);
    assert_eq!(&select[25..], &hex("7B 01 01")[..]);
    let challenge = select[17..25].to_vec();
    for locked in [
        "00A1000000".to_string(),
        HEXUPPER.encode(&calculate("a", &[0; 8], true)),
        HEXUPPER.encode(&apdu(0xA4, 0, 1, &tlv(0x74, &[0; 8]))),
        HEXUPPER.encode(&put("b", 0x21, 6, &[1; 14], false)),
        HEXUPPER.encode(&apdu(0x02, 0, 0, &tlv(0x71, b"a"))),
        "0003000002 7300".to_string(),
    ] {
        assert_eq!(txh(&mut card, &locked), hex("6982"), "{locked}");
    }
    // A wrong key: 6A80, and the same challenge may be answered again.
    assert_eq!(
        tx(&mut card, &validate(&[0; 16], &challenge, b"hostchal")),
        hex("6A80")
    );
    let answer = ok(tx(&mut card, &validate(&key, &challenge, b"hostchal")));
    let mut expected = vec![0x75, 20];
    expected.extend_from_slice(&oathkey_otp::hmac(Algorithm::Sha1, &key, b"hostchal"));
    assert_eq!(answer, expected, "the card proves the key too");
    ok(txh(&mut card, "00A1000000"));

    // A reset of the card (pcscd's SCARD_RESET_CARD, or removal) locks it again.
    card.reset();
    ok(txh(&mut card, OATH));
    assert_eq!(txh(&mut card, "00A1000000"), hex("6982"));
    card.power_off();
    card.power_on();
    ok(txh(&mut card, OATH));
    assert_eq!(txh(&mut card, "00A1000000"), hex("6982"));

    // The derived key as yubikit computes it: PBKDF2-HMAC-SHA1(password, salt, 1000, 16).
    let mut card2 = self::card(CardProfile::YubiKey);
    card2.set_access_code("hunter2");
    let select = ok(txh(&mut card2, OATH));
    let derived = oathkey_emulator::ykoath::derive_access_key(b"hunter2", &salt_of(&select));
    ok(tx(
        &mut card2,
        &validate(&derived, &select[17..25], b"01234567"),
    ));
    // Removing the code: `73 00`.
    assert_eq!(txh(&mut card2, "0003000002 7300"), hex("9000"));
    assert_eq!(ok(txh(&mut card2, OATH)).len(), 15, "no challenge any more");
}

#[test]
fn reset_erases_everything_even_while_locked() {
    let mut card = card(CardProfile::YubiKey);
    card.set_access_code("pw");
    let before = salt_of(&ok(txh(&mut card, OATH)));
    assert_eq!(txh(&mut card, "0004DEAD"), hex("9000"));
    assert_eq!(txh(&mut card, "00040000"), hex("6A86"));
    let select = ok(txh(&mut card, OATH));
    assert_eq!(select.len(), 15, "no access code");
    assert_ne!(salt_of(&select), before, "a new device id");
    assert!(card.state().credentials.is_empty());
}

#[test]
fn touch_waits_follow_the_policy() {
    let key = hex(RFC_KEY);
    let t0 = Instant::now();
    // button: the APDU is held until the test presses.
    let mut card = card_with(CardProfile::YubiKey, TouchPolicy::Button);
    ok(txh(&mut card, OATH));
    ok(tx(&mut card, &put("p", 0x21, 8, &key, true)));
    assert_eq!(
        card.transmit(&calculate("p", &1u64.to_be_bytes(), true), t0),
        Reply::Waiting
    );
    assert!(card.waiting_for_touch());
    assert_eq!(card.poll(t0 + Duration::from_secs(1)), None);
    let answer = ok(card.press(t0 + Duration::from_secs(2)).expect("answered"));
    assert_eq!(code(&answer, 8), 94_287_082);
    assert_eq!(card.press(t0), None, "nothing waits any more");

    // deny: after the touch timeout, 6982 (ykman: "Touch account timed out!").
    card.set_touch_policy(TouchPolicy::Deny);
    assert_eq!(
        card.transmit(&calculate("p", &[0; 8], true), t0),
        Reply::Waiting
    );
    assert_eq!(card.next_wakeup(), Some(t0 + Duration::from_secs(15)));
    assert_eq!(card.poll(t0 + Duration::from_secs(14)), None);
    assert_eq!(card.poll(t0 + Duration::from_secs(15)), Some(hex("6982")));

    // after:MS: answered once the simulated user touched.
    card.set_touch_policy(TouchPolicy::After(Duration::from_millis(300)));
    assert_eq!(
        card.transmit(&calculate("p", &[0; 8], true), t0),
        Reply::Waiting
    );
    assert_eq!(card.poll(t0 + Duration::from_millis(299)), None);
    assert_eq!(
        sw(&card.poll(t0 + Duration::from_millis(300)).expect("touched")),
        0x9000
    );

    // Power off (card removed) ends a wait without an answer.
    card.set_touch_policy(TouchPolicy::Button);
    assert_eq!(
        card.transmit(&calculate("p", &[0; 8], true), t0),
        Reply::Waiting
    );
    card.power_off();
    assert!(!card.waiting_for_touch());

    // approve: at once. Credentials without the property never wait.
    card.power_on();
    card.set_touch_policy(TouchPolicy::Approve);
    ok(txh(&mut card, OATH));
    ok(tx(&mut card, &calculate("p", &[0; 8], true)));
    card.set_touch_policy(TouchPolicy::Deny);
    ok(tx(&mut card, &put("n", 0x21, 6, &key, false)));
    ok(tx(&mut card, &calculate("n", &[0; 8], true)));
}

#[test]
fn management_reads_and_writes_the_usb_applications() {
    let mut card = card(CardProfile::YubiKey);
    assert_eq!(ok(txh(&mut card, MGMT)), b"5.4.3");
    let config = ok(txh(&mut card, "001D000000"));
    assert_eq!(
        config,
        hex(
            "23  01 02 02 3B  02 04 01 02 03 04  03 02 02 3B  04 01 01  05 03 05 04 03 \
             06 02 00 00  07 01 0F  08 01 00  0A 01 00"
        )
    );
    // Mode: keyboard (OTP) off.
    assert_eq!(txh(&mut card, "001C000005 04 03 02 02 3A"), hex("9000"));
    assert!(!card.state().settings.keyboard);
    assert!(card.state().settings.u2f);
    assert_eq!(
        &ok(txh(&mut card, "001D000000"))[11..15],
        &hex("03 02 02 3A")[..]
    );
    // U2F off and PIV off, FIDO2 kept.
    assert_eq!(txh(&mut card, "001C000005 04 03 02 02 28"), hex("9000"));
    assert!(!card.state().settings.u2f);
    assert_eq!(card.state().card.usb_enabled_other, 0x0228);
    // Unknown applications, nothing at all, a wrong length, a lock code: refused.
    assert_eq!(txh(&mut card, "001C000005 04 03 02 04 00"), hex("6A80"));
    assert_eq!(txh(&mut card, "001C000005 04 03 02 00 00"), hex("6A80"));
    assert_eq!(txh(&mut card, "001C000005 05 03 02 02 3B"), hex("6A80"));
    assert_eq!(
        txh(
            &mut card,
            "001C000013 12 0A 10 00000000000000000000000000000000"
        ),
        hex("6A80")
    );
    // A reboot request: the front takes the card away and back.
    assert!(!card.take_reboot());
    assert_eq!(txh(&mut card, "001C000003 02 0C 00"), hex("9000"));
    assert!(card.take_reboot());
    assert!(!card.take_reboot());
    // Page 1 is empty.
    assert_eq!(txh(&mut card, "001D010000"), hex("00 9000"));
}

#[test]
fn the_nk3_profile_is_the_secrets_app_over_ccid() {
    let mut card = card(CardProfile::Nk3);
    let select = ok(txh(&mut card, OATH));
    assert_eq!(&select[..5], &hex("79 03 04 0D 00")[..]);
    assert!(
        select.ends_with(&hex("8F 04 01 02 03 04")),
        "{}",
        HEXUPPER.encode(&select)
    );
    // No Management app, no RENAME.
    assert_eq!(txh(&mut card, MGMT), hex("6A82"));
    let mut names = tlv(0x71, b"a");
    names.extend(tlv(0x71, b"b"));
    assert_eq!(tx(&mut card, &apdu(0x05, 0, 0, &names)), hex("6D00"));
    // PUT and CALCULATE: data first, status word last.
    let key = hex(RFC_KEY);
    assert_eq!(tx(&mut card, &put("t", 0x21, 8, &key, false)), hex("9000"));
    let t = ok(tx(&mut card, &calculate("t", &1u64.to_be_bytes(), true)));
    assert_eq!(code(&t, 8), 94_287_082);
    assert_eq!(txh(&mut card, "00A1000000"), hex("72 02 21 74 9000"));
    // Its touch: PUT with the touch property waits for the button too.
    card.set_touch_policy(TouchPolicy::Button);
    let now = Instant::now();
    assert_eq!(
        card.transmit(&put("p", 0x21, 6, &key, true), now),
        Reply::Waiting
    );
    assert_eq!(card.press(now), Some(hex("9000")));
    card.set_touch_policy(TouchPolicy::Deny);
    assert_eq!(
        card.transmit(&calculate("p", &[0; 8], true), now),
        Reply::Waiting
    );
    assert_eq!(card.poll(now + Duration::from_secs(15)), Some(hex("6982")));
}

#[test]
fn state_persists_in_the_shared_file_format() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("card.json");
    let config = Config {
        serial: Some(7),
        ..Config::default()
    };
    let mut card =
        Card::open(config.clone(), CardProfile::YubiKey, StateFile::new(&path)).expect("opens");
    card.power_on();
    ok(txh(&mut card, OATH));
    ok(tx(&mut card, &put("h", 0x11, 6, &hex(RFC_KEY), false)));
    ok(tx(&mut card, &calculate("h", &[], true)));
    card.set_access_code("pw");
    let mode = std::fs::metadata(&path)
        .expect("saved")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("readable");
    assert!(!text.contains("\"pw\""), "the password is never stored");

    // The same file opens as the other profile, and as the HID key's state.
    let reopened =
        Card::open(config.clone(), CardProfile::Nk3, StateFile::new(&path)).expect("reopens");
    assert_eq!(
        reopened.state().credentials[0].counter,
        1,
        "HOTP counter kept"
    );
    assert!(reopened.state().card.access_key.is_some());
    let key = oathkey_emulator::VirtualKey::open(config, StateFile::new(&path)).expect("HID");
    assert_eq!(key.state().serial, 7);
}
