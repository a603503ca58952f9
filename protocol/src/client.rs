//! A small blocking client: connect, check the version with `hello`, call methods, read events.
//! Used by the CLI, the desktop app and the tests.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interprocess::local_socket::traits::Stream as _;
use interprocess::local_socket::{GenericFilePath, Stream, ToFsName};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PROTOCOL_VERSION;
use crate::codec::{LineBuffer, encode_line};
use crate::jsonrpc::{ErrorObject, Id, Incoming, Request};
use crate::types::{Event, Hello, method};

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
    /// Connects and runs `hello`; fails if the protocol versions differ.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
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
        let mut client = Self {
            stream,
            buffer: LineBuffer::new(crate::codec::MAX_ANSWER_LINE),
            next_id: 1,
            events: VecDeque::new(),
            hello: None,
        };
        let hello: Hello = client.call(method::HELLO, Value::Null)?;
        if hello.protocol != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                daemon: hello.protocol,
                client: PROTOCOL_VERSION,
            });
        }
        client.hello = Some(hello);
        Ok(client)
    }

    /// What `hello` said.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Calls a method and decodes its result. Events that arrive meanwhile are queued.
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
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let params = (!params.is_null()).then_some(params);
        let line = encode_line(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream.write_all(line.as_bytes())?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.read_message(deadline)? {
                Incoming::Response(r) if r.id == Id::Number(id) => {
                    let value = r.into_result().map_err(ClientError::Rpc)?;
                    return serde_json::from_value(value)
                        .map_err(|e| ClientError::Protocol(format!("{method}: {e}")));
                }
                Incoming::Response(r) => {
                    return Err(ClientError::Protocol(format!(
                        "answer for unknown request {:?}",
                        r.id
                    )));
                }
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
                Ok(Incoming::Response(r)) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected answer {:?}",
                        r.id
                    )));
                }
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
}

fn decode_event(method_name: &str, params: Value) -> Option<Event> {
    (method_name == method::EVENT)
        .then(|| serde_json::from_value(params).ok())
        .flatten()
}
