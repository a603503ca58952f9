//! How a virtual key behaves: its profile, touch policy, timings and clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which real key the virtual key models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// oathkey's own virtual key: the Nitrokey 3 dialect plus the vendor tool's settings
    /// (`mode.keyboard`, `mode.u2f`, `otp.key_press`) and HMAC-SHA-512.
    #[default]
    Oathkey,
    /// A stock Nitrokey 3: no Mode / Key Press fields, no SHA-512 (CALCULATE answers `6A 81`).
    Nitrokey3,
}

/// What happens when the key asks for a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TouchPolicy {
    /// The user touches at once.
    #[default]
    Approve,
    /// Nobody touches: the request fails after the touch timeout.
    Deny,
    /// The user touches after this long (a delay past the touch timeout fails).
    After(Duration),
    /// The request waits until a test presses the button (or the touch timeout passes).
    Button,
}

impl std::str::FromStr for TouchPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approve" | "auto" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            "button" => Ok(Self::Button),
            other => match other
                .strip_prefix("after:")
                .or_else(|| other.strip_prefix("delay:"))
            {
                Some(ms) => ms
                    .parse::<u64>()
                    .map(|ms| Self::After(Duration::from_millis(ms)))
                    .map_err(|_| format!("bad delay in {other:?}: expected after:MILLISECONDS")),
                None => Err(format!(
                    "unknown touch policy {other:?}: approve, deny, after:MS or button"
                )),
            },
        }
    }
}

/// A virtual key's behaviour.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which key to model.
    pub profile: Profile,
    /// How the "user" answers touch requests.
    pub touch: TouchPolicy,
    /// How long the key waits for a touch before it answers `69 82` (15 s on a Nitrokey 3).
    pub touch_timeout: Duration,
    /// Longest gap between packets of one message before MSG_TIMEOUT (about 500 ms).
    pub message_timeout: Duration,
    /// Time each outgoing report takes to reach the host (reports queue behind each other);
    /// zero sends at once, about 1 ms models a full-speed USB interrupt endpoint.
    pub report_interval: Duration,
    /// Most credentials the key holds.
    pub max_credentials: usize,
    /// Most CTAPHID channels allocated at once; the oldest is recycled beyond that.
    pub max_channels: usize,
    /// Serial number for a new key; `None` picks a random one. A key loaded from a state file
    /// keeps its stored serial.
    pub serial: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::default(),
            touch: TouchPolicy::default(),
            touch_timeout: Duration::from_secs(15),
            message_timeout: Duration::from_millis(500),
            report_interval: Duration::ZERO,
            max_credentials: 50,
            max_channels: 32,
            serial: None,
        }
    }
}

/// Where the virtual key gets the time from; tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_policies_parse() {
        assert_eq!("approve".parse(), Ok(TouchPolicy::Approve));
        assert_eq!("deny".parse(), Ok(TouchPolicy::Deny));
        assert_eq!("button".parse(), Ok(TouchPolicy::Button));
        assert_eq!(
            "after:250".parse(),
            Ok(TouchPolicy::After(Duration::from_millis(250)))
        );
        assert!("after:soon".parse::<TouchPolicy>().is_err());
        assert!("maybe".parse::<TouchPolicy>().is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::default();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(3));
        assert_eq!(clock.now() - t0, Duration::from_secs(3));
    }
}
