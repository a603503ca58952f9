//! Many clients asking the same thing at the same moment: two regressions found by the load
//! test (daemon/tests/daemon/load.rs).
//! - A read that joined the coalescing map right after an exchange handed out its answers got
//!   `KeyRemoved`: the finished exchange's guard removed the next exchange's waiters on drop.
//! - When the token list cache expired, every client that found it expired queued its own LIST
//!   on the key; under load, hundreds of them, and every answer waited seconds behind them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use oathkey_device::{Algorithm, Error, Key, NewCredential, OtpKind, TouchWait, Transport};
use oathkey_emulator::{Config as VirtualConfig, VirtualKeyHandle};
use oathkeyd::keys::{ActorHandle, DynKey};
use secrecy::SecretSlice;
use serde_json::{Value, json};

#[test]
fn reads_that_arrive_as_an_exchange_ends_are_never_dropped() {
    let handle = VirtualKeyHandle::new(VirtualConfig {
        report_interval: Duration::from_micros(100),
        ..VirtualConfig::default()
    });
    let transport: Box<dyn Transport> = Box::new(handle.connect().expect("plugged"));
    let mut key: DynKey = Box::new(oathkey_device::Nk3Key::new(
        Key::open(transport).expect("opens"),
    ));
    key.put(&NewCredential {
        name: "C1:c@contoso.com".into(),
        kind: OtpKind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        secret: SecretSlice::from(b"12345678901234567890".to_vec()),
        touch_required: false,
        pin_protected: false,
        initial_counter: 0,
    })
    .expect("written");
    let (events, _) = tokio::sync::broadcast::channel(16);
    let actor = ActorHandle::spawn("k".into(), key, events, None, Box::new(|| {})).expect("actor");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (right, dropped, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (actor, right, dropped, other) =
                (actor.clone(), right.clone(), dropped.clone(), other.clone());
            tasks.spawn(async move {
                for _ in 0..150 {
                    // Step 1 is t = 59 s: RFC 6238's first SHA-1 test vector, 287082.
                    match actor
                        .code("C1:c@contoso.com".into(), 1, TouchWait::Never)
                        .await
                    {
                        Ok(otp) if otp.code == "287082" => right.fetch_add(1, Ordering::Relaxed),
                        Err(Error::Removed) => dropped.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        while let Some(t) = tasks.join_next().await {
            t.expect("reader");
        }
    });
    let (right, dropped, other) = (
        right.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
    eprintln!("coalescing race: {right} right, {dropped} dropped, {other} other");
    assert_eq!((dropped, other), (0, 0), "{right} right");
    assert_eq!(right, 32 * 150);
}

#[test]
fn an_expired_token_list_is_read_once_for_all_the_clients_waiting_for_it() {
    let daemon = crate::common::InProcess::start(1, "");
    let entry = daemon.running().service().registry().list()[0].clone();
    let handle = entry.virtual_handle.clone().expect("virtual");
    let _: Value = daemon
        .client()
        .call(
            "tokens.create",
            json!({"account": "a@contoso.com", "serial": "A1"}),
        )
        .expect("created");
    // USB pacing, so that a LIST takes long enough for the other clients to arrive meanwhile.
    handle.with_key(|k| k.set_report_interval(Duration::from_millis(2)));
    let clients = 48;
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    for round in 0..3 {
        // The cache expires (as it does every few seconds), then everybody asks at once.
        entry.invalidate_tokens();
        let before = handle.stats().reports_in;
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let socket = daemon.socket.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut c = oathkey_protocol::Client::connect(&socket).expect("connects");
                    barrier.wait();
                    let list: Vec<Value> = c.call("tokens.list", Value::Null).expect("listed");
                    list.len()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("client"), 1);
        }
        let lists = handle.stats().reports_in - before;
        eprintln!(
            "herds: round {round}: {} clients, {lists} requests reached the key",
            clients
        );
        assert!(
            lists <= 4,
            "{} clients found the list expired and the key got {lists} requests",
            clients
        );
    }
    daemon.shutdown();
}
