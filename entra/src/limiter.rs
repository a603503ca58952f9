//! [`ActivationLimiter`]: at most 200 activations in any 5 minutes, the limit Microsoft
//! documents for hardware OATH activation.
//!
//! A sliding window of the times of recent activations: a new activation waits (on the
//! injected [`Clock`]) until the oldest one in the window is older than the window. A fixed
//! "200 per clock-aligned 5 minutes" bucket would allow 400 in a row across a boundary.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Clock;

/// Microsoft's documented activation limit.
pub const ACTIVATIONS_PER_WINDOW: usize = 200;
/// The window of that limit.
pub const ACTIVATION_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A sliding-window limiter that waits.
#[derive(Debug, Clone)]
pub struct ActivationLimiter {
    max: usize,
    window: Duration,
    /// Monotonic times of the activations still inside the window, oldest first.
    recent: VecDeque<Duration>,
}

impl Default for ActivationLimiter {
    fn default() -> Self {
        Self::new(ACTIVATIONS_PER_WINDOW, ACTIVATION_WINDOW)
    }
}

impl ActivationLimiter {
    /// A limiter allowing `max` (at least 1) in any `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        ActivationLimiter {
            max: max.max(1),
            window,
            recent: VecDeque::new(),
        }
    }

    /// Takes one slot, sleeping on `clock` until one is free. Returns how long it waited.
    pub fn acquire(&mut self, clock: &dyn Clock) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let now = clock.now();
            while self
                .recent
                .front()
                .is_some_and(|&t| now.saturating_sub(t) >= self.window)
            {
                self.recent.pop_front();
            }
            if self.recent.len() < self.max {
                self.recent.push_back(now);
                return waited;
            }
            // The oldest leaves the window at oldest + window.
            let oldest = self.recent.front().copied().unwrap_or(now);
            let wait = (oldest + self.window)
                .saturating_sub(now)
                .max(Duration::from_millis(1));
            if waited.is_zero() {
                tracing::info!(
                    wait_secs = wait.as_secs(),
                    "activation limit reached ({} per {} s); waiting",
                    self.max,
                    self.window.as_secs()
                );
            }
            clock.sleep(wait);
            waited += wait;
        }
    }

    /// Activations counted in the window at the clock's time.
    pub fn in_window(&self, clock: &dyn Clock) -> usize {
        let now = clock.now();
        self.recent
            .iter()
            .filter(|&&t| now.saturating_sub(t) < self.window)
            .count()
    }
}
