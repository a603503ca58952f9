//! The clipboard timer: a copied code is cleared after a while, unless something else was
//! copied since.

use zeroize::Zeroizing;

use super::tokens::TokenRef;

/// Seconds a copied code stays on the clipboard.
pub const CLEAR_AFTER_SECS: f64 = 30.0;

/// A code this app put on the clipboard.
pub struct ClipboardTimer {
    /// Whose code.
    pub token: TokenRef,
    /// The text copied, to check the clipboard still holds it before clearing it.
    pub text: Zeroizing<String>,
    /// When to clear it (unix seconds).
    pub clears_at: f64,
}

impl std::fmt::Debug for ClipboardTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is short-lived, but it has no business in logs or panic messages either.
        f.debug_struct("ClipboardTimer")
            .field("token", &self.token)
            .field("text", &"[redacted]")
            .field("clears_at", &self.clears_at)
            .finish()
    }
}

impl ClipboardTimer {
    /// Starts the timer for a code copied at `now`.
    pub fn start(token: TokenRef, text: &str, now: f64) -> Self {
        Self {
            token,
            text: Zeroizing::new(text.to_owned()),
            clears_at: now + CLEAR_AFTER_SECS,
        }
    }

    /// Whole seconds left, rounded up.
    pub fn seconds_left(&self, now: f64) -> u64 {
        (self.clears_at - now).max(0.0).ceil() as u64
    }

    /// Whether it is time to clear.
    pub fn expired(&self, now: f64) -> bool {
        now >= self.clears_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_thirty_seconds_after_the_copy() {
        let t = ClipboardTimer::start(
            TokenRef {
                key: "k".into(),
                name: "n".into(),
            },
            "123456",
            1000.0,
        );
        assert_eq!(t.seconds_left(1000.0), 30);
        assert_eq!(t.seconds_left(1012.5), 18);
        assert!(!t.expired(1029.9));
        assert!(t.expired(1030.0));
        assert_eq!(t.seconds_left(1031.0), 0);
        assert!(!format!("{t:?}").contains("123456"));
    }
}
