//! The wall clock, in unix seconds: below the service core and the ledger, which both stamp
//! and compute with it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The unix time now (0 on a clock set before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
