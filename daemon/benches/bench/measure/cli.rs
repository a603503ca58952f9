//! Part 1 of the report: `oathkey code` end to end against `oathtool --totp` computing the same
//! code locally, and against a process that does nothing (`true`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oathkey_testkit::unix_now;

use crate::daemons::{Bins, create_bench_token, expected_code, start_daemon};
use crate::stats::{Summary, summarize};
use crate::{Plan, SECRET_B32, command_line, progress};

pub struct CliResult {
    pub oathkey: Summary,
    pub oathtool: Option<Summary>,
    pub spawn_floor: Summary,
    pub oathkey_usb: Summary,
    pub compared: usize,
    pub mismatches: usize,
    pub oathtool_version: Option<String>,
}

/// Runs a command once: its first stdout line and how long it took from spawn to exit.
pub fn timed(cmd: &mut Command) -> (String, Duration) {
    let t = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().expect("command runs");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    (line, took)
}

pub fn bench_cli(bins: &Bins, plan: Plan) -> CliResult {
    progress("oathkey code vs oathtool --totp");
    let oathtool_version = command_line("oathtool", &["--version"]);
    let daemon = start_daemon(bins, &std::env::temp_dir(), &["--emulate", "1"]);
    create_bench_token(&mut daemon.client(), None);
    let oathkey = || {
        let mut c = Command::new(&bins.oathkey);
        c.arg("code").env("OATHKEY_SOCKET", &daemon.socket);
        c
    };
    let oathtool = || {
        let mut c = Command::new("oathtool");
        c.args(["--totp", "-b", SECRET_B32]);
        c
    };
    let warm = 10;
    let (mut ok_times, mut ot_times, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut compared, mut mismatches) = (0, 0);
    for i in 0..warm + plan.cli_runs {
        let step = unix_now() / 30;
        // Alternate the order so neither tool always runs right after the other.
        let (ok, ot) = if oathtool_version.is_none() {
            (timed(&mut oathkey()), None)
        } else if i % 2 == 0 {
            let a = timed(&mut oathkey());
            (a, Some(timed(&mut oathtool())))
        } else {
            let b = timed(&mut oathtool());
            (timed(&mut oathkey()), Some(b))
        };
        let (_, t_true) = timed(&mut Command::new("true"));
        let same_step = unix_now() / 30 == step;
        assert!(
            !same_step || ok.0 == expected_code(step * 30),
            "oathkey printed {:?}, RFC 6238 says {:?}",
            ok.0,
            expected_code(step * 30)
        );
        if let Some(ot) = &ot
            && same_step
            && i >= warm
        {
            compared += 1;
            if ot.0 != ok.0 {
                mismatches += 1;
            }
        }
        if i >= warm {
            ok_times.push(ok.1);
            floor.push(t_true);
            if let Some(ot) = ot {
                ot_times.push(ot.1);
            }
        }
    }
    drop(daemon);

    progress("oathkey code with the key at USB timing");
    let daemon = start_daemon(
        bins,
        &std::env::temp_dir(),
        &["--emulate", "1", "--emulate-report-us", "1000"],
    );
    create_bench_token(&mut daemon.client(), None);
    let mut usb = Vec::new();
    for i in 0..warm + plan.cli_runs / 2 {
        let mut c = Command::new(&bins.oathkey);
        c.arg("code").env("OATHKEY_SOCKET", &daemon.socket);
        let (_, t) = timed(&mut c);
        if i >= warm {
            usb.push(t);
        }
    }
    CliResult {
        oathkey: summarize(&ok_times),
        oathtool: oathtool_version.as_ref().map(|_| summarize(&ot_times)),
        spawn_floor: summarize(&floor),
        oathkey_usb: summarize(&usb),
        compared,
        mismatches,
        oathtool_version,
    }
}
