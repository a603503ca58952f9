//! The card channel seam: how the YKOATH driver reaches a smart card, so the protocol is
//! testable without pcscd.
//!
//! A card is shared with other applications (an authenticator app, gpg's scdaemon, a browser),
//! any of which may select another applet or reset the card between two of our exchanges. So
//! every operation runs inside one [`CardChannel::transaction`], and the driver selects the
//! applet again at the start of each one. `crate::pcsc` (feature `pcsc`) implements the seam
//! over pcsc-lite; tests implement it with a scripted card.

use std::time::Duration;

use crate::error::Error;

/// One exchange with the card inside a transaction: a command APDU in, the response APDU
/// (data then `SW1 SW2`) out.
pub trait CardLink {
    /// Sends one command APDU and returns the whole response APDU.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error>;
}

/// A connection to one smart card, shared with other applications.
pub trait CardChannel: Send {
    /// Runs `f` inside one transaction: no other application can talk to the card until it
    /// returns. Beginning the transaction may wait (another application's transaction) and
    /// retry (a sharing violation, a card reset by someone else) before `f` runs; `f` runs at
    /// most once.
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn CardLink) -> Result<R, Error>,
    ) -> Result<R, Error>
    where
        Self: Sized;

    /// The reader the card is in (the key's path).
    fn reader(&self) -> &str;

    /// The card's answer to reset.
    fn atr(&self) -> &[u8];
}

/// How long to retry while another application holds the card exclusively (PC/SC's
/// `SCARD_E_SHARING_VIOLATION`), with growing pauses between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharingPolicy {
    /// The first pause.
    pub first_pause: Duration,
    /// The longest pause (pauses double up to it).
    pub max_pause: Duration,
    /// How long to keep trying before giving up with [`Error::HeldExclusively`].
    pub give_up_after: Duration,
}

impl Default for SharingPolicy {
    /// 20 ms doubling to 250 ms, for up to 3 s: long enough for another application's short
    /// exclusive use (ykman's own commands take well under a second), short enough that a
    /// daemon request held by a long-lived exclusive holder (scdaemon) fails while the caller
    /// still waits.
    fn default() -> Self {
        Self {
            first_pause: Duration::from_millis(20),
            max_pause: Duration::from_millis(250),
            give_up_after: Duration::from_secs(3),
        }
    }
}

/// What one try of a shared-access operation came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// It worked.
    Done(T),
    /// Another application holds the card exclusively: try again after a pause.
    Shared,
    /// It failed for another reason: give up at once.
    Failed(Error),
}

impl SharingPolicy {
    /// The pauses of one wait, in order.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: *self,
            waited: Duration::ZERO,
            pause: self.first_pause,
        }
    }

    /// Runs `attempt` until it is done or fails, pausing with `sleep` while the card is held
    /// exclusively, for at most [`Self::give_up_after`]; then [`Error::HeldExclusively`] for
    /// `reader`. Never signals the other application: waiting is the only polite option.
    pub fn run<T>(
        &self,
        reader: &str,
        mut sleep: impl FnMut(Duration),
        mut attempt: impl FnMut() -> Attempt<T>,
    ) -> Result<T, Error> {
        let mut backoff = self.backoff();
        loop {
            match attempt() {
                Attempt::Done(value) => return Ok(value),
                Attempt::Failed(e) => return Err(e),
                Attempt::Shared => sleep(backoff.next_pause(reader)?),
            }
        }
    }
}

/// The pause schedule of one wait for a card held exclusively: [`SharingPolicy`]'s pauses,
/// doubling, until the budget is spent.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: SharingPolicy,
    waited: Duration,
    pause: Duration,
}

impl Backoff {
    /// The next pause to take before trying again, or [`Error::HeldExclusively`] for `reader`
    /// once the budget is spent.
    pub fn next_pause(&mut self, reader: &str) -> Result<Duration, Error> {
        let budget = self.policy.give_up_after;
        if self.waited >= budget {
            return Err(Error::HeldExclusively {
                reader: reader.to_string(),
            });
        }
        let step = self.pause.min(budget - self.waited);
        tracing::debug!(
            reader,
            ?step,
            "card held exclusively by another application; waiting"
        );
        self.waited += step;
        self.pause = (self.pause * 2).min(self.policy.max_pause);
        Ok(step)
    }

    /// Sleeps the next pause (the thread's real sleep), or fails once the budget is spent.
    pub fn wait(&mut self, reader: &str) -> Result<(), Error> {
        std::thread::sleep(self.next_pause(reader)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_with_growing_pauses_then_gives_up_with_what_to_do() {
        let policy = SharingPolicy::default();
        let mut pauses = Vec::new();
        let mut tries = 0;
        let err = policy
            .run::<()>(
                "Yubico YubiKey OTP+FIDO+CCID 00 00",
                |d| pauses.push(d),
                || {
                    tries += 1;
                    Attempt::Shared
                },
            )
            .expect_err("held all the time");
        assert!(matches!(err, Error::HeldExclusively { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("Yubico YubiKey OTP+FIDO+CCID 00 00"),
            "{text}"
        );
        assert!(text.contains("pcsc-shared"), "{text}");
        assert_eq!(
            &pauses[..5],
            &[20, 40, 80, 160, 250].map(Duration::from_millis)
        );
        assert!(pauses[5..].iter().all(|p| *p <= Duration::from_millis(250)));
        assert_eq!(pauses.iter().sum::<Duration>(), policy.give_up_after);
        assert_eq!(tries, pauses.len() + 1, "one last try after the last pause");
    }

    #[test]
    fn a_released_card_is_used_and_other_errors_stop_at_once() {
        let policy = SharingPolicy::default();
        let mut tries = 0;
        let value = policy
            .run(
                "r",
                |_| {},
                || {
                    tries += 1;
                    if tries < 3 {
                        Attempt::Shared
                    } else {
                        Attempt::Done(7)
                    }
                },
            )
            .expect("released after two tries");
        assert_eq!((value, tries), (7, 3));

        let mut slept = false;
        let err = policy
            .run::<()>("r", |_| slept = true, || Attempt::Failed(Error::Removed))
            .expect_err("removed");
        assert_eq!(err, Error::Removed);
        assert!(!slept);
    }
}
