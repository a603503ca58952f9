//! Talking to oathkeyd off the UI thread.
//!
//! - The **worker** thread owns one [`Client`]: commands in, [`Update`]s out. While the daemon
//!   is gone it tries to connect once a second and says so once.
//! - The **events** thread has a connection of its own, subscribed with `events.subscribe`,
//!   and forwards every event. A closed events connection is how an idle app notices that the
//!   daemon went away: it tells the worker, which drops its connection, fails to connect again
//!   and says why (so the window says "not running", with how to start it).
//! - Requests that can wait for a long time (a touch, a seed file to write) run on a
//!   short-lived thread with their own connection, so that codes keep refreshing meanwhile.
//!   Closing that connection (the app quits) makes the daemon cancel the wait.
//!
//! Each update wakes the UI (`Waker`), which then repaints; the UI thread never waits on the
//! socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use oathkey_protocol::client::{Client, ClientError};
use oathkey_protocol::methods::{self as m, Method, NoParams};
use oathkey_protocol::types::{Code, CodeParams, CodesParams, KeyParams};
use oathkey_seedfile::export::{Labels, export_to_file};

use crate::error::DaemonError;
use crate::model::{Command, CreatedSummary, ExportSummary, Purpose, TokenRef, Update};

/// How often a missing daemon is tried again.
pub const RETRY: Duration = Duration::from_secs(1);

/// Longest wait for a quick request (listing, codes without touch) before the connection is
/// dropped and made again.
const QUICK_TIMEOUT: Duration = Duration::from_secs(30);

/// Called after each update, to make the UI repaint.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct Outbox {
    tx: Sender<Update>,
    waker: Waker,
}

impl Outbox {
    /// Sends an update and wakes the UI; false once the app is gone.
    fn send(&self, update: Update) -> bool {
        let sent = self.tx.send(update).is_ok();
        (self.waker)();
        sent
    }
}

/// The running backend; dropping it stops its threads (within about a second).
pub struct Backend {
    commands: Sender<Command>,
    updates: Receiver<Update>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// Starts the worker and events threads for the daemon at `socket`.
    pub fn start(socket: PathBuf, waker: Waker) -> std::io::Result<Self> {
        let (commands, command_rx) = mpsc::channel();
        let (update_tx, updates) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let out = Outbox {
            tx: update_tx,
            waker,
        };
        {
            let (socket, out, lost, stop) =
                (socket.clone(), out.clone(), lost.clone(), stop.clone());
            thread::Builder::new()
                .name("oathkey-worker".into())
                .spawn(move || Worker::new(socket, out, lost, stop).run(command_rx))?;
        }
        {
            let stop = stop.clone();
            thread::Builder::new()
                .name("oathkey-events".into())
                .spawn(move || events(&socket, &out, &lost, &stop))?;
        }
        Ok(Self {
            commands,
            updates,
            stop,
        })
    }

    /// Hands a command to the worker.
    pub fn send(&self, command: Command) {
        // The worker only stops when this backend is dropped.
        let _ = self.commands.send(command);
    }

    /// The updates that arrived since the last call.
    pub fn updates(&self) -> Vec<Update> {
        self.updates.try_iter().collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether an error means the connection itself is gone (rather than one call failing). A
/// request too long to send was never sent: the connection is as good as before.
fn connection_gone(e: &ClientError) -> bool {
    !matches!(e, ClientError::Rpc(_) | ClientError::RequestTooLarge { .. })
}

fn quick_call<M: Method>(c: &mut Client, params: M::Params) -> Result<M::Result, ClientError> {
    c.request_with::<M>(params, Some(QUICK_TIMEOUT), |_| {})
}

struct Worker {
    socket: PathBuf,
    out: Outbox,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    client: Option<Client>,
    /// What was last said about an unreachable daemon (said once, not every second).
    reported: Option<DaemonError>,
    next_attempt: Instant,
}

impl Worker {
    fn new(socket: PathBuf, out: Outbox, lost: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Self {
        Self {
            socket,
            out,
            lost,
            stop,
            client: None,
            reported: None,
            next_attempt: Instant::now(),
        }
    }

    fn run(mut self, commands: Receiver<Command>) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if self.lost.swap(false, Ordering::Relaxed) {
                self.client = None;
            }
            if self.client.is_none() && Instant::now() >= self.next_attempt {
                self.connect();
            }
            let wait = if self.client.is_none() {
                self.next_attempt.saturating_duration_since(Instant::now())
            } else {
                RETRY
            };
            match commands.recv_timeout(wait.max(Duration::from_millis(10))) {
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn connect(&mut self) {
        match Client::connect(&self.socket) {
            Ok(client) => {
                tracing::info!(socket = %self.socket.display(), "connected to oathkeyd");
                let hello = client.hello().cloned();
                self.client = Some(client);
                self.reported = None;
                if let Some(hello) = hello {
                    self.out.send(Update::Connected { hello });
                }
            }
            Err(e) => {
                self.next_attempt = Instant::now() + RETRY;
                let error = DaemonError::from(e);
                if self.reported.as_ref() != Some(&error) {
                    tracing::info!("{error}");
                    self.reported = Some(error.clone());
                    self.out.send(Update::Disconnected { error });
                }
            }
        }
    }

    /// A failed call: if the connection is gone, forget it and say so.
    fn failed(&mut self, e: ClientError) -> DaemonError {
        let gone = connection_gone(&e);
        let error = DaemonError::from(e);
        if gone {
            tracing::info!("lost oathkeyd: {error}");
            self.client = None;
            self.next_attempt = Instant::now();
            self.reported = Some(error.clone());
            self.out.send(Update::Disconnected {
                error: error.clone(),
            });
        }
        error
    }

    fn handle(&mut self, command: Command) {
        // Debug of a command redacts the seed (`SecretText`); tests/desktop/logs.rs checks it at
        // trace.
        match &command {
            Command::Refresh { .. } | Command::GetCode { .. } => {
                tracing::trace!(?command, "request")
            }
            _ => tracing::debug!(?command, "request"),
        }
        match command {
            Command::Refresh { keys, at } => {
                let result = match self.client.as_mut() {
                    Some(c) => refresh(c, keys, at, &self.out),
                    None => {
                        self.out.send(Update::RefreshFailed {
                            error: DaemonError::not_running(&self.socket),
                        });
                        return;
                    }
                };
                if let Err(e) = result {
                    let error = self.failed(e);
                    self.out.send(Update::RefreshFailed { error });
                }
            }
            Command::GetCode {
                token,
                at,
                purpose: Purpose::Next,
            } => {
                let result = match self.client.as_mut() {
                    Some(c) => get_code(c, &token, at, true),
                    None => {
                        self.out.send(Update::Code {
                            token,
                            purpose: Purpose::Next,
                            result: Err(DaemonError::not_running(&self.socket)),
                        });
                        return;
                    }
                };
                let result = result.map_err(|e| self.failed(e));
                self.out.send(Update::Code {
                    token,
                    purpose: Purpose::Next,
                    result,
                });
            }
            slow => self.spawn_slow(slow),
        }
    }

    /// Runs a request that may wait long on a connection of its own.
    fn spawn_slow(&self, command: Command) {
        let socket = self.socket.clone();
        let out = self.out.clone();
        let spawned = thread::Builder::new()
            .name("oathkey-request".into())
            .spawn(move || run_slow(&socket, command, &out));
        if let Err(e) = spawned {
            tracing::error!("cannot start a thread: {e}");
        }
    }
}

fn refresh(c: &mut Client, keys: bool, at: Option<u64>, out: &Outbox) -> Result<(), ClientError> {
    if keys {
        let list = quick_call::<m::KeysList>(c, NoParams)?;
        let ids: Vec<String> = list.keys.iter().map(|k| k.id.clone()).collect();
        out.send(Update::Keys(list));
        for id in ids {
            let params = KeyParams {
                key: Some(id.clone()),
            };
            match quick_call::<m::KeysGetConfig>(c, params) {
                Ok(settings) => {
                    out.send(Update::Settings { key: id, settings });
                }
                // The key went away meanwhile, or cannot tell: its settings stay unknown.
                Err(ClientError::Rpc(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let params = CodesParams {
        key: None,
        at,
        include_touch: false,
    };
    let entries = quick_call::<m::CodesAll>(c, params)?;
    out.send(Update::Codes(entries));
    Ok(())
}

fn get_code(
    c: &mut Client,
    token: &TokenRef,
    at: Option<u64>,
    quick: bool,
) -> Result<Code, ClientError> {
    let params = CodeParams {
        key: Some(token.key.clone()),
        token: Some(token.name.clone()),
        at,
    };
    // A touch waits about 15 s on the key; the daemon ends the wait itself.
    let timeout = quick.then_some(QUICK_TIMEOUT);
    c.request_with::<m::CodesGet>(params, timeout, |_| {})
}

fn run_slow(socket: &Path, command: Command, out: &Outbox) {
    let connected = Client::connect(socket).map_err(DaemonError::from);
    let update = match command {
        Command::GetCode { token, at, purpose } => {
            let result = connected.and_then(|mut c| Ok(get_code(&mut c, &token, at, false)?));
            Update::Code {
                token,
                purpose,
                result,
            }
        }
        Command::SetConfig { part, params } => {
            let key = params.key.clone().unwrap_or_default();
            let result = connected.and_then(|mut c| Ok(c.request::<m::KeysSetConfig>(params)?));
            Update::ConfigApplied { key, part, result }
        }
        Command::CreateToken(params) => {
            let result = connected.and_then(|mut c| {
                let created = c.request::<m::TokensCreate>(params)?;
                // The answer carries the secret; only what the form reports is kept.
                Ok(CreatedSummary {
                    key: created.token.key,
                    serial: created.serial,
                    account: created.token.account,
                })
            });
            Update::TokenCreated(result)
        }
        Command::Export(req) => {
            let result = connected.and_then(|mut c| {
                let done = export_to_file(
                    &mut c,
                    req.params,
                    req.format,
                    &req.path,
                    req.mode,
                    false,
                    &Labels::default(),
                )?;
                Ok(ExportSummary {
                    path: req.path,
                    count: done.records.len(),
                    format: req.format,
                })
            });
            Update::Exported(result)
        }
        Command::Refresh { .. } => return,
    };
    log_outcome(&update);
    out.send(update);
}

/// Names what a long request did, or why it failed (never a seed: the updates hold none).
fn log_outcome(update: &Update) {
    match update {
        Update::Code {
            token,
            result: Err(e),
            ..
        } => tracing::warn!(token = %token.name, "no code: {e}"),
        Update::ConfigApplied {
            key,
            part,
            result: Ok(settings),
        } => tracing::info!(key, ?part, ?settings, "settings applied"),
        Update::ConfigApplied {
            key,
            part,
            result: Err(e),
        } => tracing::warn!(key, ?part, "settings not applied: {e}"),
        Update::TokenCreated(Ok(t)) => tracing::info!(
            key = %t.key,
            serial = %t.serial,
            account = %t.account,
            "token saved"
        ),
        Update::TokenCreated(Err(e)) => tracing::warn!("token not saved: {e}"),
        Update::Exported(Ok(x)) => tracing::info!(
            path = %x.path.display(),
            count = x.count,
            format = ?x.format,
            "seed file written"
        ),
        Update::Exported(Err(e)) => tracing::warn!("seed file not written: {e}"),
        _ => {}
    }
}

fn events(socket: &Path, out: &Outbox, lost: &AtomicBool, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let subscribed = Client::connect(socket).and_then(|mut c| {
            quick_call::<m::EventsSubscribe>(&mut c, NoParams)?;
            Ok(c)
        });
        if let Ok(mut client) = subscribed {
            if !out.send(Update::EventsConnected) {
                return;
            }
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                match client.next_event(Duration::from_millis(500)) {
                    Ok(Some(event)) => {
                        if !out.send(Update::Event(event)) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The worker tells the UI (with the reason its reconnection fails),
                        // so that there is one voice about the connection.
                        tracing::info!("events connection lost: {e}");
                        lost.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        // Unreachable: the worker tells the UI; try again in a second.
        let until = Instant::now() + RETRY;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}
