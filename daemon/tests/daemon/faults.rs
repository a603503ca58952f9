//! Faults through the daemon, not just the driver: a virtual key that drops, duplicates and
//! corrupts reports, stalls past the timeouts, is kept busy by another application, shares the
//! USB line with a "browser" that talks on its own channel (a second port of the virtual key
//! sees every report, as a second hidraw handle does), and is pulled out mid-exchange. One
//! named case per kind of fault, each on a daemon of its own.
//!
//! Throughout each case, a second key is read without pause and must never fail; every code the
//! daemon returns from either key must equal totp-rs on the seed; every failure must be a typed
//! error of docs/protocol.md; and the faulty key must be served again afterwards by the same key
//! actor (the daemon recovers by resynchronising, not by restarting anything).
//!
//! The faulty key is attached through the daemon's public `Registry::attach`, as the hot-plug
//! sources do, with shorter driver timeouts than a real key needs so that the test stays fast.
//! The cases that search the driver's log run in a process of their own: the log capture is
//! global to the process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{InProcess, error_name};
use oathkey_device::ctaphid::Timeouts;
use oathkey_device::ctaphid::wire::{self, BROADCAST_CID, Packet, cmd};
use oathkey_device::{Key, Transport};
use oathkey_emulator::{Config as VirtualConfig, Faults, VirtualKeyHandle, VirtualTransport};
use oathkey_protocol::Client;
use oathkey_protocol::types::{Code, CreatedToken, Event, KeyList, KeySource};
use oathkey_testkit::log::Log;
use oathkey_testkit::{Steady, reference_totp, unix_now};
use oathkeyd::keys::KeyEntry;
use serde_json::{Value, json};

/// The faulty key's driver timeouts: short, so that every fault resolves quickly, yet far
/// above what a healthy exchange takes even on a busy machine. None of the faulty key's tokens
/// needs a touch and the key says so, so a lost answer to a code read costs the `quick`
/// timeout, not the `touch` one.
const TIMEOUTS: Timeouts = Timeouts {
    quick: Duration::from_millis(800),
    touch: Duration::from_millis(1200),
    busy: Duration::from_millis(1500),
};

/// A token and its seed.
#[derive(Clone)]
struct Token {
    key: String,
    serial: String,
    secret: Vec<u8>,
    algorithm: &'static str,
    digits: u8,
    period: u64,
}

impl Token {
    fn create(admin: &mut Client, params: Value) -> Self {
        let created: CreatedToken = admin.call("tokens.create", params).expect("token created");
        let algorithm = match serde_json::to_value(created.algorithm)
            .expect("algorithm")
            .as_str()
        {
            Some("sha1") => "sha1",
            Some("sha256") => "sha256",
            Some("sha512") => "sha512",
            other => panic!("unknown algorithm {other:?}"),
        };
        Self {
            key: created.token.key.clone(),
            serial: created.serial.clone(),
            secret: data_encoding::BASE32_NOPAD
                .decode(created.secret.expose().as_bytes())
                .expect("Base32"),
            algorithm,
            digits: created.digits,
            period: u64::from(created.period),
        }
    }
}

/// What one read of a code gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The right code.
    Right,
    /// A code that is not the reference (never acceptable).
    Wrong(String),
    /// A typed error, by name.
    Error(String),
    /// Something that is not a typed JSON-RPC error (never acceptable).
    Broken(String),
}

/// Reads `token`'s code (at `at`, or now) and checks it against totp-rs.
fn read(c: &mut Client, token: &Token, at: Option<u64>) -> Outcome {
    let before = unix_now();
    let answer: Result<Code, _> = c.call(
        "codes.get",
        json!({"key": token.key, "token": token.serial, "at": at}),
    );
    let after = unix_now();
    match answer {
        Ok(code) => {
            let (Some(from), Some(until)) = (code.valid_from, code.valid_until) else {
                return Outcome::Wrong(format!("no validity window: {code:?}"));
            };
            let in_window = match at {
                Some(t) => (from..until).contains(&t),
                None => until > before && from <= after,
            };
            let expected = reference_totp(
                token.algorithm,
                token.digits,
                token.period,
                &token.secret,
                from,
            );
            if !in_window || from % token.period != 0 {
                Outcome::Wrong(format!("code for the wrong period: {code:?} (at {at:?})"))
            } else if code.code != expected || code.token.serial.as_deref() != Some(&token.serial) {
                Outcome::Wrong(format!(
                    "expected {expected} for {}: {code:?}",
                    token.serial
                ))
            } else {
                Outcome::Right
            }
        }
        Err(e) => match error_name(&e) {
            Some(name) => Outcome::Error(name),
            None => Outcome::Broken(e.to_string()),
        },
    }
}

/// A deterministic sequence of times to ask codes for (each a separate exchange with the key).
struct Times(u64);

impl Times {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        1_000_000_000 + (self.0 >> 33) % 1_000_000_000
    }
}

/// Readers of the faulty key while a storm goes on: every answer is kept for checking.
fn storm_readers(
    socket: &std::path::Path,
    token: &Token,
    stop: &Arc<AtomicBool>,
    n: usize,
) -> Vec<std::thread::JoinHandle<Vec<Outcome>>> {
    (0..n)
        .map(|i| {
            let (stop, token) = (stop.clone(), token.clone());
            let mut client = Client::connect(socket).expect("connects");
            std::thread::spawn(move || {
                let mut times = Times(100 + i as u64);
                let mut seen = Vec::new();
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Now (shared between readers of the same step) and other times.
                    let at = k.is_multiple_of(2).then(|| times.next());
                    seen.push(read(&mut client, &token, at));
                    k += 1;
                }
                seen
            })
        })
        .collect()
}

/// Runs `storm` while `readers` threads read the faulty key; returns what they saw.
fn with_storm_readers(
    socket: &std::path::Path,
    token: &Token,
    readers: usize,
    storm: impl FnOnce(),
) -> Vec<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = storm_readers(socket, token, &stop, readers);
    storm();
    stop.store(true, Ordering::Relaxed);
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("storm reader"))
        .collect()
}

/// Asserts that every outcome is a right code or one of the `allowed` typed errors; returns
/// how many were right.
#[track_caller]
fn assert_typed(phase: &str, outcomes: &[Outcome], allowed: &[&str]) -> usize {
    let mut right = 0;
    for o in outcomes {
        match o {
            Outcome::Right => right += 1,
            Outcome::Error(name) if allowed.contains(&name.as_str()) => {}
            other => panic!("{phase}: {other:?} (allowed errors: {allowed:?}); all: {outcomes:?}"),
        }
    }
    right
}

/// How many reads were right, and which errors the others met.
fn summary(outcomes: &[Outcome]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for o in outcomes {
        let k = match o {
            Outcome::Right => "right".to_string(),
            Outcome::Error(name) => name.clone(),
            other => format!("{other:?}"),
        };
        *counts.entry(k).or_default() += 1;
    }
    format!("{counts:?}")
}

/// Opens a virtual key through a new port with the test's timeouts and hands it to the daemon.
fn attach(daemon: &InProcess, handle: &VirtualKeyHandle) -> String {
    let transport: Box<dyn Transport> = Box::new(handle.connect().expect("plugged in"));
    let key = Box::new(oathkey_device::Nk3Key::new(
        Key::open_with(transport, TIMEOUTS).expect("key opens"),
    ));
    daemon
        .running()
        .service()
        .registry()
        .attach(key, KeySource::Virtual, Some(handle.clone()), None)
        .expect("attached")
        .id
        .clone()
}

/// Plays a browser on its own port of the key: allocates a channel with INIT on the broadcast
/// channel, as every FIDO client does when it opens the device.
fn browser_channel(port: &mut VirtualTransport, nonce: u64) -> u32 {
    let nonce = nonce.to_be_bytes();
    for report in wire::fragment(BROADCAST_CID, cmd::INIT, &nonce).expect("fits") {
        port.write(&report).expect("browser writes");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Some(report) = port
            .read(Duration::from_millis(200))
            .expect("browser reads")
        else {
            continue;
        };
        if let Packet::Init {
            cid: BROADCAST_CID,
            cmd: cmd::INIT,
            data,
            ..
        } = Packet::parse(&report)
            && data[..8] == nonce
        {
            return u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        }
    }
    panic!("the browser got no channel");
}

/// One browser message: a PING whose packets are sent with a pause after the first, so that
/// the key holds the half-received message (and tells other channels CHANNEL_BUSY) meanwhile.
/// Returns whether the echo came back intact (`None` if the key said busy).
fn browser_ping(
    port: &mut VirtualTransport,
    cid: u32,
    payload: &[u8],
    hold: Duration,
) -> Option<bool> {
    let reports = wire::fragment(cid, cmd::PING, payload).expect("fits");
    port.write(&reports[0]).expect("browser writes");
    std::thread::sleep(hold);
    for report in &reports[1..] {
        port.write(report).expect("browser writes");
    }
    let mut echo: Option<(usize, Vec<u8>)> = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Some(report) = port
            .read(Duration::from_millis(100))
            .expect("browser reads")
        else {
            continue;
        };
        match (Packet::parse(&report), echo.as_mut()) {
            (p, _) if p.cid() != cid => {}
            (
                Packet::Init {
                    cmd: cmd::ERROR, ..
                },
                _,
            ) => return None,
            (
                Packet::Init {
                    cmd: cmd::PING,
                    bcnt,
                    data,
                    ..
                },
                None,
            ) => {
                let total = usize::from(bcnt);
                let mut buf = data[..total.min(data.len())].to_vec();
                buf.truncate(total);
                echo = Some((total, buf));
            }
            (Packet::Cont { data, .. }, Some((total, buf))) => {
                let take = (*total - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..take]);
            }
            _ => return Some(false),
        }
        if let Some((total, buf)) = &echo
            && buf.len() == *total
        {
            return Some(buf == payload);
        }
    }
    Some(false)
}

/// What the driver's log is captured at: the CTAPHID host's trace, where resynchronising a
/// channel, allocating a new one and waiting for a busy key are told.
const DRIVER_LOG: &str = "oathkey_device::ctaphid::host=trace";

/// One case's daemon: a healthy key read without pause by a [`Steady`] reader, the faulty key
/// beside it (paced like a USB key, so that exchanges take real time) with two tokens, and a
/// watcher of keys coming and going.
struct Rig {
    daemon: InProcess,
    socket: PathBuf,
    handle: VirtualKeyHandle,
    faulty_id: String,
    admin: Client,
    /// The faulty key's SHA-256, 8-digit token, read by most checks.
    token: Token,
    /// The faulty key's other token (60 s).
    other: Token,
    events: Arc<Mutex<Vec<Event>>>,
    watching: Arc<AtomicBool>,
    watcher: JoinHandle<()>,
    steady: Steady,
    /// The faulty key's registry entry when the case began: the same one must serve it after
    /// every fault (no restart).
    entry_before: Arc<KeyEntry>,
    /// The case's own client of the faulty key.
    c: Client,
    times: Times,
}

impl Rig {
    /// The daemon, the keys, the tokens, the steady reader and the watcher; the faulty key has
    /// served one read.
    fn start() -> Self {
        let daemon = InProcess::start(1, "");
        let socket = daemon.socket.clone();
        let registry = daemon.running().service().registry().clone();
        let healthy_id = registry.list()[0].id.clone();

        // The faulty key: paced like a USB key, so that exchanges take real time.
        let handle = VirtualKeyHandle::new(VirtualConfig {
            serial: Some(0x0FA0_17ED),
            report_interval: Duration::from_micros(500),
            ..VirtualConfig::default()
        });
        let faulty_id = attach(&daemon, &handle);
        assert_eq!(faulty_id, "0fa017ed");

        let mut admin = daemon.client();
        let steady_token = Token::create(
            &mut admin,
            json!({"key": healthy_id, "account": "steady@contoso.com", "serial": "H1"}),
        );
        let token = Token::create(
            &mut admin,
            json!({"key": faulty_id, "account": "flaky@contoso.com", "serial": "F1", "algorithm": "sha256", "digits": 8}),
        );
        let other = Token::create(
            &mut admin,
            json!({"key": faulty_id, "account": "other@contoso.com", "serial": "F2", "period": 60}),
        );

        // Watch for keys coming and going: the faulty key must stay attached through every
        // fault.
        let events = Arc::new(Mutex::new(Vec::<Event>::new()));
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = {
            let (events, watching) = (events.clone(), watching.clone());
            let mut w = daemon.client();
            w.call::<_, Value>("events.subscribe", Value::Null)
                .expect("subscribed");
            std::thread::spawn(move || {
                while watching.load(Ordering::Relaxed) {
                    if let Ok(Some(e)) = w.next_event(Duration::from_millis(100)) {
                        events.lock().expect("lock").push(e);
                    }
                }
            })
        };
        // The healthy key, read without pause; every read must be right.
        let steady = {
            let mut client = Client::connect(&socket).expect("connects");
            let mut times = Times(7);
            let mut reads = 0u64;
            Steady::start(Duration::from_millis(3), move || {
                let at = (!reads.is_multiple_of(3)).then(|| times.next());
                reads += 1;
                match read(&mut client, &steady_token, at) {
                    Outcome::Right => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
        };
        let entry_before = registry.get(&faulty_id).expect("attached");
        let mut c = daemon.client();
        let mut times = Times(42);
        assert_eq!(read(&mut c, &token, Some(times.next())), Outcome::Right);
        Self {
            daemon,
            socket,
            handle,
            faulty_id,
            admin,
            token,
            other,
            events,
            watching,
            watcher,
            steady,
            entry_before,
            c,
            times,
        }
    }

    /// Reads the faulty key's main token at a time of its own.
    fn read(&mut self) -> Outcome {
        let at = self.times.next();
        read(&mut self.c, &self.token, Some(at))
    }

    /// Through the case the key stayed attached and kept its actor (no restart), no key was
    /// removed, and the healthy key never failed.
    fn finish(self) {
        let entry_after = self
            .daemon
            .running()
            .service()
            .registry()
            .get(&self.faulty_id)
            .expect("still attached");
        assert!(
            Arc::ptr_eq(&self.entry_before, &entry_after),
            "the faulty key was re-attached during the faults"
        );
        let events = self.stop();
        assert!(
            !events.iter().any(|e| matches!(e, Event::KeyRemoved { .. })),
            "a key was removed during the faults"
        );
    }

    /// The end of the case that pulls the key out: only the pull removed a key, and the
    /// healthy key never failed.
    fn finish_pulled(self) {
        let faulty_id = self.faulty_id.clone();
        let events = self.stop();
        let removed: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::KeyRemoved { .. }))
            .collect();
        assert_eq!(removed.len(), 1, "only the pull removed a key: {events:?}");
        assert!(matches!(removed[0], Event::KeyRemoved { key } if *key == faulty_id));
    }

    /// Stops the steady reader (asserting it never failed) and the watcher; shuts the daemon
    /// down; returns the events seen.
    fn stop(self) -> Vec<Event> {
        let (steady_reads, steady_failures) = self.steady.finish();
        self.watching.store(false, Ordering::Relaxed);
        self.watcher.join().expect("watcher");
        assert!(
            steady_failures.is_empty(),
            "the healthy key failed {} of {steady_reads} reads: {:?}",
            steady_failures.len(),
            &steady_failures[..steady_failures.len().min(5)]
        );
        eprintln!("faults: the healthy key served {steady_reads} reads meanwhile, all right");
        let events = self.events.lock().expect("lock").clone();
        drop((self.c, self.admin));
        self.daemon.shutdown();
        events
    }
}

/// One fault at a time, deterministic: the read that meets it gets `first` (an error, or the
/// right code when the driver waits the fault out or skips it), the reads after it are right,
/// the channel is resynchronised after a failure and only then, and another token is read
/// right. (Faults are made when armed: a stall is measured from then.)
fn one_shot(what: &str, faults: fn() -> Faults, first: Option<&str>) {
    let log = Log::capture(DRIVER_LOG);
    let mut rig = Rig::start();
    rig.handle.set_faults(faults());
    let mark = log.mark();
    let got = rig.read();
    match first {
        Some(name) => assert_eq!(
            got,
            Outcome::Error(name.into()),
            "{what}: the read that met it"
        ),
        None => assert_eq!(got, Outcome::Right, "{what}: waited out or skipped"),
    }
    for _ in 0..3 {
        assert_eq!(rig.read(), Outcome::Right, "{what}: the reads after it");
    }
    assert_eq!(
        log.logged_since(mark, "resynchronised CTAPHID channel"),
        first.is_some(),
        "{what}: the channel is resynchronised after a failure, and only then"
    );
    assert_eq!(
        read(&mut rig.c, &rig.other, None),
        Outcome::Right,
        "{what}: another token"
    );
    rig.finish();
}

#[test]
fn a_lost_answer() {
    oathkey_testkit::in_own_process!();
    one_shot(
        "a lost answer",
        || Faults {
            drop_outputs: 1,
            ..Faults::default()
        },
        Some("DeviceError"),
    );
}

#[test]
fn a_damaged_answer() {
    oathkey_testkit::in_own_process!();
    one_shot(
        "a damaged answer",
        || Faults {
            corrupt_outputs: 1,
            ..Faults::default()
        },
        Some("DeviceError"),
    );
}

#[test]
fn a_lost_request() {
    oathkey_testkit::in_own_process!();
    one_shot(
        "a lost request",
        || Faults {
            drop_inputs: 1,
            ..Faults::default()
        },
        Some("DeviceError"),
    );
}

#[test]
fn duplicated_answers() {
    oathkey_testkit::in_own_process!();
    one_shot(
        "duplicated answers",
        || Faults {
            duplicate_outputs: 3,
            ..Faults::default()
        },
        None,
    );
}

#[test]
fn a_stall_shorter_than_the_driver_waits() {
    oathkey_testkit::in_own_process!();
    one_shot(
        "a stall shorter than the driver waits",
        || Faults {
            stall_until: Some(Instant::now() + TIMEOUTS.quick / 3),
            ..Faults::default()
        },
        None,
    );
}

/// The key said none of these tokens needs a touch, so a lost answer is given up on after the
/// quick timeout: a touch-long wait would hold every reader of this key for that long.
#[test]
fn a_lost_answer_is_given_up_on_after_the_quick_timeout() {
    let mut rig = Rig::start();
    rig.handle.set_faults(Faults {
        drop_outputs: 1,
        ..Faults::default()
    });
    let at = rig.times.next();
    let lost = rig
        .c
        .call::<_, Code>(
            "codes.get",
            json!({"key": rig.token.key, "token": rig.token.serial, "at": at}),
        )
        .expect_err("the answer was lost");
    let oathkey_protocol::ClientError::Rpc(lost) = lost else {
        panic!("not a JSON-RPC error: {lost}");
    };
    assert!(
        lost.message
            .contains(&format!("did not answer within {:?}", TIMEOUTS.quick)),
        "{}",
        lost.message
    );
    assert_eq!(rig.read(), Outcome::Right);
    rig.finish();
}

/// A stall longer than the driver waits: the read fails, the key (and every read queued behind
/// it) is given up on only for that long, and the other key is served meanwhile.
#[test]
fn a_stall_longer_than_the_driver_waits() {
    let mut rig = Rig::start();
    let steady_before = rig.steady.reads();
    let stall_until = Instant::now() + TIMEOUTS.touch * 2;
    rig.handle.set_faults(Faults {
        stall_until: Some(stall_until),
        ..Faults::default()
    });
    let stalled = rig.read();
    assert_eq!(
        stalled,
        Outcome::Error("DeviceError".into()),
        "a stall past the timeout"
    );
    assert!(
        rig.steady.reads() > steady_before,
        "the healthy key was served while the faulty one stalled"
    );
    std::thread::sleep(
        stall_until.saturating_duration_since(Instant::now()) + Duration::from_millis(100),
    );
    assert_eq!(rig.read(), Outcome::Right, "after the stall");
    rig.finish();
}

/// Another application keeps the key busy for a short spell: it is waited out.
#[test]
fn a_short_busy_spell_is_waited_out() {
    let mut rig = Rig::start();
    rig.handle.set_faults(Faults {
        busy_until: Some(Instant::now() + Duration::from_millis(300)),
        ..Faults::default()
    });
    assert_eq!(rig.read(), Outcome::Right, "a short busy spell");
    rig.finish();
}

/// Another application keeps the key busy for longer than the driver retries: a `Busy` error,
/// and the key is served again when it is over.
#[test]
fn a_long_busy_spell_is_busy_until_it_is_over() {
    let mut rig = Rig::start();
    let busy_until = Instant::now() + TIMEOUTS.busy + Duration::from_millis(700);
    rig.handle.set_faults(Faults {
        busy_until: Some(busy_until),
        ..Faults::default()
    });
    assert_eq!(
        rig.read(),
        Outcome::Error("Busy".into()),
        "busy for longer than the driver retries"
    );
    std::thread::sleep(
        busy_until.saturating_duration_since(Instant::now()) + Duration::from_millis(50),
    );
    assert_eq!(rig.read(), Outcome::Right, "after the busy spell");
    rig.finish();
}

/// Storms: faults armed again and again while several clients read the faulty key at once
/// (some reads shared, some not). Whatever fails must fail typed; whatever succeeds is right.
#[test]
fn a_storm_of_faults_under_several_readers() {
    let mut rig = Rig::start();
    let handle = rig.handle.clone();
    let outcomes = with_storm_readers(&rig.socket, &rig.token, 3, || {
        let kinds = [
            Faults {
                drop_outputs: 1,
                ..Faults::default()
            },
            Faults {
                corrupt_outputs: 1,
                ..Faults::default()
            },
            Faults {
                duplicate_outputs: 4,
                ..Faults::default()
            },
            Faults {
                drop_inputs: 1,
                ..Faults::default()
            },
            Faults {
                corrupt_outputs: 2,
                duplicate_outputs: 2,
                ..Faults::default()
            },
        ];
        for faults in kinds {
            handle.set_faults(faults);
            // Until every armed fault has fired (bounded), then a moment to recover.
            let deadline = Instant::now() + TIMEOUTS.touch * 4;
            while handle.with_key(|k| *k.faults_mut() != Faults::default())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        handle.set_faults(Faults::default());
        std::thread::sleep(Duration::from_millis(300));
    });
    let right = assert_typed("fault storm", &outcomes, &["DeviceError"]);
    eprintln!("faults: storm: {}", summary(&outcomes));
    assert!(
        right > 0,
        "reads succeeded between the faults: {outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| matches!(o, Outcome::Error(_))),
        "the storm's faults reached the readers: {outcomes:?}"
    );
    assert_eq!(rig.read(), Outcome::Right, "after the storm");
    rig.finish();
}

/// A browser on its own port opens the key many times over (each open allocates a channel),
/// until the key recycles the daemon's channel: the daemon gets a new one.
#[test]
fn a_browser_opening_the_key_recycles_the_daemons_channel() {
    oathkey_testkit::in_own_process!();
    let log = Log::capture(DRIVER_LOG);
    let mut rig = Rig::start();
    let mut browser = rig.handle.connect().expect("a second port");
    let mark = log.mark();
    for n in 0..40 {
        browser_channel(&mut browser, 0xB0B0_0000 + n);
    }
    assert_eq!(
        rig.read(),
        Outcome::Right,
        "after the key forgot the daemon's channel"
    );
    assert!(
        log.logged_since(mark, "allocating a new one"),
        "the daemon's channel was recycled by the key and the driver allocated another"
    );
    drop(browser);
    rig.finish();
}

/// WebAuthn traffic from a browser on its own port: messages the key holds half-received for a
/// while, so the daemon's requests meet CHANNEL_BUSY. Both sides must get their own answers,
/// intact.
#[test]
fn a_browsers_messages_on_its_own_channel_are_waited_out() {
    oathkey_testkit::in_own_process!();
    let log = Log::capture(DRIVER_LOG);
    let mut rig = Rig::start();
    let mut browser = rig.handle.connect().expect("a second port");
    let cid = browser_channel(&mut browser, 0xB0B0_FFFF);
    let mark = log.mark();
    let (mut pings, mut intact) = (0, 0);
    let outcomes = with_storm_readers(&rig.socket, &rig.token, 2, || {
        for n in 0..12u8 {
            let payload: Vec<u8> = (0..150u8).map(|b| b.wrapping_mul(n + 1)).collect();
            if let Some(ok) = browser_ping(&mut browser, cid, &payload, Duration::from_millis(150))
            {
                pings += 1;
                intact += usize::from(ok);
            }
            // The browser's own pace between messages.
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    let right = assert_typed("browser traffic", &outcomes, &["Busy"]);
    eprintln!(
        "faults: browser traffic: {}; browser pings answered {pings}, intact {intact}",
        summary(&outcomes)
    );
    assert!(
        right > 0,
        "the daemon was served between the browser's messages: {outcomes:?}"
    );
    assert!(pings > 0, "the browser was served too");
    assert_eq!(
        intact, pings,
        "every echo the browser got was its own, intact"
    );
    assert!(
        log.logged_since(mark, "key busy on another channel"),
        "the daemon's requests met the browser's half-received messages (CHANNEL_BUSY)"
    );
    drop(browser);
    assert_eq!(rig.read(), Outcome::Right, "after the browser");
    rig.finish();
}

/// Pulled out mid-exchange: the key answers slowly, the read is on its way, the key goes. Then
/// plugged in again (as the hot-plug poller would): same id, same tokens, right codes.
#[test]
fn pulled_out_mid_exchange_and_plugged_in_again() {
    let mut rig = Rig::start();
    let handle = rig.handle.clone();
    handle.with_key(|k| k.set_report_interval(Duration::from_millis(300)));
    let in_flight = {
        let (socket, token, at) = (rig.socket.clone(), rig.token.clone(), rig.times.next());
        std::thread::spawn(move || {
            let mut c = Client::connect(&socket).expect("connects");
            read(&mut c, &token, Some(at))
        })
    };
    let before = handle.stats().reports_in;
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.stats().reports_in == before {
        assert!(Instant::now() < deadline, "the read never reached the key");
        std::thread::sleep(Duration::from_millis(1));
    }
    handle.unplug();
    assert_eq!(
        in_flight.join().expect("reader"),
        Outcome::Error("KeyRemoved".into()),
        "a read cut off by the unplug"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: KeyList = rig.admin.call("keys.list", Value::Null).expect("keys");
        if list.keys.iter().all(|k| k.id != rig.faulty_id) {
            break;
        }
        assert!(Instant::now() < deadline, "the pulled key is still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        rig.read(),
        Outcome::Error("KeyNotFound".into()),
        "a read of the pulled key"
    );
    handle.replug();
    handle.with_key(|k| k.set_report_interval(Duration::from_micros(500)));
    assert_eq!(attach(&rig.daemon, &handle), rig.faulty_id);
    assert_eq!(rig.read(), Outcome::Right, "after the replug");
    assert_eq!(
        read(&mut rig.c, &rig.other, None),
        Outcome::Right,
        "after the replug"
    );
    rig.finish_pulled();
}
