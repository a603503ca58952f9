//! The JSON-RPC frontend on the local socket: accepts clients within their budget and hands
//! each to a [`connection::Connection`], which reads its lines, runs its requests concurrently
//! and writes answers and events ([`events`]). Bad input gets an error or a closed connection;
//! nothing a client sends can stop the others from being served.

mod connection;
mod events;

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon;
use oathkey_protocol::ErrorCode;
use oathkey_protocol::codec::encode_line;
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Response};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::auth::Caller;
use crate::budget::{Budget, BudgetLimits, Refused};
use crate::service::Service;
use connection::Connection;

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

/// Serves clients on `listener` until `shutdown` completes; then stops accepting and lets the
/// connections drain (within `limits.shutdown_grace`). The binary, the tests and the bench
/// all start the socket frontend through this.
pub async fn serve(
    listener: Listener,
    service: Arc<Service>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    // Connections watch this to drain when the daemon stops.
    let (stopping, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
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
                let (service, stop_rx) = (service.clone(), stop_rx.clone());
                conns.spawn(async move {
                    Connection::new(stream, caller, service, limits).run(stop_rx).await;
                    drop(slot);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    let _ = stopping.send(true);
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
