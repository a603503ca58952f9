//! No seed reaches the desktop app's log or its `Debug` output. Everything this process logs
//! (the app's backend threads, the protocol client, the seed-file export) is captured at
//! `trace` while the admin flow runs against a real daemon: a typed seed and a generated one
//! are saved, one is refused by the daemon, both are exported, and the daemon goes away. Then
//! neither seed shows in the log in any encoding (Base32, its raw bytes in hex, Base64, Rust's
//! `Debug` of bytes; see the testkit's `needles`, shared with the daemon's and the CLI's tests).
//!
//! In a process of its own: the log subscriber is global to the process, and the other tests
//! of this binary must neither log into this capture nor be slowed down by it.

use crate::common::*;
use egui_kittest::kittest::{NodeT, Queryable};
use oathkey_desktop::Clock;
use oathkey_protocol::types::{TokenInfo, method};
use oathkey_testkit::log::Log;
use oathkey_testkit::needles::{Needles, assert_found, assert_no_secret};
use serde_json::json;

const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn save_disabled(h: &H) -> bool {
    h.get_by_label("Save").accesskit_node().is_disabled()
}

/// Replaces a field's content: focus, select all, type.
fn type_into(h: &mut H, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_press_modifiers(eframe::egui::Modifiers::COMMAND, eframe::egui::Key::A);
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
    h.run_ok();
}

#[test]
fn the_admin_flow_logs_no_seed_at_trace_level() {
    oathkey_testkit::in_own_process!();
    let log = Log::capture("trace");
    let mut daemon = start_daemon(&[]);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "the Admin tab", WAIT, |h| shows(h, "Admin"));
    h.get_by_label("Admin").click();
    wait_for(&mut h, "the form", WAIT, |h| shows(h, "New Token"));

    // A seed typed in (random, so that it cannot be in the log by chance), saved.
    let mut typed = vec![0u8; 20];
    getrandom::fill(&mut typed).expect("randomness");
    let typed_b32 = data_encoding::BASE32_NOPAD.encode(&typed);
    let mut secrets = vec![Needles::secret("the typed seed", &typed)];
    type_into(&mut h, "Serial", "0077001");
    type_into(&mut h, "Seed", &typed_b32);
    type_into(&mut h, "Username (UPN)", "alice@contoso.com");
    assert!(!save_disabled(&h));
    let debug = format!("{:?}", h.state().app);
    assert!(debug.contains("0077001"), "the Debug output is the form's");
    assert_no_secret(&secrets, "the app's Debug output", &debug);
    h.get_by_label("Save").click();
    wait_for(&mut h, "the typed seed saved", WAIT, |h| {
        shows_part(h, "Saved token 0077001 for alice@contoso.com")
    });

    // The same serial again: the daemon refuses a request that carries the seed.
    type_into(&mut h, "Serial", "0077001");
    type_into(&mut h, "Seed", &typed_b32);
    type_into(&mut h, "Username (UPN)", "alice@contoso.com");
    h.get_by_label("Save").click();
    wait_for(&mut h, "the refusal", WAIT, |h| {
        shows_part(h, "(AlreadyExists)")
    });

    // A generated seed (HOTP, SHA-256, 8 digits: another path through the daemon), saved.
    h.get_by_label("HOTP").click();
    h.step();
    h.get_by_label("SHA256").click();
    h.step();
    h.get_by_label("8 digits").click();
    h.step();
    h.get_by_label("Generate").click();
    h.step();
    let generated = h.state().app.state.admin.seed.expose().to_owned();
    let serial = h.state().app.state.admin.serial.clone();
    assert_eq!(generated.len(), 32, "generated");
    secrets.push(Needles::base32("the generated seed", &generated));
    let debug = format!("{:?}", h.state().app);
    assert_no_secret(&secrets, "the app's Debug output", &debug);
    type_into(&mut h, "Username (UPN)", "bob@contoso.com");
    h.get_by_label("Save").click();
    wait_for(&mut h, "the generated seed saved", WAIT, |h| {
        shows_part(h, &format!("Saved token {serial} for bob@contoso.com"))
    });
    let tokens: Vec<TokenInfo> = daemon
        .client()
        .call(method::TOKENS_LIST, json!({}))
        .expect("tokens.list");
    assert_eq!(tokens.len(), 2, "{tokens:?}");

    // An export the seed-file writer refuses (privacyIDEA CSV has no SHA-256), then both
    // exported as PSKC: the file does hold them, so the search below looks for the right thing.
    let out = daemon.dir.path().join("seeds.xml");
    h.get_by_label("Format").click();
    h.run_ok();
    h.get_by_label("privacyIDEA CSV").click();
    h.run_ok();
    type_into(&mut h, "File", out.to_str().expect("utf-8"));
    h.get_by_label("Export").click();
    wait_for(&mut h, "the refused export", WAIT, |h| {
        shows_part(h, "hash SHA-256 is not supported")
    });
    h.get_by_label("Format").click();
    h.run_ok();
    h.get_by_label("PSKC XML").click();
    h.run_ok();
    type_into(&mut h, "File", out.to_str().expect("utf-8"));
    h.get_by_label("Export").click();
    wait_for(&mut h, "the export", WAIT, |h| {
        shows_part(h, "Wrote 2 seed(s)")
    });
    let file = std::fs::read_to_string(&out).expect("the seed file");
    for s in &secrets {
        assert_found(s, "the exported seed file", &file);
    }

    // The daemon goes away: the connection's errors are logged too.
    daemon.kill();
    wait_for(&mut h, "the not-running message", WAIT, |h| {
        shows_part(h, "oathkeyd is not running at")
    });
    drop(h);

    let text = log.text();
    assert!(
        text.contains("connected to oathkeyd"),
        "the app's log is captured:\n{text}"
    );
    for line in [
        "request command=CreateToken",
        "secret: Some([redacted])",
        "token saved",
        "token not saved",
        "seed file not written",
        "seed file written",
        "events connection lost",
    ] {
        assert!(text.contains(line), "{line:?} is logged:\n{text}");
    }
    // The search works on this very log: the seeds written into a copy of it are found.
    assert_found(
        &secrets[0],
        "the log with the typed seed added",
        &format!("{text}{typed_b32}"),
    );
    assert_found(
        &secrets[0],
        "the log with the typed seed's hex added",
        &format!("{text}{}", data_encoding::HEXLOWER.encode(&typed)),
    );
    assert_found(
        &secrets[1],
        "the log with the generated seed added",
        &format!("{text}{generated}"),
    );
    assert_no_secret(&secrets, "the desktop app's log", &text);
    assert!(
        !text.contains(&typed_b32) && !text.contains(&generated),
        "the Base32 seeds"
    );
    let hex = data_encoding::HEXLOWER.encode(&typed);
    assert!(
        !text.to_ascii_lowercase().contains(&hex),
        "the typed seed's bytes in hex"
    );
}
