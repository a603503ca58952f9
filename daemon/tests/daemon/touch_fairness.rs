//! A touch wait holds a key for up to the touch timeout. One reader must not be able to stall
//! the key with them: a reader gets one request waiting for a touch per key (more are `Busy`),
//! and reads that need no touch go before queued touch waits and preempt the one in progress,
//! which then starts again and still gets its touch.
//!
//! In-process daemon, a virtual key whose button the test presses. No wall-clock assertion:
//! "not stalled" is shown by order (the quick read finishes while the touch read still waits).

use std::time::Duration;

use oathkey_protocol::types::{Code, CreatedToken, Event};
use oathkeyd::config::{Config, FileConfig, Overrides, Scope};
use serde_json::{Value, json};

fn config(dir: &std::path::Path) -> Config {
    let flags = Overrides {
        socket: Some(dir.join("s.sock")),
        state_dir: Some(dir.join("state")),
        emulate: Some(1),
        emulate_touch: Some("button".into()),
        no_hid: true,
        ..Overrides::default()
    };
    Config::resolve(Scope::User, FileConfig::default(), &flags).expect("valid config")
}

fn reference(secret: &str, t: u64) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32");
    oathkey_testkit::reference_totp("sha1", 6, 30, &bytes, t)
}

#[test]
fn a_reader_cannot_stall_a_key_with_touch_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = rt
        .block_on(oathkeyd::start(config(dir.path())))
        .expect("starts");
    let service = daemon.service().clone();
    let handle = service
        .registry()
        .list()
        .into_iter()
        .next()
        .expect("a key")
        .virtual_handle
        .clone()
        .expect("virtual");
    let admin = service.caller(1, Some(0), Some(0), None);
    let reader = service.caller(2, Some(65534), Some(65534), None);
    let other_reader = service.caller(3, Some(4242), Some(4242), None);
    let call = |caller: &oathkeyd::auth::Caller, method: &str, params: Value| {
        rt.block_on(oathkeyd::rpc::call(&service, caller, method, Some(params)))
    };
    let created = |v: Value| -> CreatedToken { serde_json::from_value(v).expect("created") };
    // Creating a token needs a touch on a button key: press while the create waits.
    let press_until_taken = || {
        for _ in 0..400 {
            if handle.press() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("nothing waited for a touch");
    };
    let create = |params: Value| {
        let service = service.clone();
        let admin = admin.clone();
        let task = rt.spawn(async move {
            oathkeyd::rpc::call(&service, &admin, "tokens.create", Some(params)).await
        });
        // Presses are only taken while something waits; a create that needs none just ends.
        while !task.is_finished() {
            let _ = handle.press();
            std::thread::sleep(Duration::from_millis(10));
        }
        created(rt.block_on(task).expect("joins").expect("created"))
    };
    let quick = create(json!({"account": "quick@contoso.com", "serial": "Q1"}));
    let touchy = create(json!({"account": "touch@contoso.com", "serial": "T1", "touch": true}));

    let mut events = service.subscribe();
    let t = oathkeyd::clock::unix_now();
    // The reader's first touch read waits for the button.
    let first = {
        let (service, reader) = (service.clone(), reader.clone());
        rt.spawn(async move {
            oathkeyd::rpc::call(
                &service,
                &reader,
                "codes.get",
                Some(json!({"token": "T1", "at": t})),
            )
            .await
        })
    };
    let wait_touch_needed = |events: &mut tokio::sync::broadcast::Receiver<Event>| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Ok(Event::TouchNeeded { token, .. }) = events.recv().await {
                        return token;
                    }
                }
            })
            .await
            .expect("a touch_needed event")
        })
    };
    assert_eq!(
        wait_touch_needed(&mut events).as_deref(),
        Some(touchy.token.name.as_str())
    );

    // A second and third from the same reader are refused at once, not queued.
    for _ in 0..2 {
        let again = call(&reader, "codes.get", json!({"token": "T1", "at": t}));
        assert_eq!(again.map_err(|e| e.code.name()), Err("Busy"));
    }
    // codes.all with touch tokens says so per token, and still reads the others.
    let all: Vec<Value> = serde_json::from_value(
        call(
            &reader,
            "codes.all",
            json!({"include_touch": true, "at": t}),
        )
        .expect("codes.all"),
    )
    .expect("entries");
    let by_serial = |serial: &str| {
        all.iter()
            .find(|e| e["token"]["serial"] == serial)
            .expect("listed")
            .clone()
    };
    assert_eq!(by_serial("T1")["error"], "Busy");
    assert_eq!(
        by_serial("Q1")["code"],
        reference(quick.secret.expose(), t),
        "the quick token is read while the touch read waits"
    );

    // An admin's and another reader's reads of the quick token go through while the touch read
    // is still waiting: the touch wait was preempted, not waited out.
    for caller in [&admin, &other_reader] {
        let code: Code = serde_json::from_value(
            call(caller, "codes.get", json!({"token": "Q1", "at": t})).expect("quick read"),
        )
        .expect("code");
        assert_eq!(code.code, reference(quick.secret.expose(), t));
    }
    assert!(
        !first.is_finished(),
        "the touch read still waits for its touch"
    );

    // The touch read started again and gets its touch: the right code.
    press_until_taken();
    let code: Code = serde_json::from_value(
        rt.block_on(first)
            .expect("joins")
            .expect("the touch read succeeds"),
    )
    .expect("code");
    assert_eq!(code.code, reference(touchy.secret.expose(), t));

    // Its turn is given back: the reader may wait for a touch again.
    let again = {
        let (service, reader) = (service.clone(), reader.clone());
        rt.spawn(async move {
            oathkeyd::rpc::call(
                &service,
                &reader,
                "codes.get",
                Some(json!({"token": "T1", "at": t})),
            )
            .await
        })
    };
    press_until_taken();
    assert!(rt.block_on(again).expect("joins").is_ok());
    rt.block_on(daemon.shutdown());
}
