//! Part 4 of the report: the daemon's memory idle and with many clients, and the release
//! binaries' sizes.

use std::process::Command;
use std::time::{Duration, Instant};

use oathkey_protocol::Client;
use oathkey_protocol::types::Code;
use serde_json::json;

use crate::daemons::{Bins, create_bench_token, start_daemon};
use crate::system::{Mem, proc_mem};
use crate::{Plan, progress};

pub struct MemResult {
    pub idle: Mem,
    pub busy: Mem,
    pub after: Mem,
    pub clients: usize,
    pub connect_all: Duration,
}

pub fn bench_memory(bins: &Bins, plan: Plan) -> MemResult {
    progress(&format!(
        "daemon memory, idle and with {} clients",
        plan.idle_clients
    ));
    let daemon = start_daemon(bins, &std::env::temp_dir(), &["--emulate", "1"]);
    let mut admin = daemon.client();
    create_bench_token(&mut admin, None);
    let _: Code = admin
        .call("codes.get", json!({"token": "B1"}))
        .expect("code");
    std::thread::sleep(Duration::from_millis(300));
    let idle = proc_mem(daemon.pid());
    let t = Instant::now();
    let mut clients: Vec<Client> = (0..plan.idle_clients).map(|_| daemon.client()).collect();
    let connect_all = t.elapsed();
    for c in &mut clients {
        let _: Code = c.call("codes.get", json!({"token": "B1"})).expect("code");
    }
    std::thread::sleep(Duration::from_millis(300));
    let busy = proc_mem(daemon.pid());
    drop(clients);
    std::thread::sleep(Duration::from_millis(500));
    let after = proc_mem(daemon.pid());
    MemResult {
        idle,
        busy,
        after,
        clients: plan.idle_clients,
        connect_all,
    }
}

pub struct Size {
    pub name: &'static str,
    pub as_built: u64,
    pub stripped: Option<u64>,
}

pub fn binary_sizes(bins: &Bins) -> Vec<Size> {
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
