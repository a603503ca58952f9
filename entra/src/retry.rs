//! [`RetryPolicy`]: how 429 (too many requests) and 503 (service unavailable) are retried.
//!
//! Graph says how long to wait in `Retry-After` (seconds). The wait is honoured but capped,
//! so a confused server cannot park a batch for hours, and the number of retries is capped, so
//! a throttled run ends with [`Error::Throttled`](crate::Error::Throttled) instead of spinning.
//! A request refused with 429 or 503 was not carried out, so retrying a `POST` does not create
//! a token twice.

use std::time::Duration;

/// Retry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` requests at most).
    pub max_retries: u32,
    /// The longest single wait, whatever `Retry-After` says.
    pub max_wait: Duration,
    /// The wait when the response has no usable `Retry-After`; doubled on each retry.
    pub default_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            max_wait: Duration::from_secs(120),
            default_wait: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries: the first 429/503 is returned as `Throttled`.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Whether a status is one to retry.
    pub fn retries_status(status: u16) -> bool {
        matches!(status, 429 | 503)
    }

    /// How long to wait before retry number `retry` (0-based), given the header's value.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let fallback = self.default_wait.saturating_mul(1u32 << retry.min(16));
        retry_after.unwrap_or(fallback).min(self.max_wait)
    }
}

/// `Retry-After` as delay-seconds. The HTTP-date form is not used by Graph and is treated
/// as absent (the policy's back-off applies).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(p.wait(0, Some(Duration::from_secs(86_400))), p.max_wait);
        assert_eq!(p.wait(0, None), Duration::from_secs(2));
        assert_eq!(p.wait(2, None), Duration::from_secs(8));
        assert_eq!(p.wait(30, None), p.max_wait);
    }

    #[test]
    fn parses_delay_seconds_only() {
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(parse_retry_after(None), None);
        assert!(RetryPolicy::retries_status(429) && RetryPolicy::retries_status(503));
        assert!(!RetryPolicy::retries_status(500));
    }
}
