//! A small blocking client: connect, check the version with `hello`, call methods, read events.
//! Used by the CLI, the desktop app and the tests.

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interprocess::local_socket::traits::Stream as _;
use interprocess::local_socket::{GenericFilePath, Stream, ToFsName};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PROTOCOL_VERSION;
use crate::codec::{LineBuffer, MAX_LINE, encode_line};
use crate::jsonrpc::{ErrorObject, Id, Incoming, Request, Response};
use crate::methods::{self, Method, NoParams};
use crate::types::{Event, Hello, MarkExportedParams, SeedInfo, SeedRecord, SeedsParams, method};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("cannot reach oathkeyd at {path}: {source}")]
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The connection failed mid-way.
    #[error("connection to oathkeyd failed: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon said something this client cannot read.
    #[error("unexpected answer from oathkeyd: {0}")]
    Protocol(String),
    /// The daemon speaks another protocol version.
    #[error(
        "oathkeyd speaks protocol {daemon}, this client speaks {client}; upgrade the older one"
    )]
    Version {
        /// The daemon's version.
        daemon: u32,
        /// Ours.
        client: u32,
    },
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(ErrorObject),
    /// No answer in time.
    #[error("oathkeyd did not answer within {0:?}")]
    Timeout(Duration),
    /// The request would be longer than the daemon reads ([`MAX_LINE`]); nothing was sent.
    #[error(
        "the {method} request would be {size} bytes, over oathkeyd's limit of {limit} bytes per \
         request; ask for less at a time"
    )]
    RequestTooLarge {
        /// The method.
        method: String,
        /// The request line's length, newline excluded.
        size: usize,
        /// The daemon's limit.
        limit: usize,
    },
}

/// A connection to oathkeyd.
pub struct Client {
    stream: Stream,
    buffer: LineBuffer,
    next_id: i64,
    events: VecDeque<Event>,
    hello: Option<Hello>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hello", &self.hello)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A connection with no request sent yet.
    fn open(path: &Path) -> Result<Self, ClientError> {
        let name =
            path.to_fs_name::<GenericFilePath>()
                .map_err(|source| ClientError::NotRunning {
                    path: path.into(),
                    source,
                })?;
        let stream = Stream::connect(name).map_err(|source| ClientError::NotRunning {
            path: path.into(),
            source,
        })?;
        Ok(Self {
            stream,
            buffer: LineBuffer::new(crate::codec::MAX_ANSWER_LINE),
            next_id: 1,
            events: VecDeque::new(),
            hello: None,
        })
    }

    /// Connects and runs `hello`; fails if the protocol versions differ.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let mut client = Self::open(path)?;
        let hello = client.request::<methods::Hello>(NoParams)?;
        client.accept(hello)?;
        Ok(client)
    }

    fn accept(&mut self, hello: Hello) -> Result<(), ClientError> {
        if hello.protocol != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                daemon: hello.protocol,
                client: PROTOCOL_VERSION,
            });
        }
        self.hello = Some(hello);
        Ok(())
    }

    /// Connects and asks method `M` in the same breath: `hello`, `events.subscribe` (when
    /// `subscribe`, for touch prompts) and `M` go out in one write and their answers are read
    /// afterwards, one round trip instead of three. For a login script's `oathkey code` that is
    /// most of the time spent after the process starts. Only a method for readers, which
    /// changes nothing, may be sent before the version check: when the daemon speaks another
    /// protocol its answer is thrown away and the version error returned. Events that arrive
    /// before `M`'s answer go to `on_event` (and are queued).
    pub fn connect_and_request<M: Method>(
        path: &Path,
        subscribe: bool,
        params: M::Params,
        mut on_event: impl FnMut(&Event),
    ) -> Result<(Self, M::Result), ClientError> {
        const {
            assert!(
                !M::ADMIN,
                "only a reader's method may go out before the version check"
            )
        };
        let mut client = Self::open(path)?;
        let mut lines = String::new();
        let hello_id = client.queue::<methods::Hello>(NoParams, &mut lines)?;
        let subscribe_id = if subscribe {
            Some(client.queue::<methods::EventsSubscribe>(NoParams, &mut lines)?)
        } else {
            None
        };
        let id = client.queue::<M>(params, &mut lines)?;
        if let Err(e) = client.stream.write_all(lines.as_bytes()) {
            return Err(client.refusal_after(e));
        }
        let (mut hello, mut subscribed, mut answer) = (None, subscribe_id.is_none(), None);
        while hello.is_none() || !subscribed || answer.is_none() {
            match client.read_message(None)? {
                Incoming::Response(r) if r.id == Id::Number(hello_id) => {
                    let value = r.into_result().map_err(ClientError::Rpc)?;
                    let h: Hello = serde_json::from_value(value)
                        .map_err(|e| ClientError::Protocol(format!("hello: {e}")))?;
                    // Checked at once: a daemon of another version says no more we can read.
                    client.accept(h.clone())?;
                    hello = Some(h);
                }
                Incoming::Response(r) if Some(&r.id) == subscribe_id.map(Id::Number).as_ref() => {
                    r.into_result().map_err(ClientError::Rpc)?;
                    subscribed = true;
                }
                Incoming::Response(r) if r.id == Id::Number(id) => answer = Some(r),
                Incoming::Response(r) => return Err(unrequested(r)),
                Incoming::Notification(n) => {
                    if let Some(event) = decode_event(&n.method, n.params) {
                        on_event(&event);
                        client.events.push_back(event);
                    }
                }
            }
        }
        let value = answer
            .expect("read above")
            .into_result()
            .map_err(ClientError::Rpc)?;
        let result = serde_json::from_value(value)
            .map_err(|e| ClientError::Protocol(format!("{}: {e}", M::NAME)))?;
        Ok((client, result))
    }

    /// Encodes a request of `M` onto `lines`; its id.
    fn queue<M: Method>(
        &mut self,
        params: M::Params,
        lines: &mut String,
    ) -> Result<i64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = request_line(M::NAME, id, params)?;
        lines.push_str(&line);
        Ok(id)
    }

    /// What `hello` said.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Calls method `M` with its params and reads its result as its type. Events that arrive
    /// meanwhile are queued.
    pub fn request<M: Method>(&mut self, params: M::Params) -> Result<M::Result, ClientError> {
        self.call(M::NAME, params)
    }

    /// [`Client::request`] with a timeout, handing events that arrive before the answer to
    /// `on_event` (see [`Client::call_with`]).
    pub fn request_with<M: Method>(
        &mut self,
        params: M::Params,
        timeout: Option<Duration>,
        on_event: impl FnMut(&Event),
    ) -> Result<M::Result, ClientError> {
        self.call_with(M::NAME, params, timeout, on_event)
    }

    /// Calls a method by name with any params and reads the result as `R` (for tools and tests
    /// that speak the wire directly; programs use [`Client::request`]).
    pub fn call<P: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        params: P,
    ) -> Result<R, ClientError> {
        self.call_with(method, params, None, |_| {})
    }

    /// Calls a method, handing events that arrive before the answer to `on_event`, and giving
    /// up after `timeout` (none: wait as long as it takes).
    pub fn call_with<P: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        params: P,
        timeout: Option<Duration>,
        mut on_event: impl FnMut(&Event),
    ) -> Result<R, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = request_line(method, id, params)?;
        if let Err(e) = self.stream.write_all(line.as_bytes()) {
            return Err(self.refusal_after(e));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.read_message(deadline)? {
                Incoming::Response(r) if r.id == Id::Number(id) => {
                    let value = r.into_result().map_err(ClientError::Rpc)?;
                    return serde_json::from_value(value)
                        .map_err(|e| ClientError::Protocol(format!("{method}: {e}")));
                }
                Incoming::Response(r) => return Err(unrequested(r)),
                Incoming::Notification(n) => {
                    if let Some(event) = decode_event(&n.method, n.params) {
                        on_event(&event);
                        self.events.push_back(event);
                    }
                }
            }
        }
    }

    /// The next event: a queued one, or one read within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_message(Some(deadline)) {
                Ok(Incoming::Notification(n)) => {
                    if let Some(event) = decode_event(&n.method, n.params) {
                        return Ok(Some(event));
                    }
                }
                Ok(Incoming::Response(r)) => return Err(unrequested(r)),
                Err(ClientError::Timeout(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_message(&mut self, deadline: Option<Instant>) -> Result<Incoming, ClientError> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(line) = self
                .buffer
                .next_line()
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                if line.trim().is_empty() {
                    continue;
                }
                return serde_json::from_str(&line)
                    .map_err(|e| ClientError::Protocol(format!("{e}: {line}")));
            }
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ClientError::Timeout(Duration::ZERO));
                    }
                    Some(left)
                }
                None => None,
            };
            self.stream.set_recv_timeout(wait)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(ClientError::Io(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "oathkeyd closed the connection",
                    )));
                }
                Ok(n) => self.buffer.extend(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ClientError::Timeout(wait.unwrap_or_default()));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The error to report when writing a request failed: the daemon may have refused the
    /// connection (too many clients) or a line and closed before or while we wrote, and what
    /// it said then is waiting to be read; otherwise the write error itself.
    fn refusal_after(&mut self, write_error: std::io::Error) -> ClientError {
        let deadline = Instant::now() + Duration::from_millis(500);
        while let Ok(message) = self.read_message(Some(deadline)) {
            if let Incoming::Response(r) = message
                && r.id == Id::Null
                && r.error.is_some()
            {
                return unrequested(r);
            }
        }
        ClientError::Io(write_error)
    }

    /// `seeds.list` for a selection of any size (see [`Client::seeds_export`]).
    pub fn seeds_list(&mut self, params: &SeedsParams) -> Result<Vec<SeedInfo>, ClientError> {
        let mut found = BTreeMap::new();
        self.select::<methods::SeedsList, _>(params.clone(), |r: &SeedInfo| &r.id, &mut found)?;
        Ok(found.into_values().collect())
    }

    /// `seeds.export` for a selection of any size: `serials` and `users` lists longer than one
    /// request line are asked for in parts (a selection is a filter, so the parts' answers
    /// together are the whole answer), merged as the daemon orders them, by record id.
    pub fn seeds_export(&mut self, params: &SeedsParams) -> Result<Vec<SeedRecord>, ClientError> {
        let mut found = BTreeMap::new();
        self.select::<methods::SeedsExport, _>(
            params.clone(),
            |r: &SeedRecord| &r.info.id,
            &mut found,
        )?;
        Ok(found.into_values().collect())
    }

    /// `seeds.mark_exported` for any number of ids, in requests that fit; the number marked.
    pub fn mark_exported(&mut self, ids: &[String], format: &str) -> Result<usize, ClientError> {
        let params = MarkExportedParams {
            ids: ids.to_vec(),
            format: format.into(),
        };
        match self.request::<methods::SeedsMarkExported>(params) {
            Err(ClientError::RequestTooLarge { size, limit, .. }) if ids.len() > 1 => {
                let mut marked = 0;
                for part in ids.chunks(part_len(ids.len(), size, limit)) {
                    marked += self.mark_exported(part, format)?;
                }
                Ok(marked)
            }
            other => other,
        }
    }

    /// Asks for a seed selection, splitting its longer list while the request is too long (only
    /// the requests that fit are sent); every record found goes into `found` by id.
    fn select<M, R>(
        &mut self,
        params: SeedsParams,
        id: fn(&R) -> &String,
        found: &mut BTreeMap<String, R>,
    ) -> Result<(), ClientError>
    where
        M: Method<Params = SeedsParams, Result = Vec<R>>,
    {
        match self.request::<M>(params.clone()) {
            Ok(records) => {
                for r in records {
                    found.insert(id(&r).clone(), r);
                }
                Ok(())
            }
            Err(ClientError::RequestTooLarge { size, limit, .. })
                if let Some(parts) = split(&params, size, limit) =>
            {
                for part in parts {
                    self.select::<M, R>(part, id, found)?;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The length of the parts a list of `len` items is cut into when its request is `size` bytes
/// and may be `limit`: as many parts as the size asks for and one more, so that most parts fit
/// at once (one that does not is cut again), and at least two, so that each cut makes progress.
fn part_len(len: usize, size: usize, limit: usize) -> usize {
    let parts = (size.div_ceil(limit.max(1)) + 1).clamp(2, len.max(2));
    len.div_ceil(parts).max(1)
}

/// The selection cut into parts along its longer list, if that list has two items or more.
fn split(p: &SeedsParams, size: usize, limit: usize) -> Option<Vec<SeedsParams>> {
    let len = |l: &Option<Vec<String>>| l.as_ref().map_or(0, Vec::len);
    let serials = len(&p.serials) >= len(&p.users);
    let list = if serials { &p.serials } else { &p.users };
    let list = list.as_deref().filter(|l| l.len() >= 2)?;
    let parts = list
        .chunks(part_len(list.len(), size, limit))
        .map(|chunk| {
            let mut part = p.clone();
            if serials {
                part.serials = Some(chunk.to_vec());
            } else {
                part.users = Some(chunk.to_vec());
            }
            part
        })
        .collect();
    Some(parts)
}

/// An answer that is not to the request waited for. The daemon answers with a null id what it
/// could not tie to a request: refusing the connection (too many clients) or a line (too
/// long, not JSON). Such an error is the answer to our request, the daemon's own error;
/// anything else is a protocol violation.
/// One request as a line, refused when longer than the daemon reads: the daemon would answer a
/// longer line with an error and close the connection (or close it while we still write, a
/// broken pipe), so say what it is and send nothing.
fn request_line<P: Serialize>(method: &str, id: i64, params: P) -> Result<String, ClientError> {
    let params = serde_json::to_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let params = (!params.is_null()).then_some(params);
    let line = encode_line(&Request::new(id, method, params))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let size = line.len() - 1;
    if size > MAX_LINE {
        return Err(ClientError::RequestTooLarge {
            method: method.into(),
            size,
            limit: MAX_LINE,
        });
    }
    Ok(line)
}

fn unrequested(r: Response) -> ClientError {
    match (r.id, r.error) {
        (Id::Null, Some(error)) => ClientError::Rpc(error),
        (id, _) => ClientError::Protocol(format!("answer for unknown request {id:?}")),
    }
}

fn decode_event(method_name: &str, params: Value) -> Option<Event> {
    (method_name == method::EVENT)
        .then(|| serde_json::from_value(params).ok())
        .flatten()
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    use super::*;
    use crate::ErrorCode;

    /// A socket path of its own for each fake daemon.
    fn socket_path() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        std::env::temp_dir().join(format!(
            "oathkey-protocol-test-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ))
    }

    /// A fake daemon serving one connection with `serve`; the thread returns what it read.
    fn fake(
        serve: impl FnOnce(UnixStream) -> Vec<String> + Send + 'static,
    ) -> (PathBuf, JoinHandle<Vec<String>>) {
        let path = socket_path();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("binds");
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accepts");
            serve(stream)
        });
        (path, handle)
    }

    fn hello_answer(id: &Value) -> String {
        let hello =
            serde_json::json!({"protocol": PROTOCOL_VERSION, "daemon": "fake", "role": "admin"});
        format!(
            "{}\n",
            serde_json::json!({"jsonrpc": "2.0", "id": id, "result": hello})
        )
    }

    /// The daemon refuses a connection over its client limit with one `Busy` line whose id is
    /// null (it read no request), then closes: that is the answer to `hello`, not a protocol
    /// violation, so the caller can tell "busy" (exit 7) from a broken daemon.
    #[test]
    fn a_refusal_with_a_null_id_is_the_daemons_error() {
        let (path, server) = fake(|mut stream| {
            let line = format!(
                "{}\n",
                serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": ErrorCode::Busy.code(), "message": "too many clients; try again later", "data": {"name": "Busy"}}})
            );
            stream.write_all(line.as_bytes()).expect("writes");
            Vec::new()
        });
        let err = Client::connect(&path).expect_err("refused");
        server.join().expect("server ends");
        let _ = std::fs::remove_file(&path);
        match err {
            ClientError::Rpc(e) => {
                assert_eq!(e.kind(), Some(ErrorCode::Busy));
                assert_eq!(e.message, "too many clients; try again later");
            }
            other => panic!("expected the daemon's Busy, got {other:?}"),
        }
    }

    /// The same after the connection was set up (here a line the daemon found too long), also
    /// when the daemon has closed the connection before the request is written: the write
    /// fails, and what the daemon said before closing is the answer, not "broken pipe".
    #[test]
    fn a_null_id_error_after_hello_is_the_daemons_error() {
        let (path, server) = fake(|stream| {
            let mut reader = BufReader::new(stream.try_clone().expect("clones"));
            let mut line = String::new();
            reader.read_line(&mut line).expect("reads hello");
            let request: Value = serde_json::from_str(&line).expect("json");
            let mut stream = stream;
            stream
                .write_all(hello_answer(&request["id"]).as_bytes())
                .expect("writes");
            let refusal = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": ErrorCode::RequestTooLarge.code(), "message": "request line longer than 65536 bytes; closing", "data": {"name": "RequestTooLarge"}}});
            stream
                .write_all(format!("{refusal}\n").as_bytes())
                .expect("writes");
            vec![line]
        });
        let mut client = Client::connect(&path).expect("connects");
        // The fake has answered, refused and closed before the request is written.
        server.join().expect("server ends");
        let err = client
            .call::<_, Value>("keys.list", Value::Null)
            .expect_err("refused");
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(&err, ClientError::Rpc(e) if e.kind() == Some(ErrorCode::RequestTooLarge)),
            "{err:?}"
        );
    }

    /// `connect_and_request` sends hello, the subscription and the read in one write, reads
    /// the answers in whatever order they come (events in between), and checks the version:
    /// with another protocol the read's answer is not returned.
    #[test]
    fn one_write_three_answers_in_any_order_and_the_version_checked() {
        for protocol in [PROTOCOL_VERSION, PROTOCOL_VERSION + 1] {
            let (path, server) = fake(move |stream| {
                let mut reader = BufReader::new(stream.try_clone().expect("clones"));
                let mut stream = stream;
                let mut lines = Vec::new();
                for _ in 0..3 {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("reads");
                    lines.push(line);
                }
                let ids: Vec<Value> = lines
                    .iter()
                    .map(|l| serde_json::from_str::<Value>(l).expect("json")["id"].clone())
                    .collect();
                let answer = |id: &Value, result: Value| {
                    format!(
                        "{}\n",
                        serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result})
                    )
                };
                let event = serde_json::json!({"jsonrpc": "2.0", "method": "event", "params": {"type": "touch_needed", "key": "k", "operation": "code", "token": "T1"}});
                // The read's answer first, an event, then the subscription's and hello's.
                let code = serde_json::json!({"token": {"key": "k", "name": "T1:a", "serial": "T1", "account": "a", "period": 30, "kind": "totp"}, "code": "123456", "digits": 6});
                let hello =
                    serde_json::json!({"protocol": protocol, "daemon": "fake", "role": "reader"});
                let out = format!(
                    "{}{event}\n{}{}",
                    answer(&ids[2], code),
                    answer(&ids[1], Value::Null),
                    answer(&ids[0], hello)
                );
                stream.write_all(out.as_bytes()).expect("writes");
                lines
            });
            let mut events = 0;
            let result = Client::connect_and_request::<methods::CodesGet>(
                &path,
                true,
                crate::types::CodeParams::default(),
                |_| events += 1,
            );
            let lines = server.join().expect("server ends");
            let _ = std::fs::remove_file(&path);
            let methods: Vec<String> = lines
                .iter()
                .map(|l| {
                    serde_json::from_str::<Value>(l).expect("json")["method"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            assert_eq!(methods, ["hello", "events.subscribe", "codes.get"]);
            if protocol == PROTOCOL_VERSION {
                let (client, code) = result.expect("answered");
                assert_eq!(code.code, "123456");
                assert_eq!(events, 1, "the event reached the caller");
                assert_eq!(client.hello().map(|h| h.protocol), Some(PROTOCOL_VERSION));
            } else {
                assert!(
                    matches!(result, Err(ClientError::Version { .. })),
                    "another protocol: {:?}",
                    result.map(|(_, c)| c)
                );
            }
        }
    }

    /// A small model of the daemon: answers `hello`, filters `records` for `seeds.list`
    /// (serials and users as the daemon does), counts known ids for `seeds.mark_exported`, and
    /// refuses a line over [`MAX_LINE`] as the daemon does (a null-id error, then it closes).
    /// Returns the length of every line it read.
    fn mini_daemon(records: Vec<SeedInfo>) -> (PathBuf, JoinHandle<Vec<String>>) {
        fake(move |stream| {
            let mut reader = BufReader::new(stream.try_clone().expect("clones"));
            let mut stream = stream;
            let mut seen = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).expect("reads") == 0 {
                    return seen;
                }
                let line = line.trim_end_matches('\n').to_string();
                seen.push(line.clone());
                if line.len() > MAX_LINE {
                    let refusal = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": ErrorCode::RequestTooLarge.code(), "message": "too long", "data": {"name": "RequestTooLarge"}}});
                    let _ = stream.write_all(format!("{refusal}\n").as_bytes());
                    return seen;
                }
                let request: Value = serde_json::from_str(&line).expect("json");
                let id = &request["id"];
                let result = match request["method"].as_str().expect("method") {
                    "hello" => {
                        stream
                            .write_all(hello_answer(id).as_bytes())
                            .expect("writes");
                        continue;
                    }
                    "seeds.list" => {
                        let p: SeedsParams =
                            serde_json::from_value(request["params"].clone()).expect("params");
                        let selected: Vec<&SeedInfo> = records
                            .iter()
                            .filter(|r| p.serials.as_ref().is_none_or(|s| s.contains(&r.serial)))
                            .filter(|r| {
                                p.users.as_ref().is_none_or(|u| {
                                    u.iter().any(|u| u.eq_ignore_ascii_case(&r.user))
                                })
                            })
                            .collect();
                        serde_json::to_value(selected).expect("encodes")
                    }
                    "seeds.mark_exported" => {
                        let p: MarkExportedParams =
                            serde_json::from_value(request["params"].clone()).expect("params");
                        let known = p
                            .ids
                            .iter()
                            .filter(|id| records.iter().any(|r| &&r.id == id))
                            .count();
                        serde_json::json!(known)
                    }
                    _ => Value::Null,
                };
                let answer = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result});
                stream
                    .write_all(format!("{answer}\n").as_bytes())
                    .expect("writes");
            }
        })
    }

    fn record(n: usize) -> SeedInfo {
        serde_json::from_value(serde_json::json!({
            "id": format!("{n:016x}"), "key": "k", "name": format!("S{n}:user{n}@contoso.com"),
            "serial": format!("S{n}"), "user": format!("user{n}@contoso.com"), "kind": "totp",
            "algorithm": "sha1", "digits": 6, "period": 30, "counter": 0, "state": "verified",
            "reason": null, "created_at": 0, "exported_at": null, "model": null
        }))
        .expect("a SeedInfo")
    }

    /// A request longer than the daemon takes is refused before anything is sent, with its
    /// size and the limit; one of exactly the limit is sent.
    #[test]
    fn an_overlong_request_is_refused_before_it_is_sent() {
        let (path, server) = mini_daemon(Vec::new());
        let mut client = Client::connect(&path).expect("connects");
        let empty = encode_line(&Request::new(2, "x", Some(serde_json::json!({"a": ""}))))
            .expect("encodes")
            .len()
            - 1;
        let fits = "a".repeat(MAX_LINE - empty);
        let _: Value = client
            .call("x", serde_json::json!({"a": fits}))
            .expect("a line of exactly the limit is sent");
        let over = "a".repeat(MAX_LINE - empty + 1);
        match client.call::<_, Value>("x", serde_json::json!({"a": over})) {
            Err(ClientError::RequestTooLarge {
                method,
                size,
                limit,
            }) => {
                assert_eq!(method, "x");
                assert_eq!(size, MAX_LINE + 1);
                assert_eq!(limit, MAX_LINE);
            }
            other => panic!("expected RequestTooLarge, got {other:?}"),
        }
        // The connection is still good: nothing was sent.
        let _: Value = client.call("y", Value::Null).expect("still connected");
        drop(client);
        let seen = server.join().expect("server ends");
        let _ = std::fs::remove_file(&path);
        assert_eq!(seen.len(), 3, "hello, the line at the limit, y");
        assert!(seen.iter().all(|l| l.len() <= MAX_LINE));
        let err = ClientError::RequestTooLarge {
            method: "seeds.list".into(),
            size: 70_000,
            limit: MAX_LINE,
        };
        assert!(err.to_string().contains("70000") && err.to_string().contains("65536"));
    }

    /// A selection of any size is asked for in requests that fit, and the answer is the one a
    /// single request would give: every match once, ordered by record id.
    #[test]
    fn seed_selections_of_any_size_are_split_into_requests_that_fit() {
        let records: Vec<SeedInfo> = (0..50).map(record).collect();
        let (path, server) = mini_daemon(records);
        let mut client = Client::connect(&path).expect("connects");
        // 20,000 users (the same 250 over and over, in two letter cases, and unknown ones)
        // and 10,000 serials: each list alone is longer than one line.
        let users: Vec<String> = (0..20_000)
            .map(|n| match n % 3 {
                0 => format!("user{}@contoso.com", n % 250),
                1 => format!("USER{}@CONTOSO.COM", n % 250),
                _ => format!("nobody{n}@contoso.com"),
            })
            .collect();
        let serials: Vec<String> = (0..10_000).map(|n| format!("S{}", n % 40)).collect();
        let params = SeedsParams {
            serials: Some(serials),
            users: Some(users),
            ..SeedsParams::default()
        };
        let found = client.seeds_list(&params).expect("listed");
        let ids: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
        let want: Vec<String> = (0..40).map(|n| format!("{n:016x}")).collect();
        assert_eq!(ids, want);
        // Marking 30,000 ids (most unknown) counts the known ones once each.
        let mut ids: Vec<String> = (0..30_000).map(|n| format!("{:016x}", n + 1_000)).collect();
        ids.extend((0..50).map(|n| format!("{n:016x}")));
        assert_eq!(client.mark_exported(&ids, "azure-csv").expect("marked"), 50);
        drop(client);
        let seen = server.join().expect("server ends");
        let _ = std::fs::remove_file(&path);
        assert!(seen.len() > 3, "split into several requests");
        assert!(
            seen.iter().all(|l| l.len() <= MAX_LINE),
            "every request fits"
        );
    }
}
