//! One actor per key: a thread that owns the key's transport and runs one exchange at a time.
//!
//! Requests reach it as closures over a channel; each carries a cancel flag that the request
//! future raises if it is dropped (the client went away), so a touch wait ends with the client.
//! No lock is held while the key works: callers wait on a oneshot channel. Reads of the same
//! TOTP token for the same time step are coalesced: the first caller's exchange answers all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oathkey_device::{Error as DeviceError, Key, Otp, TouchWait, Transport};
use oathkey_protocol::types::Event;
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, warn};

/// The key type every actor drives.
pub type DynKey = Key<Box<dyn Transport>>;

type Job = Box<dyn FnOnce(&mut DynKey) -> bool + Send>;

struct Work {
    cancel: Arc<AtomicBool>,
    operation: &'static str,
    token: Option<String>,
    job: Job,
}

/// Raises a cancel flag when dropped: tie it to a request future, and the request is
/// cancelled when the future is dropped before it finished. (Raising it after the request
/// finished is harmless: the actor only looks at it while the request runs.)
#[derive(Debug, Default)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl CancelOnDrop {
    /// A fresh flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// The flag the actor watches.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Waiters = Vec<oneshot::Sender<Result<Otp, DeviceError>>>;
type Inflight = Arc<Mutex<HashMap<(String, u64), Waiters>>>;

/// Drops the waiters of a coalesced read if its job never ran (the actor is gone), so that
/// they see "removed" instead of waiting forever.
struct InflightGuard {
    map: Inflight,
    key: (String, u64),
    /// The job took its waiters. From then on the map's entry for this token and step belongs
    /// to the next read (a caller that came after the answer), which must not be touched.
    taken: bool,
}

impl InflightGuard {
    fn take(&mut self) -> Waiters {
        self.taken = true;
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key)
            .unwrap_or_default()
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if !self.taken {
            drop(self.take());
        }
    }
}

/// Health checks for keys whose removal nothing else notices (UDP keys).
#[derive(Debug, Clone, Copy)]
pub struct Health {
    /// Ping the key after this long without requests.
    pub idle: Duration,
    /// Give up after this many failed pings in a row.
    pub failures: u32,
}

/// The async side of an actor. Cloning shares the actor.
#[derive(Clone)]
pub struct ActorHandle {
    tx: mpsc::Sender<Work>,
    inflight: Inflight,
}

impl std::fmt::Debug for ActorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle").finish_non_exhaustive()
    }
}

impl ActorHandle {
    /// Starts the actor thread for `key`. `on_exit` runs when the actor stops (key removed or
    /// every handle dropped).
    pub fn spawn(
        id: String,
        key: DynKey,
        events: broadcast::Sender<Event>,
        health: Option<Health>,
        on_exit: Box<dyn FnOnce() + Send>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name(format!("key-{id}"))
            .spawn(move || {
                actor_loop(&id, key, &rx, &events, health);
                on_exit();
            })?;
        Ok(Self {
            tx,
            inflight: Arc::default(),
        })
    }

    /// Runs `f` on the key and returns its result. `operation` and `token` describe the
    /// request in touch events. A dropped request raises `cancel`.
    pub async fn run<T, F>(
        &self,
        operation: &'static str,
        token: Option<String>,
        cancel: &CancelOnDrop,
        f: F,
    ) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DynKey) -> Result<T, DeviceError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |key| {
            let result = f(key);
            let removed = matches!(result, Err(DeviceError::Removed));
            let _ = reply.send(result);
            removed
        });
        self.tx
            .send(Work {
                cancel: cancel.flag(),
                operation,
                token,
                job,
            })
            .map_err(|_| DeviceError::Removed)?;
        // A dropped reply means the actor stopped: the key is gone.
        answer.await.unwrap_or(Err(DeviceError::Removed))
    }

    /// The code of a TOTP token for time step `step`; concurrent reads of the same token and
    /// step share one exchange. Tokens that need a touch are never shared: each read is one
    /// touch by the user.
    pub async fn code(
        &self,
        name: String,
        step: u64,
        touch: TouchWait,
        cancel: &CancelOnDrop,
    ) -> Result<Otp, DeviceError> {
        if touch == TouchWait::Expected {
            let token = Some(name.clone());
            return self
                .run("code", token, cancel, move |k| {
                    k.calculate(&name, step, touch, None)
                })
                .await;
        }
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get_mut(&(name.clone(), step)) {
                Some(waiters) => {
                    waiters.push(tx);
                    false
                }
                None => {
                    map.insert((name.clone(), step), vec![tx]);
                    true
                }
            }
        };
        if first {
            let mut guard = InflightGuard {
                map: self.inflight.clone(),
                key: (name.clone(), step),
                taken: false,
            };
            let job: Job = Box::new(move |key| {
                let result = key.calculate(&name, step, touch, None);
                let removed = matches!(result, Err(DeviceError::Removed));
                for waiter in guard.take() {
                    let _ = waiter.send(result.clone());
                }
                removed
            });
            // Shared reads are never cancelled by one caller leaving.
            let work = Work {
                cancel: Arc::default(),
                operation: "code",
                token: None,
                job,
            };
            if self.tx.send(work).is_err() {
                return Err(DeviceError::Removed);
            }
        }
        rx.await.unwrap_or(Err(DeviceError::Removed))
    }
}

fn actor_loop(
    id: &str,
    mut key: DynKey,
    rx: &mpsc::Receiver<Work>,
    events: &broadcast::Sender<Event>,
    health: Option<Health>,
) {
    let mut failed_pings = 0;
    loop {
        let work = match health {
            Some(h) => match rx.recv_timeout(h.idle) {
                Ok(work) => work,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: make sure the key is still there.
                    key.set_cancel_flag(None);
                    key.set_touch_hook(None);
                    match key.ping(b"oathkeyd") {
                        Ok(()) => failed_pings = 0,
                        Err(DeviceError::Removed) => break,
                        Err(e) => {
                            failed_pings += 1;
                            debug!(key = id, "health check failed: {e}");
                            if failed_pings >= h.failures {
                                warn!(key = id, "key stopped answering; treating it as removed");
                                break;
                            }
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(work) => work,
                Err(_) => break,
            },
        };
        if work.cancel.load(Ordering::SeqCst) {
            // The client left before its turn; nobody waits for the answer.
            continue;
        }
        key.set_cancel_flag(Some(work.cancel.clone()));
        let touched = Arc::new(AtomicBool::new(false));
        let hook_events = events.clone();
        let hook_touched = touched.clone();
        let (hook_key, operation, token) = (id.to_string(), work.operation, work.token.clone());
        key.set_touch_hook(Some(Arc::new(move || {
            hook_touched.store(true, Ordering::SeqCst);
            let _ = hook_events.send(Event::TouchNeeded {
                key: hook_key.clone(),
                operation: operation.to_string(),
                token: token.clone(),
            });
        })));
        let removed = (work.job)(&mut key);
        key.set_touch_hook(None);
        key.set_cancel_flag(None);
        if touched.load(Ordering::SeqCst) {
            let _ = events.send(Event::TouchDone {
                key: id.to_string(),
            });
        }
        if removed {
            break;
        }
    }
    debug!(key = id, "actor stopped");
}
