//! Bad input against a real `oathkeyd`, beyond the cases of `process.rs`: every malformed
//! envelope, hostile ids and nesting, batches of every shape, lines at and past the size limit,
//! truncated lines, broken UTF-8 and NUL bytes, params of the wrong type or range, unknown keys
//! and tokens for every method that takes one, and the per-connection request limit. Each gets
//! the typed error of docs/protocol.md (or, where documented, no answer at all), the daemon
//! never panics, and a client reading codes the whole time is served right throughout.
//!
//! One named case per kind of bad input, each against a daemon of its own with the steady
//! client and garbage from other clients running all through it ([`Abuse`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oathkey_protocol::types::{Code, CreatedToken};
use oathkey_testkit::{Daemon, Raw, Steady, reference_totp_b32};
use serde_json::{Value, json};

/// The error name and code of an answer, and its id.
fn error_of(a: &Value) -> (&str, i64, &Value) {
    (
        a["error"]["data"]["name"].as_str().unwrap_or("(no error)"),
        a["error"]["code"].as_i64().unwrap_or(0),
        &a["id"],
    )
}

const CODES: [(&str, i64); 8] = [
    ("ParseError", -32700),
    ("InvalidRequest", -32600),
    ("MethodNotFound", -32601),
    ("InvalidParams", -32602),
    ("KeyNotFound", -32001),
    ("TokenNotFound", -32003),
    ("Busy", -32007),
    ("RequestTooLarge", -32015),
];

/// Sends `input` on a fresh connection and checks the one answer: error `name` (with its
/// documented code) and `id`; the connection keeps working afterwards.
#[track_caller]
fn expect_error(d: &Daemon, input: &[u8], name: &str, id: Value) {
    let mut raw = Raw::connect(&d.socket);
    raw.send(input);
    let a = raw.answer();
    let shown = String::from_utf8_lossy(&input[..input.len().min(120)]).into_owned();
    let code = CODES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .expect("a documented error");
    assert_eq!(error_of(&a), (name, code, &id), "{shown}: {a}");
    assert!(a.get("result").is_none(), "{shown}: result and error: {a}");
    assert!(
        !a["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{shown}: no message: {a}"
    );
    raw.still_answers();
}

fn req(id: impl Into<Value>, method: &str, params: Value) -> Vec<u8> {
    let mut line = json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// Garbage from other clients the whole time: lines of random bytes, an endless line, deep
/// nesting, on fresh connections. Every answer must be a typed error; nothing else may happen.
struct Noise {
    stop: Arc<AtomicBool>,
    /// Rounds of garbage sent so far.
    rounds: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Noise {
    fn start(d: &Daemon) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let socket = d.socket.clone();
        let thread = {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let (mut rounds, mut bad) = (0usize, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let mut input = Vec::new();
                    match rounds % 3 {
                        0 => {
                            for _ in 0..20 {
                                let len = (next() % 300) as usize;
                                input.extend(
                                    (0..len)
                                        .map(|_| (next() % 256) as u8)
                                        .filter(|b| *b != b'\n'),
                                );
                                input.push(b'\n');
                            }
                        }
                        1 => input.extend(std::iter::repeat_n(b'{', 70_000)),
                        _ => {
                            input.extend(std::iter::repeat_n(b'[', 50_000));
                            input.push(b'\n');
                        }
                    }
                    let Ok(mut stream) = UnixStream::connect(&socket) else {
                        bad.push("connect failed".into());
                        break;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = stream.write_all(&input);
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let mut answers = String::new();
                    let _ = stream.read_to_string(&mut answers);
                    for line in answers.lines() {
                        let name = serde_json::from_str::<Value>(line)
                            .ok()
                            .and_then(|v| v["error"]["data"]["name"].as_str().map(str::to_owned));
                        match name.as_deref() {
                            Some("ParseError" | "InvalidRequest" | "RequestTooLarge") => {}
                            _ => bad.push(line.to_string()),
                        }
                    }
                    rounds += 1;
                    done.store(rounds, Ordering::Relaxed);
                }
                (rounds, bad)
            })
        };
        Self {
            stop,
            rounds: done,
            thread,
        }
    }

    /// Stops the noise once it has sent at least one round (a quick case may end before the
    /// first); returns the rounds sent and the answers that were not typed errors.
    fn finish(self) -> (usize, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.rounds.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("noise")
    }
}

/// One case's daemon (at most 4 requests at once per client, a key paced at 3 ms per report)
/// with token 0012345, a steady client reading its codes the whole time, and noise from other
/// clients.
struct Abuse {
    d: Daemon,
    token: CreatedToken,
    key: String,
    steady: Steady,
    noise: Noise,
    served_before: u64,
}

impl Abuse {
    fn start() -> Self {
        let d = Daemon::start_with_config(
            Some("max_requests_per_client = 4\n"),
            &["--emulate", "1", "--emulate-report-us", "3000"],
        );
        let token: CreatedToken = d
            .client()
            .call(
                "tokens.create",
                json!({"account": "alice@contoso.com", "serial": "0012345"}),
            )
            .expect("created");
        let key = d.key_id();
        // A client that reads codes the whole time and checks each one.
        let steady = {
            let mut client = d.client();
            let (serial, secret) = (token.serial.clone(), token.secret.expose().to_string());
            let mut t = 1_500_000_000u64;
            Steady::start(Duration::from_millis(5), move || {
                t += 30;
                let code: Result<Code, _> =
                    client.call("codes.get", json!({"token": serial, "at": t}));
                match code {
                    Ok(c) if c.code == reference_totp_b32("sha1", 6, 30, &secret, t) => Ok(()),
                    other => Err(format!("at {t}: {other:?}")),
                }
            })
        };
        let noise = Noise::start(&d);
        let served_before = steady.reads();
        Self {
            d,
            token,
            key,
            steady,
            noise,
            served_before,
        }
    }

    /// The steady client was served right all along (and once more after the case, the noise
    /// still running), the noise got only typed errors, the daemon is alive and never
    /// panicked.
    fn finish(self) {
        let Self {
            mut d,
            steady,
            noise,
            served_before,
            ..
        } = self;
        // A read after the case, the noise still going: the daemon serves on (and what the
        // case sent did not touch the steady client's token).
        assert!(
            steady.wait_for_more_than(steady.reads(), Duration::from_secs(20)),
            "the steady client was served after the case"
        );
        let (rounds, bad) = noise.finish();
        assert!(rounds > 0, "the noise ran");
        assert!(
            bad.is_empty(),
            "answers to garbage that are not typed errors: {bad:?}"
        );
        let (served, failures) = steady.finish();
        let wrong = failures.len();
        assert_eq!(
            wrong, 0,
            "{wrong} of {served} steady reads failed or were wrong: {failures:?}"
        );
        assert!(
            served > served_before,
            "the steady client was served during the abuse"
        );
        assert!(d.try_wait().is_none(), "oathkeyd died:\n{}", d.log_text());
        let log = d.log_text();
        assert!(!log.contains("panicked"), "{log}");
        eprintln!(
            "bad input: {rounds} rounds of garbage from other clients; the steady client read {served} codes meanwhile, all right"
        );
    }
}

/// Envelopes: missing or mistyped members, repeated members, ids of every wrong type and
/// size, non-requests, a byte order mark.
#[test]
fn malformed_envelopes() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Envelopes.
    let null = Value::Null;
    for (input, name, id) in [
        (
            &br#"{"jsonrpc":"2.0","id":1}"#[..],
            "InvalidRequest",
            json!(1),
        ),
        (
            br#"{"jsonrpc":"2.0","id":2,"method":7}"#,
            "InvalidRequest",
            json!(2),
        ),
        (
            br#"{"jsonrpc":"2.0","id":3,"method":null}"#,
            "InvalidRequest",
            json!(3),
        ),
        (br#"{"id":4,"method":"hello"}"#, "InvalidRequest", json!(4)),
        // A repeated member means two things at once (a filter on the first `method` would
        // see `hello`); refused, and the token is still there (checked below).
        (
            br#"{"jsonrpc":"2.0","id":41,"method":"hello","method":"tokens.delete","params":{"token":"0012345"}}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":42,"method":"codes.get","params":{"token":"x","token":"0012345"}}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":2.0,"id":5,"method":"hello"}"#,
            "InvalidRequest",
            json!(5),
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":[1],"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":true,"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.5,"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        // Ids that do not fit a signed 64-bit integer.
        (
            br#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":-9223372036854775809,"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":99999999999999999999999999999,"method":"hello"}"#,
            "InvalidRequest",
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1e400,"method":"hello"}"#,
            "ParseError",
            null.clone(),
        ),
        (b"[1, 2, 3]", "InvalidRequest", null.clone()),
        (b"[]", "InvalidRequest", null.clone()),
        (b"null", "InvalidRequest", null.clone()),
        (
            b"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"hello\"}",
            "ParseError",
            null.clone(),
        ),
    ] {
        let mut line = input.to_vec();
        line.push(b'\n');
        match input {
            b"[1, 2, 3]" => {
                // A batch of non-requests: one error per item, in one array.
                let mut raw = Raw::connect(&d.socket);
                raw.send(&line);
                let a = raw.answer();
                let items = a.as_array().expect("a batch answer");
                assert_eq!(items.len(), 3, "{a}");
                for item in items {
                    assert_eq!(
                        error_of(item),
                        ("InvalidRequest", -32600, &Value::Null),
                        "{a}"
                    );
                }
            }
            _ => expect_error(d, &line, name, id),
        }
    }
    abuse.finish();
}

/// The extreme ids that fit, and `"id": null`.
#[test]
fn ids_that_fit_come_back_exactly() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // The extreme ids that do fit come back exactly, and a 60 KB string id too.
    for id in [
        json!(i64::MAX),
        json!(i64::MIN),
        json!(0),
        json!(""),
        json!("x".repeat(60_000)),
    ] {
        let mut raw = Raw::connect(&d.socket);
        raw.send(&req(id.clone(), "hello", Value::Null));
        let a = raw.answer();
        assert_eq!(a["id"], id);
        assert_eq!(a["result"]["protocol"], 1);
    }
    // `"id": null` is a request, not a notification: it gets an answer with id null.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"hello\"}\n");
    let a = raw.answer();
    assert_eq!(
        (a["id"].clone(), a["result"]["protocol"].clone()),
        (Value::Null, json!(1)),
        "{a}"
    );
    abuse.finish();
}

/// Nesting far past any sane depth.
#[test]
fn nesting_far_past_any_sane_depth() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Nesting far past any sane depth: refused as JSON, never a stack overflow.
    let deep = |inner: &str| {
        let mut s = String::new();
        s.push_str(&"[".repeat(20_000));
        s.push_str(inner);
        s.push_str(&"]".repeat(20_000));
        s
    };
    expect_error(
        d,
        format!("{}\n", deep("")).as_bytes(),
        "ParseError",
        Value::Null,
    );
    expect_error(
        d,
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"hello\",\"params\":{}}}\n",
            deep("1")
        )
        .as_bytes(),
        "ParseError",
        Value::Null,
    );
    expect_error(
        d,
        format!("{{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"codes.get\",\"params\":{{\"token\":{}}}}}\n", "[".repeat(60) + &"]".repeat(60)).as_bytes(),
        "InvalidParams",
        json!(8),
    );
    let mut objects = String::new();
    for _ in 0..10_000 {
        objects.push_str("{\"a\":");
    }
    objects.push('1');
    objects.push_str(&"}".repeat(10_000));
    expect_error(
        d,
        format!("{objects}\n").as_bytes(),
        "ParseError",
        Value::Null,
    );
    abuse.finish();
}

/// Params of the wrong type or range, for every method.
#[test]
fn params_of_the_wrong_type_or_range() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Params of the wrong type or range.
    for (line, name) in [
        (req(10, "codes.get", json!("0012345")), "InvalidParams"),
        (req(10, "codes.get", json!(12345)), "InvalidParams"),
        (req(10, "codes.get", json!(true)), "InvalidParams"),
        (req(10, "codes.get", json!(["0012345"])), "InvalidParams"),
        (req(10, "codes.get", json!({"token": 12345})), "InvalidParams"),
        (req(10, "codes.get", json!({"token": "0012345", "at": -1})), "InvalidParams"),
        (req(10, "codes.get", json!({"token": "0012345", "at": 1.5})), "InvalidParams"),
        (req(10, "codes.get", json!({"token": "0012345", "at": "now"})), "InvalidParams"),
        (req(10, "codes.get", json!({"token": "0012345", "at": 18_446_744_073_709_551_615u64})), "InvalidParams"),
        (req(10, "codes.get", json!({"token": "0012345", "at": 18_446_744_073_709_551_600u64})), "InvalidParams"),
        (req(10, "codes.all", json!({"at": 18_446_744_073_709_551_615u64})), "InvalidParams"),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"codes.get\",\"params\":{\"at\":18446744073709551616}}\n".to_vec(),
            "InvalidParams",
        ),
        (req(10, "codes.all", json!({"include_touch": "yes"})), "InvalidParams"),
        (req(10, "keys.list", json!("all")), "InvalidParams"),
        (req(10, "keys.list", json!([1])), "InvalidParams"),
        (req(10, "hello", json!(0)), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "digits": 7})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "digits": 300})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "period": 0})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "period": 86_401})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "counter": -1})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "kind": "other"})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "algorithm": "md5"})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x@y.z", "serial": "a:b"})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "bad\u{7}account"})), "InvalidParams"),
        (req(10, "tokens.create", json!({"account": "x".repeat(100)})), "InvalidParams"),
        (req(10, "tokens.create", json!({})), "InvalidParams"),
        (req(10, "keys.set_config", json!({"keyboard": false, "u2f": false})), "InvalidParams"),
        (req(10, "keys.set_config", json!({"key_press": "on"})), "InvalidParams"),
        (req(10, "seeds.purge", json!({"exported": false})), "InvalidParams"),
        (req(10, "seeds.purge", json!({})), "InvalidParams"),
        (req(10, "seeds.list", json!({"serials": "0012345"})), "InvalidParams"),
        (req(10, "seeds.mark_exported", json!({"ids": [1, 2], "format": "x"})), "InvalidParams"),
        (req(10, "virtual.plug", Value::Null), "InvalidParams"),
        (req(10, "keys.release", Value::Null), "InvalidParams"),
    ] {
        let id = serde_json::from_slice::<Value>(&line).map(|v| v["id"].clone()).unwrap_or(json!(10));
        expect_error(d, &line, name, id);
    }
    abuse.finish();
}

/// Unknown keys and tokens for every method that takes them, and unknown methods.
#[test]
fn unknown_keys_tokens_and_methods() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    let key = &abuse.key;
    // Unknown keys and tokens, for every method that takes them.
    for method in [
        "keys.info",
        "keys.wink",
        "keys.get_config",
        "keys.claim",
        "keys.release",
        "tokens.list",
        "codes.all",
        "virtual.unplug",
        "virtual.press",
        "virtual.plug",
    ] {
        expect_error(
            d,
            &req(11, method, json!({"key": "ffffffff"})),
            "KeyNotFound",
            json!(11),
        );
    }
    expect_error(
        d,
        &req(
            12,
            "keys.set_config",
            json!({"key": "ffffffff", "key_press": true}),
        ),
        "KeyNotFound",
        json!(12),
    );
    expect_error(
        d,
        &req(
            12,
            "tokens.create",
            json!({"key": "ffffffff", "account": "x@y.z"}),
        ),
        "KeyNotFound",
        json!(12),
    );
    expect_error(
        d,
        &req(
            12,
            "codes.get",
            json!({"key": "ffffffff", "token": "0012345"}),
        ),
        "KeyNotFound",
        json!(12),
    );
    expect_error(
        d,
        &req(
            12,
            "tokens.delete",
            json!({"key": "ffffffff", "token": "0012345"}),
        ),
        "KeyNotFound",
        json!(12),
    );
    for token in [
        "nobody",
        "0012345 ",
        "0012",
        "",
        "\u{0}",
        "0012345\u{0}",
        "\u{202e}0012345",
    ] {
        expect_error(
            d,
            &req(13, "codes.get", json!({"token": token})),
            "TokenNotFound",
            json!(13),
        );
        expect_error(
            d,
            &req(13, "tokens.delete", json!({"token": token})),
            "TokenNotFound",
            json!(13),
        );
        expect_error(
            d,
            &req(13, "codes.get", json!({"key": key, "token": token})),
            "TokenNotFound",
            json!(13),
        );
    }
    expect_error(
        d,
        &req(14, "keys.info", json!({"key": "\u{0}"})),
        "KeyNotFound",
        json!(14),
    );
    expect_error(
        d,
        &req(14, "hel\u{0}lo", Value::Null),
        "MethodNotFound",
        json!(14),
    );
    expect_error(d, &req(14, "", Value::Null), "MethodNotFound", json!(14));
    expect_error(
        d,
        &req(14, &"m".repeat(10_000), Value::Null),
        "MethodNotFound",
        json!(14),
    );
    abuse.finish();
}

/// Bytes that are not text.
#[test]
fn bytes_that_are_not_text() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Bytes that are not text: raw NULs, broken UTF-8 inside a string, overlong forms,
    // surrogates, stray continuation bytes. ParseError, and the connection stays usable.
    for input in [
        &b"\0\0\0\0\n"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"hel\0lo\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"hel\xfflo\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"\xc0\xafhello\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"\xed\xa0\x80\"}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"hello\",\"params\":{\"token\":\"\x80\"}}\n",
        b"{\"jsonrpc\":\"2.0\",\"id\":15,\"method\":\"hello\"\xf8\x88\x80\x80\x80}\n",
    ] {
        expect_error(d, input, "ParseError", Value::Null);
    }
    abuse.finish();
}

/// Framing: blank lines, CRLF, several requests in one write.
#[test]
fn framing_blank_lines_crlf_and_pipelining() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Framing: blank lines are ignored, CRLF is accepted, several requests in one write are
    // each answered, and the answer to a line cut by a NUL is still one error.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"\n\r\n  \n\t\n{\"jsonrpc\":\"2.0\",\"id\":16,\"method\":\"hello\"}\r\n");
    assert_eq!(raw.answer()["id"], 16);
    raw.send(
        &[
            req(17, "hello", Value::Null),
            req(18, "keys.list", Value::Null),
        ]
        .concat(),
    );
    let mut ids = [raw.answer()["id"].clone(), raw.answer()["id"].clone()];
    ids.sort_by_key(|v| v.as_i64());
    assert_eq!(ids, [json!(17), json!(18)]);
    abuse.finish();
}

/// Batches of every shape.
#[test]
fn batches_nested_notifications_mixed_and_big() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    let token = &abuse.token;
    // Batches: nested, all notifications (no answer at all), mixed, and big.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\"}]]\n");
    let a = raw.answer();
    assert_eq!(a.as_array().map(Vec::len), Some(1), "{a}");
    assert_eq!(
        error_of(&a[0]),
        ("InvalidRequest", -32600, &Value::Null),
        "{a}"
    );
    raw.send(b"[{\"jsonrpc\":\"2.0\",\"method\":\"hello\"},{\"jsonrpc\":\"2.0\",\"method\":\"keys.wink\"},{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}]\n");
    raw.send(&req(19, "hello", Value::Null));
    assert_eq!(
        raw.answer()["id"],
        19,
        "a batch of notifications gets no answer"
    );
    let mixed = format!(
        "[{},{},{},{},{}]\n",
        json!({"jsonrpc": "2.0", "id": "a", "method": "hello"}),
        json!({"jsonrpc": "2.0", "id": "b", "method": "no.such"}),
        json!({"jsonrpc": "2.0", "id": "c", "method": "codes.get", "params": {"token": "nobody"}}),
        json!({"jsonrpc": "1.0", "id": "d", "method": "hello"}),
        json!({"jsonrpc": "2.0", "id": "e", "method": "codes.get", "params": {"token": "0012345", "at": 59}}),
    );
    raw.send(mixed.as_bytes());
    let a = raw.answer();
    let items = a.as_array().expect("a batch answer");
    let names: Vec<(&Value, &str)> = items
        .iter()
        .map(|i| {
            (
                &i["id"],
                i["error"]["data"]["name"].as_str().unwrap_or("ok"),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (&json!("a"), "ok"),
            (&json!("b"), "MethodNotFound"),
            (&json!("c"), "TokenNotFound"),
            (&json!("d"), "InvalidRequest"),
            (&json!("e"), "ok")
        ],
        "{a}"
    );
    assert_eq!(
        items[4]["result"]["code"],
        json!(reference_totp_b32("sha1", 6, 30, token.secret.expose(), 59))
    );
    let big: Vec<String> = (0..1000)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "hello"}).to_string())
        .collect();
    let big = format!("[{}]\n", big.join(","));
    assert!(big.len() < 65_536);
    raw.send(big.as_bytes());
    let a = raw.answer();
    let items = a.as_array().expect("a batch answer");
    assert_eq!(items.len(), 1000);
    assert!(
        items
            .iter()
            .enumerate()
            .all(|(i, item)| item["id"] == json!(i) && item["result"]["protocol"] == 1)
    );
    raw.still_answers();
    abuse.finish();
}

/// Lines at and past the size limit, and a line without end.
#[test]
fn lines_at_and_past_the_size_limit() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // Line size: exactly 64 KiB is a request; one byte more is RequestTooLarge, then the
    // daemon closes the connection, even when the newline comes right after.
    let mut exact = br#"{"jsonrpc":"2.0","id":20,"method":"hello"}"#.to_vec();
    exact.resize(65_536, b' ');
    exact.push(b'\n');
    let mut raw = Raw::connect(&d.socket);
    raw.send(&exact);
    assert_eq!(raw.answer()["id"], 20, "a line of exactly 64 KiB is served");
    raw.still_answers();
    let mut over = br#"{"jsonrpc":"2.0","id":21,"method":"hello"}"#.to_vec();
    over.resize(65_537, b' ');
    over.push(b'\n');
    over.extend_from_slice(&req(22, "hello", Value::Null));
    let mut raw = Raw::connect(&d.socket);
    raw.send(&over);
    let a = raw.answer();
    assert_eq!(
        error_of(&a),
        ("RequestTooLarge", -32015, &Value::Null),
        "{a}"
    );
    assert!(
        raw.closed(),
        "the connection is closed after RequestTooLarge"
    );
    // A line without end, sent in pieces: refused once past the limit, and the daemon stops
    // reading it (the writer meets a closed connection long before a megabyte).
    let mut raw = Raw::connect(&d.socket);
    let writer = {
        let mut w = raw.stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut sent = 0usize;
            while sent < 4 << 20 && w.write_all(&[b'x'; 4096]).is_ok() {
                sent += 4096;
            }
            sent
        })
    };
    let a = raw.answer();
    assert_eq!(
        error_of(&a),
        ("RequestTooLarge", -32015, &Value::Null),
        "{a}"
    );
    assert!(
        raw.closed(),
        "the connection is closed after RequestTooLarge"
    );
    let sent = writer.join().expect("writer");
    assert!(
        sent < 4 << 20,
        "the daemon kept reading an endless line ({sent} bytes)"
    );
    abuse.finish();
}

/// Input that ends mid-line or right after a request.
#[test]
fn truncated_lines_and_half_closed_connections() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    // A truncated line, then end of input: no answer, and the daemon closes the connection.
    let mut raw = Raw::connect(&d.socket);
    raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":23,\"method\":\"hel");
    raw.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    assert_eq!(
        raw.line(),
        None,
        "no answer to half a request, and the connection closes"
    );
    // A complete request, then end of input: answered (half-close, as socat does).
    let mut raw = Raw::connect(&d.socket);
    raw.send(&req(24, "codes.get", json!({"token": "0012345", "at": 59})));
    raw.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    assert_eq!(raw.answer()["id"], 24);
    assert_eq!(raw.line(), None);
    abuse.finish();
}

/// The per-connection request limit.
#[test]
fn too_many_requests_at_once_on_one_connection() {
    let abuse = Abuse::start();
    let d = &abuse.d;
    let token = &abuse.token;
    // Too many requests at once on one connection: the ones past the limit (4 here) get `Busy`
    // with their own ids at once, the others their codes; a batch past it one `Busy`, id null.
    let mut raw = Raw::connect(&d.socket);
    let mut pile = Vec::new();
    for i in 0..12u64 {
        pile.extend(req(
            100 + i,
            "codes.get",
            json!({"token": "0012345", "at": 1_000_000_000 + i * 30}),
        ));
    }
    pile.extend_from_slice(b"[{\"jsonrpc\":\"2.0\",\"id\":200,\"method\":\"hello\"}]\n");
    raw.send(&pile);
    let (mut busy, mut right, mut batch_busy) = (0, 0, 0);
    for _ in 0..13 {
        let a = raw.answer();
        match (a["id"].as_u64(), error_of(&a)) {
            (Some(id @ 100..=111), ("Busy", -32007, _)) => {
                assert!(id >= 104, "one of the first four was refused: {a}");
                busy += 1;
            }
            (Some(id @ 100..=111), ("(no error)", _, _)) => {
                let t = 1_000_000_000 + (id - 100) * 30;
                assert_eq!(
                    a["result"]["code"],
                    json!(reference_totp_b32("sha1", 6, 30, token.secret.expose(), t)),
                    "{a}"
                );
                right += 1;
            }
            (None, ("Busy", -32007, Value::Null)) => batch_busy += 1,
            _ => panic!("unexpected answer {a}"),
        }
    }
    assert!(
        right >= 4,
        "the first four were served ({right} right, {busy} busy)"
    );
    assert!(
        busy >= 1,
        "the limit refused some ({right} right, {busy} busy)"
    );
    assert_eq!(batch_busy, 1, "the batch past the limit was refused once");
    raw.still_answers();
    abuse.finish();
}
