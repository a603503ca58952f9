//! Everything the test process logs through `tracing`, captured in memory so that a test can
//! search it (for secrets that must not be there, or for the recovery path that ran).
//!
//! The subscriber is global to the process: one capture per test process. A test that captures
//! runs in a process of its own ([`crate::isolate`]) when its test binary holds other tests.

use std::sync::{Arc, Mutex};

/// The captured log.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Captures what `filter` (an `EnvFilter` directive such as `trace`) lets through, for the
    /// rest of the test binary: the subscriber is global, so one capture per binary.
    pub fn capture(filter: &str) -> Self {
        let log = Self::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init()
            .expect("the only subscriber");
        log
    }

    /// All of it, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    /// Where the log ends now, for [`Log::logged_since`].
    pub fn mark(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    /// Whether something containing `needle` was logged after `mark`.
    pub fn logged_since(&self, mark: usize, needle: &str) -> bool {
        let bytes = self.0.lock().expect("lock");
        String::from_utf8_lossy(&bytes[mark..]).contains(needle)
    }
}
