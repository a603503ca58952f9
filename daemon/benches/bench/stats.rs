//! Percentiles and friends of a set of durations.

use std::time::Duration;

/// Median, p99 and friends of a set of durations (nearest-rank percentiles).
#[derive(Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
    pub min: Duration,
}

pub fn summarize(samples: &[Duration]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let rank = |p: f64| {
        let r = ((p / 100.0) * n as f64).ceil() as usize;
        sorted[r.clamp(1, n) - 1]
    };
    let total: Duration = sorted.iter().sum();
    Summary {
        n,
        p50: rank(50.0),
        p99: rank(99.0),
        mean: total / n as u32,
        min: sorted[0],
    }
}
