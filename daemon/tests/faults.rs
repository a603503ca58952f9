//! Faults through the daemon, not just the driver: a virtual key that drops, duplicates and
//! corrupts reports, stalls past the timeouts, is kept busy by another application, shares the
//! USB line with a "browser" that talks on its own channel (a second port of the virtual key
//! sees every report, as a second hidraw handle does), and is pulled out mid-exchange.
//!
//! Throughout, a second key is read without pause and must never fail; every code the daemon
//! returns from either key must equal totp-rs on the seed; every failure must be a typed error
//! of docs/protocol.md; and the faulty key must be served again afterwards by the same key
//! actor (the daemon recovers by resynchronising, not by restarting anything).
//!
//! The faulty key is attached through the daemon's public `Registry::attach`, as the hot-plug
//! sources do, with shorter driver timeouts than a real key needs so that the test stays fast.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::log::Log;
use common::{InProcess, error_name, reference_totp};
use oathkey_device::ctaphid::Timeouts;
use oathkey_device::ctaphid::wire::{self, BROADCAST_CID, Packet, cmd};
use oathkey_device::{Key, Transport};
use oathkey_emulator::{Config as VirtualConfig, Faults, VirtualKeyHandle, VirtualTransport};
use oathkey_protocol::Client;
use oathkey_protocol::types::{Code, CreatedToken, Event, KeyList, KeySource};
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

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

/// Reads a healthy key without pause; every read must be right.
struct Steady {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Steady {
    fn start(socket: &std::path::Path, token: Token) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
            let mut client = Client::connect(socket).expect("connects");
            std::thread::spawn(move || {
                let mut times = Times(7);
                while !stop.load(Ordering::Relaxed) {
                    let at = (reads.load(Ordering::Relaxed) % 3 != 0).then(|| times.next());
                    match read(&mut client, &token, at) {
                        Outcome::Right => {}
                        other => failures.lock().expect("lock").push(format!("{other:?}")),
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(3));
                }
            })
        };
        Self {
            stop,
            reads,
            failures,
            thread: Some(thread),
        }
    }

    fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("steady reader");
        }
        (self.reads(), self.failures.lock().expect("lock").clone())
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

/// A fault to arm (made when armed), and the error of the read that meets it, if any.
type OneShot = (&'static str, fn() -> Faults, Option<&'static str>);

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

#[test]
fn a_faulty_key_never_yields_a_wrong_code_and_recovers_without_a_restart() {
    let log = Log::capture("oathkey_device::ctaphid::host=trace");
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

    // Watch for keys coming and going: the faulty key must stay attached through every fault.
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
    let steady = Steady::start(&socket, steady_token);
    let entry_before = registry.get(&faulty_id).expect("attached");
    let mut c = daemon.client();
    let mut times = Times(42);
    assert_eq!(read(&mut c, &token, Some(times.next())), Outcome::Right);

    // One fault at a time, deterministic: the first read meets it, the next one is served.
    // (Faults are made when armed: a stall is measured from then.)
    let one_shot: [OneShot; 5] = [
        (
            "a lost answer",
            || Faults {
                drop_outputs: 1,
                ..Faults::default()
            },
            Some("DeviceError"),
        ),
        (
            "a damaged answer",
            || Faults {
                corrupt_outputs: 1,
                ..Faults::default()
            },
            Some("DeviceError"),
        ),
        (
            "a lost request",
            || Faults {
                drop_inputs: 1,
                ..Faults::default()
            },
            Some("DeviceError"),
        ),
        (
            "duplicated answers",
            || Faults {
                duplicate_outputs: 3,
                ..Faults::default()
            },
            None,
        ),
        (
            "a stall shorter than the driver waits",
            || Faults {
                stall_until: Some(Instant::now() + TIMEOUTS.quick / 3),
                ..Faults::default()
            },
            None,
        ),
    ];
    for (what, faults, first) in one_shot {
        handle.set_faults(faults());
        let mark = log.mark();
        let got = read(&mut c, &token, Some(times.next()));
        match first {
            Some(name) => assert_eq!(
                got,
                Outcome::Error(name.into()),
                "{what}: the read that met it"
            ),
            None => assert_eq!(got, Outcome::Right, "{what}: waited out or skipped"),
        }
        for _ in 0..3 {
            assert_eq!(
                read(&mut c, &token, Some(times.next())),
                Outcome::Right,
                "{what}: the reads after it"
            );
        }
        assert_eq!(
            log.logged_since(mark, "resynchronised CTAPHID channel"),
            first.is_some(),
            "{what}: the channel is resynchronised after a failure, and only then"
        );
        assert_eq!(
            read(&mut c, &other, None),
            Outcome::Right,
            "{what}: another token"
        );
    }

    // The key said none of these tokens needs a touch, so a lost answer is given up on after
    // the quick timeout: a touch-long wait would hold every reader of this key for that long.
    handle.set_faults(Faults {
        drop_outputs: 1,
        ..Faults::default()
    });
    let lost = c
        .call::<_, Code>(
            "codes.get",
            json!({"key": token.key, "token": token.serial, "at": times.next()}),
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
    assert_eq!(read(&mut c, &token, Some(times.next())), Outcome::Right);

    // A stall longer than the driver waits: the read fails, the key (and every read queued
    // behind it) is given up on only for that long, and the other key is served meanwhile.
    let steady_before = steady.reads();
    let stall_until = Instant::now() + TIMEOUTS.touch * 2;
    handle.set_faults(Faults {
        stall_until: Some(stall_until),
        ..Faults::default()
    });
    let stalled = read(&mut c, &token, Some(times.next()));
    assert_eq!(
        stalled,
        Outcome::Error("DeviceError".into()),
        "a stall past the timeout"
    );
    assert!(
        steady.reads() > steady_before,
        "the healthy key was served while the faulty one stalled"
    );
    std::thread::sleep(
        stall_until.saturating_duration_since(Instant::now()) + Duration::from_millis(100),
    );
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the stall"
    );

    // Another application keeps the key busy: a short spell is waited out, a long one is a
    // `Busy` error, and the key is served again when it is over.
    handle.set_faults(Faults {
        busy_until: Some(Instant::now() + Duration::from_millis(300)),
        ..Faults::default()
    });
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "a short busy spell"
    );
    let busy_until = Instant::now() + TIMEOUTS.busy + Duration::from_millis(700);
    handle.set_faults(Faults {
        busy_until: Some(busy_until),
        ..Faults::default()
    });
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Error("Busy".into()),
        "busy for longer than the driver retries"
    );
    std::thread::sleep(
        busy_until.saturating_duration_since(Instant::now()) + Duration::from_millis(50),
    );
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the busy spell"
    );

    // Storms: faults armed again and again while several clients read the faulty key at once
    // (some reads shared, some not). Whatever fails must fail typed; whatever succeeds is right.
    let outcomes = with_storm_readers(&socket, &token, 3, || {
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
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the storm"
    );

    // A browser on its own port. First it opens the key many times over (each open allocates a
    // channel), until the key recycles the daemon's channel: the daemon gets a new one.
    let mut browser = handle.connect().expect("a second port");
    let mark = log.mark();
    for n in 0..40 {
        browser_channel(&mut browser, 0xB0B0_0000 + n);
    }
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the key forgot the daemon's channel"
    );
    assert!(
        log.logged_since(mark, "allocating a new one"),
        "the daemon's channel was recycled by the key and the driver allocated another"
    );
    // Then WebAuthn traffic: messages the key holds half-received for a while, so the daemon's
    // requests meet CHANNEL_BUSY. Both sides must get their own answers, intact.
    let cid = browser_channel(&mut browser, 0xB0B0_FFFF);
    let mark = log.mark();
    let (mut pings, mut intact) = (0, 0);
    let outcomes = with_storm_readers(&socket, &token, 2, || {
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
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the browser"
    );

    // Through all of it the key stayed attached and kept its actor: no restart.
    let entry_after = registry.get(&faulty_id).expect("still attached");
    assert!(
        Arc::ptr_eq(&entry_before, &entry_after),
        "the faulty key was re-attached during the faults"
    );
    assert!(
        !events
            .lock()
            .expect("lock")
            .iter()
            .any(|e| matches!(e, Event::KeyRemoved { .. })),
        "a key was removed during the faults"
    );

    // Pulled out mid-exchange: the key answers slowly, the read is on its way, the key goes.
    handle.with_key(|k| k.set_report_interval(Duration::from_millis(300)));
    let in_flight = {
        let (socket, token, at) = (socket.clone(), token.clone(), times.next());
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
        let list: KeyList = admin.call("keys.list", Value::Null).expect("keys");
        if list.keys.iter().all(|k| k.id != faulty_id) {
            break;
        }
        assert!(Instant::now() < deadline, "the pulled key is still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Error("KeyNotFound".into()),
        "a read of the pulled key"
    );
    // Plugged in again (as the hot-plug poller would): same id, same tokens, right codes.
    handle.replug();
    handle.with_key(|k| k.set_report_interval(Duration::from_micros(500)));
    assert_eq!(attach(&daemon, &handle), faulty_id);
    assert_eq!(
        read(&mut c, &token, Some(times.next())),
        Outcome::Right,
        "after the replug"
    );
    assert_eq!(
        read(&mut c, &other, None),
        Outcome::Right,
        "after the replug"
    );

    let (steady_reads, steady_failures) = steady.finish();
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("watcher");
    assert!(
        steady_failures.is_empty(),
        "the healthy key failed {} of {steady_reads} reads: {:?}",
        steady_failures.len(),
        &steady_failures[..steady_failures.len().min(5)]
    );
    let events = events.lock().expect("lock").clone();
    let removed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::KeyRemoved { .. }))
        .collect();
    assert_eq!(removed.len(), 1, "only the pull removed a key: {events:?}");
    assert!(matches!(removed[0], Event::KeyRemoved { key } if *key == faulty_id));
    eprintln!("faults: the healthy key served {steady_reads} reads meanwhile, all right");
    drop((c, admin));
    daemon.shutdown();
}
