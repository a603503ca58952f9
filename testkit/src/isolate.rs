//! One test in a process of its own. Some state is global to a process (the `tracing`
//! subscriber a log capture installs), and a crate's integration tests share one test binary:
//! such a test starts this very binary again, told to run only that test, and passes or fails
//! with it. Its output is passed on, so a failure shows as if the test had run in place.

use std::process::Command;

/// The variable that tells a test it is the one its process is for.
const VAR: &str = "OATHKEY_TEST_OWN_PROCESS";

/// Runs the calling test in a process of its own: in the test's first line,
/// `oathkey_testkit::in_own_process!();`. In that process the test goes on; where it was
/// called, the macro runs that process, fails if it fails, and returns.
#[macro_export]
macro_rules! in_own_process {
    () => {{
        fn here() {}
        if $crate::isolate::elsewhere(::std::any::type_name_of_val(&here)) {
            return;
        }
    }};
}

/// For [`in_own_process!`]: `here` is the type name of a function inside the test
/// (`crate::module::test::here`). Returns `true` when the test ran in another process (and
/// passed there); `false` when this process is the one for it.
pub fn elsewhere(here: &str) -> bool {
    let path = here.strip_suffix("::here").unwrap_or(here);
    // libtest names tests by their path inside the crate.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var(VAR).is_ok_and(|v| v == name) {
        return false;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let out = Command::new(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .output()
        .expect("the test binary runs again");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // What the test printed, for `--nocapture` and for failures.
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "{name} failed in its own process ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its own process:\n{stdout}"
    );
    true
}
