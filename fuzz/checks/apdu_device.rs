//! The virtual key's apps parsing commands: the secrets app (APDUs and BER-TLV data) and the
//! admin app (subcommands and CBOR), fed arbitrary request payloads, plus the APDU and TLV
//! encode/parse round trips between the host's encoders and the key's parsers.
//!
//! Shared by `fuzz/fuzz_targets/apdu_device.rs` and `emulator/tests/emulator/fuzz_replay.rs`.
//!
//! Input: a header byte (bit 0: Nitrokey 3 profile; bit 1: room for 2 credentials instead of
//! 50), then requests of `flags, length (2 bytes, big-endian), payload`. Flags bit 0: to the
//! admin app instead of the secrets app; bit 1: the user touches when a request waits for it.
//!
//! Properties: no panic; every secrets-app answer has a status word the app uses, and data only
//! with success or more-data; answers the host parses (SELECT, LIST, CALCULATE, the admin
//! app's) parse with the host's own parsers; the key's state keeps its invariants; and the
//! host's encoders and the key's parsers agree (encode, parse: the identity).
#![allow(dead_code)]

use oathkey_device::admin::{self as host_admin, ConfigStatus, command};
use oathkey_device::apdu::{self as host_apdu, Command, StatusWord};
use oathkey_device::ctaphid::wire::err;
use oathkey_device::oath::{self, ins};
use oathkey_emulator::apdu::{self as dev_apdu, Reader};
use oathkey_emulator::secrets::{self, Ctx, MAX_FIELD, SecretsApp};
use oathkey_emulator::state::PinRecord;
use oathkey_emulator::{KeyState, Profile, admin};

/// Status words the secrets app answers with.
const KNOWN_SW: [u16; 15] = [
    0x9000, 0x6300, 0x6500, 0x6882, 0x6884, 0x6982, 0x6983, 0x6985, 0x6A80, 0x6A81, 0x6A82, 0x6A84,
    0x6D00, 0x6E00, 0x61FF,
];

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A secrets-app answer with this status word.
    Status(u16),
    /// No APDU: the transport answers CTAPHID INVALID_LEN.
    NotApdu,
    /// An admin-app answer (raw bytes).
    Admin(Vec<u8>),
    /// An admin-app CTAPHID error.
    AdminError(u8),
}

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One reply per request.
    pub replies: Vec<Reply>,
    /// Credentials on the key at the end.
    pub credentials: usize,
}

/// One request of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub admin: bool,
    pub touched: bool,
    pub payload: Vec<u8>,
}

impl Request {
    /// The input bytes of this request.
    pub fn encode(&self) -> Vec<u8> {
        let flags = u8::from(self.admin) | (u8::from(self.touched) << 1);
        let len = u16::try_from(self.payload.len()).expect("short");
        let mut out = vec![flags];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// Splits an input's body into requests.
pub fn requests(mut body: &[u8]) -> Vec<Request> {
    let mut out = Vec::new();
    while let [flags, hi, lo, rest @ ..] = body {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        out.push(Request {
            admin: flags & 1 != 0,
            touched: flags & 2 != 0,
            payload: rest[..len].to_vec(),
        });
        body = &rest[len..];
    }
    out
}

/// The host's encoders and the key's parsers agree on these bytes.
pub fn round_trips(bytes: &[u8]) {
    // A command APDU the host builds parses back to the same fields on the key.
    if let [ins, p1, p2, data @ ..] = bytes {
        let encoded = Command::new(*ins, *p1, *p2, data.to_vec()).to_bytes();
        let parsed = dev_apdu::parse(&encoded).expect("a host APDU parses on the key");
        assert_eq!(
            (
                parsed.cla,
                parsed.ins,
                parsed.p1,
                parsed.p2,
                &parsed.data[..]
            ),
            (0, *ins, *p1, *p2, data),
            "APDU round trip"
        );
    }
    // Whatever the key makes of bytes, encoding that again gives the same APDU.
    if let Some(a) = dev_apdu::parse(bytes)
        && a.cla == 0
    {
        let again = Command::new(a.ins, a.p1, a.p2, a.data.clone()).to_bytes();
        assert_eq!(dev_apdu::parse(&again), Some(a), "APDU parse is not stable");
    }
    let (tag, value) = match bytes.split_first() {
        Some((t, v)) => (*t, &v[..v.len().min(255)]),
        None => (0x71, &[][..]),
    };
    // Requests: the host's BER-TLV (long form from 128 bytes on) reads back on the key.
    let mut request = Vec::new();
    host_apdu::push_tlv(&mut request, tag, value).expect("fits");
    let mut reader = Reader::new(&request);
    assert_eq!(reader.tlv(), Ok((tag, value)), "request TLV round trip");
    assert!(reader.is_empty());
    // Answers: the key's one-byte lengths read back on the host.
    let mut answer = Vec::new();
    dev_apdu::put_tlv(&mut answer, tag, value);
    let items: Vec<_> = host_apdu::tlvs(&answer).collect();
    assert_eq!(items, vec![Ok((tag, value))], "answer TLV round trip");
}

fn check_state(state: &KeyState, max_credentials: usize) {
    let creds = &state.credentials;
    assert!(creds.len() <= max_credentials, "more credentials than room");
    for (i, c) in creds.iter().enumerate() {
        assert!(
            !c.name.is_empty() && c.name.len() <= MAX_FIELD,
            "bad name length"
        );
        assert!(c.secret.len() <= MAX_FIELD, "secret too long");
        assert!(
            creds[..i].iter().all(|o| o.name != c.name),
            "two credentials share a name"
        );
    }
    if let Some(pin) = &state.pin {
        assert!(pin.retries <= PinRecord::RETRIES);
    }
    assert!(
        state.settings.keyboard || state.settings.u2f,
        "a key with neither interface can never be reached again"
    );
}

/// Checks a secrets-app answer against the request it answers; returns its status word.
fn check_answer(state: &KeyState, request: &[u8], answer: &[u8], list_extended: bool) -> u16 {
    let (sw, data) = oath::split_status(answer).expect("every answer has a status word");
    assert!(KNOWN_SW.contains(&sw.0), "unexpected status word {sw:?}");
    let success = sw == StatusWord::OK || sw.is_more_data();
    assert!(success || data.is_empty(), "data with an error status");
    if !success {
        return sw.0;
    }
    let apdu = dev_apdu::parse(request).expect("an answered request is an APDU");
    match apdu.ins {
        ins::SELECT => {
            let info = oath::SelectInfo::parse(data).expect("the host parses SELECT");
            assert_eq!(info.serial, Some(state.serial));
            assert_eq!(info.pin_retries, state.pin.as_ref().map(|p| p.retries));
        }
        ins::LIST | ins::SEND_REMAINING => {
            let entries =
                oath::parse_list(data, list_extended).expect("the host parses LIST chunks");
            assert!(entries.len() <= state.credentials.len());
        }
        ins::CALCULATE => {
            let digits = data.get(2).copied().unwrap_or(0);
            let otp = oath::parse_calculate(data);
            // The key stores whatever digits PUT gave; the host takes 1 to 10.
            assert_eq!(otp.is_ok(), (1..=10).contains(&digits), "{otp:?}");
        }
        _ => assert!(data.is_empty(), "data in an answer to {:#04x}", apdu.ins),
    }
    sw.0
}

fn check_admin(request: &[u8], answer: &[u8]) {
    let Some((&sub, _)) = request.split_first() else {
        panic!("an empty admin request got an answer");
    };
    match sub {
        command::STATUS => {
            host_admin::parse_status(answer).expect("the host parses STATUS");
        }
        command::GET_CONFIG => match answer.split_first() {
            Some((0, value)) => {
                let text = std::str::from_utf8(value).expect("text");
                host_admin::parse_bool("field", text).expect("a boolean");
            }
            Some((status, [])) => {
                assert!(ConfigStatus::from_byte(*status).is_some());
            }
            other => panic!("GET_CONFIG answered {other:?}"),
        },
        command::SET_CONFIG => {
            let [status] = answer else {
                panic!("SET_CONFIG answers one byte, not {answer:?}");
            };
            assert!(ConfigStatus::from_byte(*status).is_some());
        }
        command::LIST_AVAILABLE_FIELDS => {
            host_admin::parse_fields(answer).expect("the host parses the fields");
        }
        other => panic!("subcommand {other:#04x} got an answer"),
    }
}

/// Runs one input; panics if a property breaks.
pub fn check(data: &[u8]) -> Outcome {
    let (header, body) = data.split_first().map_or((0, &[][..]), |(h, b)| (*h, b));
    let profile = if header & 1 == 0 {
        Profile::Oathkey
    } else {
        Profile::Nitrokey3
    };
    let max_credentials = if header & 2 == 0 { 50 } else { 2 };
    let mut state = KeyState::new(Some(0x0012_3456));
    let mut app = SecretsApp::default();
    let mut list_extended = false;
    let mut replies = Vec::new();
    for request in requests(body) {
        round_trips(&request.payload);
        let payload = &request.payload;
        if request.admin {
            let reply = match admin::handle(&state, profile, payload) {
                admin::Step::Answer(answer) => answer,
                admin::Step::CtapError(code) => {
                    assert!(
                        [err::INVALID_LEN, err::INVALID_CMD, err::OTHER].contains(&code),
                        "admin error {code:#04x}"
                    );
                    replies.push(Reply::AdminError(code));
                    check_state(&state, max_credentials);
                    continue;
                }
                admin::Step::NeedsTouch(change) => {
                    let before = state.settings;
                    let (answer, dirty) = admin::resume(&mut state, change, request.touched);
                    assert_eq!(dirty, request.touched);
                    if !request.touched {
                        assert_eq!(state.settings, before, "untouched change applied");
                    }
                    answer
                }
            };
            check_admin(payload, &reply);
            replies.push(Reply::Admin(reply));
        } else {
            let mut ctx = Ctx {
                state: &mut state,
                profile,
                max_credentials,
                dirty: false,
            };
            let step = app.handle(&mut ctx, payload);
            let answer = match step {
                secrets::Step::NotApdu => {
                    assert_eq!(dev_apdu::parse(payload), None, "an APDU refused as none");
                    replies.push(Reply::NotApdu);
                    continue;
                }
                secrets::Step::Answer(answer) => answer,
                secrets::Step::NeedsTouch(deferred) => {
                    app.resume(&mut ctx, deferred, request.touched)
                }
            };
            if let Some(a) = dev_apdu::parse(payload)
                && a.ins == ins::LIST
            {
                list_extended = a.data == [1];
            }
            let sw = check_answer(&state, payload, &answer, list_extended);
            replies.push(Reply::Status(sw));
        }
        check_state(&state, max_credentials);
    }
    Outcome {
        replies,
        credentials: state.credentials.len(),
    }
}
