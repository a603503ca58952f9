//! Time, injectable: [`Clock`] with the real [`SystemClock`] and a [`ManualClock`] whose
//! sleeps only move its hands, so retries, sign-in polling and the activation limiter are
//! tested without waiting.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time that can also wait.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time since an arbitrary start (for intervals and windows).
    fn now(&self) -> Duration;
    /// Seconds since the Unix epoch (for token expiry, which is stored on disk).
    fn unix_time(&self) -> u64;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn unix_time(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to or when something sleeps on it; it records each
/// sleep so tests can check what was waited for.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: Duration,
    unix_start: u64,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock at monotonic zero whose Unix time starts at `unix_start`.
    pub fn new(unix_start: u64) -> Self {
        ManualClock {
            state: Mutex::new(ManualState {
                now: Duration::ZERO,
                unix_start,
                sleeps: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panicking test thread poisons the lock; the data is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward without recording a sleep.
    pub fn advance(&self, d: Duration) {
        self.state().now += d;
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.state().now
    }

    fn unix_time(&self) -> u64 {
        let s = self.state();
        s.unix_start + s.now.as_secs()
    }

    fn sleep(&self, d: Duration) {
        let mut s = self.state();
        s.now += d;
        s.sleeps.push(d);
    }
}
