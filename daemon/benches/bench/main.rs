//! oathkey's benchmarks (`scripts/bench`): every figure of docs/benchmarks.md from one run.
//!
//! A plain program (`harness = false`), so it needs nothing beyond the workspace's own crates:
//! - `oathkey code` end to end (a fresh process through a daemon and a virtual key) against
//!   `oathtool --totp` computing the same code locally;
//! - the daemon's throughput and latency with 1, 16 and 256 clients on one key, and its cost
//!   over a direct driver call; the same at USB timing (1 ms per report), where the key is the
//!   limit and coalescing of identical reads shows;
//! - the daemon's memory idle and with 1,000 clients, and the release binaries' sizes;
//! - seeding 1,000 virtual keys: in process, through the daemon, and `oathkey provision`.
//!
//! Environment: `OATHKEY_BENCH_OUT` (write the markdown there as well as to stdout),
//! `OATHKEY_BENCH_BIN_DIR` (where the release binaries are; default: next to this program's
//! `oathkeyd`), `OATHKEY_BENCH_QUICK=1` (a few seconds in all, for checking the program).
//!
//! # Layout
//! - `main.rs`: the plan (full or quick), the run in order, and where the report goes.
//! - `measure/`: the measuring, one file per part of the report: `cli` (`oathkey code` against
//!   `oathtool`), `driver` (the `Key` driver on its own), `load` (the daemon under load),
//!   `memory` (memory and binary sizes), `seeding` (seeding 1,000 keys). Each returns plain
//!   figures and writes nothing but progress.
//! - `report.rs`: the rendering of every figure into docs/benchmarks.md's markdown, and
//!   nothing else.
//! - `stats.rs` (percentiles), `format.rs` (how durations, rates and sizes are written),
//!   `system.rs` (the machine, a process's memory, CPU time of the daemon's threads),
//!   `daemons.rs` (the release programs, a daemon process, the benchmark token).

mod daemons;
mod format;
mod measure;
mod report;
mod stats;
mod system;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use measure::{cli, driver, load, memory, seeding};
use report::Results;

/// The RFC 6238 SHA-1 test seed ("12345678901234567890"), in Base32.
pub(crate) const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub(crate) const SECRET: &[u8] = b"12345678901234567890";
/// The benchmark token: serial B1, 30 s, SHA-1, 6 digits.
pub(crate) const TOKEN: &str = "B1:bench@example.com";
/// Fixed times far from now for the "distinct steps" clients (admins may ask for any time).
pub(crate) const BASE_TIME: u64 = 1_700_000_000;
pub(crate) const USB_REPORT: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// Settings

/// How long and how much to measure: the full run, or a few seconds to check the program.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) cli_runs: usize,
    pub(crate) load_warm: Duration,
    pub(crate) load_measure: Duration,
    pub(crate) driver_measure: Duration,
    pub(crate) idle_clients: usize,
    pub(crate) seed_keys: usize,
}

impl Plan {
    fn from_env() -> Self {
        if std::env::var_os("OATHKEY_BENCH_QUICK").is_some_and(|v| v != "0") {
            Self {
                cli_runs: 20,
                load_warm: Duration::from_millis(100),
                load_measure: Duration::from_millis(400),
                driver_measure: Duration::from_millis(300),
                idle_clients: 100,
                seed_keys: 50,
            }
        } else {
            Self {
                cli_runs: 200,
                load_warm: Duration::from_millis(300),
                load_measure: Duration::from_secs(2),
                driver_measure: Duration::from_secs(2),
                idle_clients: 1000,
                seed_keys: 1000,
            }
        }
    }
}

/// A progress line on stderr (the report goes to stdout).
pub(crate) fn progress(what: &str) {
    eprintln!("oathkey-bench: {what}");
}

/// The first line a command prints, or `None` if it cannot run.
pub(crate) fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

fn main() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let bins = daemons::bins();
    let machine = system::machine();
    let cli = cli::bench_cli(&bins, plan);
    progress("direct driver, no delay and at USB timing");
    let driver_fast = driver::bench_driver(Duration::ZERO, plan.driver_measure);
    let driver_usb = driver::bench_driver(USB_REPORT, plan.driver_measure);
    let load = load::bench_daemon_load(plan, driver_fast.reports_in_per_call.max(1.0));
    let mem = memory::bench_memory(&bins, plan);
    let sizes = memory::binary_sizes(&bins);
    let seed = seeding::bench_seeding(&bins, plan);
    let results = Results {
        machine,
        load_end: system::loadavg(),
        run_time: started.elapsed(),
        cli,
        driver_fast,
        driver_usb,
        load,
        mem,
        sizes,
        seed,
        bin_dir: bins.dir.clone(),
    };
    let md = report::render(&results, plan);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(md.as_bytes());
    if let Some(path) = std::env::var_os("OATHKEY_BENCH_OUT") {
        std::fs::write(&path, &md).expect("writing the report");
        progress(&format!("wrote {}", PathBuf::from(path).display()));
    }
}
