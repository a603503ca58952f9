//! Part 2 of the report: the `Key` driver on its own, over the emulator's in-process transport:
//! what a program that owns the key itself would get, and the key's own limit at USB timing.

use std::time::{Duration, Instant};

use oathkey_device::{Key, NewCredential, OtpKind, Timeouts, TouchWait};
use oathkey_emulator::{Config as EmuConfig, VirtualKeyHandle};
use oathkey_protocol::types::Algorithm;
use secrecy::SecretSlice;

use crate::daemons::expected_code;
use crate::stats::{Summary, summarize};
use crate::{BASE_TIME, SECRET, TOKEN};

pub struct DriverResult {
    pub per_s: f64,
    pub lat: Summary,
    pub reports_in_per_call: f64,
    pub reports_out_per_call: f64,
}

/// The `Key` driver over the emulator's in-process transport, one call after another: what a
/// program that owns the key itself would get, and the key's own limit at USB timing.
pub fn bench_driver(report_interval: Duration, measure: Duration) -> DriverResult {
    let handle = VirtualKeyHandle::new(EmuConfig {
        report_interval,
        serial: Some(0x0B0E_0001),
        ..EmuConfig::default()
    });
    let mut key =
        Key::open_with(handle.connect().expect("plugged"), Timeouts::default()).expect("opens");
    key.put(
        &NewCredential {
            name: TOKEN.into(),
            kind: OtpKind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            secret: SecretSlice::from(SECRET.to_vec()),
            touch_required: false,
            pin_protected: false,
            initial_counter: 0,
        },
        None,
    )
    .expect("registers");
    let at = BASE_TIME;
    let step = at / 30;
    let warm_until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < warm_until {
        key.calculate(TOKEN, step, TouchWait::Never, None)
            .expect("computes");
    }
    let before = handle.stats();
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < measure {
        let t = Instant::now();
        let otp = key
            .calculate(TOKEN, step, TouchWait::Never, None)
            .expect("computes");
        lat.push(t.elapsed());
        assert_eq!(otp.code, expected_code(at));
    }
    let elapsed = start.elapsed();
    let after = handle.stats();
    let calls = lat.len() as f64;
    DriverResult {
        per_s: calls / elapsed.as_secs_f64(),
        lat: summarize(&lat),
        reports_in_per_call: (after.reports_in - before.reports_in) as f64 / calls,
        reports_out_per_call: (after.reports_out - before.reports_out) as f64 / calls,
    }
}
