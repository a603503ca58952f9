//! The daemon's JSON-RPC dispatcher (`oathkeyd::rpc::parse` and `oathkeyd::rpc::respond`, what
//! a connection runs for each line) with the service core and one virtual key behind it.
//!
//! Shared by `fuzz/fuzz_targets/rpc_dispatch.rs` and `daemon/tests/daemon/fuzz_replay.rs`.
//!
//! Input: lines of JSON-RPC, as a client writes them on one connection. Each input runs on a
//! fresh daemon (its own seed ledger, one in-memory virtual key that approves touches), first
//! from a reader's connection, then from an admin's. Lines run in order, so one input can
//! create a token and then read its code (and so can a batch).
//!
//! Properties: no panic; every request with an id gets exactly one answer with its id and
//! either a result or an error with a known code and name, never an internal error;
//! notifications get none; results decode as the documented types; a reader never receives a
//! secret nor runs an admin method; and answers survive encoding as a line and decoding.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use oathkey_emulator::{Config as VirtualConfig, TouchPolicy, VirtualKeyHandle};
use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, encode_line};
use oathkey_protocol::jsonrpc::{Request, Response};
use oathkey_protocol::types::{
    Code, CodeEntry, CreatedToken, Hello, KeyInfo, KeyList, Role, SeedInfo, SeedRecord, Settings,
    TokenInfo, method,
};
use oathkeyd::auth::{Authorizer, Caller};
use oathkeyd::keys::Registry;
use oathkeyd::keys::sources::attach_virtual;
use oathkeyd::ledger::Ledger;
use oathkeyd::rpc::{self, Parsed};
use oathkeyd::service::Service;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One runtime per process: building one per input would cost more than the input.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Where fresh daemons keep their ledgers: memory-backed when the system has it (the ledger
/// fsyncs every write).
fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// A daemon core with one virtual key, gone when dropped.
#[derive(Debug)]
pub struct Daemon {
    pub service: Arc<Service>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oathkey-fuzz-")
            .tempdir_in(scratch())
            .expect("a scratch directory");
        let ledger = Ledger::open(&dir.path().join("seeds.ledger")).expect("a ledger");
        let registry = Registry::new();
        let key = VirtualKeyHandle::new(VirtualConfig {
            touch: TouchPolicy::Approve,
            serial: Some(0x00C0_FFEE),
            ..VirtualConfig::default()
        });
        attach_virtual(&registry, key).expect("the virtual key attaches");
        let service = Arc::new(Service::new(
            registry,
            Authorizer::default(),
            Arc::new(ledger),
        ));
        Self { service, _dir: dir }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Stop the key actors (their threads end with the registry's handles).
        for entry in self.service.registry().list() {
            self.service.registry().remove(&entry.id, None);
        }
    }
}

/// What one input did, for the replay tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Answers with a result, per role (reader, admin).
    pub results: [usize; 2],
    /// Error codes answered, per role.
    pub errors: [Vec<ErrorCode>; 2],
}

/// Whether a JSON value holds a secret anywhere (a `secret` member with content).
fn holds_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            (k == "secret" && !matches!(v, Value::Null) && v != "") || holds_secret(v)
        }),
        Value::Array(items) => items.iter().any(holds_secret),
        _ => false,
    }
}

fn decodes<T: DeserializeOwned>(method: &str, v: &Value) {
    if let Err(e) = serde_json::from_value::<T>(v.clone()) {
        panic!("{method}: result does not decode as documented: {e}: {v}");
    }
}

/// Results decode as the protocol's types.
fn check_result(method: &str, v: &Value) {
    match method {
        method::HELLO => decodes::<Hello>(method, v),
        method::KEYS_LIST => decodes::<KeyList>(method, v),
        method::KEYS_INFO => decodes::<KeyInfo>(method, v),
        method::KEYS_GET_CONFIG | method::KEYS_SET_CONFIG => decodes::<Settings>(method, v),
        method::TOKENS_LIST => decodes::<Vec<TokenInfo>>(method, v),
        method::TOKENS_CREATE => decodes::<CreatedToken>(method, v),
        method::CODES_GET => {
            let code: Code = serde_json::from_value(v.clone()).expect("a code");
            assert_eq!(code.code.len(), usize::from(code.digits), "{v}");
            assert!(code.code.bytes().all(|b| b.is_ascii_digit()), "{v}");
        }
        method::CODES_ALL => decodes::<Vec<CodeEntry>>(method, v),
        method::SEEDS_LIST => decodes::<Vec<SeedInfo>>(method, v),
        method::SEEDS_EXPORT => decodes::<Vec<SeedRecord>>(method, v),
        _ => {}
    }
}

/// Methods only an admin may call.
const ADMIN_ONLY: [&str; 11] = [
    method::KEYS_SET_CONFIG,
    method::KEYS_CLAIM,
    method::TOKENS_CREATE,
    method::TOKENS_DELETE,
    method::SEEDS_LIST,
    method::SEEDS_EXPORT,
    method::SEEDS_MARK_EXPORTED,
    method::SEEDS_PURGE,
    method::VIRTUAL_UNPLUG,
    method::VIRTUAL_PLUG,
    method::VIRTUAL_PRESS,
];

/// Checks the answer to one request; returns the error code, if it is an error.
fn check_answer(
    req: &Request,
    resp: Option<Response>,
    role: Role,
) -> Option<Result<(), ErrorCode>> {
    let Some(id) = &req.id else {
        assert!(resp.is_none(), "a notification got an answer");
        return None;
    };
    let resp = resp.expect("a request with an id gets an answer");
    assert_eq!(&resp.id, id, "answer for another id");
    assert_eq!(resp.jsonrpc, "2.0");
    assert!(
        resp.result.is_some() != resp.error.is_some(),
        "an answer has exactly one of result and error: {resp:?}"
    );
    // The answer goes out as one line and comes back the same.
    let line = encode_line(&resp).expect("an answer encodes");
    let mut buffer = LineBuffer::new(oathkey_protocol::codec::MAX_ANSWER_LINE);
    buffer.extend(line.as_bytes());
    let text = buffer.next_line().expect("one line").expect("complete");
    let back: Response = serde_json::from_str(&text).expect("an answer decodes");
    assert_eq!((&back.jsonrpc, &back.id), (&resp.jsonrpc, &resp.id));
    // `"result": null` (methods with nothing to return) decodes as no result; what a client
    // gets from it is the same.
    assert_eq!(
        back.into_result(),
        resp.clone().into_result(),
        "answer changed in the round trip"
    );
    if role == Role::Reader {
        assert!(
            !holds_secret(&serde_json::to_value(&resp).expect("json")),
            "a reader received a secret from {}",
            req.method
        );
        assert!(
            resp.error.is_some() || !ADMIN_ONLY.contains(&req.method.as_str()),
            "a reader ran {}",
            req.method
        );
    }
    match (&resp.result, &resp.error) {
        (Some(v), None) => {
            check_result(&req.method, v);
            Some(Ok(()))
        }
        (None, Some(e)) => {
            let code = e.kind().expect("a known error code");
            assert_ne!(
                code,
                ErrorCode::InternalError,
                "{}: internal error: {}",
                req.method,
                e.message
            );
            assert_eq!(
                e.data.as_ref().and_then(|d| d.get("name")),
                Some(&Value::from(code.name())),
                "data.name names the code"
            );
            assert!(!e.message.is_empty());
            Some(Err(code))
        }
        _ => unreachable!(),
    }
}

/// Runs the input's lines on `daemon` as a caller with `role`.
pub fn run(daemon: &Daemon, input: &[u8], role: Role, conn: u64) -> (usize, Vec<ErrorCode>) {
    let service = &daemon.service;
    let caller = Caller {
        conn,
        uid: Some(if role == Role::Admin { 0 } else { 4242 }),
        gid: Some(4242),
        pid: None,
        role,
        frontend: Default::default(),
    };
    let (mut results, mut errors) = (0, Vec::new());
    let mut tally = |r: Option<Result<(), ErrorCode>>| match r {
        Some(Ok(())) => results += 1,
        Some(Err(code)) => errors.push(code),
        None => {}
    };
    for line in input.split(|&b| b == b'\n') {
        // The codec refuses lines that are not UTF-8 (the rpc_line target covers that).
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let requests: Vec<Request> = match rpc::parse(line) {
            Parsed::Single(req) => vec![req],
            Parsed::Batch(items) => {
                for item in &items {
                    if let Err(resp) = item {
                        assert!(resp.error.is_some());
                        tally(Some(Err(resp
                            .error
                            .as_ref()
                            .and_then(|e| e.kind())
                            .expect("code"))));
                    }
                }
                items.into_iter().filter_map(Result::ok).collect()
            }
            Parsed::Invalid(resp) => {
                let code = resp.error.as_ref().and_then(|e| e.kind()).expect("code");
                tally(Some(Err(code)));
                continue;
            }
        };
        for req in requests {
            let resp = runtime().block_on(rpc::respond(service, &caller, req.clone()));
            tally(check_answer(&req, resp, role));
        }
    }
    // The connection ends: its claims go.
    service.disconnected(conn);
    (results, errors)
}

/// Runs one input; panics if a property breaks.
pub fn check(input: &[u8]) -> Outcome {
    let mut outcome = Outcome::default();
    // One daemon for both: the reader changes nothing the admin would see.
    let daemon = Daemon::start();
    for (i, role) in [Role::Reader, Role::Admin].into_iter().enumerate() {
        let (results, errors) = run(&daemon, input, role, 1 + i as u64);
        outcome.results[i] = results;
        outcome.errors[i] = errors;
    }
    outcome
}
