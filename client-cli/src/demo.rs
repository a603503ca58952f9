//! `oathkey demo`: the main job on a virtual key with no set-up. Starts a private oathkeyd with
//! one virtual key on a temporary socket, seeds a token as the admin tool would, shows live
//! codes through the daemon, then stops the daemon and deletes everything it made (the
//! temporary directory holds the virtual key's state, seed included).

use crate::out::{out, outln};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oathkey_protocol::client::Client;
use oathkey_protocol::methods as m;
use oathkey_protocol::types::{Algorithm, CreateTokenParams, CreatedToken, OtpKind};

use crate::commands::{self, Ctx, unix_now};
use crate::exit::Failure;

/// The daemon binary next to this one (as installed and as built by cargo), else from PATH.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("oathkeyd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("oathkeyd"))
}

/// Stops the private daemon however the demo ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix_pid(self.0.id());
        // SIGTERM lets it remove its socket; kill if it does not stop.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nix_pid(id: u32) -> String {
    id.to_string()
}

fn wait_for_socket(path: &Path, daemon: &mut Daemon, log: &Path) -> Result<Client, Failure> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(client) = Client::connect(path) {
            return Ok(client);
        }
        if let Ok(Some(status)) = daemon.0.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(anyhow::anyhow!("the private oathkeyd exited ({status}):\n{log}").into());
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!("the private oathkeyd did not start within 20 s").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the demo.
pub fn run(periods: u32, json: bool) -> Result<(), Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())
            .map_err(|e| anyhow::anyhow!("cannot watch signals: {e}"))?;
    }
    let dir = tempfile::Builder::new()
        .prefix("oathkey-demo-")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
    let socket = dir.path().join("oathkeyd.sock");
    let log = dir.path().join("oathkeyd.log");
    let binary = daemon_binary();
    let log_file = std::fs::File::create(&log).map_err(|e| anyhow::anyhow!("{e}"))?;
    let child = Command::new(&binary)
        .args([
            "--user",
            "--no-hid",
            "--emulate",
            "1",
            "--log-level",
            "warn",
            // Private: not on the session bus, where it would take the real daemon's name.
            "--dbus",
            "off",
        ])
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start {} ({e}); build it with `cargo build -p oathkeyd` or install oathkey",
                binary.display()
            )
        })?;
    let mut daemon = Daemon(child);
    let client = wait_for_socket(&socket, &mut daemon, &log)?;
    drop(client);
    let mut ctx = Ctx::at_socket(&socket, json)?;
    let key = commands::key_info(&mut ctx)?;
    let say = |text: String| {
        if !json {
            outln!("{text}");
        }
    };
    say(format!(
        "Started a private oathkeyd with one virtual key: {} {} (id {}).",
        key.model, key.firmware, key.id
    ));
    say("Seeding a token as the admin tool would: TOTP, SHA-1, 6 digits, 30 s, random serial and seed.".into());
    let created: CreatedToken = ctx.call::<m::TokensCreate>(CreateTokenParams {
        key: None,
        account: "demo.user@contoso.com".into(),
        serial: None,
        secret: None,
        kind: OtpKind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        touch: false,
        counter: 0,
    })?;
    // The seed stays in the daemon's private state; the demo shows only enough to recognise it.
    let secret = created.secret.expose();
    say(format!(
        "  user {}  serial {}  seed {}... ({} Base32 characters; the key verified it by computing a code)",
        created.token.account,
        created.serial,
        &secret[..secret.len().min(4)],
        secret.len()
    ));
    say(format!(
        "Live codes from the key through oathkeyd (one per 30 s period, {periods} in all; Ctrl-C stops):"
    ));
    // `periods` codes: the current one, then each new one as its period starts. On a terminal
    // the last one counts down to the end of its period; otherwise the demo ends as it shows.
    let live = std::io::stdout().is_terminal() && !json;
    let end_step = unix_now() / 30 + u64::from(periods);
    let mut codes = Vec::new();
    let mut last = None;
    let over = |interrupted: &AtomicBool| {
        interrupted.load(Ordering::SeqCst) || (live && unix_now() / 30 >= end_step)
    };
    while !over(&interrupted) {
        let code = commands::fetch_code(&mut ctx, &created.token.name)?;
        let until = code.valid_until.unwrap_or(0);
        let left = until.saturating_sub(unix_now());
        // A new period, told by its end rather than its code (two periods may share a code).
        if last != Some(until) {
            if live && last.is_some() {
                outln!();
            }
            if !live && !json {
                outln!("  {}  (valid {left} s more)", code.code);
            }
            last = Some(until);
            codes.push(serde_json::json!({"code": code.code, "valid_until": until}));
        }
        if live {
            out!("\r  {}  {:>2} s left ", code.code, left);
            let _ = std::io::stdout().flush();
        }
        if !live && codes.len() >= periods as usize {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if live {
        outln!();
    }
    if json {
        let summary = serde_json::json!({
            "key": key, "token": created.token, "serial": created.serial, "codes": codes,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    }
    say("Stopping the private daemon; its state, seed included, is deleted.".into());
    drop(ctx);
    drop(daemon);
    drop(dir);
    Ok(())
}
