//! How figures are written in the report and in progress lines: durations, rates, sizes.

use std::time::Duration;

/// "12.3 µs", "4.56 ms", "1.23 s".
pub fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.1} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// A rate with thousands separators: "12,345".
pub fn rate(per_s: f64) -> String {
    group(per_s.round() as u64)
}

pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn kib(kb: u64) -> String {
    if kb >= 10 * 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{} KiB", group(kb))
    }
}

pub fn bytes(n: u64) -> String {
    format!(
        "{:.2} MiB ({} bytes)",
        n as f64 / (1024.0 * 1024.0),
        group(n)
    )
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
