//! A client that keeps reading beside a test (through abuse, faults, hot-plug) and counts every
//! read that failed or was wrong, so the test can assert at the end that others were served
//! right all along.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A reader on a thread of its own, started by [`Steady::start`] and stopped by
/// [`Steady::finish`].
#[derive(Debug)]
pub struct Steady {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Steady {
    /// Calls `read` again and again, `pause` apart, until [`Steady::finish`]. `read` does one
    /// read and checks it: `Err` says what failed or was wrong.
    pub fn start(
        pause: Duration,
        mut read: impl FnMut() -> Result<(), String> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(what) = read() {
                        failures.lock().expect("lock").push(what);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(pause);
                }
            })
        };
        Self {
            stop,
            reads,
            failures,
            thread: Some(thread),
        }
    }

    /// Reads done so far (failed ones included).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Waits (at most `within`) until more than `reads` reads are done; whether they were.
    pub fn wait_for_more_than(&self, reads: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.reads() <= reads {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stops the reader; returns how many reads it did and what went wrong in them.
    pub fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("steady reader");
        }
        (self.reads(), self.failures.lock().expect("lock").clone())
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        // A test that fails before finishing must not leave the reader running.
        self.stop.store(true, Ordering::Relaxed);
    }
}
