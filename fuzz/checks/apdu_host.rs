//! Host-side parsing of the key's answers: the TLV reader, the secrets-app and admin-app answer
//! parsers, and the typed driver ([`oathkey_device::Key`]) fed scripted answers.
//!
//! Shared by `fuzz/fuzz_targets/apdu_host.rs` and `device/tests/device/fuzz_replay.rs`.
//!
//! Input: a mode byte, then
//! - mode bit 7 clear: bytes for every answer parser ([`parsers`]);
//! - mode bit 7 set: a session script ([`session`]): answers the key gives, in order, to a fixed
//!   list of driver operations (rotated by the mode's low bits so that any operation can come
//!   first). Each answer is `kind, length (2 bytes, big-endian), bytes`: kind 0 answers with the
//!   request's command, kind 1 with a CTAPHID ERROR (code = first byte), kind 2 with a KEEPALIVE
//!   and then the answer.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use oathkey_device::admin::{self, Setting};
use oathkey_device::apdu::{self, StatusWord, TlvError};
use oathkey_device::ctaphid::Timeouts;
use oathkey_device::ctaphid::wire::{self, BROADCAST_CID, MAX_MESSAGE, Packet, Report, cmd};
use oathkey_device::oath::{self, Algorithm, NewCredential, OtpKind, SelectInfo};
use oathkey_device::{DeviceInfo, Error, Key, TokenLabel, TouchWait, Transport, TransportError};
use secrecy::{SecretSlice, SecretString};

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Parser mode: how many of the answer parsers accepted the bytes.
    Parsed {
        /// TLVs read before the end or a truncation.
        tlvs: usize,
        /// Whether a SELECT answer parsed.
        select: bool,
        /// Whether a plain LIST answer parsed.
        list: bool,
        /// Whether a CALCULATE answer parsed.
        calculate: bool,
    },
    /// Session mode: whether the key opened, and each operation's result.
    Session {
        /// Whether `Key::open` succeeded.
        opened: bool,
        /// Operations that succeeded.
        ok: usize,
        /// Operations that failed with a typed error.
        failed: usize,
    },
}

/// Runs one input; panics if a property breaks.
pub fn check(data: &[u8]) -> Outcome {
    match data.split_first() {
        Some((mode, rest)) if mode & 0x80 != 0 => session(*mode & 0x7F, rest),
        Some((_, rest)) => parsers(rest),
        None => parsers(&[]),
    }
}

/// Errors a parser may give for bad answer bytes: only protocol errors.
fn protocol_only<T: std::fmt::Debug>(what: &str, r: &Result<T, Error>) {
    if let Err(e) = r {
        assert!(
            matches!(e, Error::Protocol(_)),
            "{what}: a bad answer must be a protocol error, got {e:?}"
        );
    }
}

/// Every answer parser on the same bytes.
pub fn parsers(data: &[u8]) -> Outcome {
    // TLVs: what was read, written back with one-byte lengths, is the input up to where the
    // reader stopped; it stops only at the end or at a truncation, once.
    let mut rebuilt = Vec::with_capacity(data.len());
    let mut count = 0;
    let mut stopped = None;
    for item in apdu::tlvs(data) {
        assert!(stopped.is_none(), "tlvs yielded an item after an error");
        match item {
            Ok((tag, value)) => {
                count += 1;
                rebuilt.push(tag);
                rebuilt.push(u8::try_from(value.len()).expect("one-byte lengths"));
                rebuilt.extend_from_slice(value);
            }
            Err(TlvError::Truncated(at)) => stopped = Some(at),
            Err(e) => panic!("tlvs gave {e:?}"),
        }
    }
    match stopped {
        None => assert_eq!(rebuilt, data, "TLVs re-encoded differ from the input"),
        Some(at) => {
            assert_eq!(at, rebuilt.len(), "truncation reported at the wrong offset");
            assert_eq!(&data[..at], &rebuilt[..]);
        }
    }

    // push_tlv then tlvs is the identity for short values (the answers' one-byte lengths).
    let (tag, value) = match data.split_first() {
        Some((t, v)) => (*t, &v[..v.len().min(0x7F)]),
        None => (0x71, &[][..]),
    };
    let mut encoded = Vec::new();
    apdu::push_tlv(&mut encoded, tag, value).expect("short values encode");
    let back: Vec<_> = apdu::tlvs(&encoded).collect();
    assert_eq!(back, vec![Ok((tag, value))]);

    let status = oath::split_status(data);
    protocol_only("split_status", &status);
    match (&status, data) {
        (Ok((sw, rest)), [a, b, tail @ ..]) => {
            assert_eq!(sw.to_bytes(), [*a, *b]);
            assert_eq!(*rest, tail);
            // Status words have a name, whatever they are.
            assert!(!sw.name().is_empty());
            assert_eq!(StatusWord(sw.0).to_string().len(), 5 + 3 + sw.name().len());
        }
        (Err(_), [_, _, ..]) => panic!("an answer of two bytes or more has a status word"),
        _ => {}
    }

    let select = SelectInfo::parse(data);
    protocol_only("SelectInfo::parse", &select);
    if let Ok(info) = &select {
        let (a, b, c) = info.version;
        assert!(
            data.windows(5)
                .any(|w| w == [oath::tag::VERSION, 3, a, b, c]),
            "a version that is not in the answer"
        );
    }

    let list = oath::parse_list(data, false);
    protocol_only("parse_list", &list);
    let extended = oath::parse_list(data, true);
    protocol_only("parse_list (extended)", &extended);
    for entries in [&list, &extended].into_iter().flatten() {
        assert_eq!(entries.len(), count, "one LIST entry per TLV");
        for e in entries {
            // The daemon reads every name as a label: parsing must be stable.
            let label = TokenLabel::parse(&e.name);
            assert_eq!(TokenLabel::parse(&label.to_string()), label);
        }
    }

    let calculate = oath::parse_calculate(data);
    protocol_only("parse_calculate", &calculate);
    if let Ok(otp) = &calculate {
        assert_eq!(otp.code.len(), usize::from(otp.digits));
        assert!(otp.code.bytes().all(|b| b.is_ascii_digit()));
    }

    let admin_status = admin::parse_status(data);
    protocol_only("admin::parse_status", &admin_status);
    assert_eq!(admin_status.is_ok(), !data.is_empty());
    protocol_only("admin::parse_fields", &admin::parse_fields(data));
    if let Ok(text) = std::str::from_utf8(data) {
        let b = admin::parse_bool("f", text);
        protocol_only("admin::parse_bool", &b);
        assert_eq!(b.is_ok(), text == "true" || text == "false");
    }

    Outcome::Parsed {
        tlvs: count,
        select: select.is_ok(),
        list: list.is_ok(),
        calculate: calculate.is_ok(),
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The answer payload, with the request's command.
    Data(Vec<u8>),
    /// A CTAPHID ERROR.
    Error(u8),
    /// A KEEPALIVE (waiting for a touch), then the payload.
    Touch(Vec<u8>),
}

impl Answer {
    /// The script bytes of this answer.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, bytes) = match self {
            Answer::Data(d) => (0, d.clone()),
            Answer::Error(code) => (1, vec![*code]),
            Answer::Touch(d) => (2, d.clone()),
        };
        let len = u16::try_from(bytes.len()).expect("answers are short");
        let mut out = vec![kind];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
        out
    }
}

/// Splits a session script into answers.
pub fn answers(mut script: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while let [kind, hi, lo, rest @ ..] = script {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]))
            .min(rest.len())
            .min(MAX_MESSAGE);
        let bytes = rest[..len].to_vec();
        script = &rest[len..];
        out.push(match kind % 3 {
            0 => Answer::Data(bytes),
            1 => Answer::Error(bytes.first().copied().unwrap_or(0)),
            _ => Answer::Touch(bytes),
        });
    }
    out
}

/// A key that answers INIT itself and every other request with the next scripted answer.
#[derive(Debug)]
pub struct ScriptedApps {
    info: DeviceInfo,
    pending: VecDeque<Report>,
    answers: VecDeque<Answer>,
}

impl ScriptedApps {
    pub fn new(answers: Vec<Answer>) -> Self {
        Self {
            info: DeviceInfo {
                path: "fuzz".into(),
                vendor_id: 0x20a0,
                product_id: 0x42b2,
                product: None,
                manufacturer: None,
                serial: None,
            },
            pending: VecDeque::new(),
            answers: answers.into(),
        }
    }
}

const CID: u32 = 0x0C1D_0002;

impl Transport for ScriptedApps {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        let frag = |cid, command, payload: &[u8]| {
            wire::fragment(cid, command, payload).expect("scripted answers fit")
        };
        match Packet::parse(report) {
            Packet::Init {
                cid,
                cmd: cmd::INIT,
                data,
                ..
            } => {
                let channel = if cid == BROADCAST_CID { CID } else { cid };
                let mut answer = data[..8].to_vec();
                answer.extend_from_slice(&channel.to_be_bytes());
                answer.extend_from_slice(&[wire::PROTOCOL_VERSION, 1, 2, 3, 0]);
                self.pending.extend(frag(cid, cmd::INIT, &answer));
            }
            Packet::Init { cid, cmd, .. } => match self.answers.pop_front() {
                Some(Answer::Data(d)) => self.pending.extend(frag(cid, cmd, &d)),
                Some(Answer::Error(code)) => self.pending.extend(frag(cid, cmd::ERROR, &[code])),
                Some(Answer::Touch(d)) => {
                    self.pending.extend(frag(cid, cmd::KEEPALIVE, &[2]));
                    self.pending.extend(frag(cid, cmd, &d));
                }
                None => {}
            },
            Packet::Cont { .. } => {}
        }
        Ok(())
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        match self.pending.pop_front() {
            Some(r) => Ok(Some(r)),
            None if timeout.is_zero() => Ok(None),
            // The script is over: the key is gone.
            None => Err(TransportError::Disconnected),
        }
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }
}

/// The driver operations a session runs, in order (rotated by the mode).
pub const OPERATIONS: [&str; 16] = [
    "list",
    "list-pin",
    "calculate",
    "totp",
    "put",
    "delete",
    "update",
    "reset",
    "set-pin",
    "change-pin",
    "verify-pin",
    "setting",
    "set-setting",
    "config-fields",
    "admin-status",
    "refresh",
];

fn credential() -> NewCredential {
    NewCredential {
        name: "60/0012345:alice@contoso.com".into(),
        kind: OtpKind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        secret: SecretSlice::from(vec![0x5A; 20]),
        touch_required: true,
        pin_protected: false,
        initial_counter: 0,
    }
}

/// Runs one driver operation; `Ok(())` or the operation's error.
pub fn operation<T: Transport>(key: &mut Key<T>, name: &str) -> Result<(), Error> {
    let pin = SecretString::from("123456");
    let new_pin = SecretString::from("654321");
    let label = "60/0012345:alice@contoso.com";
    match name {
        "list" => key.list(None).map(drop),
        "list-pin" => key.list(Some(&pin)).map(drop),
        "calculate" => key.calculate(label, 7, TouchWait::Never, None).map(|otp| {
            assert_eq!(otp.code.len(), usize::from(otp.digits));
        }),
        "totp" => key
            .totp(label, 1_234_567_890, TouchWait::Expected, None)
            .map(drop),
        "put" => key.put(&credential(), None),
        "delete" => key.delete(label, None),
        "update" => key.update(label, Some("0012345:bob@contoso.com"), Some(false), None),
        "reset" => key.reset(),
        "set-pin" => key.set_pin(&pin),
        "change-pin" => key.change_pin(&pin, &new_pin),
        "verify-pin" => key.verify_pin(&pin),
        "setting" => key.setting(Setting::OtpKeyPress).map(drop),
        "set-setting" => key.set_setting(Setting::ModeU2f, false),
        "config-fields" => key.config_fields().map(drop),
        "admin-status" => key.admin_status().map(drop),
        "refresh" => key.refresh().map(drop),
        other => panic!("no operation {other}"),
    }
}

/// Whether an error is one a key's answers may cause (the driver's arguments are all valid, and
/// the scripted key never makes anyone wait).
fn answer_error(e: &Error) -> bool {
    !matches!(
        e,
        Error::InvalidArgument(_) | Error::Timeout(_) | Error::Cancelled | Error::Transport(_)
    )
}

/// The timeouts of a session: CHANNEL_BUSY fails at once instead of sleeping through retries.
pub fn timeouts() -> Timeouts {
    Timeouts {
        quick: Duration::from_secs(5),
        touch: Duration::from_secs(5),
        busy: Duration::ZERO,
    }
}

/// The operations in the order a session with this mode runs them.
pub fn rotation(mode: u8) -> impl Iterator<Item = &'static str> {
    let first = usize::from(mode) % OPERATIONS.len();
    OPERATIONS[first..]
        .iter()
        .chain(&OPERATIONS[..first])
        .copied()
}

/// A scripted session: open the key (SELECT), then every operation once.
pub fn session(mode: u8, script: &[u8]) -> Outcome {
    let transport = ScriptedApps::new(answers(script));
    let mut key = match Key::open_with(transport, timeouts()) {
        Ok(key) => key,
        Err(e) => {
            assert!(answer_error(&e), "Key::open: untyped failure {e:?}");
            return Outcome::Session {
                opened: false,
                ok: 0,
                failed: 0,
            };
        }
    };
    let (mut ok, mut failed) = (0, 0);
    for name in rotation(mode) {
        match operation(&mut key, name) {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(answer_error(&e), "{name}: untyped failure {e:?}");
                // Every error has a message for people.
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
    }
    Outcome::Session {
        opened: true,
        ok,
        failed,
    }
}
