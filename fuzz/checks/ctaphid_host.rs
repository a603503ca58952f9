//! Host-side CTAPHID reassembly (`oathkey_device::ctaphid::CtapHid::call`) against a scripted
//! key whose answer reports come from the fuzzer.
//!
//! Shared by `fuzz/fuzz_targets/ctaphid_host.rs` and `device/tests/device/fuzz_replay.rs`.
//!
//! Input: `mode`, `command`, then the script.
//! - mode bit 0 clear (raw): the script is 64-byte reports, the last one zero-padded. They are
//!   what the key answers to the request. The host's result must be what a plain model of the
//!   CTAPHID rules says ([`model`]).
//! - mode bit 0 set (round trip): the script is a payload; the key answers with it fragmented
//!   on the host's channel, with a keepalive and another channel's report mixed in as the
//!   mode bits say. The host must return exactly that payload.
//!
//! Either way, after the call the host must recover: the next request, answered properly, works.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use oathkey_device::ctaphid::wire::{
    self, BROADCAST_CID, CONT_DATA, INIT_DATA, MAX_MESSAGE, Packet, REPORT_SIZE, Report, cmd, err,
};
use oathkey_device::ctaphid::{CallOptions, CtapHid, Timeouts};
use oathkey_device::{DeviceInfo, Error, Transport, TransportError};

/// The channel the scripted key hands out.
pub const CID: u32 = 0x0C1D_0001;

/// The commands the host sends in the fuzzed call (none is KEEPALIVE or ERROR, which the host
/// treats specially in answers).
pub const COMMANDS: [u8; 5] = [
    cmd::PING,
    cmd::WINK,
    cmd::VENDOR_SECRETS,
    cmd::VENDOR_ADMIN,
    cmd::LOCK,
];

/// A key that answers INIT by itself and each other request with the next script.
#[derive(Debug)]
pub struct ScriptedKey {
    info: DeviceInfo,
    /// Reports the host can read now.
    pending: VecDeque<Report>,
    /// One script per request, released when the request is written.
    scripts: VecDeque<Vec<Report>>,
}

impl ScriptedKey {
    pub fn new(scripts: Vec<Vec<Report>>) -> Self {
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
            scripts: scripts.into(),
        }
    }

    /// Forgets reports not read yet (time passes; stale traffic is gone).
    pub fn settle(&mut self) {
        self.pending.clear();
    }

    pub fn push_script(&mut self, script: Vec<Report>) {
        self.scripts.push_back(script);
    }
}

impl Transport for ScriptedKey {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        match Packet::parse(report) {
            Packet::Init {
                cid,
                cmd: cmd::INIT,
                bcnt: 8,
                data,
            } => {
                let channel = if cid == BROADCAST_CID { CID } else { cid };
                let mut answer = data[..8].to_vec();
                answer.extend_from_slice(&channel.to_be_bytes());
                answer.extend_from_slice(&[wire::PROTOCOL_VERSION, 1, 2, 3, 0]);
                let reports = wire::fragment(cid, cmd::INIT, &answer).expect("an INIT answer fits");
                self.pending.extend(reports);
            }
            Packet::Init { .. } => {
                if let Some(script) = self.scripts.pop_front() {
                    self.pending.extend(script);
                }
            }
            // Continuations of a request: the script was released with its first packet.
            Packet::Cont { .. } => {}
        }
        Ok(())
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        match self.pending.pop_front() {
            Some(r) => Ok(Some(r)),
            // Nothing will ever come: a poll says so, a wait ends the exchange at once instead
            // of spinning until the host's deadline.
            None if timeout.is_zero() => Ok(None),
            None => Err(TransportError::Disconnected),
        }
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }
}

/// What the CTAPHID rules say the host's call returns for a script (first exchange only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The reassembled answer.
    Answer(Vec<u8>),
    /// A protocol violation.
    Protocol,
    /// A CTAPHID ERROR with this code.
    CtapError(u8),
    /// The script ended before an answer was complete.
    Exhausted,
}

/// A plain model of the host's reassembly rules: reports for other channels are skipped, a
/// KEEPALIVE before the answer is skipped, an ERROR ends the call, the answer's init packet
/// must carry the request's command and at most [`MAX_MESSAGE`] bytes, continuations must come
/// in order, stray continuations before the answer are skipped.
pub fn model(script: &[Report], cid: u32, command: u8) -> Expected {
    let mut partial: Option<(usize, u8, Vec<u8>)> = None;
    for report in script {
        let packet = Packet::parse(report);
        if packet.cid() != cid {
            continue;
        }
        match (packet, partial.as_mut()) {
            (
                Packet::Init {
                    cmd: cmd::KEEPALIVE,
                    ..
                },
                None,
            ) => {}
            (
                Packet::Init {
                    cmd: cmd::ERROR,
                    data,
                    ..
                },
                _,
            ) => return Expected::CtapError(data[0]),
            (
                Packet::Init {
                    cmd, bcnt, data, ..
                },
                None,
            ) if cmd == command => {
                let total = usize::from(bcnt);
                if total > MAX_MESSAGE {
                    return Expected::Protocol;
                }
                let buf = data[..total.min(INIT_DATA)].to_vec();
                if buf.len() == total {
                    return Expected::Answer(buf);
                }
                partial = Some((total, 0, buf));
            }
            (Packet::Init { .. }, _) => return Expected::Protocol,
            (Packet::Cont { seq, data, .. }, Some((total, next, buf))) => {
                if seq != *next {
                    return Expected::Protocol;
                }
                *next += 1;
                let take = (*total - buf.len()).min(CONT_DATA);
                buf.extend_from_slice(&data[..take]);
                if buf.len() == *total {
                    return Expected::Answer(std::mem::take(buf));
                }
            }
            (Packet::Cont { .. }, None) => {}
        }
    }
    Expected::Exhausted
}

/// Splits bytes into 64-byte reports, zero-padding the last.
pub fn reports(bytes: &[u8]) -> Vec<Report> {
    bytes
        .chunks(REPORT_SIZE)
        .map(|chunk| {
            let mut r = [0u8; REPORT_SIZE];
            r[..chunk.len()].copy_from_slice(chunk);
            r
        })
        .collect()
}

/// A report on our channel that is not part of the answer: a KEEPALIVE (the key is working).
fn keepalive() -> Report {
    let mut r = [0u8; REPORT_SIZE];
    r[..4].copy_from_slice(&CID.to_be_bytes());
    r[4] = wire::TYPE_INIT | cmd::KEEPALIVE;
    r[6] = 1;
    r[7] = 2; // waiting for a touch
    r
}

/// A report for someone else's channel (a browser's WebAuthn traffic), shaped like an ERROR
/// so that taking it for ours would end the call.
fn foreign() -> Report {
    let mut r = [0u8; REPORT_SIZE];
    r[..4].copy_from_slice(&(CID ^ 0x8000_0000).to_be_bytes());
    r[4] = wire::TYPE_INIT | cmd::ERROR;
    r[6] = 1;
    r[7] = err::OTHER;
    r
}

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned an answer of this many bytes.
    Answer(usize),
    /// The call failed with a typed error.
    Failed(Error),
}

fn timeouts() -> Timeouts {
    Timeouts {
        // Never reached: the scripted key ends a wait at once when it has nothing more.
        quick: Duration::from_secs(5),
        touch: Duration::from_secs(5),
        // CHANNEL_BUSY fails at once instead of sleeping through retries.
        busy: Duration::ZERO,
    }
}

/// Runs one input; panics if a property breaks.
pub fn check(data: &[u8]) -> Outcome {
    let [mode, command, rest @ ..] = data else {
        return Outcome::Failed(Error::InvalidArgument("input too short".into()));
    };
    let command = COMMANDS[usize::from(*command) % COMMANDS.len()];
    let round_trip = mode & 1 != 0;
    let script = if round_trip {
        let payload = &rest[..rest.len().min(MAX_MESSAGE)];
        let mut script = wire::fragment(CID, command, payload).expect("a payload that fits");
        // Noise the mode bits choose, which must not change the answer: a KEEPALIVE before
        // the answer (bit 1), and another channel's report anywhere (bits 2..=7).
        if mode & 2 != 0 {
            script.insert(0, keepalive());
        }
        let at = usize::from(mode >> 2) % (script.len() + 1);
        script.insert(at, foreign());
        script
    } else {
        reports(rest)
    };
    let expected = if round_trip {
        Expected::Answer(rest[..rest.len().min(MAX_MESSAGE)].to_vec())
    } else {
        model(&script, CID, command)
    };

    let mut hid = CtapHid::new(ScriptedKey::new(vec![script]), timeouts());
    hid.init().expect("the scripted key answers INIT");
    assert_eq!(hid.channel(), Some(CID));
    let result = hid.call(command, b"fuzz", CallOptions::default());

    match (&expected, &result) {
        (Expected::Answer(want), Ok(got)) => assert_eq!(want, got, "reassembled answer differs"),
        (Expected::Protocol, Err(Error::Protocol(_))) => {}
        (Expected::CtapError(err::CHANNEL_BUSY), Err(Error::Busy(_))) => {}
        // The host allocates a new channel and retries once; the script has no second answer.
        (Expected::CtapError(err::INVALID_CHANNEL), Err(_)) => {}
        (Expected::CtapError(code), Err(Error::Ctaphid { code: got })) if code == got => {}
        (Expected::Exhausted, Err(Error::Removed)) => {}
        _ => panic!("expected {expected:?}, the host returned {result:?}"),
    }
    if let Ok(answer) = &result {
        assert!(answer.len() <= MAX_MESSAGE);
    }

    // Whatever happened, the host recovers: the next request, answered properly, works.
    hid.transport_mut().settle();
    let answer: Vec<u8> = rest.iter().rev().take(100).copied().collect();
    let next = wire::fragment(CID, cmd::PING, &answer).expect("fits");
    hid.transport_mut().push_script(next);
    let again = hid.call(cmd::PING, b"again", CallOptions::default());
    assert_eq!(
        again,
        Ok(answer),
        "the host did not recover after {result:?}"
    );

    match result {
        Ok(answer) => Outcome::Answer(answer.len()),
        Err(e) => Outcome::Failed(e),
    }
}
