//! The CLI run as another user, for the tests of what readers may do. As root, `setpriv`
//! becomes the uid; as anyone else the CLI runs as ourselves (the tests that need another uid
//! check [`is_root`] first).

use std::process::{Command, Stdio};

use crate::bins::{ForAnyone, bin, is_root};
use crate::daemon::Daemon;
use crate::output::Ran;

/// Runs the CLI as uid/gid 65534 (nobody) with no supplementary groups.
pub fn cli_as_nobody(daemon: &Daemon, args: &[&str]) -> Ran {
    cli_as(daemon, 65534, args)
}

/// Runs the CLI as `uid` (its gid the same number, no supplementary groups); as ourselves when
/// not root.
pub fn cli_as(daemon: &Daemon, uid: u32, args: &[&str]) -> Ran {
    let bins = ForAnyone::bins(&["oathkey"]);
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--",
        ])
        .arg(bins.path("oathkey"));
        c
    } else {
        Command::new(bin("oathkey"))
    };
    Ran::run(
        cmd.args(args)
            .env("OATHKEY_SOCKET", &daemon.socket)
            .stdin(Stdio::null()),
    )
}
