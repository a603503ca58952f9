//! Parts 2 and 3 of the report: the daemon under load, 1, 16 and 256 clients on one key, each
//! code checked, with no USB delay and at USB timing, distinct time steps and the same code.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use oathkey_emulator::VirtualKeyHandle;
use oathkey_protocol::Client;
use oathkey_protocol::client::ClientError;
use oathkey_protocol::types::Code;
use oathkeyd::config::{Config, FileConfig, Overrides, Scope};
use serde_json::json;

use crate::daemons::{create_bench_token, expected_code};
use crate::format::dur;
use crate::stats::{Summary, summarize};
use crate::system::daemon_threads_cpu;
use crate::{BASE_TIME, Plan, USB_REPORT, progress};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every client asks for the current code of the same token: reads of one time step may
    /// share an exchange with the key.
    Same,
    /// Every client asks for its own time step: every request is an exchange with the key.
    Distinct,
}

pub struct LoadResult {
    pub clients: usize,
    pub mode: Mode,
    pub per_s: f64,
    pub lat: Summary,
    pub exchanges_per_s: f64,
    /// CPU time of the daemon's threads per request answered.
    pub cpu_per_request: Duration,
    /// Requests that failed or got a wrong code (none expected), and the first such.
    pub errors: u64,
    pub first_error: Option<String>,
}

pub fn run_load(
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
pub struct ClientRun {
    pub samples: Vec<(Instant, Duration)>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl ClientRun {
    fn fail(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

pub struct DaemonLoad {
    pub fast: Vec<LoadResult>,
    pub usb: Vec<LoadResult>,
}

/// The daemon's library on its own multi-threaded runtime in this process (the binary's code
/// minus signal handling), so the virtual key's exchanges can be counted; clients are threads
/// with their own connections on the real Unix socket.
pub fn bench_daemon_load(plan: Plan, reports_per_exchange: f64) -> DaemonLoad {
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
