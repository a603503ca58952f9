//! One actor per key: a thread that owns the key's transport and runs one exchange at a time.
//!
//! Requests reach it as closures over a channel; each carries a cancel flag that the request
//! future raises if it is dropped (the client went away), so a touch wait ends with the client.
//! No lock is held while the key works: callers wait on a oneshot channel. Reads of the same
//! TOTP token for the same time step are coalesced: the first caller's exchange answers all.
//!
//! Work comes in two lanes. Quick work (token lists, reads known to need no touch) goes before
//! work that may wait for a touch, which can hold the key for the whole touch timeout: a
//! queue of touch waits never delays a read that needs none. A code read that waits for a touch
//! is also *preempted* when quick work arrives: it is cancelled on the key, the quick work runs,
//! and the read starts again at the head of its lane (a few times at most, so a stream of quick
//! reads cannot starve it). Writes and configuration changes are never preempted.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oathkey_device::{Error as DeviceError, Otp, TouchWait};
use oathkey_protocol::types::{Event, Operation};
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, warn};

pub use oathkey_device::DynKey;

type Job = Box<dyn FnOnce(&mut DynKey) -> bool + Send>;

struct Work {
    cancel: Arc<AtomicBool>,
    operation: Operation,
    token: Option<String>,
    job: Job,
    lane: Lane,
    /// Raised with `cancel` when this work was cancelled to let quick work run (not by its
    /// caller); `None`: never preempted.
    preempted: Option<Arc<AtomicBool>>,
    /// A preempted read starting again keeps its place: the head of its lane.
    front: bool,
}

/// Which queue work waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Known to finish without a touch: runs first.
    Quick,
    /// May wait for a touch (or for a write to settle).
    Slow,
}

/// How often one code read may be preempted before it runs to its end.
const MAX_PREEMPTIONS: u32 = 3;

/// The preemptible work the actor runs now: its flags.
#[derive(Debug, Default)]
struct Running {
    cancel: Option<Arc<AtomicBool>>,
    preempted: Option<Arc<AtomicBool>>,
}

/// Raises a cancel flag when dropped: owned by a request future, so the request is cancelled
/// when the future is dropped before it finished. (Raising it after the request finished is
/// harmless: the actor only looks at it while the request runs.)
#[derive(Debug, Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl CancelOnDrop {
    /// A fresh flag.
    fn new() -> Self {
        Self::default()
    }

    /// The flag the actor watches.
    fn flag(&self) -> Arc<AtomicBool> {
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
    running: Arc<Mutex<Running>>,
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
        let running = Arc::new(Mutex::new(Running::default()));
        let actor_running = running.clone();
        std::thread::Builder::new()
            .name(format!("key-{id}"))
            .spawn(move || {
                actor_loop(&id, key, &rx, &events, health, &actor_running);
                on_exit();
            })?;
        Ok(Self {
            tx,
            inflight: Arc::default(),
            running,
        })
    }

    /// Queues work; quick work preempts a touch wait in progress.
    fn send(&self, work: Work) -> Result<(), DeviceError> {
        let lane = work.lane;
        self.tx.send(work).map_err(|_| DeviceError::Removed)?;
        if lane == Lane::Quick {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(cancel), Some(preempted)) =
                (running.cancel.take(), running.preempted.take())
            {
                preempted.store(true, Ordering::SeqCst);
                cancel.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Runs `f` on the key and returns its result: work that may wait for a touch or change
    /// the key (never preempted). `operation` and `token` describe the request in touch
    /// events. Dropping the returned future cancels the work (a touch wait ends at once).
    pub async fn run<T, F>(
        &self,
        operation: Operation,
        token: Option<String>,
        f: F,
    ) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DynKey) -> Result<T, DeviceError> + Send + 'static,
    {
        let cancel = CancelOnDrop::new();
        self.run_in(Lane::Slow, operation, token, &cancel, None, false, f)
            .await
    }

    /// Waits until the actor has run everything queued before and freed all of it, down to the
    /// last request's memory. The fuzzer uses it so that an input's allocations are freed
    /// within the input (libFuzzer's leak check counts them); `false` when the actor is gone.
    pub async fn settle(&self) -> bool {
        let cancel = CancelOnDrop::new();
        let flag = cancel.flag();
        // Requests run in order: once this one is answered, every earlier one is done.
        let done = self
            .run_in(
                Lane::Slow,
                Operation::List,
                None,
                &cancel,
                None,
                false,
                |_| Ok(()),
            )
            .await;
        if done.is_err() {
            return false;
        }
        // The request's copy of the flag is the last thing the actor drops with it: two left
        // (the guard's and ours) means it is all gone.
        let mut spins = 0u32;
        while Arc::strong_count(&flag) > 2 {
            spins += 1;
            if spins < 1000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        true
    }

    /// Like [`Self::run`], for work known to finish without a touch (a token list): it goes
    /// before queued touch waits.
    pub async fn run_quick<T, F>(&self, operation: Operation, f: F) -> Result<T, DeviceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DynKey) -> Result<T, DeviceError> + Send + 'static,
    {
        let cancel = CancelOnDrop::new();
        self.run_in(Lane::Quick, operation, None, &cancel, None, false, f)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_in<T, F>(
        &self,
        lane: Lane,
        operation: Operation,
        token: Option<String>,
        cancel: &CancelOnDrop,
        preempted: Option<Arc<AtomicBool>>,
        front: bool,
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
        self.send(Work {
            cancel: cancel.flag(),
            operation,
            token,
            job,
            lane,
            preempted,
            front,
        })?;
        // A dropped reply means the actor stopped: the key is gone.
        answer.await.unwrap_or(Err(DeviceError::Removed))
    }

    /// A code read that waits for a touch: preemptible by quick work, a few times, and then
    /// started again at the head of its lane.
    async fn touch_code(
        &self,
        name: String,
        step: u64,
        touch: TouchWait,
    ) -> Result<Otp, DeviceError> {
        let mut attempt = 0;
        loop {
            // One flag per attempt: the caller leaving drops this future, and with it the flag
            // of the attempt under way.
            let cancel = CancelOnDrop::new();
            let preempted = (attempt < MAX_PREEMPTIONS).then(|| Arc::new(AtomicBool::new(false)));
            let read_name = name.clone();
            let result = self
                .run_in(
                    Lane::Slow,
                    Operation::Code,
                    Some(name.clone()),
                    &cancel,
                    preempted.clone(),
                    attempt > 0,
                    move |k| k.calculate(&read_name, step, touch),
                )
                .await;
            match result {
                // Cancelled on the key for quick work: whatever the key then answered (a
                // cancelled wait, or "not touched"), the read starts again. A key that is gone is
                // gone.
                Err(e)
                    if e != DeviceError::Removed
                        && preempted.is_some_and(|p| p.load(Ordering::SeqCst)) =>
                {
                    debug!(token = %name, attempt, "touch wait preempted by quick work; starting it again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The code of a TOTP token for time step `step`; concurrent reads of the same token and
    /// step share one exchange. Tokens that need a touch are never shared: each read is one
    /// touch by the user.
    pub async fn code(
        &self,
        name: String,
        step: u64,
        touch: TouchWait,
    ) -> Result<Otp, DeviceError> {
        if touch == TouchWait::Expected {
            return self.touch_code(name, step, touch).await;
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
                let result = key.calculate(&name, step, touch);
                let removed = matches!(result, Err(DeviceError::Removed));
                for waiter in guard.take() {
                    let _ = waiter.send(result.clone());
                }
                removed
            });
            // Shared reads are never cancelled by one caller leaving. A read that may wait for
            // a touch (the key did not say) waits behind quick work, but is not preempted:
            // its waiters share it.
            let work = Work {
                cancel: Arc::default(),
                operation: Operation::Code,
                token: None,
                job,
                lane: if touch == TouchWait::Never {
                    Lane::Quick
                } else {
                    Lane::Slow
                },
                preempted: None,
                front: false,
            };
            self.send(work)?;
        }
        rx.await.unwrap_or(Err(DeviceError::Removed))
    }
}

/// Work waiting for the key, by lane.
#[derive(Default)]
struct Lanes {
    quick: VecDeque<Work>,
    slow: VecDeque<Work>,
}

impl Lanes {
    fn push(&mut self, work: Work) {
        let lane = match work.lane {
            Lane::Quick => &mut self.quick,
            Lane::Slow => &mut self.slow,
        };
        if work.front {
            lane.push_front(work);
        } else {
            lane.push_back(work);
        }
    }

    fn take_from(&mut self, rx: &mpsc::Receiver<Work>) {
        while let Ok(work) = rx.try_recv() {
            self.push(work);
        }
    }

    fn next(&mut self) -> Option<Work> {
        self.quick.pop_front().or_else(|| self.slow.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.quick.is_empty() && self.slow.is_empty()
    }
}

fn actor_loop(
    id: &str,
    mut key: DynKey,
    rx: &mpsc::Receiver<Work>,
    events: &broadcast::Sender<Event>,
    health: Option<Health>,
    running: &Mutex<Running>,
) {
    let mut failed_pings = 0;
    let mut lanes = Lanes::default();
    loop {
        lanes.take_from(rx);
        let next = if lanes.is_empty() { None } else { lanes.next() };
        let work = match (next, health) {
            (Some(work), _) => work,
            (None, Some(h)) => match rx.recv_timeout(h.idle) {
                Ok(work) => {
                    lanes.push(work);
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: make sure the key is still there.
                    key.set_cancel_flag(None);
                    key.set_touch_hook(None);
                    match key.ping() {
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
            (None, None) => match rx.recv() {
                Ok(work) => {
                    lanes.push(work);
                    continue;
                }
                Err(_) => break,
            },
        };
        if work.cancel.load(Ordering::SeqCst) {
            // The client left before its turn; nobody waits for the answer.
            continue;
        }
        if let Some(preempted) = &work.preempted {
            *running.lock().unwrap_or_else(|p| p.into_inner()) = Running {
                cancel: Some(work.cancel.clone()),
                preempted: Some(preempted.clone()),
            };
            // Quick work that came in just now would have found nothing to preempt.
            lanes.take_from(rx);
            if !lanes.quick.is_empty() {
                *running.lock().unwrap_or_else(|p| p.into_inner()) = Running::default();
                lanes.slow.push_front(work);
                continue;
            }
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
                operation,
                token: token.clone(),
            });
        })));
        let removed = (work.job)(&mut key);
        if work.preempted.is_some() {
            *running.lock().unwrap_or_else(|p| p.into_inner()) = Running::default();
        }
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
