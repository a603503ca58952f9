//! oathkeyd as a process: many clients, hot-plug, roles, bad input, signals, single instance,
//! cancellation, claims and events.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oathkey_protocol::ClientError;
use oathkey_protocol::types::{Code, CodeParams, CreatedToken, Event, KeyList, Operation, Role};
use oathkey_testkit::{
    Daemon, Raw, Steady, UdpKey, assert_exit, bin, cli_as_nobody, is_root, reference_totp_b32,
    stderr, stdout, wait_for_line,
};
use serde_json::{Value, json};

fn create(d: &Daemon, key: Option<&str>, user: &str, serial: &str) -> CreatedToken {
    d.client()
        .call(
            "tokens.create",
            json!({"key": key, "account": user, "serial": serial}),
        )
        .expect("created")
}

fn assert_serves(d: &Daemon) {
    let hello: oathkey_protocol::types::Hello = d
        .client()
        .call("hello", Value::Null)
        .expect("still serving");
    assert_eq!(hello.protocol, 1);
}

#[test]
fn fifty_concurrent_clients_get_correct_codes() {
    let d = Daemon::start(&["--emulate", "1"]);
    let tokens: Vec<CreatedToken> = (0..4)
        .map(|i| create(&d, None, &format!("user{i}@contoso.com"), &format!("S{i}")))
        .collect();
    let tokens = Arc::new(tokens);
    let wrong = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let (tokens, wrong, served, socket) = (
                tokens.clone(),
                wrong.clone(),
                served.clone(),
                d.socket.clone(),
            );
            std::thread::spawn(move || {
                let mut client = oathkey_protocol::Client::connect(&socket).expect("connects");
                for round in 0..10u64 {
                    let token = &tokens[(i + round as usize) % tokens.len()];
                    // Different times per client: answers must not get mixed up between them.
                    let t = 1_000_000 + (i as u64) * 3000 + round * 30;
                    let code: Code = client
                        .call(
                            "codes.get",
                            CodeParams {
                                key: None,
                                token: Some(token.serial.clone()),
                                at: Some(t),
                            },
                        )
                        .expect("a code");
                    let expected = reference_totp_b32("sha1", 6, 30, token.secret.expose(), t);
                    if code.code != expected
                        || code.token.serial.as_deref() != Some(token.serial.as_str())
                    {
                        wrong.fetch_add(1, Ordering::SeqCst);
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(served.load(Ordering::SeqCst), 600);
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "every answer correct and for its own request"
    );
}

#[test]
fn hot_plug_of_virtual_keys_while_clients_read() {
    let d = Daemon::start(&["--emulate", "2"]);
    let list: KeyList = d.client().call("keys.list", Value::Null).expect("lists");
    let (a, b) = (list.keys[0].id.clone(), list.keys[1].id.clone());
    let ta = create(&d, Some(&a), "a@contoso.com", "A1");
    let tb = create(&d, Some(&b), "b@contoso.com", "B1");

    let mut watcher = d.client();
    watcher
        .call::<_, Value>("events.subscribe", Value::Null)
        .expect("subscribed");

    // Readers on key B keep going through everything that happens to key A.
    let reader = {
        let mut client = d.client();
        let secret = tb.secret.expose().to_string();
        Steady::start(Duration::ZERO, move || {
            let code: Result<Code, _> =
                client.call("codes.get", json!({"token": "B1", "at": 1_234_567_890u64}));
            match code {
                Ok(c) if c.code == reference_totp_b32("sha1", 6, 30, &secret, 1_234_567_890) => {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
    };

    let mut admin = d.client();
    admin
        .call::<_, Value>("virtual.unplug", json!({"key": a}))
        .expect("unplugged");
    let removed = next_matching(
        &mut watcher,
        |e| matches!(e, Event::KeyRemoved { key } if *key == a),
    );
    assert!(removed, "key_removed announced");
    let err = d
        .client()
        .call::<_, Code>("codes.get", json!({"token": "A1"}))
        .expect_err("gone");
    match err {
        ClientError::Rpc(e) => assert_eq!(
            e.data.as_ref().map(|d| d["name"].clone()),
            Some(json!("TokenNotFound"))
        ),
        other => panic!("{other}"),
    }
    let keys: KeyList = admin.call("keys.list", Value::Null).expect("lists");
    assert_eq!(keys.keys.len(), 1);

    let started = Instant::now();
    admin
        .call::<_, Value>("virtual.plug", json!({"key": a}))
        .expect("plugged back");
    let added = next_matching(
        &mut watcher,
        |e| matches!(e, Event::KeyAdded { key } if key.id == a),
    );
    assert!(added, "key_added announced");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "usable within a second"
    );
    // The same key, with its tokens, after the replug.
    let code: Code = admin
        .call("codes.get", json!({"token": "A1", "at": 59}))
        .expect("reads again");
    assert_eq!(
        code.code,
        reference_totp_b32("sha1", 6, 30, ta.secret.expose(), 59)
    );

    let (reads, failures) = reader.finish();
    assert!(reads > 0);
    assert_eq!(failures.len(), 0, "key B served throughout: {failures:?}");
}

fn next_matching(client: &mut oathkey_protocol::Client, pred: impl Fn(&Event) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(e)) = client.next_event(Duration::from_millis(200))
            && pred(&e)
        {
            return true;
        }
    }
    false
}

/// Waits until the daemon lists `n` keys; returns the list.
fn wait_keys(d: &Daemon, n: usize) -> KeyList {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list: KeyList = d.client().call("keys.list", Value::Null).expect("lists");
        if list.keys.len() == n {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} keys, have {:?}",
            list.keys
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon exits 0 within 10 s and removes its socket and lock file.
fn assert_stops_cleanly(d: &mut Daemon) {
    let status = d.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(!d.socket.exists(), "socket removed");
    assert!(
        !d.socket.with_extension("sock.lock").exists(),
        "lock file removed"
    );
}

#[test]
fn a_udp_key_comes_and_goes_with_its_emulator() {
    let addr = UdpKey::free_addr();
    let emulator = UdpKey::start(&addr, &["--serial", "00C0FFEE"]);
    let d = Daemon::start(&["--udp-key", &addr]);
    let mut watcher = d.client();
    watcher
        .call::<_, Value>("events.subscribe", Value::Null)
        .expect("subscribed");
    let list = wait_keys(&d, 1);
    assert_eq!(list.keys[0].id, "00c0ffee");
    assert_eq!(list.keys[0].source, oathkey_protocol::types::KeySource::Udp);
    let t = create(&d, None, "udp@contoso.com", "U1");
    let code: Code = d
        .client()
        .call("codes.get", json!({"token": "U1", "at": 59}))
        .expect("code");
    assert_eq!(
        code.code,
        reference_totp_b32("sha1", 6, 30, t.secret.expose(), 59)
    );

    drop(emulator);
    assert!(
        next_matching(&mut watcher, |e| matches!(e, Event::KeyRemoved { .. })),
        "removal noticed"
    );
    wait_keys(&d, 0);
    // Back on the same port: attached again (its state was in memory, so no tokens).
    let _emulator = UdpKey::start(&addr, &["--serial", "00C0FFEE"]);
    wait_keys(&d, 1);
}

#[test]
fn readers_can_read_and_nothing_else() {
    let d = Daemon::start_with_config(Some("socket_mode = \"0666\"\n"), &["--emulate", "1"]);
    let t = create(&d, None, "alice@contoso.com", "0012345");

    let hello = cli_as_nobody(&d, &["keys", "--json"]);
    assert_exit(&hello, 0);
    assert_exit(&cli_as_nobody(&d, &["tokens"]), 0);
    let code = cli_as_nobody(&d, &["code", "0012345"]);
    assert_exit(&code, 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    // Allow a rollover between the two computations.
    let got = stdout(&code).trim().to_string();
    let candidates: Vec<String> = [now.saturating_sub(2), now, now + 2]
        .iter()
        .map(|tt| reference_totp_b32("sha1", 6, 30, t.secret.expose(), *tt))
        .collect();
    assert!(candidates.contains(&got), "{got} not in {candidates:?}");

    // Every admin call is refused with exit 6, and the key is unchanged.
    for args in [
        vec!["token", "new", "--user", "mallory@contoso.com"],
        vec!["token", "delete", "0012345"],
        vec!["config", "--key-press", "on"],
        vec!["code", "0012345", "--at", "2000000000"],
    ] {
        let out = cli_as_nobody(&d, &args);
        assert_exit(&out, 6);
        assert!(stderr(&out).contains("admin"), "{args:?}: {}", stderr(&out));
    }
    let tokens: Vec<Value> = d.client().call("tokens.list", Value::Null).expect("lists");
    assert_eq!(tokens.len(), 1);
    let settings: Value = d
        .client()
        .call("keys.get_config", Value::Null)
        .expect("reads");
    assert_eq!(settings["key_press"], false);

    if is_root() {
        // The role the daemon saw, from SO_PEERCRED.
        let out = cli_as_nobody(&d, &["keys"]);
        assert_exit(&out, 0);
        let log = d.log_text();
        assert!(
            log.contains("uid=Some(65534)") && log.contains("role=Reader"),
            "{log}"
        );
    }
}

#[test]
fn bad_input_never_stops_the_daemon() {
    let d = Daemon::start_with_config(Some("stalled_line_timeout_s = 1\n"), &["--emulate", "1"]);
    // A well-behaved client that keeps a connection open throughout.
    let mut steady = d.client();

    let cases: Vec<(&[u8], i64)> = vec![
        (b"{this is not json}\n", -32700),
        (b"\"a string\"\n", -32600),
        (b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"hello\"}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no.such.method\"}\n", -32601),
        (b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"codes.get\",\"params\":{\"at\":\"soon\"}}\n", -32602),
        (b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"keys.info\",\"params\":{\"key\":7}}\n", -32602),
        (b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"hello\",\"params\":{\"x\":1}}\n", -32602),
        (b"\xff\xfe\x00garbage\n", -32700),
    ];
    for (input, code) in cases {
        let mut raw = Raw::connect(&d.socket);
        raw.send(input);
        let answer = raw.answer();
        assert_eq!(
            answer["error"]["code"],
            code,
            "{}: {answer}",
            String::from_utf8_lossy(input)
        );
        // The same connection still works after an error.
        raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"hello\"}\n");
        assert_eq!(raw.answer()["id"], 9);
        assert_serves(&d);
    }

    // A batch with a bad member: good members answered, the bad one gets its error.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\"},42,{\"jsonrpc\":\"2.0\",\"method\":\"hello\"}]\n");
    let batch = raw.answer();
    let items = batch.as_array().expect("a batch answer");
    assert_eq!(items.len(), 2, "the notification gets no answer: {batch}");

    // An oversized line: an error, then the connection is closed.
    let mut raw = Raw::connect(&d.socket);
    let huge = vec![b'x'; 70 * 1024];
    raw.send(&huge);
    assert_eq!(raw.answer()["error"]["data"]["name"], "RequestTooLarge");
    assert!(raw.closed());
    assert_serves(&d);

    // A client that stalls mid-line is disconnected after the configured second.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"meth");
    let started = Instant::now();
    assert!(raw.closed(), "stalled client disconnected");
    assert!(
        started.elapsed() >= Duration::from_millis(900)
            && started.elapsed() < Duration::from_secs(5)
    );

    // Clients that connect and vanish, or send half a request and vanish.
    for _ in 0..20 {
        let mut raw = Raw::connect(&d.socket);
        raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hel");
        drop(raw);
        drop(Raw::connect(&d.socket));
    }
    // The steady client was served all along.
    let hello: oathkey_protocol::types::Hello = steady
        .call("hello", Value::Null)
        .expect("steady client served");
    assert_eq!(hello.role, Role::Admin);
    let log = d.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn sigterm_drains_and_removes_the_socket_and_sighup_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("reload.toml");
    std::fs::write(&config, "socket_mode = \"0666\"\n").expect("written");
    let config_arg = config.to_string_lossy().to_string();
    let mut d = Daemon::start(&["--emulate", "1", "--config", &config_arg]);

    if is_root() {
        let before = cli_as_nobody(&d, &["token", "new", "--user", "x@y.z"]);
        assert_exit(&before, 6);
        std::fs::write(
            &config,
            "socket_mode = \"0666\"\nadmin_users = [\"65534\"]\n",
        )
        .expect("written");
        d.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let after = cli_as_nobody(&d, &["token", "new", "--user", "x@y.z"]);
            if after.status.code() == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "reload did not make uid 65534 an admin: {}",
                stderr(&after)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        d.signal("HUP");
    }
    // A broken config on reload keeps the old one.
    std::fs::write(&config, "no_such_setting = 1\n").expect("written");
    d.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_serves(&d);
    assert!(
        d.log_text().contains("keeping the old configuration"),
        "{}",
        d.log_text()
    );

    // SIGTERM: exit 0, socket and lock removed.
    d.signal("TERM");
    assert_stops_cleanly(&mut d);
}

#[test]
fn a_second_daemon_refuses_the_same_socket() {
    let d = Daemon::start(&["--emulate", "1"]);
    let out = Command::new(bin("oathkeyd"))
        .args(["--user", "--no-hid", "--socket"])
        .arg(&d.socket)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("another oathkeyd is already serving"), "{err}");
    assert_serves(&d);
}

#[test]
fn unknown_config_fields_stop_the_start_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "emulate = 1\nadmin_user = [\"alice\"]\n").expect("written");
    let out = Command::new(bin("oathkeyd"))
        .args(["--user", "--no-hid", "--config"])
        .arg(&config)
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("line 2") && err.contains("admin_user"),
        "{err}"
    );
}

#[test]
fn a_touch_wait_ends_when_its_client_goes_away() {
    let d = Daemon::start(&["--emulate", "1", "--emulate-touch", "button"]);
    let mut admin = d.client();
    // Creating a touch token needs touches itself: press the button as a user would.
    let presser = {
        let socket = d.socket.clone();
        std::thread::spawn(move || {
            let mut c = oathkey_protocol::Client::connect(&socket).expect("connects");
            let mut pressed = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while pressed < 2 && Instant::now() < deadline {
                if c.call::<_, bool>("virtual.press", Value::Null)
                    .unwrap_or(false)
                {
                    pressed += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            pressed
        })
    };
    let _: CreatedToken = admin
        .call(
            "tokens.create",
            json!({"account": "t@contoso.com", "serial": "T1", "touch": true}),
        )
        .expect("created with two touches");
    assert_eq!(presser.join().expect("presser"), 2);

    // A CLI asks for a code and is killed while the key waits for the touch.
    let mut child = Command::new(bin("oathkey"))
        .args(["code", "T1"])
        .env("OATHKEY_SOCKET", &d.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut prompt = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut prompt)
        .expect("prompt");
    assert!(prompt.contains("Touch your key"), "{prompt}");
    child.kill().expect("killed");
    child.wait().expect("reaped");
    // The daemon cancels: soon nothing waits for a touch any more (a press finds nothing).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let waiting: bool = admin.call("virtual.press", Value::Null).expect("press");
        if !waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the key still waits for the vanished client"
        );
    }
    // And the key serves the next request at once.
    let list: Vec<Value> = admin.call("tokens.list", Value::Null).expect("lists");
    assert_eq!(list.len(), 1);
}

#[test]
fn claims_end_with_the_connection_and_events_tell_of_touches() {
    let d = Daemon::start(&["--emulate", "1"]);
    let id = d.key_id();
    let mut claims = d.client();
    claims
        .call::<_, Value>("events.subscribe", Value::Null)
        .expect("subscribed");
    let mut holder = d.client();
    holder
        .call::<_, Value>("keys.claim", Value::Null)
        .expect("claimed");
    let out = d.cli(&["token", "new", "--user", "x@contoso.com"]);
    assert_exit(&out, 7);
    assert!(stderr(&out).contains("claimed"), "{}", stderr(&out));
    // Reads are not blocked by a claim.
    assert_exit(&d.cli(&["tokens"]), 0);
    // The holder itself may work.
    let _: CreatedToken = holder
        .call(
            "tokens.create",
            json!({"account": "h@contoso.com", "serial": "H1"}),
        )
        .expect("ok");
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = d.cli(&["token", "new", "--user", "x@contoso.com"]);
        if out.status.code() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "claim not released: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A claim that ends by an explicit release.
    let mut other = d.client();
    other
        .call::<_, Value>("keys.claim", Value::Null)
        .expect("claimed");
    other
        .call::<_, Value>("keys.release", Value::Null)
        .expect("released");
    let mut changes = Vec::new();
    while let Ok(Some(e)) = claims.next_event(Duration::from_millis(300)) {
        if let Event::ClaimChanged { key, claimed } = e {
            assert_eq!(key, id);
            changes.push(claimed);
        }
    }
    assert_eq!(changes, [true, false, true, false], "claim_changed events");

    // touch_needed and touch_done around a token that needs a touch.
    let mut watcher = d.client();
    watcher
        .call::<_, Value>("events.subscribe", Value::Null)
        .expect("subscribed");
    let _: CreatedToken = d
        .client()
        .call(
            "tokens.create",
            json!({"account": "t@contoso.com", "serial": "T9", "touch": true}),
        )
        .expect("created");
    let _: Code = d
        .client()
        .call("codes.get", json!({"token": "T9"}))
        .expect("code");
    let mut seen = Vec::new();
    while let Ok(Some(e)) = watcher.next_event(Duration::from_millis(300)) {
        seen.push(e);
    }
    let needed = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::TouchNeeded {
                    operation: Operation::Code,
                    ..
                }
            )
        })
        .count();
    let done = seen
        .iter()
        .filter(|e| matches!(e, Event::TouchDone { .. }))
        .count();
    assert!(needed >= 1 && done >= 2, "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::TokensChanged { .. })),
        "{seen:?}"
    );
}

#[test]
fn a_touch_not_given_in_time_is_exit_5_and_the_key_serves_on() {
    let (d, mut key, secret) = daemon_with_a_touch_token("", 1500);

    // Nobody presses: the key gives up, the CLI says so and exits 5.
    let timed_out = d.cli(&["code", "T1", "--at", "59"]);
    assert_exit(&timed_out, 5);
    let err = stderr(&timed_out);
    assert!(err.contains("Touch your key"), "prompted first: {err}");
    assert!(err.contains("not touched in time"), "{err}");

    // The key is not stuck: pressed this time, the code is right.
    let (read, _err) = touch_read(&d);
    let code = key.press_until_done(read);
    assert_exit(&code, 0);
    assert_eq!(
        stdout(&code).trim(),
        reference_totp_b32("sha1", 6, 30, &secret, 59)
    );
}

/// A daemon with a button key (touch timeout `touch_ms`) holding touch token T1; returns the
/// daemon, the key and T1's secret.
fn daemon_with_a_touch_token(config: &str, touch_ms: u32) -> (Daemon, UdpKey, String) {
    let addr = UdpKey::free_addr();
    let timeout = touch_ms.to_string();
    let mut key = UdpKey::start(
        &addr,
        &[
            "--serial",
            "0070C4ED",
            "--touch",
            "button",
            "--touch-timeout",
            &timeout,
        ],
    );
    let d = Daemon::start_with_config(Some(config), &["--udp-key", &addr]);
    wait_keys(&d, 1);
    let new = d.spawn_cli(&[
        "token",
        "new",
        "--user",
        "t@contoso.com",
        "--serial",
        "T1",
        "--touch",
        "--json",
    ]);
    let created = key.press_until_done(new);
    assert_exit(&created, 0);
    let token: Value = serde_json::from_slice(&created.stdout).expect("json");
    let secret = token["secret"].as_str().expect("secret").to_string();
    (d, key, secret)
}

/// Starts `oathkey code T1 --at 59` and returns once it waits for the touch.
fn touch_read(d: &Daemon) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut read = d.spawn_cli(&["code", "T1", "--at", "59"]);
    let mut err = BufReader::new(read.stderr.take().expect("stderr"));
    wait_for_line(&mut err, "Touch your key");
    (read, err)
}

#[test]
fn sigint_lets_a_request_in_flight_finish_within_the_grace_time() {
    let (mut d, mut key, secret) = daemon_with_a_touch_token("shutdown_grace_s = 20\n", 20_000);
    let (read, _err) = touch_read(&d);
    d.signal("INT");
    // Shutting down: new connections are no longer taken, the waiting read is still served.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.socket.exists() && UnixStream::connect(&d.socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still taking connections: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = key.press_until_done(read);
    assert_exit(&code, 0);
    assert_eq!(
        stdout(&code).trim(),
        reference_totp_b32("sha1", 6, 30, &secret, 59)
    );
    assert_stops_cleanly(&mut d);
}

#[test]
fn sigterm_cancels_a_request_still_waiting_after_the_grace_time() {
    let (mut d, _key, _secret) = daemon_with_a_touch_token("shutdown_grace_s = 1\n", 20_000);
    let (read, mut err) = touch_read(&d);
    d.signal("TERM");
    // Nobody touches: after the grace time the read is cancelled with a clear message.
    let out = read.wait_with_output().expect("ends");
    let mut rest = String::new();
    err.read_to_string(&mut rest).expect("stderr");
    assert_exit(&out, 5);
    assert!(rest.contains("shutting down"), "{rest}");
    assert_stops_cleanly(&mut d);
}

#[test]
fn a_subscription_with_params_it_does_not_take_is_refused() {
    let d = Daemon::start(&["--emulate", "1"]);
    let mut c = d.client();
    let refused = c
        .call::<_, Value>("events.subscribe", json!({"topics": ["key_added"]}))
        .expect_err("unknown params");
    let ClientError::Rpc(e) = refused else {
        panic!("not a JSON-RPC error: {refused}");
    };
    assert_eq!(e.code, oathkey_protocol::ErrorCode::InvalidParams.code());
    // Not subscribed: a token change brings this client nothing.
    create(&d, None, "quiet@contoso.com", "Q1");
    assert!(
        c.next_event(Duration::from_millis(500))
            .expect("connection fine")
            .is_none()
    );
    // Valid params subscribe it.
    let _: Value = c.call("events.subscribe", json!({})).expect("subscribed");
    create(&d, None, "loud@contoso.com", "Q2");
    assert!(
        c.next_event(Duration::from_secs(5))
            .expect("connection fine")
            .is_some()
    );
}
