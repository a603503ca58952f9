//! Fault injection: what a flaky cable, a busy browser or a dying key does to the reports.

use std::time::Instant;

/// Faults to apply to the next reports. Counters count down as they fire.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    /// Ignore this many incoming reports (lost on the way to the key).
    pub drop_inputs: u32,
    /// Lose this many outgoing reports.
    pub drop_outputs: u32,
    /// Damage the header (command or sequence byte) of this many outgoing reports. Headers,
    /// not payloads: USB checks payload integrity, and a host can only detect damage it sees.
    pub corrupt_outputs: u32,
    /// Send this many outgoing reports twice.
    pub duplicate_outputs: u32,
    /// Say nothing until then (a stalled key); reports queue up meanwhile.
    pub stall_until: Option<Instant>,
    /// Another application holds a transaction until then: every request gets CHANNEL_BUSY.
    pub busy_until: Option<Instant>,
}

/// What to do with one outgoing report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFate {
    /// Send it.
    Send,
    /// Lose it.
    Drop,
    /// Send it with a damaged header.
    Corrupt,
    /// Send it twice.
    Duplicate,
}

impl Faults {
    /// Whether an incoming report is lost.
    pub fn take_input_drop(&mut self) -> bool {
        take(&mut self.drop_inputs)
    }

    /// The fate of the next outgoing report.
    pub fn output_fate(&mut self) -> OutputFate {
        if take(&mut self.drop_outputs) {
            OutputFate::Drop
        } else if take(&mut self.corrupt_outputs) {
            OutputFate::Corrupt
        } else if take(&mut self.duplicate_outputs) {
            OutputFate::Duplicate
        } else {
            OutputFate::Send
        }
    }

    /// Whether the key is stalled at `now`.
    pub fn stalled(&self, now: Instant) -> bool {
        self.stall_until.is_some_and(|t| now < t)
    }

    /// Whether another application keeps the key busy at `now`.
    pub fn busy(&self, now: Instant) -> bool {
        self.busy_until.is_some_and(|t| now < t)
    }
}

fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// Damages a report's header so that the host notices: the command byte of an init packet
/// becomes another command, the sequence number of a continuation packet another number.
pub fn corrupt(report: &mut [u8; 64]) {
    report[4] ^= 0x40;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counters_fire_in_order_and_run_out() {
        let mut f = Faults {
            drop_outputs: 1,
            corrupt_outputs: 1,
            ..Faults::default()
        };
        assert_eq!(f.output_fate(), OutputFate::Drop);
        assert_eq!(f.output_fate(), OutputFate::Corrupt);
        assert_eq!(f.output_fate(), OutputFate::Send);
    }

    #[test]
    fn stall_and_busy_windows() {
        let now = Instant::now();
        let f = Faults {
            stall_until: Some(now + Duration::from_secs(1)),
            ..Faults::default()
        };
        assert!(f.stalled(now));
        assert!(!f.stalled(now + Duration::from_secs(2)));
        assert!(!f.busy(now));
    }

    #[test]
    fn corruption_changes_the_header_only() {
        let mut r = [0u8; 64];
        r[4] = 0xF0;
        r[10] = 7;
        corrupt(&mut r);
        assert_eq!(r[4], 0xB0);
        assert_eq!(r[10], 7);
    }
}
