//! The JSON-RPC frontend on the local socket: accepts clients, reads lines, runs requests
//! concurrently, writes answers and events. Bad input gets an error or a closed connection;
//! nothing a client sends can stop the others from being served.

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon;
use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::{LineBuffer, LineError, encode_line};
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Notification, Response};
use oathkey_protocol::types::{Event, method};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::auth::Caller;
use crate::budget::{Budget, BudgetLimits, Refused};
use crate::rpc::{self, Parsed};
use crate::service::Service;

/// Limits that protect the daemon from its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most clients at once.
    pub max_clients: usize,
    /// Most connections one reader (uid) may hold.
    pub max_clients_per_user: usize,
    /// Connections kept for admins.
    pub admin_reserved: usize,
    /// How long a reader's connection may sit with nothing in flight and no subscription.
    pub idle_timeout: Duration,
    /// Most requests one client may have in flight.
    pub max_requests: usize,
    /// Longest line.
    pub max_line: usize,
    /// How long a line may stay unfinished.
    pub stalled_line: Duration,
    /// How long in-flight requests get at shutdown.
    pub shutdown_grace: Duration,
}

/// Answers and events queued for one client's writer.
const OUT_QUEUE: usize = 256;

/// Serves clients until `shutdown` turns true; then lets connections drain.
pub async fn serve(
    listener: Listener,
    service: Arc<Service>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let budget = Budget::new(BudgetLimits {
        max_clients: limits.max_clients,
        per_user: limits.max_clients_per_user,
        admin_reserved: limits.admin_reserved,
    });
    let mut warned = RefusalLog::default();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = crate::socket::accept(&listener) => {
                let stream = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (uid, gid, pid) = peer(&stream);
                let caller = service.caller(crate::auth::next_conn_id(), uid, gid, pid);
                let slot = match budget.admit(uid, caller.role) {
                    Ok(slot) => slot,
                    Err(refused) => {
                        warned.refused(&caller, &refused);
                        tokio::spawn(refuse(stream, refused.to_string()));
                        continue;
                    }
                };
                let (service, shutdown) = (service.clone(), shutdown.clone());
                conns.spawn(async move {
                    connection(stream, caller, service, limits, shutdown).await;
                    drop(slot);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // No new clients while the others finish: a connect now fails at once (the daemon is going
    // away) instead of waiting in the backlog of a socket nobody accepts on any more.
    drop(listener);
    info!(
        clients = conns.len(),
        "shutting down: letting clients finish"
    );
    let drained = tokio::time::timeout(limits.shutdown_grace + Duration::from_secs(1), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// Logs refused connections without letting one user flood the log: a refusal per uid is
/// logged once, then again only after 10 s.
#[derive(Debug, Default)]
struct RefusalLog(std::collections::HashMap<Option<u32>, tokio::time::Instant>);

impl RefusalLog {
    fn refused(&mut self, caller: &Caller, why: &Refused) {
        let now = tokio::time::Instant::now();
        self.0
            .retain(|_, at| now.duration_since(*at) < Duration::from_secs(10));
        if self.0.insert(caller.uid, now).is_none() {
            warn!(uid = ?caller.uid, pid = ?caller.pid, role = ?caller.role, "refusing a connection: {why}");
        }
    }
}

async fn refuse(stream: Stream, why: String) {
    let answer = Response::err(Id::Null, ErrorObject::new(ErrorCode::Busy, why));
    if let Ok(line) = encode_line(&answer) {
        let _ = (&stream).write_all(line.as_bytes()).await;
    }
}

fn peer(stream: &Stream) -> (Option<u32>, Option<u32>, Option<i32>) {
    match stream.peer_creds() {
        Ok(creds) => (creds.euid(), creds.egid(), creds.pid()),
        Err(e) => {
            warn!("no peer credentials: {e}");
            (None, None, None)
        }
    }
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

fn line_of<T: serde::Serialize>(message: &T) -> Option<String> {
    encode_line(message).ok()
}

/// Why reading stopped.
enum End {
    Eof,
    Broken,
    Shutdown,
}

async fn connection(
    stream: Stream,
    caller: Caller,
    service: Arc<Service>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let conn = caller.conn;
    let caller = Arc::new(caller);
    debug!(conn, uid = ?caller.uid, pid = ?caller.pid, role = ?caller.role, "client connected");
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

    let (abort_tx, abort_rx) = watch::channel(false);
    let mut buffer = LineBuffer::new(limits.max_line);
    let mut requests: JoinSet<()> = JoinSet::new();
    let mut events: Option<tokio::task::JoinHandle<()>> = None;
    let mut chunk = vec![0u8; 8192];
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut last_active = tokio::time::Instant::now();
    let mut reader = &*stream;
    let end = loop {
        let stall_deadline = partial_since.map(|t| t + limits.stalled_line);
        // A reader's connection that holds nothing (no request, no subscription, no half
        // line) is closed after a while: idle connections must not pile up against the budget.
        let idle_deadline = (!caller.is_admin()
            && requests.is_empty()
            && events.is_none()
            && partial_since.is_none())
        .then(|| last_active + limits.idle_timeout);
        tokio::select! {
            read = reader.read(&mut chunk) => {
                last_active = tokio::time::Instant::now();
                let n = match read {
                    Ok(0) => break End::Eof,
                    Ok(n) => n,
                    Err(_) => break End::Broken,
                };
                buffer.extend(&chunk[..n]);
                let mut broken = false;
                let mut completed = false;
                loop {
                    match buffer.next_line() {
                        Ok(Some(line)) => {
                            completed = true;
                            if line.trim().is_empty() {
                                continue;
                            }
                            handle_line(&line, &service, &caller, &out, &mut requests, &mut events, limits, &abort_rx).await;
                        }
                        Ok(None) => break,
                        Err(LineError::TooLong { limit }) => {
                            let e = ErrorObject::new(ErrorCode::RequestTooLarge, format!("request line longer than {limit} bytes; closing"));
                            if let Some(l) = line_of(&Response::err(Id::Null, e)) {
                                let _ = out.send(l).await;
                            }
                            broken = true;
                            break;
                        }
                        Err(LineError::NotUtf8) => {
                            let e = ErrorObject::new(ErrorCode::ParseError, "request is not UTF-8");
                            if let Some(l) = line_of(&Response::err(Id::Null, e)) {
                                let _ = out.send(l).await;
                            }
                        }
                    }
                }
                if broken {
                    break End::Broken;
                }
                // The clock runs per line: it starts when a line starts, not at the first byte
                // of a busy connection.
                partial_since = match (buffer.pending() > 0, completed) {
                    (false, _) => None,
                    (true, true) => Some(tokio::time::Instant::now()),
                    (true, false) => Some(partial_since.unwrap_or_else(tokio::time::Instant::now)),
                };
            }
            Some(_) = requests.join_next(), if !requests.is_empty() => {
                last_active = tokio::time::Instant::now();
            }
            _ = async { tokio::time::sleep_until(stall_deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if stall_deadline.is_some() => {
                debug!(conn, "client left a line unfinished for too long; closing");
                break End::Broken;
            }
            _ = async { tokio::time::sleep_until(idle_deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if idle_deadline.is_some() => {
                debug!(conn, "reader idle for too long; closing");
                break End::Broken;
            }
            _ = shutdown.changed() => break End::Shutdown,
        }
    };
    match end {
        End::Eof => {
            // The client stopped sending. It may still be reading (a half-close, as `socat`
            // does); let its requests finish unless it is gone entirely.
            loop {
                tokio::select! {
                    done = requests.join_next() => if done.is_none() { break },
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if peer_gone(&stream).await {
                            debug!(conn, "client gone; cancelling its requests");
                            requests.abort_all();
                            break;
                        }
                    }
                    _ = shutdown.changed() => {
                        drain(&mut requests, limits.shutdown_grace, &abort_tx).await;
                        break;
                    }
                }
            }
        }
        End::Shutdown => drain(&mut requests, limits.shutdown_grace, &abort_tx).await,
        End::Broken => requests.abort_all(),
    }
    // Aborted requests are dropped, which raises their cancel flags.
    while requests.join_next().await.is_some() {}
    if let Some(e) = events {
        e.abort();
    }
    service.disconnected(conn);
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    debug!(conn, "client disconnected");
}

/// Lets in-flight requests finish within the grace period; the rest answer "cancelled".
async fn drain(requests: &mut JoinSet<()>, grace: Duration, abort: &watch::Sender<bool>) {
    if tokio::time::timeout(grace, join_all(requests))
        .await
        .is_err()
    {
        let _ = abort.send(true);
        let _ = tokio::time::timeout(Duration::from_millis(500), join_all(requests)).await;
        requests.abort_all();
    }
}

async fn join_all(requests: &mut JoinSet<()>) {
    while requests.join_next().await.is_some() {}
}

#[allow(clippy::too_many_arguments)]
async fn handle_line(
    line: &str,
    service: &Arc<Service>,
    caller: &Arc<Caller>,
    out: &mpsc::Sender<String>,
    requests: &mut JoinSet<()>,
    events: &mut Option<tokio::task::JoinHandle<()>>,
    limits: Limits,
    abort: &watch::Receiver<bool>,
) {
    let parsed = rpc::parse(line);
    let subscribes = |p: &Parsed| match p {
        Parsed::Single(r) => rpc::is_subscribe(r),
        Parsed::Batch(items) => items
            .iter()
            .any(|i| matches!(i, Ok(r) if rpc::is_subscribe(r))),
        Parsed::Invalid(_) => false,
    };
    if requests.len() >= limits.max_requests {
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
                    limits.max_requests
                ),
            );
            if let Some(l) = line_of(&Response::err(id, e)) {
                let _ = out.send(l).await;
            }
        }
        return;
    }
    if subscribes(&parsed) && events.is_none() {
        *events = Some(tokio::spawn(forward_events(
            service.subscribe(),
            out.clone(),
        )));
    }
    let (service, caller, out) = (service.clone(), caller.clone(), out.clone());
    // The ids to answer if the daemon must stop before the work is done.
    let pending_ids: Vec<Id> = match &parsed {
        Parsed::Single(r) => r.id.iter().cloned().collect(),
        Parsed::Batch(items) => items
            .iter()
            .filter_map(|i| i.as_ref().ok().and_then(|r| r.id.clone()))
            .collect(),
        Parsed::Invalid(_) => Vec::new(),
    };
    let mut abort = abort.clone();
    requests.spawn(async move {
        let work = async {
        let answer: Option<Value> = match parsed {
            Parsed::Invalid(resp) => serde_json::to_value(resp).ok(),
            Parsed::Single(req) => rpc::respond(&service, &caller, req)
                .await
                .and_then(|r| serde_json::to_value(r).ok()),
            Parsed::Batch(items) => {
                let mut answers = Vec::new();
                for item in items {
                    match item {
                        Err(resp) => answers.push(*resp),
                        Ok(req) => answers.extend(rpc::respond(&service, &caller, req).await),
                    }
                }
                (!answers.is_empty())
                    .then(|| serde_json::to_value(answers).ok())
                    .flatten()
            }
        };
        answer
        };
        let answer = tokio::select! {
            answer = work => answer,
            _ = abort.wait_for(|stop| *stop) => {
                // Shutting down past the grace period: say so instead of going silent.
                let cancelled = |id: Id| {
                    Response::err(id, ErrorObject::new(ErrorCode::Cancelled, "oathkeyd is shutting down; try again when it is back"))
                };
                match pending_ids.as_slice() {
                    [] => None,
                    [one] => serde_json::to_value(cancelled(one.clone())).ok(),
                    many => serde_json::to_value(many.iter().cloned().map(cancelled).collect::<Vec<_>>()).ok(),
                }
            }
        };
        if let Some(line) = answer.as_ref().and_then(line_of) {
            let _ = out.send(line).await;
        }
    });
}

async fn forward_events(mut rx: broadcast::Receiver<Event>, out: mpsc::Sender<String>) {
    let mut lost: u64 = 0;
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lost += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if lost > 0 {
            let note = Notification {
                jsonrpc: "2.0".into(),
                method: method::EVENT.into(),
                params: serde_json::to_value(Event::EventsLost { count: lost })
                    .unwrap_or(Value::Null),
            };
            if let Some(l) = line_of(&note)
                && out.try_send(l).is_ok()
            {
                lost = 0;
            }
        }
        let note = Notification {
            jsonrpc: "2.0".into(),
            method: method::EVENT.into(),
            params: serde_json::to_value(&event).unwrap_or(Value::Null),
        };
        let Some(line) = line_of(&note) else { continue };
        match out.try_send(line) {
            Ok(()) => {}
            // A client that does not read its events loses them, not the daemon's memory.
            Err(mpsc::error::TrySendError::Full(_)) => lost += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
