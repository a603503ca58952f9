//! The workspace's programs as the tests run them, and where the test process itself stands.
//!
//! A test of one package runs another package's program too (the daemon's tests run `oathkey`,
//! the CLI's and the desktop's run `oathkeyd`). `cargo test` builds only the programs of the
//! package under test, so a sibling's program in the build folder may be missing or older than
//! its sources: [`bin`] runs `cargo build` for it once per test process, which takes a moment
//! when nothing changed and never leaves a stale program to test.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use tempfile::TempDir;

/// The folder of this build profile's programs (`target/debug`): a test or bench program runs
/// from its `deps/` folder.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test program's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test program is in <target>/<profile>/deps")
        .to_path_buf()
}

/// The cargo target folder (`target/`, or wherever `CARGO_TARGET_DIR` puts it).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the profile folder is in the target folder")
        .to_path_buf()
}

/// The workspace's program `name`, built now if this process has not built it yet. Each
/// program's package has the program's name (`oathkeyd`, `oathkey`, `oathkey-emulator`,
/// `oathkey-desktop`). The build uses the test's own profile and target folder, so it reuses
/// what `cargo test` built.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let once = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone();
    // Tests that need the same program wait for one build; other programs build meanwhile
    // (cargo serialises the builds themselves).
    once.get_or_init(|| build(name)).clone()
}

fn build(name: &str) -> PathBuf {
    let profile_dir = profile_dir();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--profile",
            &profile,
            "-p",
            name,
            "--bin",
            name,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {name} failed ({status})");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "cargo built {name}, but not at {}",
        path.display()
    );
    path
}

/// Whether the tests run as root (then other uids are reachable with setpriv).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Copies of programs that any uid may run. The build folder may sit where other uids cannot
/// reach it (a checkout in root's 0700 home, a `mktemp -d` folder, `CARGO_TARGET_DIR` in a
/// private place), so the tests that switch to another uid run these instead: hard links (or
/// copies, across file systems) in a fresh world-readable folder, removed when dropped.
#[derive(Debug)]
pub struct ForAnyone {
    dir: TempDir,
}

impl ForAnyone {
    /// The programs, linked into one folder (so a program finds its siblings, as `oathkey demo`
    /// finds `oathkeyd`).
    pub fn new(programs: &[PathBuf]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oathkey-bins-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        for program in programs {
            let name = program.file_name().expect("a file name");
            let to = dir.path().join(name);
            if std::fs::hard_link(program, &to).is_err() {
                std::fs::copy(program, &to).expect("copied");
            }
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Self { dir }
    }

    /// The workspace's programs `names` (see [`bin`]).
    pub fn bins(names: &[&str]) -> Self {
        Self::new(&names.iter().map(|n| bin(n)).collect::<Vec<_>>())
    }

    /// The runnable copy of the program named `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The Python interpreter with python-fido2, nitrokey and pyotp: `OATHKEY_PYTHON`, or the
/// virtualenv `scripts/setup` makes in the cargo target folder (wherever `CARGO_TARGET_DIR`
/// puts it).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OATHKEY_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = target_dir().join("pyvenv/bin/python3");
    assert!(
        venv.exists(),
        "no Python test environment at {}: run scripts/setup (or set OATHKEY_PYTHON)",
        venv.display()
    );
    venv
}
