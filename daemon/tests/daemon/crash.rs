//! Never lose a seed: batch seeding of virtual keys (whose state persists) while the daemon and
//! the CLI are killed with SIGKILL at many points. Afterwards every token on any key has its
//! seed on record and exportable, the key computes what that seed says, and the seed file is
//! whole: every row parses, every user appears once, and every row's seed is the one its key
//! holds.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use oathkey_protocol::types::{Code, KeyList, SeedRecord, SeedsParams, TokenInfo};
use oathkey_seedfile::Format;
use oathkey_testkit::{Daemon, bin, reference_totp_b32};
use serde_json::{Value, json};

const KEYS: usize = 12;
const ROUNDS: u64 = 12;
/// Virtual keys paced like a slow USB key (8 ms per report): seeding a key takes tens of
/// milliseconds, so random kills land inside the batch rather than after it.
const REPORT_US: &str = "8000";

/// A small deterministic generator, so a failure can be replayed (seed printed below).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn code_from_secret(secret_b32: &str, algorithm: &str, digits: u8, period: u64, t: u64) -> String {
    reference_totp_b32(algorithm, digits, period, secret_b32, t)
}

#[test]
fn killing_the_daemon_during_batch_seeding_never_loses_a_seed() {
    let seed = std::env::var("OATHKEY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            // CI kills at new points on every run (the seed is printed for a replay); a
            // developer's run repeats the same points.
            if std::env::var_os("CI").is_some() {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0x5eed_2026, |d| d.as_nanos() as u64)
            } else {
                0x5eed_2026
            }
        });
    eprintln!("crash test seed {seed} (set OATHKEY_CRASH_SEED to replay)");
    let mut rng = Lcg(seed);
    let keys = KEYS.to_string();
    let keep_dir = tempfile::tempdir().expect("tempdir");
    let dir = keep_dir.path().to_path_buf();
    let users = dir.join("users.txt");
    let names: Vec<String> = (0..KEYS)
        .map(|i| format!("user{i:02}@contoso.com"))
        .collect();
    std::fs::write(&users, names.join("\n")).expect("written");
    let out = dir.join("tseed.csv");
    let mut daemon = Daemon::builder()
        .log_level(Some("warn"))
        .args(["--emulate", &keys, "--emulate-report-us", REPORT_US])
        .start();
    let state = daemon.dir.path().join("state");
    let socket = daemon.socket.clone();
    let provision = || {
        Command::new(bin("oathkey"))
            .args(["provision", "--keys-present", "--users"])
            .arg(&users)
            .arg("--out")
            .arg(&out)
            .env("OATHKEY_SOCKET", &socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("oathkey starts")
    };
    let check_file = |when: &str| {
        if let Ok(bytes) = std::fs::read(&out) {
            let parsed = oathkey_seedfile::read(Format::AzureCsv, &bytes);
            assert!(
                parsed.problems.is_empty(),
                "seed file damaged {when}: {:?}",
                parsed.problems
            );
        }
    };

    let rows_now = || {
        std::fs::read(&out)
            .map(|b| oathkey_seedfile::read(Format::AzureCsv, &b).records.len())
            .unwrap_or(0)
    };
    let ledger_path = state.join("seeds.ledger");
    let mut kills = 0;
    let mut mid_batch = 0;
    let mut unsettled_seen = 0;
    for round in 0..ROUNDS {
        let mut cli = provision();
        let delay = rng.next(70);
        std::thread::sleep(Duration::from_millis(delay));
        // Mostly the daemon; every third round the CLI too (the file writer).
        daemon.kill();
        if round % 3 == 2 {
            let _ = cli.kill();
        }
        let _ = cli.wait();
        kills += 1;
        check_file(&format!("after kill {round} at {delay} ms"));
        let rows = rows_now();
        eprintln!("round {round}: killed after {delay} ms, {rows} rows");
        if rows < KEYS {
            mid_batch += 1;
        }
        // How often a kill left a seed between "recorded" and "settled" (informational: the
        // reconciliation that settles them is proven deterministically in daemon/tests).
        let ledger = std::fs::read_to_string(&ledger_path).unwrap_or_default();
        let begun = ledger.matches("\"op\":\"begin\"").count();
        let settled = ledger.matches("\"state\":\"verified\"").count()
            + ledger.matches("\"state\":\"not_on_key\"").count();
        if begun > settled {
            unsettled_seen += 1;
        }
        daemon.restart();
    }

    // A last run without interruptions finishes the batch.
    let status = provision().wait().expect("provision ran");
    assert!(status.success(), "the final run completes");
    check_file("at the end");
    assert!(kills >= ROUNDS);
    eprintln!(
        "{mid_batch} of {kills} kills landed mid-batch; {unsettled_seen} left unsettled seeds"
    );
    assert!(
        mid_batch * 2 >= kills,
        "kills must land inside the batch to prove anything"
    );

    let mut client = oathkey_protocol::Client::connect(&socket).expect("connects");
    let t = 1_234_567_890u64;
    let ledger: Vec<SeedRecord> = client
        .call(
            "seeds.export",
            SeedsParams {
                include_incomplete: true,
                ..SeedsParams::default()
            },
        )
        .expect("ledger");
    let by_name: BTreeMap<(String, String), &SeedRecord> = ledger
        .iter()
        .map(|r| ((r.info.key.clone(), r.info.name.clone()), r))
        .collect();
    let keys: KeyList = client.call("keys.list", Value::Null).expect("keys");
    assert_eq!(keys.keys.len(), KEYS);
    let mut on_keys = 0;
    for key in &keys.keys {
        let tokens: Vec<TokenInfo> = client
            .call("tokens.list", json!({"key": key.id}))
            .expect("tokens");
        for token in tokens {
            on_keys += 1;
            let record = by_name
                .get(&(key.id.clone(), token.name.clone()))
                .unwrap_or_else(|| {
                    panic!(
                        "token {} on key {} has no seed on record",
                        token.name, key.id
                    )
                });
            assert!(
                record.info.state.exportable(),
                "seed of {} on {} is {:?}, not exportable",
                token.name,
                key.id,
                record.info.state
            );
            let code: Code = client
                .call(
                    "codes.get",
                    json!({"key": key.id, "token": token.name, "at": t}),
                )
                .expect("code");
            assert_eq!(
                code.code,
                code_from_secret(record.secret.expose(), "sha1", 6, 30, t),
                "the key computes what the recorded seed says ({})",
                token.name
            );
        }
    }
    assert!(on_keys >= KEYS, "every user got a key ({on_keys} tokens)");

    // The file: every user exactly once, every row's seed is what its key holds.
    let rows =
        oathkey_seedfile::read(Format::AzureCsv, &std::fs::read(&out).expect("file")).records;
    let mut users_in_file: Vec<String> = rows.iter().map(|(_, r)| r.user.clone()).collect();
    users_in_file.sort();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(users_in_file, expected);
    for (_, row) in rows {
        let code: Code = client
            .call("codes.get", json!({"token": row.serial, "at": t}))
            .expect("the row's key holds it");
        let secret = row.secret.base32();
        assert_eq!(
            code.code,
            code_from_secret(&secret, "sha1", 6, 30, t),
            "row for {}",
            row.user
        );
    }
    daemon.kill();
    drop(keep_dir);
}
