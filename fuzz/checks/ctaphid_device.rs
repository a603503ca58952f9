//! The virtual key's device side of CTAPHID (`oathkey_emulator::VirtualKey`): channels,
//! reassembly, arbitration, timeouts and the apps behind them, fed arbitrary reports.
//!
//! Shared by `fuzz/fuzz_targets/ctaphid_device.rs` and `emulator/tests/emulator/fuzz_replay.rs`.
//!
//! Input: a header byte (touch policy, profile, channel table size, report pacing), then
//! records of `control, 64 report bytes` (the last one zero-padded). Control bits:
//! - bit 0: put the channel the harness allocated into the report's CID (so that rubbish reaches
//!   the apps, not only INVALID_CHANNEL);
//! - bits 1..=3: time that passes before the report (none, 1 ms, 100 ms, 499 ms, 501 ms, 2 s,
//!   11 s, 16 s);
//! - bit 4: the user presses the button after the report.
//!
//! Properties: the key never panics; everything it sends parses as whole messages (an init
//! packet, then its continuations in order, zero padding, errors of one known code); and
//! afterwards a well-behaved host is served: a fresh channel's PING of the input's own bytes
//! comes back unchanged (host fragmenting, device reassembling, device fragmenting, host
//! reassembling: the identity).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use oathkey_device::ctaphid::wire::{
    self, BROADCAST_CID, CONT_DATA, INIT_DATA, MAX_MESSAGE, Packet, REPORT_SIZE, Report, cmd, err,
    packets_for,
};
use oathkey_emulator::{Config, Profile, TouchPolicy, VirtualKey};

/// Record size: one control byte and one report.
pub const RECORD: usize = 1 + REPORT_SIZE;

/// The time steps control bits 1..=3 choose.
const STEPS_MS: [u64; 8] = [0, 1, 100, 499, 501, 2_000, 11_000, 16_000];

/// A message the key sent, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub cid: u32,
    pub cmd: u8,
    pub payload: Vec<u8>,
}

/// What one input did, for the replay tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the key sent while the input played.
    pub messages: Vec<Message>,
    /// Reports fed in.
    pub reports: usize,
}

impl Outcome {
    /// The error codes the key answered with.
    pub fn errors(&self) -> Vec<u8> {
        self.messages
            .iter()
            .filter(|m| m.cmd == cmd::ERROR)
            .map(|m| m.payload[0])
            .collect()
    }
}

/// The key's configuration the header byte chooses.
pub fn config(header: u8) -> Config {
    Config {
        touch: match header & 0x03 {
            0 => TouchPolicy::Approve,
            1 => TouchPolicy::Deny,
            2 => TouchPolicy::Button,
            _ => TouchPolicy::After(Duration::from_millis(300)),
        },
        profile: if header & 0x04 == 0 {
            Profile::Oathkey
        } else {
            Profile::Nitrokey3
        },
        max_channels: if header & 0x08 == 0 { 32 } else { 2 },
        report_interval: if header & 0x10 == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(1)
        },
        max_credentials: 4,
        serial: Some(0x0012_3456),
        ..Config::default()
    }
}

/// Drives a key on a manual clock and checks everything it sends.
#[derive(Debug)]
pub struct Bench {
    pub key: VirtualKey,
    pub now: Instant,
    /// Reports of a message not complete yet (the key queues whole messages, so this only
    /// spans the pacing of one message).
    partial: Option<(Message, usize, u8)>,
}

const ERROR_CODES: [u8; 9] = [
    err::INVALID_CMD,
    err::INVALID_PAR,
    err::INVALID_LEN,
    err::INVALID_SEQ,
    err::MSG_TIMEOUT,
    err::CHANNEL_BUSY,
    err::LOCK_REQUIRED,
    err::INVALID_CHANNEL,
    err::OTHER,
];

impl Bench {
    pub fn new(config: Config) -> Self {
        Self {
            key: VirtualKey::new(config),
            now: Instant::now(),
            partial: None,
        }
    }

    pub fn send(&mut self, report: &Report) {
        self.key.receive(report, 0, self.now);
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.key.poll(self.now);
    }

    /// Takes every report due now and checks the framing; returns the messages completed.
    pub fn take(&mut self) -> Vec<Message> {
        self.key.poll(self.now);
        let mut done = Vec::new();
        while let Some((_, report)) = self.key.take_output(self.now) {
            let packet = Packet::parse(&report);
            match (packet, self.partial.take()) {
                (
                    Packet::Init {
                        cid,
                        cmd,
                        bcnt,
                        data,
                    },
                    None,
                ) => {
                    let total = usize::from(bcnt);
                    assert!(total <= MAX_MESSAGE, "the key sent {total} bytes");
                    let head = total.min(INIT_DATA);
                    assert!(data[head..].iter().all(|&b| b == 0), "padding is not zero");
                    let message = Message {
                        cid,
                        cmd,
                        payload: data[..head].to_vec(),
                    };
                    if head == total {
                        done.push(message);
                    } else {
                        self.partial = Some((message, total, 0));
                    }
                }
                (Packet::Cont { cid, seq, data }, Some((mut message, total, next))) => {
                    assert_eq!(cid, message.cid, "a continuation on another channel");
                    assert_eq!(seq, next, "continuations out of order");
                    let take = (total - message.payload.len()).min(CONT_DATA);
                    assert!(data[take..].iter().all(|&b| b == 0), "padding is not zero");
                    message.payload.extend_from_slice(&data[..take]);
                    if message.payload.len() == total {
                        assert_eq!(usize::from(seq) + 2, packets_for(total));
                        done.push(message);
                    } else {
                        self.partial = Some((message, total, next + 1));
                    }
                }
                (packet, partial) => {
                    panic!("the key interleaved messages: {packet:?} while {partial:?}")
                }
            }
        }
        for m in &done {
            if m.cmd == cmd::ERROR {
                assert_eq!(m.payload.len(), 1, "an ERROR carries one byte");
                assert!(
                    ERROR_CODES.contains(&m.payload[0]),
                    "unknown error code {:#04x}",
                    m.payload[0]
                );
            }
            assert_ne!(m.cmd, cmd::KEEPALIVE, "the secrets app sends no KEEPALIVE");
        }
        done
    }

    /// Sends a whole message and collects the answers, letting time pass while reports are
    /// paced out (nothing else may be going on: no message in progress, no touch wait).
    pub fn request(&mut self, cid: u32, command: u8, payload: &[u8]) -> Vec<Message> {
        for r in wire::fragment(cid, command, payload).expect("fits") {
            self.send(&r);
        }
        let mut answers = self.take();
        for _ in 0..1000 {
            let Some(at) = self.key.next_wakeup() else {
                return answers;
            };
            assert!(
                at <= self.now + Duration::from_millis(10),
                "the key waits for something else"
            );
            self.now = self.now.max(at);
            answers.extend(self.take());
        }
        panic!("the key keeps waking up");
    }

    /// Allocates a channel with a broadcast INIT; panics if the key does not answer properly.
    pub fn init(&mut self, nonce: [u8; 8]) -> u32 {
        let answers = self.request(BROADCAST_CID, cmd::INIT, &nonce);
        let [answer] = answers.as_slice() else {
            panic!("INIT got {answers:?}");
        };
        assert_eq!((answer.cid, answer.cmd), (BROADCAST_CID, cmd::INIT));
        assert_eq!(answer.payload.len(), 17);
        assert_eq!(answer.payload[..8], nonce);
        let cid = u32::from_be_bytes([
            answer.payload[8],
            answer.payload[9],
            answer.payload[10],
            answer.payload[11],
        ]);
        assert!(cid != 0 && cid != BROADCAST_CID, "allocated {cid:08x}");
        cid
    }
}

/// Runs one input; panics if a property breaks.
pub fn check(data: &[u8]) -> Outcome {
    let (header, records) = data.split_first().map_or((0, &[][..]), |(h, r)| (*h, r));
    let mut b = Bench::new(config(header));
    let good = b.init(*b"fuzzinit");
    let mut messages = Vec::new();
    let mut reports = 0;
    for record in records.chunks(RECORD) {
        let control = record[0];
        let mut report = [0u8; REPORT_SIZE];
        report[..record.len() - 1].copy_from_slice(&record[1..]);
        if control & 1 != 0 {
            report[..4].copy_from_slice(&good.to_be_bytes());
        }
        b.advance(Duration::from_millis(
            STEPS_MS[usize::from((control >> 1) & 0x07)],
        ));
        b.send(&report);
        reports += 1;
        if control & 0x10 != 0 {
            b.key.press(b.now);
        }
        messages.extend(b.take());
    }

    // Let any message in progress time out, any touch wait end and any LOCK expire.
    b.advance(Duration::from_secs(16));
    messages.extend(b.take());
    b.advance(Duration::from_secs(1));
    messages.extend(b.take());
    assert!(
        !b.key.waiting_for_touch(),
        "a touch wait outlived its timeout"
    );

    // A well-behaved host is served, and PING is the identity for any payload that fits.
    let fresh = b.init(*b"recover!");
    let payload = &data[..data.len().min(MAX_MESSAGE)];
    let echo = b.request(fresh, cmd::PING, payload);
    let [echo] = echo.as_slice() else {
        panic!("PING got {echo:?}");
    };
    assert_eq!((echo.cid, echo.cmd), (fresh, cmd::PING));
    assert_eq!(echo.payload, payload, "PING echo differs");

    Outcome { messages, reports }
}
