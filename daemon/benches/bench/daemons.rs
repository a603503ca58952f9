//! The release programs the benchmark runs, a daemon process, and the benchmark token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oathkey_protocol::Client;
use oathkey_protocol::types::CreatedToken;
use oathkey_testkit::{Daemon, reference_totp};
use serde_json::json;

use crate::{SECRET, SECRET_B32};

/// Where the release programs are.
pub struct Bins {
    pub dir: PathBuf,
    pub oathkeyd: PathBuf,
    pub oathkey: PathBuf,
    pub emulator: PathBuf,
}

pub fn bins() -> Bins {
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

/// An `oathkeyd` process (`--dbus off`, its default log level) with a private socket and state
/// directory in a folder under `parent`, ready once it answers (looked for every 2 ms, so that
/// [`Daemon::ready_after`] is its start-up time).
pub fn start_daemon(bins: &Bins, parent: &Path, args: &[&str]) -> Daemon {
    Daemon::builder()
        .program(&bins.oathkeyd)
        .log_level(None)
        .args(["--dbus", "off"])
        .args(args)
        .dir_in(parent, "oathkey-bench")
        .ready_within(Duration::from_secs(60), Duration::from_millis(2))
        .start()
}

/// The benchmark token (serial B1, the RFC 6238 seed) on `key` (or the only key).
pub fn create_bench_token(client: &mut Client, key: Option<&str>) {
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

/// The code of the benchmark token at `unix_time`, computed by the testkit's reference TOTP
/// (totp-rs): independent of the key's computation (`oathkey-otp`, which the daemon's check
/// after a write shares).
pub fn expected_code(unix_time: u64) -> String {
    reference_totp("sha1", 6, 30, SECRET, unix_time)
}
