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

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oathkey_device::{Key, NewCredential, OtpKind, Timeouts, TouchWait};
use oathkey_emulator::{Config as EmuConfig, VirtualKeyHandle};
use oathkey_protocol::Client;
use oathkey_protocol::client::ClientError;
use oathkey_protocol::types::{Algorithm, Code, CreatedToken, KeyList};
use oathkeyd::config::{Config, FileConfig, Overrides, Scope};
use secrecy::SecretSlice;
use serde_json::json;
use tempfile::TempDir;

/// The RFC 6238 SHA-1 test seed ("12345678901234567890"), in Base32.
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SECRET: &[u8] = b"12345678901234567890";
/// The benchmark token: serial B1, 30 s, SHA-1, 6 digits.
const TOKEN: &str = "B1:bench@example.com";
/// Fixed times far from now for the "distinct steps" clients (admins may ask for any time).
const BASE_TIME: u64 = 1_700_000_000;
const USB_REPORT: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// Settings, statistics, formatting

#[derive(Clone, Copy)]
struct Plan {
    cli_runs: usize,
    load_warm: Duration,
    load_measure: Duration,
    driver_measure: Duration,
    idle_clients: usize,
    seed_keys: usize,
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

/// Median, p99 and friends of a set of durations (nearest-rank percentiles).
#[derive(Clone, Copy, Default)]
struct Summary {
    n: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    min: Duration,
}

fn summarize(samples: &[Duration]) -> Summary {
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

/// "12.3 µs", "4.56 ms", "1.23 s".
fn dur(d: Duration) -> String {
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
fn rate(per_s: f64) -> String {
    group(per_s.round() as u64)
}

fn group(n: u64) -> String {
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

fn kib(kb: u64) -> String {
    if kb >= 10 * 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{} KiB", group(kb))
    }
}

fn bytes(n: u64) -> String {
    format!(
        "{:.2} MiB ({} bytes)",
        n as f64 / (1024.0 * 1024.0),
        group(n)
    )
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn progress(what: &str) {
    eprintln!("oathkey-bench: {what}");
}

/// The first line a command prints, or `None` if it cannot run.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// VmRSS, VmHWM (KiB) and the thread count of a process.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
}

fn proc_mem(pid: u32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        threads: field("Threads:"),
    }
}

/// CPU time (user + system) used so far by this process's daemon threads: the tokio workers
/// (and blocking threads) and the key actors, which also run the in-process virtual key.
fn daemon_threads_cpu() -> Duration {
    let ticks_per_s: u64 = command_line("getconf", &["CLK_TCK"])
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ... utime stime ...": comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        if !(comm.starts_with("tokio-runtime") || comm.starts_with("key-")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_s.max(1) as f64)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// The machine

struct Machine {
    cpu: String,
    cores: String,
    memory: String,
    kernel: String,
    rustc: String,
    date: String,
    commit: String,
    tmp_fs: String,
    load_start: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "?".into(), |(_, v)| v.trim().to_string());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let detect = |arg: &str| command_line("systemd-detect-virt", &[arg]).filter(|v| v != "none");
    let kernel = match (detect("--vm"), detect("--container")) {
        (Some(vm), Some(ct)) => {
            format!("Linux {kernel} (a {vm} virtual machine; in a {ct} container)")
        }
        (Some(vm), None) => format!("Linux {kernel} (a {vm} virtual machine)"),
        (None, Some(ct)) => format!("Linux {kernel} (in a {ct} container)"),
        (None, None) => format!("Linux {kernel}"),
    };
    let commit = match command_line("git", &["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) => {
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if dirty {
                format!("{hash} (with uncommitted changes)")
            } else {
                hash
            }
        }
        None => "? (not a git checkout)".into(),
    };
    let tmp = std::env::temp_dir();
    let tmp_text = tmp.to_string_lossy();
    let tmp_fs = command_line("findmnt", &["-n", "-o", "FSTYPE", "--target", &tmp_text])
        .or_else(|| command_line("stat", &["-f", "-c", "%T", &tmp_text]))
        .map_or_else(|| "?".into(), |fs| format!("{} ({fs})", tmp.display()));
    Machine {
        cpu,
        cores: format!("{logical} logical CPUs, {usable} usable by this process"),
        memory,
        kernel,
        rustc: command_line("rustc", &["-V"]).unwrap_or_else(|| "?".into()),
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "?".into()),
        commit,
        tmp_fs,
        load_start: loadavg(),
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries and daemon processes

struct Bins {
    dir: PathBuf,
    oathkeyd: PathBuf,
    oathkey: PathBuf,
    emulator: PathBuf,
}

fn bins() -> Bins {
    let dir = std::env::var_os("OATHKEY_BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_oathkeyd"))
                .parent()
                .expect("the binary has a directory")
                .to_path_buf()
        });
    let bins = Bins {
        oathkeyd: dir.join("oathkeyd"),
        oathkey: dir.join("oathkey"),
        emulator: dir.join("oathkey-emulator"),
        dir,
    };
    for b in [&bins.oathkeyd, &bins.oathkey, &bins.emulator] {
        assert!(
            b.exists(),
            "{} is missing: build the release binaries first (scripts/bench does)",
            b.display()
        );
    }
    bins
}

/// An `oathkeyd` process on a private socket.
struct DaemonProc {
    child: Child,
    socket: PathBuf,
    dir: TempDir,
    /// From spawn to the first answered `hello`.
    ready_after: Duration,
}

impl DaemonProc {
    fn start(bins: &Bins, args: &[&str]) -> Self {
        Self::start_in(bins, &std::env::temp_dir(), args)
    }

    fn start_in(bins: &Bins, parent: &Path, args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oathkey-bench")
            .tempdir_in(parent)
            .expect("temporary directory");
        let socket = dir.path().join("oathkeyd.sock");
        let log = std::fs::File::create(dir.path().join("oathkeyd.log")).expect("log file");
        let started = Instant::now();
        let mut child = Command::new(&bins.oathkeyd)
            .args(["--user", "--no-hid", "--dbus", "off"])
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("oathkeyd starts");
        let deadline = started + Duration::from_secs(60);
        loop {
            if Client::connect(&socket).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("oathkeyd.log"));
                panic!("oathkeyd exited ({status}): {}", log.unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "oathkeyd did not come up");
            std::thread::sleep(Duration::from_millis(2));
        }
        let ready_after = started.elapsed();
        Self {
            child,
            socket,
            dir,
            ready_after,
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).expect("client connects")
    }

    fn mem(&self) -> Mem {
        proc_mem(self.child.id())
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_bench_token(client: &mut Client, key: Option<&str>) {
    let _: CreatedToken = client
        .call(
            "tokens.create",
            json!({
                "key": key,
                "account": "bench@example.com",
                "serial": "B1",
                "secret": SECRET_B32,
            }),
        )
        .expect("token created");
}

/// The code of a SHA-1, 6-digit, 30 s token, computed by totp-rs: independent of the key's
/// computation (`oathkey-otp`, which the daemon's check after a write shares).
fn sha1_totp(secret: &[u8], unix_time: u64) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build_noncompliant()
        .generate(unix_time)
        .to_string()
}

fn expected_code(unix_time: u64) -> String {
    sha1_totp(SECRET, unix_time)
}

// ---------------------------------------------------------------------------------------------
// 1. `oathkey code` against `oathtool --totp`

struct CliResult {
    oathkey: Summary,
    oathtool: Option<Summary>,
    spawn_floor: Summary,
    oathkey_usb: Summary,
    compared: usize,
    mismatches: usize,
    oathtool_version: Option<String>,
}

/// Runs a command once: its first stdout line and how long it took from spawn to exit.
fn timed(cmd: &mut Command) -> (String, Duration) {
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

fn bench_cli(bins: &Bins, plan: Plan) -> CliResult {
    progress("oathkey code vs oathtool --totp");
    let oathtool_version = command_line("oathtool", &["--version"]);
    let daemon = DaemonProc::start(bins, &["--emulate", "1"]);
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
    let daemon = DaemonProc::start(bins, &["--emulate", "1", "--emulate-report-us", "1000"]);
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

// ---------------------------------------------------------------------------------------------
// 2 and 3. The direct driver, and the daemon under load

struct DriverResult {
    per_s: f64,
    lat: Summary,
    reports_in_per_call: f64,
    reports_out_per_call: f64,
}

/// The `Key` driver over the emulator's in-process transport, one call after another: what a
/// program that owns the key itself would get, and the key's own limit at USB timing.
fn bench_driver(report_interval: Duration, measure: Duration) -> DriverResult {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every client asks for the current code of the same token: reads of one time step may
    /// share an exchange with the key.
    Same,
    /// Every client asks for its own time step: every request is an exchange with the key.
    Distinct,
}

struct LoadResult {
    clients: usize,
    mode: Mode,
    per_s: f64,
    lat: Summary,
    exchanges_per_s: f64,
    /// CPU time of the daemon's threads per request answered.
    cpu_per_request: Duration,
    /// Requests that failed or got a wrong code (none expected), and the first such.
    errors: u64,
    first_error: Option<String>,
}

fn run_load(
    socket: &Path,
    key: &VirtualKeyHandle,
    reports_per_exchange: f64,
    clients: usize,
    mode: Mode,
    plan: Plan,
) -> LoadResult {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (socket, barrier, stop) = (socket.to_path_buf(), barrier.clone(), stop.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut out = ClientRun::default();
                    let connected = Client::connect(&socket);
                    // Everyone meets at the barrier, connected or not, so nobody waits forever.
                    barrier.wait();
                    let mut client = match connected {
                        Ok(c) => c,
                        Err(e) => {
                            out.fail(format!("client {i} could not connect: {e}"));
                            return out;
                        }
                    };
                    let at = BASE_TIME + 30 * i as u64;
                    let params = match mode {
                        Mode::Same => json!({"token": "B1"}),
                        Mode::Distinct => json!({"token": "B1", "at": at}),
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let answer: Result<Code, _> = client.call("codes.get", &params);
                        let end = Instant::now();
                        match answer {
                            Ok(code) if mode == Mode::Same || code.code == expected_code(at) => {
                                out.samples.push((end, end - t));
                            }
                            Ok(code) => out.fail(format!(
                                "client {i} got {} for t={at}, RFC 6238 says {}",
                                code.code,
                                expected_code(at)
                            )),
                            Err(e) => {
                                let gone = matches!(e, ClientError::Io(_));
                                out.fail(format!("client {i}: codes.get failed: {e}"));
                                if gone {
                                    break;
                                }
                            }
                        }
                    }
                    out
                })
                .expect("thread starts")
        })
        .collect();
    barrier.wait();
    std::thread::sleep(plan.load_warm);
    let (s0, c0, w0) = (key.stats(), daemon_threads_cpu(), Instant::now());
    std::thread::sleep(plan.load_measure);
    let (s1, c1, w1) = (key.stats(), daemon_threads_cpu(), Instant::now());
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for t in threads {
        let run = t.join().expect("client thread");
        lat.extend(
            run.samples
                .into_iter()
                .filter(|(end, _)| *end >= w0 && *end <= w1)
                .map(|(_, d)| d),
        );
        errors += run.errors;
        first_error = first_error.or(run.first_error);
    }
    if let Some(e) = &first_error {
        progress(&format!("{errors} failed request(s); the first: {e}"));
    }
    let window = (w1 - w0).as_secs_f64();
    let answered = lat.len().max(1) as f64;
    LoadResult {
        cpu_per_request: Duration::from_secs_f64((c1 - c0).as_secs_f64() / answered),
        clients,
        mode,
        per_s: lat.len() as f64 / window,
        lat: summarize(&lat),
        exchanges_per_s: (s1.reports_in - s0.reports_in) as f64 / reports_per_exchange / window,
        errors,
        first_error,
    }
}

/// What one load client saw: when each answer came and how long it took, and what failed.
#[derive(Default)]
struct ClientRun {
    samples: Vec<(Instant, Duration)>,
    errors: u64,
    first_error: Option<String>,
}

impl ClientRun {
    fn fail(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

struct DaemonLoad {
    fast: Vec<LoadResult>,
    usb: Vec<LoadResult>,
}

/// The daemon's library on its own multi-threaded runtime in this process (the binary's code
/// minus signal handling), so the virtual key's exchanges can be counted; clients are threads
/// with their own connections on the real Unix socket.
fn bench_daemon_load(plan: Plan, reports_per_exchange: f64) -> DaemonLoad {
    let dir = tempfile::Builder::new()
        .prefix("oathkey-bench")
        .tempdir()
        .expect("temporary directory");
    let socket = dir.path().join("oathkeyd.sock");
    let flags = Overrides {
        socket: Some(socket.clone()),
        state_dir: Some(dir.path().join("state")),
        emulate: Some(1),
        no_hid: true,
        dbus: Some("off".into()),
        ..Overrides::default()
    };
    let config = Config::resolve(Scope::User, FileConfig::default(), &flags).expect("config");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let daemon = rt.block_on(oathkeyd::start(config)).expect("daemon starts");
    let key = daemon
        .service()
        .registry()
        .list()
        .first()
        .and_then(|e| e.virtual_handle.clone())
        .expect("a virtual key");
    let mut admin = Client::connect(&socket).expect("connects");
    create_bench_token(&mut admin, None);
    let _: Code = admin
        .call("codes.get", json!({"token": "B1"}))
        .expect("code");

    // A throwaway run, so that the first measured one does not pay for a cold runtime.
    let _ = run_load(
        &socket,
        &key,
        reports_per_exchange,
        16,
        Mode::Distinct,
        plan,
    );
    let mut out = DaemonLoad {
        fast: Vec::new(),
        usb: Vec::new(),
    };
    for (interval, results) in [(Duration::ZERO, &mut out.fast), (USB_REPORT, &mut out.usb)] {
        key.with_key(|k| k.set_report_interval(interval));
        for mode in [Mode::Distinct, Mode::Same] {
            for clients in [1, 16, 256] {
                progress(&format!(
                    "daemon load: {clients} client(s), {}, {}",
                    match mode {
                        Mode::Same => "same code",
                        Mode::Distinct => "distinct steps",
                    },
                    if interval.is_zero() {
                        "no USB delay".to_string()
                    } else {
                        format!("{} per report", dur(interval))
                    }
                ));
                results.push(run_load(
                    &socket,
                    &key,
                    reports_per_exchange,
                    clients,
                    mode,
                    plan,
                ));
            }
        }
    }
    drop(admin);
    rt.block_on(daemon.shutdown());
    out
}

// ---------------------------------------------------------------------------------------------
// 4. Memory and binary sizes

struct MemResult {
    idle: Mem,
    busy: Mem,
    after: Mem,
    clients: usize,
    connect_all: Duration,
}

fn bench_memory(bins: &Bins, plan: Plan) -> MemResult {
    progress(&format!(
        "daemon memory, idle and with {} clients",
        plan.idle_clients
    ));
    let daemon = DaemonProc::start(bins, &["--emulate", "1"]);
    let mut admin = daemon.client();
    create_bench_token(&mut admin, None);
    let _: Code = admin
        .call("codes.get", json!({"token": "B1"}))
        .expect("code");
    std::thread::sleep(Duration::from_millis(300));
    let idle = daemon.mem();
    let t = Instant::now();
    let mut clients: Vec<Client> = (0..plan.idle_clients).map(|_| daemon.client()).collect();
    let connect_all = t.elapsed();
    for c in &mut clients {
        let _: Code = c.call("codes.get", json!({"token": "B1"})).expect("code");
    }
    std::thread::sleep(Duration::from_millis(300));
    let busy = daemon.mem();
    drop(clients);
    std::thread::sleep(Duration::from_millis(500));
    let after = daemon.mem();
    MemResult {
        idle,
        busy,
        after,
        clients: plan.idle_clients,
        connect_all,
    }
}

struct Size {
    name: &'static str,
    as_built: u64,
    stripped: Option<u64>,
}

fn binary_sizes(bins: &Bins) -> Vec<Size> {
    let tmp = tempfile::tempdir().expect("temporary directory");
    [
        ("oathkeyd", &bins.oathkeyd),
        ("oathkey", &bins.oathkey),
        ("oathkey-emulator", &bins.emulator),
    ]
    .into_iter()
    .map(|(name, path)| {
        let as_built = std::fs::metadata(path).map_or(0, |m| m.len());
        let out = tmp.path().join(name);
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&out)
            .arg(path)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|_| std::fs::metadata(&out).ok())
            .map(|m| m.len());
        Size {
            name,
            as_built,
            stripped,
        }
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// 5. Seeding 1,000 keys

struct SeedRun {
    what: String,
    keys: usize,
    total: Duration,
    per_key: Option<Summary>,
}

struct SeedResult {
    in_process: SeedRun,
    daemon_disk: SeedRun,
    daemon_tmpfs: Option<SeedRun>,
    provision: SeedRun,
    provision_tmpfs: Option<SeedRun>,
    provision_tmpfs_small: Option<SeedRun>,
    /// `keys.list` with all the keys attached (median of 20 calls).
    keys_list: Duration,
    startup: Duration,
    keys_idle: Mem,
    keys_seeded: Mem,
}

/// In process, no daemon: open each virtual key (in memory, no state file), write a token,
/// read a code back and check it. The software floor of seeding one key.
fn seed_in_process(n: usize) -> SeedRun {
    progress(&format!("seeding {n} keys in process"));
    let mut per_key = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let handle = VirtualKeyHandle::new(EmuConfig {
            serial: Some(0x5EED_0000 + i as u32),
            ..EmuConfig::default()
        });
        let mut key = Key::open(handle.connect().expect("plugged")).expect("opens");
        let secret: Vec<u8> = (0..20).map(|b| (b * 7 + i) as u8).collect();
        let name = format!("{i:08}:user{i}@example.com");
        key.put(
            &NewCredential {
                name: name.clone(),
                kind: OtpKind::Totp,
                algorithm: Algorithm::Sha1,
                digits: 6,
                secret: SecretSlice::from(secret.clone()),
                touch_required: false,
                pin_protected: false,
                initial_counter: 0,
            },
            None,
        )
        .expect("registers");
        let now = unix_now();
        let otp = key
            .totp(&name, now, TouchWait::Never, None)
            .expect("computes");
        let want = sha1_totp(&secret, now);
        let again = sha1_totp(&secret, unix_now());
        assert!(otp.code == want || otp.code == again, "key {i} verified");
        per_key.push(t.elapsed());
    }
    SeedRun {
        what: "in process: `Key` driver, in-memory virtual keys (no daemon, no files)".into(),
        keys: n,
        total: start.elapsed(),
        per_key: Some(summarize(&per_key)),
    }
}

/// Through a daemon with `n` virtual keys: one admin client, `tokens.create` on each key in
/// turn (write-ahead ledger record, write, read-back verification, key state file).
fn seed_daemon(bins: &Bins, n: usize, parent: &Path, label: &str) -> (SeedRun, DaemonProc) {
    progress(&format!("seeding {n} keys through oathkeyd ({label})"));
    let count = n.to_string();
    let daemon = DaemonProc::start_in(bins, parent, &["--emulate", &count]);
    let mut admin = daemon.client();
    let list: KeyList = admin.call("keys.list", json!(null)).expect("lists");
    assert_eq!(list.keys.len(), n, "every virtual key is attached");
    let mut per_key = Vec::new();
    let start = Instant::now();
    for (i, k) in list.keys.iter().enumerate() {
        let t = Instant::now();
        let created: CreatedToken = admin
            .call(
                "tokens.create",
                json!({
                    "key": k.id,
                    "account": format!("user{i}@example.com"),
                    "serial": format!("{i:08}"),
                }),
            )
            .expect("token created");
        per_key.push(t.elapsed());
        assert_eq!(created.serial, format!("{i:08}"));
    }
    let run = SeedRun {
        what: format!("through oathkeyd: `tokens.create` on each key, one client, {label}"),
        keys: n,
        total: start.elapsed(),
        per_key: Some(summarize(&per_key)),
    };
    (run, daemon)
}

/// The admin's workflow: `oathkey provision --keys-present` for `n` users on `n` keys.
fn seed_provision(bins: &Bins, n: usize, parent: &Path, label: &str) -> SeedRun {
    progress(&format!(
        "oathkey provision --keys-present on {n} keys ({label})"
    ));
    let count = n.to_string();
    let daemon = DaemonProc::start_in(bins, parent, &["--emulate", &count]);
    let users = daemon.dir.path().join("users.txt");
    let out = daemon.dir.path().join("tseed.csv");
    let list: String = (0..n).map(|i| format!("user{i}@example.com\n")).collect();
    std::fs::write(&users, list).expect("users file");
    let start = Instant::now();
    let result = Command::new(&bins.oathkey)
        .args(["provision", "--keys-present", "--users"])
        .arg(&users)
        .arg("--out")
        .arg(&out)
        .env("OATHKEY_SOCKET", &daemon.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("oathkey provision runs");
    let total = start.elapsed();
    assert!(
        result.status.success(),
        "provision failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let rows = std::fs::read_to_string(&out)
        .expect("seed file")
        .lines()
        .count()
        .saturating_sub(1);
    assert_eq!(rows, n, "one seed file row per key");
    SeedRun {
        what: format!("`oathkey provision --keys-present`, {label}"),
        keys: n,
        total,
        per_key: None,
    }
}

fn bench_seeding(bins: &Bins, plan: Plan) -> SeedResult {
    let n = plan.seed_keys;
    let in_process = seed_in_process(n);
    let (daemon_disk, daemon) = seed_daemon(bins, n, &std::env::temp_dir(), "state on disk");
    let mut client = daemon.client();
    let lists: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let list: KeyList = client.call("keys.list", json!(null)).expect("lists");
            assert_eq!(list.keys.len(), n);
            t.elapsed()
        })
        .collect();
    let keys_list = summarize(&lists).p50;
    drop(client);
    let startup = daemon.ready_after;
    let keys_seeded = daemon.mem();
    drop(daemon);
    // Memory of a daemon with n keys, idle (fresh start, nothing seeded yet).
    let idle = DaemonProc::start(bins, &["--emulate", &n.to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let keys_idle = idle.mem();
    drop(idle);
    let shm = Path::new("/dev/shm");
    let tmpfs = command_line("stat", &["-f", "-c", "%T", "/dev/shm"]).as_deref() == Some("tmpfs");
    let daemon_tmpfs = tmpfs.then(|| seed_daemon(bins, n, shm, "state on tmpfs").0);
    let provision = seed_provision(bins, n, &std::env::temp_dir(), "state on disk");
    let provision_tmpfs = tmpfs.then(|| seed_provision(bins, n, shm, "state on tmpfs"));
    let provision_tmpfs_small =
        tmpfs.then(|| seed_provision(bins, (n / 10).max(1), shm, "state on tmpfs"));
    SeedResult {
        in_process,
        daemon_disk,
        daemon_tmpfs,
        provision,
        provision_tmpfs,
        provision_tmpfs_small,
        keys_list,
        startup,
        keys_idle,
        keys_seeded,
    }
}

// ---------------------------------------------------------------------------------------------
// The report

struct Results {
    machine: Machine,
    load_end: String,
    run_time: Duration,
    cli: CliResult,
    driver_fast: DriverResult,
    driver_usb: DriverResult,
    load: DaemonLoad,
    mem: MemResult,
    sizes: Vec<Size>,
    seed: SeedResult,
    bin_dir: PathBuf,
}

fn find(results: &[LoadResult], clients: usize, mode: Mode) -> &LoadResult {
    results
        .iter()
        .find(|r| r.clients == clients && r.mode == mode)
        .expect("measured")
}

fn load_table(md: &mut String, results: &[LoadResult], limit: Option<f64>) {
    let extra = if limit.is_some() {
        " | of the key's limit"
    } else {
        ""
    };
    let _ = writeln!(
        md,
        "| clients | requests | requests/s | p50 | p99 | key exchanges/s | requests per exchange | daemon CPU per request{extra} |"
    );
    let _ = writeln!(
        md,
        "|---:|---|---:|---:|---:|---:|---:|---:|{}",
        if limit.is_some() { "---:|" } else { "" }
    );
    for r in results {
        let mode = match r.mode {
            Mode::Same => "same code",
            Mode::Distinct => "distinct steps",
        };
        let share = limit.map_or(String::new(), |l| {
            format!(" {:.0} % |", 100.0 * r.per_s / l)
        });
        let _ = writeln!(
            md,
            "| {} | {mode} | {} | {} | {} | {} | {:.2} | {} |{share}",
            r.clients,
            rate(r.per_s),
            dur(r.lat.p50),
            dur(r.lat.p99),
            rate(r.exchanges_per_s),
            r.per_s / r.exchanges_per_s.max(1e-9),
            dur(r.cpu_per_request),
        );
    }
}

/// A note under a load table: every failed request, or that there were none.
fn load_errors(md: &mut String, results: &[LoadResult]) {
    let failed: Vec<&LoadResult> = results.iter().filter(|r| r.errors > 0).collect();
    if failed.is_empty() {
        let _ = writeln!(
            md,
            "\nEvery request was answered, and every code checked (distinct steps) was right."
        );
        return;
    }
    for r in failed {
        let _ = writeln!(
            md,
            "\n**{} request(s) failed** with {} client(s), {}; the first: {}",
            r.errors,
            r.clients,
            match r.mode {
                Mode::Same => "same code",
                Mode::Distinct => "distinct steps",
            },
            r.first_error.as_deref().unwrap_or("?")
        );
    }
}

fn seed_row(md: &mut String, run: &SeedRun) {
    let per_key = run.total / run.keys.max(1) as u32;
    let (p50, p99) = run
        .per_key
        .map_or(("–".into(), "–".into()), |s| (dur(s.p50), dur(s.p99)));
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {p50} | {p99} |",
        run.what,
        group(run.keys as u64),
        dur(run.total),
        rate(run.keys as f64 / run.total.as_secs_f64()),
        dur(per_key),
    );
}

fn render(r: &Results, plan: Plan) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let cli = &r.cli;
    let fast1 = find(&r.load.fast, 1, Mode::Distinct);
    let same1 = find(&r.load.fast, 1, Mode::Same);
    let fast16 = find(&r.load.fast, 16, Mode::Distinct);
    let fast256 = find(&r.load.fast, 256, Mode::Distinct);
    let same256 = find(&r.load.fast, 256, Mode::Same);
    let usb1 = find(&r.load.usb, 1, Mode::Distinct);
    let usb16 = find(&r.load.usb, 16, Mode::Distinct);
    let usb256 = find(&r.load.usb, 256, Mode::Distinct);
    let usb16same = find(&r.load.usb, 16, Mode::Same);
    let usb256same = find(&r.load.usb, 256, Mode::Same);
    let limit = r.driver_usb.per_s;
    let per_key_daemon = r.seed.daemon_disk.total / r.seed.daemon_disk.keys.max(1) as u32;
    let per_key_inproc = r.seed.in_process.total / r.seed.in_process.keys.max(1) as u32;
    let per_key_prov = r.seed.provision.total / r.seed.provision.keys.max(1) as u32;

    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `scripts/bench` on {} at commit {}: every figure below comes from that one \
         run, on the machine described under [Machine](#machine). Run `scripts/bench` again to \
         measure yours; expect different numbers.\n",
        m.date, m.commit
    );

    let _ = writeln!(md, "## What the numbers say\n");
    let _ = writeln!(
        md,
        "- **`oathkey code` takes {} from process start to printed code** (median; p99 {}, \
         fastest {}), through the daemon and a virtual key. {} A process that does nothing \
         (`true`) takes {} here (fastest {}): most of `oathtool`'s time is starting a process. \
         `oathkey` adds loading a larger binary, connecting to the socket, three round trips \
         (`hello`, `events.subscribe`, `codes.get`) and the key's exchange: about {} over \
         `true` at the median, {} between the fastest runs. Neither is noticeable in a login \
         script; the medians move with the machine's load (see the caveats), the fastest runs \
         much less.",
        dur(cli.oathkey.p50),
        dur(cli.oathkey.p99),
        dur(cli.oathkey.min),
        cli.oathtool.map_or_else(
            || "(`oathtool` was not available.)".to_string(),
            |s| format!(
                "`oathtool --totp` computing the same code locally takes {} (p99 {}, fastest \
                 {}): the ratio `oathkey`/`oathtool` is {:.2} at the median and {:.2} at p99.",
                dur(s.p50),
                dur(s.p99),
                dur(s.min),
                ratio(cli.oathkey.p50, s.p50),
                ratio(cli.oathkey.p99, s.p99)
            )
        ),
        dur(cli.spawn_floor.p50),
        dur(cli.spawn_floor.min),
        dur(cli.oathkey.p50.saturating_sub(cli.spawn_floor.p50)),
        dur(cli.oathkey.min.saturating_sub(cli.spawn_floor.min)),
    );
    let (lo, hi) = if fast1.lat.p50 <= same1.lat.p50 {
        (fast1, same1)
    } else {
        (same1, fast1)
    };
    let _ = writeln!(
        md,
        "- **The daemon adds {} per request at the median** over calling the driver directly: \
         the two one-client rows of table 2, which do the same work (one exchange per request), \
         have p50s of {} and {}, and `Key::calculate` on the same in-process virtual key takes \
         {}. Most of that is waiting, not work: a request passes four thread hand-offs \
         (client, tokio worker, the key's actor thread, tokio worker, client), each waking a \
         sleeping thread, which is slow and erratic in a VM{}. The daemon's threads spend {} of \
         CPU per request with one client and {} with 16{}. \
         With no USB delay 16 clients get {} codes/s in all and 256 clients {}: two cores are \
         shared by the daemon, the virtual key and the client threads, so past a few clients \
         more of them only lengthen the queue (p99 with 256: {}).",
        if ratio(hi.lat.p50, lo.lat.p50) > 1.5 {
            format!(
                "{} to {}",
                dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
                dur(hi.lat.p50.saturating_sub(r.driver_fast.lat.p50))
            )
        } else {
            format!(
                "about {}",
                dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50))
            )
        },
        dur(lo.lat.p50),
        dur(hi.lat.p50),
        dur(r.driver_fast.lat.p50),
        if ratio(hi.lat.p50, lo.lat.p50) > 1.5 {
            "; that is also why the two one-client rows differ"
        } else {
            ""
        },
        dur(lo.cpu_per_request.min(hi.cpu_per_request)),
        dur(fast16.cpu_per_request),
        if fast16.cpu_per_request.as_secs_f64()
            < 0.8 * lo.cpu_per_request.min(hi.cpu_per_request).as_secs_f64()
        {
            " (fewer sleeps and wake-ups per request)"
        } else {
            ""
        },
        rate(fast16.per_s),
        rate(fast256.per_s),
        dur(fast256.lat.p99),
    );
    let _ = writeln!(
        md,
        "- **At USB timing the key is the limit, and the daemon gets {:.0} % of it** with 16 \
         clients asking for different codes ({:.0} % with 256): a direct driver manages {} \
         codes/s when each report takes 1 ms ({:.1} report out per code), the daemon serves \
         {} codes/s to 16 clients. Each of those requests is its own exchange and the key does \
         one at a time, so a request waits for about 16 exchanges (p50 {}). One client alone \
         gets {} codes/s ({:.0} %): it sends one request at a time, and the key idles while \
         each answer travels back and the next request comes in.",
        100.0 * usb16.per_s / limit,
        100.0 * usb256.per_s / limit,
        rate(limit),
        r.driver_usb.reports_out_per_call,
        rate(usb16.per_s),
        dur(usb16.lat.p50),
        rate(usb1.per_s),
        100.0 * usb1.per_s / limit,
    );
    let _ = writeln!(
        md,
        "- **Coalescing is why 16 clients asking for the same code get {} codes/s, {:.1}× the \
         key's limit, with a p50 of {} instead of {}**: the daemon answers concurrent reads of \
         the same token and time step with one exchange ({:.1} requests per exchange; with 256 \
         clients {:.1}, {} codes/s). The key is no faster; its answers are shared. That is the \
         common case (several programs showing the current code of the one token), but \
         coalescing does nothing for different tokens or time steps, nor for tokens that need \
         a touch (each read is a touch of its own). Without a USB delay an exchange is over \
         before others can join it: {:.2} requests per exchange with 256 clients.",
        rate(usb16same.per_s),
        usb16same.per_s / limit,
        dur(usb16same.lat.p50),
        dur(usb16.lat.p50),
        usb16same.per_s / usb16same.exchanges_per_s.max(1e-9),
        usb256same.per_s / usb256same.exchanges_per_s.max(1e-9),
        rate(usb256same.per_s),
        same256.per_s / same256.exchanges_per_s.max(1e-9),
    );
    let per_client =
        r.mem.busy.rss_kb.saturating_sub(r.mem.idle.rss_kb) as f64 / r.mem.clients.max(1) as f64;
    let _ = writeln!(
        md,
        "- **Memory**: the daemon with one key has {} resident when idle and {} with {} \
         clients connected (about {:.1} KiB per connection; peak {}); with {} virtual keys, one \
         actor thread each, {}.",
        kib(r.mem.idle.rss_kb),
        kib(r.mem.busy.rss_kb),
        group(r.mem.clients as u64),
        per_client,
        kib(r.mem.busy.hwm_kb),
        group(r.seed.daemon_disk.keys as u64),
        kib(r.seed.keys_idle.rss_kb),
    );
    let per = |run: &SeedRun| run.total / run.keys.max(1) as u32;
    let provision_software = match (&r.seed.provision_tmpfs, &r.seed.provision_tmpfs_small) {
        (Some(big), Some(small)) => {
            let grows = per(big).as_secs_f64() > 1.5 * per(small).as_secs_f64();
            format!(
                " On tmpfs it takes {} per key for {} keys and {} for {}: {}",
                dur(per(big)),
                group(big.keys as u64),
                dur(per(small)),
                group(small.keys as u64),
                if grows {
                    "its software cost per key grows with the number of keys, because for each \
                     key it lists all the keys and re-reads the whole seed file (see section 5)."
                } else {
                    "its software cost per key hardly depends on the number of keys."
                }
            )
        }
        _ => String::new(),
    };
    let _ =
        writeln!(
        md,
        "- **Seeding {} keys**: {} per key in process (driver and virtual key alone), {} per key \
         through the daemon, which fsyncs the write-ahead seed ledger (and the virtual key its \
         state file) for every token{}. The admin's `oathkey provision --keys-present` takes {} \
         per key ({} keys/s), with more round trips, the seed file rewritten and fsynced after \
         every key and one more ledger write.{} A real key's USB and flash time come on top.\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(per_key_inproc),
        dur(per_key_daemon),
        r.seed.daemon_tmpfs.as_ref().map_or(String::new(), |t| format!(
            " ({} with the state on tmpfs, where fsync costs nothing: the rest is the disk)",
            dur(per(t))
        )),
        dur(per_key_prov),
        rate(r.seed.provision.keys as f64 / r.seed.provision.total.as_secs_f64()),
        provision_software,
    );

    let _ = writeln!(md, "### Caveats\n");
    let _ = writeln!(
        md,
        "- **A virtual key, not hardware.** The emulator computes codes in microseconds; with \
         `--emulate-report-us 1000` each report it sends takes 1 ms, like a full-speed USB \
         interrupt endpoint, but a real key's processing time, USB scheduling and flash writes \
         are not modelled. The driver, the daemon and the CLI are the real code."
    );
    let _ = writeln!(
        md,
        "- **A shared 2-core VM.** The two cores are shared with other engineers' builds, which \
         may have run during the benchmark (load average {} at the start, {} at the end), and \
         the clients, the daemon and the virtual key share them too. Expect tens of percent \
         between runs, more for p99 and for single-client latency: while this benchmark was \
         written, repeated runs put the one-client p50 of table 2 either near 30 µs or near \
         100 µs, depending on how fast sleeping threads woke. Compare the figures of one run \
         with each other rather than across runs.",
        m.load_start, r.load_end
    );
    let _ = writeln!(
        md,
        "- **No emulation layer.** Everything runs natively on the host: the QEMU guest (TCG) \
         of the hardware-in-the-loop tests is not involved, and nothing goes through uhid or \
         hidraw; the in-process transport replaces the kernel's HID path."
    );
    let _ = writeln!(
        md,
        "- **The load tests run the daemon's library in the benchmark process** (the same \
         `oathkeyd::start` the binary calls, on a multi-threaded tokio runtime, without the \
         binary's signal handling and logging) so that the virtual key's exchanges can be \
         counted; clients are threads with their own connections on the real Unix socket. The \
         CLI, memory and seeding figures use the release binaries.\n"
    );

    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", m.cpu);
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(md, "| memory | {} |", m.memory);
    let _ = writeln!(md, "| kernel | {} |", m.kernel);
    let _ = writeln!(md, "| rustc | {} |", m.rustc);
    let _ = writeln!(
        md,
        "| build | release profile of the workspace (`lto = \"thin\"`, `codegen-units = 4`, \
         `strip = \"debuginfo\"`) |"
    );
    let _ = writeln!(md, "| temporary files | {} |", m.tmp_fs);
    let _ = writeln!(md, "| date | {} |", m.date);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | {} at the start, {} at the end |",
        m.load_start, r.load_end
    );
    let _ = writeln!(md, "| whole run | {} |\n", dur(r.run_time));

    let _ = writeln!(md, "## 1. `oathkey code` against `oathtool --totp`\n");
    let _ = writeln!(
        md,
        "From spawning the process to its exit with the code printed, {} runs each, \
         alternating which goes first (10 warm-up runs not counted). The daemon has one virtual \
         key holding one token (the RFC 6238 seed, SHA-1, 6 digits, 30 s); `oathtool --totp -b` \
         gets the same seed. {}\n",
        cli.oathkey.n,
        match &cli.oathtool_version {
            Some(v) => format!(
                "Both printed the same code in {} of {} runs within one time step ({} \
                 mismatches; runs that crossed a step boundary are not compared); every \
                 `oathkey` code was also checked against the daemon's own RFC 6238 \
                 computation. oathtool: {v}.",
                cli.compared - cli.mismatches,
                cli.compared,
                cli.mismatches
            ),
            None => "oathtool is not installed, so only `oathkey` was measured.".into(),
        }
    );
    let _ = writeln!(
        md,
        "| command | median | p99 | mean | min |\n|---|---:|---:|---:|---:|"
    );
    let row = |md: &mut String, name: &str, s: &Summary| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            dur(s.p50),
            dur(s.p99),
            dur(s.mean),
            dur(s.min)
        );
    };
    row(
        &mut md,
        "`oathkey code` (daemon, virtual key)",
        &cli.oathkey,
    );
    if let Some(ot) = &cli.oathtool {
        row(&mut md, "`oathtool --totp -b SEED`", ot);
    }
    row(&mut md, "`true` (process start alone)", &cli.spawn_floor);
    row(
        &mut md,
        "`oathkey code`, key at USB timing (1 ms per report)",
        &cli.oathkey_usb,
    );
    if let Some(ot) = &cli.oathtool {
        let _ = writeln!(
            md,
            "\nRatio `oathkey code` / `oathtool`: **{:.2}** at the median, **{:.2}** at p99.\n",
            ratio(cli.oathkey.p50, ot.p50),
            ratio(cli.oathkey.p99, ot.p99)
        );
    } else {
        md.push('\n');
    }

    let _ = writeln!(md, "## 2. Daemon throughput and latency (no USB delay)\n");
    let _ = writeln!(
        md,
        "`codes.get` on one key, each client a thread with its own connection sending one \
         request after another for {} (after {} of warm-up). *Distinct steps*: each client asks \
         for its own time step (`at`), so no two concurrent requests can share a key exchange; \
         *same code*: every client asks for the current code of the same token. Key exchanges \
         are counted on the virtual key.\n",
        dur(plan.load_measure),
        dur(plan.load_warm)
    );
    load_table(&mut md, &r.load.fast, None);
    load_errors(&mut md, &r.load.fast);
    let _ = writeln!(
        md,
        "\nThe driver alone, `Key::calculate` over the emulator's in-process transport in a \
         loop, same key and token: **{} calls/s**, p50 {}, p99 {} ({:.1} report in and {:.1} \
         out per call). Daemon overhead per request (median, one client, the two one-client \
         rows): **{}** and **{}**.\n",
        rate(r.driver_fast.per_s),
        dur(r.driver_fast.lat.p50),
        dur(r.driver_fast.lat.p99),
        r.driver_fast.reports_in_per_call,
        r.driver_fast.reports_out_per_call,
        dur(lo.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
        dur(hi.lat.p50.saturating_sub(r.driver_fast.lat.p50)),
    );

    let _ = writeln!(md, "## 3. At USB timing: 1 ms per report\n");
    let _ = writeln!(
        md,
        "The same daemon and key with the key's report interval set to 1 ms \
         (`--emulate-report-us 1000`). The key's own limit is the direct driver's rate with the \
         same pacing: **{} codes/s** (p50 {}, p99 {}). \"Of the key's limit\" divides each row \
         by it; above 100 % is only possible by sharing answers.\n",
        rate(limit),
        dur(r.driver_usb.lat.p50),
        dur(r.driver_usb.lat.p99),
    );
    load_table(&mut md, &r.load.usb, Some(limit));
    load_errors(&mut md, &r.load.usb);
    let _ = writeln!(
        md,
        "\nHow coalescing works (daemon/src/keys/actor.rs): the first read of a TOTP token for a \
         time step sends one CALCULATE to the key's actor; reads of the same token and step that \
         arrive while it is queued or running wait for its answer instead of queueing their own. \
         So with *same code*, one exchange answers every request that arrived during the \
         previous one; with *distinct steps*, nothing is shared and the clients queue for the \
         key.\n"
    );

    let _ = writeln!(md, "## 4. Memory and binary sizes\n");
    let _ = writeln!(
        md,
        "The release `oathkeyd` with one virtual key, from `/proc/PID/status`.\n"
    );
    let _ = writeln!(
        md,
        "| state | VmRSS | VmHWM (peak) | threads |\n|---|---:|---:|---:|"
    );
    let mem_row = |md: &mut String, name: &str, x: &Mem| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            kib(x.rss_kb),
            kib(x.hwm_kb),
            x.threads
        );
    };
    mem_row(
        &mut md,
        "idle (a token created, one code read)",
        &r.mem.idle,
    );
    mem_row(
        &mut md,
        &format!(
            "{} clients connected, each read one code (connecting them all took {})",
            group(r.mem.clients as u64),
            dur(r.mem.connect_all)
        ),
        &r.mem.busy,
    );
    mem_row(&mut md, "after they disconnected", &r.mem.after);
    mem_row(
        &mut md,
        &format!(
            "{} virtual keys, idle after start",
            group(r.seed.daemon_disk.keys as u64)
        ),
        &r.seed.keys_idle,
    );
    mem_row(
        &mut md,
        &format!(
            "{} virtual keys, after seeding each",
            group(r.seed.daemon_disk.keys as u64)
        ),
        &r.seed.keys_seeded,
    );
    let _ = writeln!(
        md,
        "\nRelease binaries in `{}` (as built: the release profile strips debug info but keeps \
         the symbol table; stripped: `strip` on a copy).\n",
        r.bin_dir
            .strip_prefix(std::env::current_dir().unwrap_or_default())
            .unwrap_or(&r.bin_dir)
            .display()
    );
    let _ = writeln!(md, "| binary | as built | stripped |\n|---|---:|---:|");
    for s in &r.sizes {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} |",
            s.name,
            bytes(s.as_built),
            s.stripped.map_or_else(|| "(no `strip`)".into(), bytes)
        );
    }
    md.push('\n');

    let _ = writeln!(
        md,
        "## 5. Seeding {} virtual keys\n",
        group(plan.seed_keys as u64)
    );
    let _ = writeln!(
        md,
        "Each key gets one TOTP token (SHA-1, 6 digits, 30 s) and is verified by reading a code \
         back, one key after another. Software overhead only: the virtual keys answer at once \
         (no USB delay, no flash write time); their state files live in the daemon's state \
         directory and are written (with fsync) like the seed ledger, so the rows on disk depend \
         on the disk and on whoever else writes to it. The daemon with {} keys was ready {} \
         after it was started (it creates and fsyncs each new key's state file). Rows \"on tmpfs\" \
         keep the daemon's state (seed ledger, key state files) and the seed file in /dev/shm, \
         where fsync costs nothing: they show the software alone.\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(r.seed.startup)
    );
    let _ = writeln!(
        md,
        "| how | keys | total | keys/s | per key | p50 | p99 |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    seed_row(&mut md, &r.seed.in_process);
    seed_row(&mut md, &r.seed.daemon_disk);
    if let Some(t) = &r.seed.daemon_tmpfs {
        seed_row(&mut md, t);
    }
    seed_row(&mut md, &r.seed.provision);
    for run in [&r.seed.provision_tmpfs, &r.seed.provision_tmpfs_small]
        .into_iter()
        .flatten()
    {
        seed_row(&mut md, run);
    }
    let _ = writeln!(
        md,
        "\n`oathkey provision` does more per key than `tokens.create`: it lists the keys to find \
         the next unseeded one (`keys.list` with {} keys takes {}), lists that key's tokens, \
         claims and releases the key, reads its info, appends the row to the Azure CSV (which \
         re-reads, checks and rewrites the whole file, fsynced) and marks the seed exported in \
         the ledger (fsynced).\n",
        group(r.seed.daemon_disk.keys as u64),
        dur(r.seed.keys_list),
    );

    let _ = writeln!(md, "## How it was measured\n");
    let _ = writeln!(
        md,
        "`scripts/bench` installs oathtool if it is missing, builds the release binaries and \
         the benchmark program (`cargo bench -p oathkeyd --bench oathkey-bench`: \
         daemon/benches/bench.rs, a plain program without a benchmark framework) and runs it; \
         it writes this file. \"Daemon CPU per request\" is the user and system time of the \
         tokio and key-actor threads (`/proc/self/task`, 10 ms ticks) over the requests \
         answered; the actor threads also run the in-process virtual key. Percentiles are \
         nearest-rank over every sample of a run; \"median\" is p50. Latency is measured by the \
         client from sending the request to decoding the answer. Throughput counts the \
         requests answered inside the measurement window. Daemons run with `--user --no-hid \
         --dbus off` on a private socket and state directory under the temporary directory \
         (except the seeding rows \"on tmpfs\", under /dev/shm); the daemon's log level is its \
         default (`info`)."
    );
    md
}

fn main() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let bins = bins();
    let machine = machine();
    let cli = bench_cli(&bins, plan);
    progress("direct driver, no delay and at USB timing");
    let driver_fast = bench_driver(Duration::ZERO, plan.driver_measure);
    let driver_usb = bench_driver(USB_REPORT, plan.driver_measure);
    let load = bench_daemon_load(plan, driver_fast.reports_in_per_call.max(1.0));
    let mem = bench_memory(&bins, plan);
    let sizes = binary_sizes(&bins);
    let seed = bench_seeding(&bins, plan);
    let results = Results {
        machine,
        load_end: loadavg(),
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
    let md = render(&results, plan);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(md.as_bytes());
    if let Some(path) = std::env::var_os("OATHKEY_BENCH_OUT") {
        std::fs::write(&path, &md).expect("writing the report");
        progress(&format!("wrote {}", PathBuf::from(path).display()));
    }
}
