//! Part 5 of the report: seeding 1,000 keys in process (the software floor), through the
//! daemon, and with the admin's `oathkey provision`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oathkey_device::{Key, NewCredential, OtpKind, TouchWait};
use oathkey_emulator::{Config as EmuConfig, VirtualKeyHandle};
use oathkey_protocol::types::{Algorithm, CreatedToken, KeyList};
use oathkey_testkit::{Daemon, reference_totp, unix_now};
use secrecy::SecretSlice;
use serde_json::json;

use crate::daemons::{Bins, start_daemon};
use crate::stats::{Summary, summarize};
use crate::system::{Mem, proc_mem};
use crate::{Plan, command_line, progress};

pub struct SeedRun {
    pub what: String,
    pub keys: usize,
    pub total: Duration,
    pub per_key: Option<Summary>,
}

pub struct SeedResult {
    pub in_process: SeedRun,
    pub daemon_disk: SeedRun,
    pub daemon_tmpfs: Option<SeedRun>,
    pub provision: SeedRun,
    pub provision_tmpfs: Option<SeedRun>,
    pub provision_tmpfs_small: Option<SeedRun>,
    /// `keys.list` with all the keys attached (median of 20 calls).
    pub keys_list: Duration,
    pub startup: Duration,
    pub keys_idle: Mem,
    pub keys_seeded: Mem,
}

/// In process, no daemon: open each virtual key (in memory, no state file), write a token,
/// read a code back and check it. The software floor of seeding one key.
pub fn seed_in_process(n: usize) -> SeedRun {
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
        let want = reference_totp("sha1", 6, 30, &secret, now);
        let again = reference_totp("sha1", 6, 30, &secret, unix_now());
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
pub fn seed_daemon(bins: &Bins, n: usize, parent: &Path, label: &str) -> (SeedRun, Daemon) {
    progress(&format!("seeding {n} keys through oathkeyd ({label})"));
    let count = n.to_string();
    let daemon = start_daemon(bins, parent, &["--emulate", &count]);
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
pub fn seed_provision(bins: &Bins, n: usize, parent: &Path, label: &str) -> SeedRun {
    progress(&format!(
        "oathkey provision --keys-present on {n} keys ({label})"
    ));
    let count = n.to_string();
    let daemon = start_daemon(bins, parent, &["--emulate", &count]);
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

pub fn bench_seeding(bins: &Bins, plan: Plan) -> SeedResult {
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
    let startup = daemon.ready_after();
    let keys_seeded = proc_mem(daemon.pid());
    drop(daemon);
    // Memory of a daemon with n keys, idle (fresh start, nothing seeded yet).
    let idle = start_daemon(bins, &std::env::temp_dir(), &["--emulate", &n.to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let keys_idle = proc_mem(idle.pid());
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
