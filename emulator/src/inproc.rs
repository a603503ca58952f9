//! The in-process front: the virtual key as a [`Transport`] the device crate uses directly.
//!
//! A [`VirtualKeyHandle`] owns the key; [`VirtualKeyHandle::connect`] opens a port, like opening
//! the key's hidraw node. As with hidraw, every open port receives every report the key sends
//! and the host side picks its channel's reports out, so two ports on one key behave like a
//! browser and the daemon sharing a real key. Unplugging makes every open port fail with
//! "removed"; after a replug, new ports work again (old ones stay dead, like old file handles).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oathkey_device::ctaphid::wire::Report;
use oathkey_device::model::{VIRTUAL_PID, VIRTUAL_PRODUCT, VIRTUAL_VID};
use oathkey_device::{DeviceInfo, Transport, TransportError};

use crate::config::{Clock, Config, SystemClock, TouchPolicy};
use crate::device::{Stats, VirtualKey};
use crate::faults::Faults;
use crate::state::{KeyState, StateError, StateFile};

struct Inner {
    key: VirtualKey,
    /// Reports waiting to be read, per open port.
    ports: HashMap<u64, VecDeque<Report>>,
    next_port: u64,
    /// Bumped by every unplug; ports from an older generation are dead.
    generation: u64,
    plugged: bool,
}

impl Inner {
    /// Moves every due report from the key to every open port; says whether any moved.
    fn pump(&mut self, now: Instant) -> bool {
        self.key.poll(now);
        let mut moved = false;
        while let Some((_, report)) = self.key.take_output(now) {
            moved = true;
            for queue in self.ports.values_mut() {
                queue.push_back(report);
            }
        }
        moved
    }
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    clock: Arc<dyn Clock>,
    info: DeviceInfo,
}

/// Owns a virtual key and hands out transports to it.
#[derive(Clone)]
pub struct VirtualKeyHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for VirtualKeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualKeyHandle")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

impl VirtualKeyHandle {
    /// A virtual key with fresh in-memory state.
    pub fn new(config: Config) -> Self {
        Self::from_key(VirtualKey::new(config), Arc::new(SystemClock))
    }

    /// A virtual key whose state lives in `path`.
    pub fn open(config: Config, path: impl Into<std::path::PathBuf>) -> Result<Self, StateError> {
        let key = VirtualKey::open(config, StateFile::new(path))?;
        Ok(Self::from_key(key, Arc::new(SystemClock)))
    }

    /// Wraps a key with the given clock.
    pub fn from_key(key: VirtualKey, clock: Arc<dyn Clock>) -> Self {
        let serial = key.state().serial;
        let info = DeviceInfo {
            path: format!("virtual:{serial:08x}"),
            vendor_id: VIRTUAL_VID,
            product_id: VIRTUAL_PID,
            product: Some(VIRTUAL_PRODUCT.into()),
            manufacturer: Some("oathkey".into()),
            serial: Some(format!("{serial:08X}")),
        };
        let inner = Inner {
            key,
            ports: HashMap::new(),
            next_port: 0,
            generation: 0,
            plugged: true,
        };
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
                changed: Condvar::new(),
                clock,
                info,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the key half-updated in a way that
        // matters to a test double; keep serving.
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What enumeration reports for this key.
    pub fn info(&self) -> &DeviceInfo {
        &self.shared.info
    }

    /// Opens a new port to the key.
    pub fn connect(&self) -> Result<VirtualTransport, TransportError> {
        let mut inner = self.lock();
        if !inner.plugged {
            return Err(TransportError::Disconnected);
        }
        let port = inner.next_port;
        inner.next_port += 1;
        inner.ports.insert(port, VecDeque::new());
        Ok(VirtualTransport {
            handle: self.clone(),
            port,
            generation: inner.generation,
        })
    }

    /// Runs `f` on the key itself (inspect state, change settings), then wakes waiting readers.
    pub fn with_key<R>(&self, f: impl FnOnce(&mut VirtualKey) -> R) -> R {
        let now = self.shared.clock.now();
        let mut inner = self.lock();
        let result = f(&mut inner.key);
        inner.pump(now);
        drop(inner);
        self.shared.changed.notify_all();
        result
    }

    /// A copy of the persistent state.
    pub fn state(&self) -> KeyState {
        self.with_key(|k| k.state().clone())
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.with_key(|k| k.stats())
    }

    /// Arms faults.
    pub fn set_faults(&self, faults: Faults) {
        self.with_key(|k| *k.faults_mut() = faults);
    }

    /// Changes the touch policy.
    pub fn set_touch_policy(&self, policy: TouchPolicy) {
        self.with_key(|k| k.set_touch_policy(policy));
    }

    /// Presses the button; returns whether a request was waiting for it.
    pub fn press(&self) -> bool {
        let now = self.shared.clock.now();
        self.with_key(|k| k.press(now))
    }

    /// Waits until a request waits for a touch (for tests that press the button).
    pub fn wait_for_touch_request(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if inner.key.waiting_for_touch() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .shared
                .changed
                .wait_timeout(inner, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Unplugs the key: every open port fails with "removed" from now on.
    pub fn unplug(&self) {
        let mut inner = self.lock();
        inner.plugged = false;
        inner.generation += 1;
        inner.ports.clear();
        inner.key.power_cycle();
        drop(inner);
        self.shared.changed.notify_all();
    }

    /// Plugs the key back in (state kept, volatile state reset).
    pub fn replug(&self) {
        self.lock().plugged = true;
        self.shared.changed.notify_all();
    }

    /// Whether the key is plugged in.
    pub fn is_plugged(&self) -> bool {
        self.lock().plugged
    }
}

/// One open port to a virtual key.
pub struct VirtualTransport {
    handle: VirtualKeyHandle,
    port: u64,
    generation: u64,
}

impl std::fmt::Debug for VirtualTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualTransport")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl VirtualTransport {
    /// The key this port belongs to.
    pub fn handle(&self) -> &VirtualKeyHandle {
        &self.handle
    }

    fn alive(&self, inner: &Inner) -> Result<(), TransportError> {
        if inner.plugged && inner.generation == self.generation {
            Ok(())
        } else {
            Err(TransportError::Disconnected)
        }
    }
}

impl Drop for VirtualTransport {
    fn drop(&mut self) {
        self.handle.lock().ports.remove(&self.port);
    }
}

impl Transport for VirtualTransport {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        let now = self.handle.shared.clock.now();
        let mut inner = self.handle.lock();
        self.alive(&inner)?;
        inner.key.receive(report, self.port, now);
        inner.pump(now);
        drop(inner);
        self.handle.shared.changed.notify_all();
        Ok(())
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let deadline = Instant::now() + timeout;
        let shared = &self.handle.shared;
        let mut inner = self.handle.lock();
        loop {
            self.alive(&inner)?;
            if inner.pump(shared.clock.now()) {
                // Other ports may be waiting for what just arrived.
                shared.changed.notify_all();
            }
            if let Some(report) = inner
                .ports
                .get_mut(&self.port)
                .and_then(VecDeque::pop_front)
            {
                return Ok(Some(report));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Sleep until the read times out or the key has something to do, whichever is
            // first; writers and button presses wake us earlier.
            let clock_now = shared.clock.now();
            let mut wait = deadline - now;
            if let Some(wake) = inner.key.next_wakeup() {
                wait = wait.min(
                    wake.saturating_duration_since(clock_now)
                        .max(Duration::from_millis(1)),
                );
            }
            inner = shared
                .changed
                .wait_timeout(inner, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn info(&self) -> &DeviceInfo {
        &self.handle.shared.info
    }
}
