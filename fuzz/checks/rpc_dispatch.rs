//! The daemon's JSON-RPC dispatcher (`oathkeyd::rpc::parse` and `oathkeyd::rpc::respond`, what
//! a connection runs for each line) with the service core and one virtual key behind it.
//!
//! Shared by `fuzz/fuzz_targets/rpc_dispatch.rs` and `daemon/tests/daemon/fuzz_replay.rs`.
//!
//! Input: lines of JSON-RPC, as a client writes them on one connection. Each input runs on a
//! daemon as a fresh start finds it (a new service core with its own empty seed ledger, one
//! in-memory virtual key that approves touches, factory-fresh), first from a reader's
//! connection, then from an admin's. Lines run in order, so one input can create a token and
//! then read its code (and so can a batch).
//!
//! Speed: the key registry, the virtual key and its actor thread are built once per process
//! and put back to their fresh state after each input (checked; see [`Fixture`]), ledgers live
//! in memory (`/dev/shm`), and each input ends only when the key's actor has let go of
//! everything, so that libFuzzer's per-input leak detection stays on without false alarms.
//! The replay test checks that every input gives the same outcome on a reused fixture as on
//! a new one.
//!
//! Properties: no panic; every request with an id gets exactly one answer with its id and
//! either a result or an error with a known code and name, never an internal error;
//! notifications get none; results decode as the documented types; a reader never receives a
//! secret nor runs an admin method; and answers survive encoding as a line and decoding.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use oathkey_device::Setting;
use oathkey_emulator::{Config as VirtualConfig, KeyState, TouchPolicy, VirtualKeyHandle};
use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, encode_line};
use oathkey_protocol::jsonrpc::{Request, Response};
use oathkey_protocol::types::{
    Code, CodeEntry, CreatedToken, Hello, KeyInfo, KeyList, Operation, Role, SeedInfo, SeedRecord,
    Settings, TokenInfo, method,
};
use oathkeyd::auth::{Authorizer, Caller};
use oathkeyd::keys::sources::attach_virtual;
use oathkeyd::keys::{KeyEntry, Registry};
use oathkeyd::ledger::Ledger;
use oathkeyd::rpc::{self, Parsed};
use oathkeyd::service::Service;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One runtime per process: building one per input would cost more than the input. A
/// current-thread runtime: requests run on the caller's thread (`block_on`), as far as the
/// daemon lets them (key exchanges run on the key's actor thread, ledger writes on tokio's
/// blocking threads), with no worker thread to hand work to and back. Blocking threads stay
/// (instead of ending after 10 idle seconds and being made again, in the middle of some
/// other input).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .thread_keep_alive(std::time::Duration::from_secs(24 * 3600))
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Where daemons keep their ledgers: memory-backed when the system has it (the ledger fsyncs
/// every write).
fn scratch() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// The serial of the virtual key (its id is this in hex).
const SERIAL: u32 = 0x00C0_FFEE;

/// The parts of a daemon that outlive one input: the key registry with one in-memory virtual
/// key (touches approved) attached, its actor thread, and a scratch directory for ledgers.
/// Building them (a registry, a key, a thread, opening the key over CTAPHID, reading its
/// settings) cost more than most inputs, so they are built once and put back into the state
/// of a fresh start after each input ([`Fixture::restore`]); whatever cannot be put back
/// exactly is dropped and built again.
#[derive(Debug)]
struct Fixture {
    registry: Arc<Registry>,
    key: VirtualKeyHandle,
    /// The key's persistent state as it came out of the factory.
    fresh: KeyState,
    /// The settings the daemon read from the fresh key.
    settings: Settings,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oathkey-fuzz-")
            .tempdir_in(scratch())
            .expect("a scratch directory");
        let registry = Registry::new();
        let key = VirtualKeyHandle::new(VirtualConfig {
            touch: TouchPolicy::Approve,
            serial: Some(SERIAL),
            ..VirtualConfig::default()
        });
        attach_virtual(&registry, key.clone()).expect("the virtual key attaches");
        let fresh = key.state();
        let settings = registry.list()[0].settings();
        Self {
            registry,
            key,
            fresh,
            settings,
            dir,
        }
    }

    fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("seeds.ledger")
    }

    /// Puts everything an input may have changed back as a fresh daemon would find it: the
    /// key plugged in and attached once, no claim, no touch waiting, no token list cached, the
    /// key's credentials, PIN and settings as they came, the daemon's settings as it read them,
    /// no ledger. Returns false if something could not be put back (then the fixture must not
    /// serve again).
    fn restore(&self) -> bool {
        let _ = std::fs::remove_file(self.ledger_path());
        let id = format!("{SERIAL:08x}");
        // An input that unplugged the key and did not plug it back: as `virtual.plug` would.
        if self.registry.list().is_empty() {
            let Some(parked) = self.registry.unpark(&id) else {
                return false;
            };
            parked.replug();
            if attach_virtual(&self.registry, parked).is_err() {
                return false;
            }
        }
        let entries = self.registry.list();
        let [entry] = entries.as_slice() else {
            return false;
        };
        let ours = entry
            .virtual_handle
            .as_ref()
            .is_some_and(|h| h.info().path == self.key.info().path);
        if entry.id != id
            || !ours
            || !self.key.is_plugged()
            || entry.claimant().is_some()
            || self.registry.unpark(&id).is_some()
            || !self.registry.unavailable().is_empty()
            || self.key.with_key(|k| k.waiting_for_touch())
        {
            return false;
        }
        let now = self.key.state();
        if now != self.fresh {
            // Through the key's own protocol, as an administrator would: RESET wipes the
            // credentials and the PIN; settings go back one by one (turning modes on first, so
            // that one interface is always left).
            let (fresh, wipe) = (
                self.fresh.settings,
                now.credentials != self.fresh.credentials || now.pin != self.fresh.pin,
            );
            let job = entry.actor.run(Operation::Config, None, move |k| {
                if wipe {
                    k.reset()?;
                }
                for (setting, value, was) in [
                    (Setting::ModeKeyboard, fresh.keyboard, now.settings.keyboard),
                    (Setting::ModeU2f, fresh.u2f, now.settings.u2f),
                    (
                        Setting::OtpKeyPress,
                        fresh.key_press,
                        now.settings.key_press,
                    ),
                ] {
                    if value != was {
                        k.set_setting(setting, value)?;
                    }
                }
                Ok(())
            });
            if runtime().block_on(job).is_err() || self.key.state() != self.fresh {
                return false;
            }
        }
        entry.invalidate_tokens();
        entry.set_settings(self.settings);
        quiesce(entry)
    }
}

/// Waits until the key's actor thread has finished with everything the input gave it, down to
/// freeing the last request's memory; false if the actor is gone.
///
/// libFuzzer counts the allocations and frees of every thread while an input runs, and an
/// input that ends with more allocations than frees is run again and then followed by a full
/// leak scan (LeakSanitizer stops the process and walks the heap: most of the run time when it
/// happened after a few percent of the inputs). The actor frees a request's memory after it
/// has answered, so without this wait those frees fell after the input's end at random.
fn quiesce(entry: &KeyEntry) -> bool {
    runtime().block_on(entry.actor.settle())
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Stop the key actors (their threads end with the registry's handles).
        for entry in self.registry.list() {
            self.registry.remove(&entry.id, None);
        }
    }
}

thread_local! {
    /// The fixture between inputs (none while an input runs, so that an input that panics
    /// never leaves a half-used one behind). One per thread: tests running side by side each
    /// have their own.
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

/// A daemon core for one input: a fresh service with its own empty ledger, over the fixture's
/// registry and key.
#[derive(Debug)]
pub struct Daemon {
    pub service: Arc<Service>,
    fixture: Option<Fixture>,
}

impl Daemon {
    /// A daemon on the fixture left by the last input (or a new one).
    pub fn start() -> Self {
        let reused = FIXTURE.with(|f| f.borrow_mut().take());
        Self::on(reused.unwrap_or_else(Fixture::new))
    }

    /// A daemon on a fixture built for it (as every input had before fixtures were reused).
    pub fn start_fresh() -> Self {
        Self::on(Fixture::new())
    }

    fn on(fixture: Fixture) -> Self {
        let ledger = Ledger::open(&fixture.ledger_path()).expect("a ledger");
        let service = Arc::new(Service::new(
            fixture.registry.clone(),
            Authorizer::default(),
            Arc::new(ledger),
        ));
        Self {
            service,
            fixture: Some(fixture),
        }
    }

    /// Ends the input: the service and its ledger go, the fixture is put back for the next
    /// input if it could be restored.
    pub fn finish(mut self) {
        let fixture = self.fixture.take().expect("a fixture");
        drop(self);
        if fixture.restore() {
            FIXTURE.with(|f| *f.borrow_mut() = Some(fixture));
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
    check_on(Daemon::start(), input)
}

/// Runs one input on a daemon built for it alone (for the replay test's comparison).
pub fn check_fresh(input: &[u8]) -> Outcome {
    check_on(Daemon::start_fresh(), input)
}

fn check_on(daemon: Daemon, input: &[u8]) -> Outcome {
    let mut outcome = Outcome::default();
    // One daemon for both: the reader changes nothing the admin would see.
    for (i, role) in [Role::Reader, Role::Admin].into_iter().enumerate() {
        let (results, errors) = run(&daemon, input, role, 1 + i as u64);
        outcome.results[i] = results;
        outcome.errors[i] = errors;
    }
    daemon.finish();
    outcome
}
