//! The time the app shows codes for: the system clock, or a clock the tests move by hand.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
///
/// Countdowns and rollovers are computed locally from each code's `valid_until`, so the tests
/// need to move time without waiting 30 seconds: they use [`Clock::Manual`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed time (unix seconds, with fractions), moved by [`Clock::advance`] or [`Clock::set`].
    Manual(f64),
}

impl Clock {
    /// Unix time now, in seconds with fractions.
    pub fn now(&self) -> f64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            Clock::Manual(t) => *t,
        }
    }

    /// Unix time now, in whole seconds.
    pub fn now_secs(&self) -> u64 {
        // Truncation is the point: a code for [from, until) is valid while floor(now) < until.
        self.now().max(0.0) as u64
    }

    /// The `at` param for code requests: none with the system clock (the daemon's own time is
    /// the same), the manual time otherwise, so that the codes match what the app shows.
    pub fn at_param(&self) -> Option<u64> {
        match self {
            Clock::System => None,
            Clock::Manual(_) => Some(self.now_secs()),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&mut self, seconds: f64) {
        if let Clock::Manual(t) = self {
            *t += seconds;
        }
    }

    /// Sets a manual clock; does nothing to the system clock.
    pub fn set(&mut self, unix_seconds: f64) {
        if let Clock::Manual(t) = self {
            *t = unix_seconds;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let mut c = Clock::Manual(100.5);
        assert_eq!(c.now_secs(), 100);
        assert_eq!(c.at_param(), Some(100));
        c.advance(29.6);
        assert_eq!(c.now_secs(), 130);
        c.set(7.0);
        assert_eq!(c.now_secs(), 7);
    }

    #[test]
    fn system_clock_is_not_moved_and_asks_for_no_time() {
        let mut c = Clock::System;
        let before = c.now_secs();
        c.advance(1000.0);
        assert!(c.now_secs() < before + 100);
        assert_eq!(c.at_param(), None);
        assert!(
            before > 1_600_000_000,
            "the system clock is a real unix time"
        );
    }
}
