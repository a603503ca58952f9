//! One client on the socket: its lines in, its requests running side by side, its answers and
//! events out, and how it ends (end of input, a broken line, idleness, shutdown).

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, LineError, encode_line};
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::debug;

use super::Limits;
use super::events::Subscription;
use crate::auth::Caller;
use crate::rpc::{self, Parsed};
use crate::service::Service;

/// Answers and events queued for one client's writer.
const OUT_QUEUE: usize = 256;

/// Why reading stopped.
enum End {
    /// The client closed its writing side (it may still read).
    Eof,
    /// The connection broke, or was closed for a broken line or idleness.
    Broken,
    /// The daemon is stopping.
    Shutdown,
}

/// A client connection and everything it owns.
pub struct Connection {
    caller: Arc<Caller>,
    service: Arc<Service>,
    limits: Limits,
    stream: Arc<Stream>,
    /// Lines to the client, written by `writer`.
    out: mpsc::Sender<String>,
    writer: JoinHandle<()>,
    /// Requests running now.
    requests: JoinSet<()>,
    events: Arc<Subscription>,
    buffer: LineBuffer,
    /// When the line being read began (a line left unfinished too long ends the connection).
    partial_since: Option<Instant>,
    /// Last time the client sent something or a request finished (for the idle timeout).
    last_active: Instant,
    /// Raised when the shutdown grace period is over: running requests answer `Cancelled`.
    abort: watch::Sender<bool>,
}

fn line_of<T: serde::Serialize>(message: &T) -> Option<String> {
    encode_line(message).ok()
}

impl Connection {
    /// Takes over `stream` for `caller`.
    pub fn new(stream: Stream, caller: Caller, service: Arc<Service>, limits: Limits) -> Self {
        let stream = Arc::new(stream);
        let (out, mut out_rx) = mpsc::channel::<String>(OUT_QUEUE);
        let writer_stream = stream.clone();
        let writer = tokio::spawn(async move {
            while let Some(line) = out_rx.recv().await {
                if (&*writer_stream).write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let (abort, _) = watch::channel(false);
        Self {
            events: Subscription::new(service.clone(), out.clone()),
            caller: Arc::new(caller),
            service,
            limits,
            stream,
            out,
            writer,
            requests: JoinSet::new(),
            buffer: LineBuffer::new(limits.max_line),
            partial_since: None,
            last_active: Instant::now(),
            abort,
        }
    }

    /// Serves the client until it leaves or the daemon stops.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let conn = self.caller.conn;
        debug!(conn, uid = ?self.caller.uid, pid = ?self.caller.pid, role = ?self.caller.role, "client connected");
        let end = self.read(&mut shutdown).await;
        match end {
            End::Eof => self.linger(&mut shutdown).await,
            End::Shutdown => self.drain().await,
            End::Broken => self.requests.abort_all(),
        }
        // Aborted requests are dropped, which raises their cancel flags.
        while self.requests.join_next().await.is_some() {}
        self.events.end();
        self.service.disconnected(conn);
        drop(self.out);
        drop(self.events);
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer).await;
        debug!(conn, "client disconnected");
    }

    /// When a reader's connection that holds nothing (no request, no subscription, no half
    /// line) is closed: idle connections must not pile up against the budget.
    fn idle_deadline(&self) -> Option<Instant> {
        (!self.caller.is_admin()
            && self.requests.is_empty()
            && !self.events.active()
            && self.partial_since.is_none())
        .then(|| self.last_active + self.limits.idle_timeout)
    }

    async fn read(&mut self, shutdown: &mut watch::Receiver<bool>) -> End {
        let conn = self.caller.conn;
        let mut chunk = vec![0u8; 8192];
        let stream = self.stream.clone();
        let mut reader = &*stream;
        loop {
            let stall_deadline = self.partial_since.map(|t| t + self.limits.stalled_line);
            let idle_deadline = self.idle_deadline();
            tokio::select! {
                read = reader.read(&mut chunk) => {
                    self.last_active = Instant::now();
                    let n = match read {
                        Ok(0) => return End::Eof,
                        Ok(n) => n,
                        Err(_) => return End::Broken,
                    };
                    self.buffer.extend(&chunk[..n]);
                    if self.take_lines().await.is_err() {
                        return End::Broken;
                    }
                }
                Some(_) = self.requests.join_next(), if !self.requests.is_empty() => {
                    self.last_active = Instant::now();
                }
                _ = sleep_until(stall_deadline), if stall_deadline.is_some() => {
                    debug!(conn, "client left a line unfinished for too long; closing");
                    return End::Broken;
                }
                _ = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                    debug!(conn, "reader idle for too long; closing");
                    return End::Broken;
                }
                _ = shutdown.changed() => return End::Shutdown,
            }
        }
    }

    /// Runs every complete line in the buffer; `Err` when the connection must close (a line
    /// over the limit).
    async fn take_lines(&mut self) -> Result<(), ()> {
        let mut completed = false;
        loop {
            match self.buffer.next_line() {
                Ok(Some(line)) => {
                    completed = true;
                    if !line.trim().is_empty() {
                        self.handle_line(&line).await;
                    }
                }
                Ok(None) => break,
                Err(LineError::TooLong { limit }) => {
                    self.send_error(
                        ErrorCode::RequestTooLarge,
                        format!("request line longer than {limit} bytes; closing"),
                    )
                    .await;
                    return Err(());
                }
                Err(LineError::NotUtf8) => {
                    self.send_error(ErrorCode::ParseError, "request is not UTF-8".into())
                        .await;
                }
            }
        }
        // The clock runs per line: it starts when a line starts, not at the first byte of a
        // busy connection.
        self.partial_since = match (self.buffer.pending() > 0, completed) {
            (false, _) => None,
            (true, true) => Some(Instant::now()),
            (true, false) => Some(self.partial_since.unwrap_or_else(Instant::now)),
        };
        Ok(())
    }

    async fn send_error(&self, code: ErrorCode, message: String) {
        if let Some(l) = line_of(&Response::err(Id::Null, ErrorObject::new(code, message))) {
            let _ = self.out.send(l).await;
        }
    }

    async fn handle_line(&mut self, line: &str) {
        let parsed = rpc::parse(line);
        if self.requests.len() >= self.limits.max_requests {
            // Notifications get no answer, not even this one.
            let reply_to = match &parsed {
                Parsed::Single(r) => r.id.clone(),
                Parsed::Batch(_) | Parsed::Invalid(_) => Some(Id::Null),
            };
            if let Some(id) = reply_to {
                let e = ErrorObject::new(
                    ErrorCode::Busy,
                    format!(
                        "more than {} requests in flight on this connection",
                        self.limits.max_requests
                    ),
                );
                if let Some(l) = line_of(&Response::err(id, e)) {
                    let _ = self.out.send(l).await;
                }
            }
            return;
        }
        // The ids to answer if the daemon must stop before the work is done.
        let pending_ids: Vec<Id> = match &parsed {
            Parsed::Single(r) => r.id.iter().cloned().collect(),
            Parsed::Batch(items) => items
                .iter()
                .filter_map(|i| i.as_ref().ok().and_then(|r| r.id.clone()))
                .collect(),
            Parsed::Invalid(_) => Vec::new(),
        };
        if rpc::is_immediate(&parsed) {
            let answer = answer(&self.service, &self.caller, &*self.events, parsed).await;
            if let Some(line) = answer.as_ref().and_then(line_of) {
                let _ = self.out.send(line).await;
            }
            return;
        }
        let (service, caller, out, events) = (
            self.service.clone(),
            self.caller.clone(),
            self.out.clone(),
            self.events.clone(),
        );
        let mut abort = self.abort.subscribe();
        self.requests.spawn(async move {
            let work = answer(&service, &caller, &*events, parsed);
            let answer = tokio::select! {
                answer = work => answer,
                _ = abort.wait_for(|stop| *stop) => cancelled(&pending_ids),
            };
            if let Some(line) = answer.as_ref().and_then(line_of) {
                let _ = out.send(line).await;
            }
        });
    }

    /// The client stopped sending. It may still be reading (a half-close, as `socat` does):
    /// its requests finish unless it is gone entirely.
    async fn linger(&mut self, shutdown: &mut watch::Receiver<bool>) {
        loop {
            tokio::select! {
                done = self.requests.join_next() => if done.is_none() { break },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if peer_gone(&self.stream).await {
                        debug!(conn = self.caller.conn, "client gone; cancelling its requests");
                        self.requests.abort_all();
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    self.drain().await;
                    break;
                }
            }
        }
    }

    /// Lets running requests finish within the grace period; the rest answer `Cancelled`.
    async fn drain(&mut self) {
        let grace = self.limits.shutdown_grace;
        if tokio::time::timeout(grace, join_all(&mut self.requests))
            .await
            .is_err()
        {
            let _ = self.abort.send(true);
            let _ = tokio::time::timeout(Duration::from_millis(500), join_all(&mut self.requests))
                .await;
            self.requests.abort_all();
        }
    }
}

/// The answer to a parsed line (`None`: nothing to send, as for notifications).
async fn answer(
    service: &Service,
    caller: &Caller,
    session: &dyn rpc::Session,
    parsed: Parsed,
) -> Option<Value> {
    match parsed {
        Parsed::Invalid(resp) => serde_json::to_value(resp).ok(),
        Parsed::Single(req) => rpc::respond_in(service, caller, session, req)
            .await
            .and_then(|r| serde_json::to_value(r).ok()),
        Parsed::Batch(items) => {
            let mut answers = Vec::new();
            for item in items {
                match item {
                    Err(resp) => answers.push(*resp),
                    Ok(req) => answers.extend(rpc::respond_in(service, caller, session, req).await),
                }
            }
            (!answers.is_empty())
                .then(|| serde_json::to_value(answers).ok())
                .flatten()
        }
    }
}

/// Shutting down past the grace period: say so instead of going silent.
fn cancelled(ids: &[Id]) -> Option<Value> {
    let cancelled = |id: Id| {
        Response::err(
            id,
            ErrorObject::new(
                ErrorCode::Cancelled,
                "oathkeyd is shutting down; try again when it is back",
            ),
        )
    };
    match ids {
        [] => None,
        [one] => serde_json::to_value(cancelled(one.clone())).ok(),
        many => serde_json::to_value(many.iter().cloned().map(cancelled).collect::<Vec<_>>()).ok(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await;
}

async fn join_all(requests: &mut JoinSet<()>) {
    while requests.join_next().await.is_some() {}
}

/// Whether the peer closed its side entirely (not just its writing half). On Linux a full close
/// shows as HUP, which tokio reports as write-closed readiness.
async fn peer_gone(stream: &Stream) -> bool {
    #[cfg(unix)]
    {
        #[allow(irrefutable_let_patterns)]
        if let Stream::UdSocket(s) = stream {
            let ready = tokio::time::timeout(
                Duration::from_millis(1),
                s.inner().ready(tokio::io::Interest::WRITABLE),
            )
            .await;
            return matches!(ready, Ok(Ok(r)) if r.is_write_closed());
        }
    }
    let _ = stream;
    false
}
