//! Reads of the same TOTP token for the same time step share one key exchange; reads of touch
//! tokens never do (each is one touch by the user). Runs the daemon in-process to count the
//! virtual key's exchanges.

use std::sync::Arc;
use std::time::Duration;

use oathkey_protocol::Client;
use oathkey_protocol::types::{Code, CreatedToken};
use oathkeyd::config::{Config, FileConfig, Overrides, Scope};
use serde_json::json;

fn config(dir: &std::path::Path) -> Config {
    let flags = Overrides {
        socket: Some(dir.join("s.sock")),
        state_dir: Some(dir.join("state")),
        emulate: Some(1),
        no_hid: true,
        ..Overrides::default()
    };
    Config::resolve(Scope::User, FileConfig::default(), &flags).expect("valid config")
}

fn concurrent_reads(socket: &std::path::Path, token: &str, at: u64, n: usize) -> Vec<String> {
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (socket, token, barrier) =
                (socket.to_path_buf(), token.to_string(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket)
                    .unwrap_or_else(|e| panic!("client connect failed: {e:?}"));
                barrier.wait();
                let code: Code = c
                    .call("codes.get", json!({"token": token, "at": at}))
                    .expect("code");
                code.code
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect()
}

#[test]
fn same_step_reads_share_one_exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = rt
        .block_on(oathkeyd::start(config(dir.path())))
        .expect("starts");
    let socket = dir.path().join("s.sock");
    let entry = daemon
        .service()
        .registry()
        .list()
        .into_iter()
        .next()
        .expect("a key");
    let key = entry.virtual_handle.clone().expect("virtual");
    // USB-like timing, so that concurrent requests find an exchange in flight.
    key.with_key(|k| k.set_report_interval(Duration::from_millis(4)));

    let mut admin = Client::connect(&socket).expect("connects");
    let token: CreatedToken = admin
        .call(
            "tokens.create",
            json!({"account": "c@contoso.com", "serial": "C1"}),
        )
        .expect("created");
    let touchy: CreatedToken = admin
        .call(
            "tokens.create",
            json!({"account": "t@contoso.com", "serial": "T1", "touch": true}),
        )
        .expect("created");
    // Warm the token list cache so only CALCULATEs reach the key below.
    let _: Code = admin
        .call("codes.get", json!({"token": "C1", "at": 59}))
        .expect("code");

    let n = 64;
    let before = key.stats();
    let codes = concurrent_reads(&socket, "C1", 1_234_567_890, n);
    let after = key.stats();
    let expected = oathkey_testkit::reference_totp(
        "sha1",
        6,
        30,
        &data_encoding::BASE32_NOPAD
            .decode(token.secret.expose().as_bytes())
            .expect("base32"),
        1_234_567_890,
    );
    assert!(
        codes.iter().all(|c| *c == expected),
        "every caller got the right code"
    );
    // One CALCULATE request is one report in; without coalescing there would be 64.
    let exchanges = after.reports_in - before.reports_in;
    assert!(
        exchanges <= (n / 4) as u64,
        "{n} readers took {exchanges} exchanges"
    );

    // Touch tokens: every read is its own touch.
    let before = key.stats();
    let codes = concurrent_reads(&socket, "T1", 1_234_567_890, 8);
    let after = key.stats();
    assert_eq!(codes.len(), 8);
    assert_eq!(
        after.touch_requests - before.touch_requests,
        8,
        "one touch per read"
    );
    let _ = touchy;

    drop(admin);
    rt.block_on(daemon.shutdown());
}
