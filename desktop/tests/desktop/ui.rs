//! The app's view driven like a user would (click, type, read labels) through egui_kittest,
//! without a display, against a real `oathkeyd` with a virtual key.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::*;
use eframe::egui::{Event, Key, Modifiers};
use egui_kittest::kittest::{NodeT, Queryable};
use oathkey_desktop::model::{Status, Tab, Update};
use oathkey_desktop::{AppState, Clock, DesktopApp};

use oathkey_protocol::types::{
    Algorithm, CodeEntry, Hello, KeyInfo, KeyList, KeySource, OtpKind, Role, TokenInfo, method,
};
use serde_json::{Value, json};

const ALICE: &str = "alice@contoso.com";
const WAIT: Duration = Duration::from_secs(15);

fn code_equals_totp_near(code: &str, t: u64) -> bool {
    // The app may have read the code just before a period ended.
    [t, t.saturating_sub(30), t + 30]
        .iter()
        .any(|at| totp(SEED, *at) == code)
}

#[test]
fn a_seeded_token_shows_the_code_the_key_computes() {
    let daemon = start_daemon(&[]);
    daemon.create_token(ALICE, "0012345", false);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "alice's code", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    let label = code_label(&h, ALICE).expect("shown");
    let code = code_of(&label);
    assert_eq!(code.len(), 6, "{label}");
    assert!(
        code_equals_totp_near(&code, unix_now()),
        "{label} vs totp-rs"
    );
    let left = seconds_of(&label).expect("seconds in the label");
    assert!((1..=30).contains(&left), "{label}");
    assert!(shows_part(&h, "serial 0012345"));
    assert!(shows_part(&h, &format!("key {}", daemon.key_id())));
    assert!(shows(&h, &format!("{left} s left")) || shows(&h, &format!("{} s left", left - 1)));
}

#[test]
fn copy_puts_the_code_on_the_clipboard_and_clears_it_later() {
    let daemon = start_daemon(&[]);
    daemon.create_token(ALICE, "0012345", false);
    let start = unix_now() as f64;
    let mut h = app(&daemon.socket, Clock::Manual(start));
    wait_for(&mut h, "alice's code", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    let code = code_of(&code_label(&h, ALICE).expect("shown"));

    h.get_by_label(&format!("Copy code for {ALICE}")).click();
    h.step();
    assert_eq!(copied(&h).as_deref(), Some(code.as_str()));
    h.step();
    assert!(shows(&h, "copied, clears in 30 s"));

    h.state_mut().app.state.clock.advance(12.0);
    h.step();
    assert!(shows(&h, "copied, clears in 18 s"));
    assert_eq!(h.state().copied.len(), 1, "nothing else copied meanwhile");

    h.state_mut().app.state.clock.advance(18.0);
    h.step();
    assert_eq!(copied(&h).as_deref(), Some(""), "cleared after 30 s");
    h.step();
    assert!(!shows_part(&h, "copied, clears in"));
    assert!(shows_part(&h, "Cleared the copied code"));
}

const BOB: &str = "bob@contoso.com";
/// Bob's seed differs from Alice's, so that their codes differ.
const BOB_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The account whose code the clipboard timer is running for (`Some(None)`: a token with no
/// account).
fn timer_account(h: &H) -> Option<Option<String>> {
    h.state()
        .app
        .state
        .clipboard
        .as_ref()
        .map(|c| c.token.name.rsplit_once(':').map(|(_, a)| a.to_owned()))
}

/// Forgets what was copied, in the harness and in the app's clipboard timer.
fn forget_copies(h: &mut H) {
    h.state_mut().app.state.clipboard = None;
    h.state_mut().copied.clear();
}

/// The app with Alice's and Bob's tokens, both codes shown; the clock stands still.
fn alice_and_bob(daemon: &Daemon) -> H {
    daemon.create_token(ALICE, "0012345", false);
    daemon.create_token_with_seed(BOB, "0012346", BOB_SEED, false);
    let mut h = app(&daemon.socket, Clock::Manual(unix_now() as f64));
    wait_for(&mut h, "both codes", WAIT, |h| {
        code_label(h, ALICE).is_some() && code_label(h, BOB).is_some()
    });
    h
}

#[test]
fn keyboard_tab_and_shift_tab_go_top_to_bottom_through_the_codes_view() {
    let daemon = start_daemon(&[]);
    let mut h = alice_and_bob(&daemon);
    let alice = code_label(&h, ALICE).expect("shown");
    let bob = code_label(&h, BOB).expect("shown");
    assert_ne!(code_of(&alice), code_of(&bob), "different seeds");
    assert_eq!(focused(&h), None, "nothing has the focus at first");

    // Tab from nothing: the tabs, each card top to bottom (Copy on its first row, the code
    // under it), then the status bar's Scale and Theme; then round again.
    let mut order = Vec::new();
    for _ in 0..13 {
        order.push(press(&mut h, Modifiers::NONE, Key::Tab).unwrap_or_default());
    }
    let expected = [
        "Codes",
        "Admin",
        &format!("Copy code for {ALICE}"),
        &alice,
        &format!("Copy code for {BOB}"),
        &bob,
        "Scale 100%",
        "Scale 150%",
        "Scale 200%",
        "Theme: System",
        "Theme: Light",
        "Theme: Dark",
        "Codes",
    ];
    assert_eq!(order, expected, "Tab order");

    // Shift+Tab walks the same way back (from the first widget round to the last).
    let mut back = Vec::new();
    for _ in 0..4 {
        back.push(press(&mut h, Modifiers::SHIFT, Key::Tab).unwrap_or_default());
    }
    assert_eq!(
        back,
        ["Theme: Dark", "Theme: Light", "Theme: System", "Scale 200%"],
        "Shift+Tab order"
    );
    let back = tab_to(&mut h, true, 10, |n| n == alice);
    assert_eq!(
        back,
        [
            "Scale 150%".to_owned(),
            "Scale 100%".to_owned(),
            bob,
            format!("Copy code for {BOB}"),
            alice
        ]
    );
}

#[test]
fn keyboard_ctrl_c_copies_the_token_tab_reached_and_enter_or_space_press_copy() {
    let daemon = start_daemon(&[]);
    let mut h = alice_and_bob(&daemon);
    let alice_code = code_of(&code_label(&h, ALICE).expect("shown"));
    let bob_code = code_of(&code_label(&h, BOB).expect("shown"));

    // Ctrl+C with no token selected copies the first code shown.
    press(&mut h, Modifiers::COMMAND, Key::C);
    assert_eq!(
        copied(&h).as_deref(),
        Some(alice_code.as_str()),
        "first code"
    );
    assert_eq!(timer_account(&h), Some(Some(ALICE.to_owned())));

    // Tab to Bob's code: Ctrl+C copies Bob's, and his card is the selected one.
    forget_copies(&mut h);
    tab_to(&mut h, false, 10, |n| {
        n.starts_with("code ") && n.contains(BOB)
    });
    press(&mut h, Modifiers::COMMAND, Key::C);
    assert_eq!(
        copied(&h).as_deref(),
        Some(bob_code.as_str()),
        "Ctrl+C after Tab to Bob's code"
    );
    assert_eq!(timer_account(&h), Some(Some(BOB.to_owned())));
    assert!(shows(&h, "copied, clears in 30 s"));

    // Shift+Tab to Alice's Copy button; Ctrl+C now copies Alice's (the focus selects).
    forget_copies(&mut h);
    let copy_alice = format!("Copy code for {ALICE}");
    tab_to(&mut h, true, 10, |n| n == copy_alice);
    press(&mut h, Modifiers::COMMAND, Key::C);
    assert_eq!(copied(&h).as_deref(), Some(alice_code.as_str()), "Ctrl+C");

    // Enter presses the focused Copy button.
    forget_copies(&mut h);
    assert_eq!(press(&mut h, Modifiers::NONE, Key::Enter), Some(copy_alice));
    assert_eq!(copied(&h).as_deref(), Some(alice_code.as_str()), "Enter");
    assert_eq!(timer_account(&h), Some(Some(ALICE.to_owned())));

    // Space presses Bob's, reached with Tab.
    forget_copies(&mut h);
    let copy_bob = format!("Copy code for {BOB}");
    tab_to(&mut h, false, 10, |n| n == copy_bob);
    press(&mut h, Modifiers::NONE, Key::Space);
    assert_eq!(copied(&h).as_deref(), Some(bob_code.as_str()), "Space");
    assert_eq!(timer_account(&h), Some(Some(BOB.to_owned())));

    // Clicking a code selects its token too: Ctrl+C (as the Copy event) copies it.
    forget_copies(&mut h);
    let alice_label = code_label(&h, ALICE).expect("shown");
    h.get_by(move |n| n.label().is_some_and(|l| l == alice_label))
        .click();
    h.step();
    h.event(Event::Copy);
    h.step();
    assert_eq!(copied(&h).as_deref(), Some(alice_code.as_str()), "click");
}

#[test]
fn keyboard_walks_the_admin_form_and_enter_in_the_upn_field_saves() {
    let daemon = start_daemon(&[]);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "the Admin tab", WAIT, |h| shows(h, "Admin"));
    let list = |daemon: &Daemon| -> Vec<TokenInfo> {
        daemon
            .client()
            .call(method::TOKENS_LIST, json!({}))
            .expect("tokens.list")
    };

    // Tab to the Admin tab and press Enter: the form.
    assert_eq!(
        tab_to(&mut h, false, 5, |n| n == "Admin"),
        ["Codes", "Admin"]
    );
    press(&mut h, Modifiers::NONE, Key::Enter);
    wait_for(&mut h, "the form", WAIT, |h| shows(h, "New Token"));

    // Tab goes through the form top to bottom, to Generate; Enter presses it.
    let order = tab_to(&mut h, false, 30, |n| n == "Generate");
    let expected = [
        "Keyboard",
        "U2F",
        "Apply Mode",
        "Enabled",
        "Disabled",
        "Apply Key Press",
        "TOTP",
        "HOTP",
        "SHA1",
        "SHA256",
        "SHA512",
        "6 digits",
        "8 digits",
        "30 seconds",
        "60 seconds",
        "Every code needs a touch",
        "Generate",
    ];
    assert_eq!(order, expected, "Tab order of the form");
    assert!(h.state().app.state.admin.serial.is_empty());
    press(&mut h, Modifiers::NONE, Key::Enter);
    let serial = h.get_by_label("Serial").value().expect("serial");
    assert_eq!(serial.len(), 8, "Enter on Generate fills the serial");
    assert_eq!(
        h.state().app.state.admin.seed.expose().len(),
        32,
        "and the seed"
    );

    // On through the fields; Shift+Tab goes back.
    let order = tab_to(&mut h, false, 5, |n| n == "Username (UPN)");
    assert_eq!(order, ["Serial", "Seed", "Show seed", "Username (UPN)"]);
    assert_eq!(
        press(&mut h, Modifiers::SHIFT, Key::Tab).as_deref(),
        Some("Show seed")
    );
    assert_eq!(
        press(&mut h, Modifiers::SHIFT, Key::Tab).as_deref(),
        Some("Seed")
    );
    tab_to(&mut h, false, 3, |n| n == "Username (UPN)");

    // Enter in the field with an invalid UPN: nothing is saved, the field says why.
    h.event(Event::Text("alice".into()));
    h.step();
    assert_eq!(
        h.state().app.state.admin.upn,
        "alice",
        "typed into the focused field"
    );
    press(&mut h, Modifiers::NONE, Key::Enter);
    h.run_ok();
    assert!(shows(&h, "A UPN looks like alice@contoso.com (no @ found)"));
    assert!(save_disabled(&h));
    assert!(
        list(&daemon).is_empty(),
        "Enter did not save an invalid form"
    );

    // Back to the field with Tab, a valid UPN, Enter: saved.
    tab_to(&mut h, false, 30, |n| n == "Username (UPN)");
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.step();
    h.event(Event::Text(ALICE.into()));
    h.step();
    assert_eq!(h.state().app.state.admin.upn, ALICE);
    h.step();
    assert!(!save_disabled(&h));
    assert_eq!(focused(&h).as_deref(), Some("Username (UPN)"));
    press(&mut h, Modifiers::NONE, Key::Enter);
    wait_for(&mut h, "the saved message", WAIT, |h| {
        shows_part(h, &format!("Saved token {serial} for {ALICE}"))
    });
    let tokens = list(&daemon);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].serial.as_deref(), Some(serial.as_str()));
    assert_eq!(tokens[0].account, ALICE);
}

#[test]
fn the_code_and_countdown_roll_over_at_the_end_of_the_period() {
    let daemon = start_daemon(&[]);
    daemon.create_token(ALICE, "0012345", false);
    let mut h = app(&daemon.socket, Clock::Manual(unix_now() as f64));
    wait_for(&mut h, "alice's code", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    let first = code_label(&h, ALICE).expect("shown");
    let t0 = h.state().app.state.clock.now_secs();
    let until = t0 - t0 % 30 + 30;
    assert_eq!(code_of(&first), totp(SEED, t0));

    // Three seconds before the end: the countdown says so, and the next code is shown.
    h.state_mut().app.state.clock.set(until as f64 - 3.0);
    let next = totp(SEED, until);
    wait_for(&mut h, "the next code", WAIT, |h| {
        h.query_by(|n| {
            n.label()
                .is_some_and(|l| l == format!("next code {next} for {ALICE}"))
        })
        .is_some()
    });
    let label = code_label(&h, ALICE).expect("shown");
    assert_eq!(seconds_of(&label), Some(3), "{label}");
    assert!(shows(&h, "3 s left"));

    // The period ends: the next code becomes the code, with a whole period to go.
    h.state_mut().app.state.clock.set(until as f64);
    wait_for(&mut h, "the rollover", WAIT, |h| {
        code_label(h, ALICE).is_some_and(|l| code_of(&l) == next)
    });
    let label = code_label(&h, ALICE).expect("shown");
    assert_eq!(seconds_of(&label), Some(30), "{label}");
    assert!(shows(&h, "30 s left"));
    assert_ne!(
        code_of(&first),
        next,
        "RFC 6238's key gives different codes here"
    );
}

#[test]
fn a_touch_token_asks_for_the_touch_and_shows_the_code_after_it() {
    let daemon = start_daemon(&["--emulate-touch", "button"]);
    daemon.create_token(ALICE, "0012345", true);
    let mut h = app(&daemon.socket, Clock::System);
    let get_code = format!("Get code for {ALICE}");
    wait_for(&mut h, "Get code", WAIT, |h| shows(h, &get_code));
    assert!(code_label(&h, ALICE).is_none(), "no code without a touch");
    assert!(shows_part(&h, "Each code needs a touch"));

    h.get_by_label(&get_code).click();
    wait_for(&mut h, "the touch prompt", WAIT, |h| {
        shows(h, "Touch your key")
    });
    assert!(
        shows_part(&h, "to read the code for alice@contoso.com"),
        "the banner"
    );

    let pressed: bool = daemon
        .client()
        .call(method::VIRTUAL_PRESS, Value::Null)
        .expect("virtual.press");
    assert!(pressed, "the daemon was waiting for the touch");
    wait_for(&mut h, "the code after the touch", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    let code = code_of(&code_label(&h, ALICE).expect("shown"));
    assert!(code_equals_totp_near(&code, unix_now()), "{code}");
    wait_for(&mut h, "the prompt to go", WAIT, |h| {
        !shows(h, "Touch your key")
    });
}

/// Replaces a text field's content, as a user would: focus it, select all, type. Then lets
/// egui finish what typing starts (scrolling the field into view), so that the next click
/// lands where the widget is.
fn select_all_and_type(h: &mut H, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
    h.run_ok();
}

fn save_disabled(h: &H) -> bool {
    h.get_by_label("Save").accesskit_node().is_disabled()
}

#[test]
fn the_admin_form_refuses_bad_input_then_saves_and_exports_the_token() {
    let daemon = start_daemon(&[]);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "the Admin tab", WAIT, |h| shows(h, "Admin"));
    h.get_by_label("Admin").click();
    wait_for(&mut h, "the form", WAIT, |h| shows(h, "New Token"));
    assert!(shows(&h, "Mode") && shows(&h, "Key Press"));

    // Bad input: a message next to each field, and no Save.
    select_all_and_type(&mut h, "Username (UPN)", "alice");
    select_all_and_type(&mut h, "Serial", "12 34");
    select_all_and_type(&mut h, "Seed", "not base32!");
    assert!(shows(&h, "A UPN looks like alice@contoso.com (no @ found)"));
    assert!(shows_part(&h, "A serial may hold only letters"));
    assert!(shows(
        &h,
        "A Base32 seed holds only the letters A-Z and the digits 2-7"
    ));
    assert!(save_disabled(&h));
    h.get_by_label("Save").click();
    h.step();
    h.step();
    let tokens: Vec<TokenInfo> = daemon
        .client()
        .call(method::TOKENS_LIST, json!({}))
        .expect("tokens.list");
    assert!(tokens.is_empty(), "nothing saved");

    // Generate fills serial and seed; a good UPN: Save is allowed and works.
    h.get_by_label("Generate").click();
    h.step();
    select_all_and_type(&mut h, "Username (UPN)", "alice@contoso.com");
    assert!(
        !save_disabled(&h),
        "{:?}",
        h.state().app.state.admin.token_errors(Some("k"))
    );
    let serial = h.get_by_label("Serial").value().expect("serial");
    assert_eq!(serial.len(), 8);
    let seed = h.state().app.state.admin.seed.expose().to_owned();
    assert_eq!(seed.len(), 32, "a 160-bit seed in Base32");
    let masked = h.get_by_label("Seed").value().expect("a value");
    assert_eq!(masked.chars().count(), 32);
    assert!(
        !masked.contains(&seed[..8]),
        "masked, even to screen readers"
    );
    assert!(!shows_part(&h, "A UPN"), "no error left");
    h.get_by_label("Save").click();
    wait_for(&mut h, "the saved message", WAIT, |h| {
        shows_part(h, &format!("Saved token {serial} for alice@contoso.com"))
    });
    assert!(
        h.state().app.state.admin.seed.is_empty(),
        "the seed is wiped after Save"
    );
    let tokens: Vec<TokenInfo> = daemon
        .client()
        .call(method::TOKENS_LIST, json!({}))
        .expect("tokens.list");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].serial.as_deref(), Some(serial.as_str()));
    assert_eq!(tokens[0].account, "alice@contoso.com");

    // The daemon's refusal is shown with its name: the same serial again.
    h.get_by_label("Generate").click();
    h.step();
    select_all_and_type(&mut h, "Serial", &serial);
    select_all_and_type(&mut h, "Username (UPN)", "bob@contoso.com");
    h.get_by_label("Save").click();
    wait_for(&mut h, "the daemon's error", WAIT, |h| {
        shows_part(h, "(AlreadyExists)")
    });
    assert!(shows_part(&h, &format!("serial {serial}")));
    assert!(
        !h.state().app.state.admin.seed.is_empty(),
        "kept for another try"
    );

    // Export: Azure CSV, 0600, readable, with the serial, and the seed the key holds.
    let out = daemon.dir.path().join("tseed.csv");
    select_all_and_type(&mut h, "File", out.to_str().expect("utf-8"));
    h.get_by_label("Export").click();
    wait_for(&mut h, "the export", WAIT, |h| {
        shows_part(h, "Wrote 1 seed(s)")
    });
    let mode = std::fs::metadata(&out)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let bytes = std::fs::read(&out).expect("read");
    let parsed = oathkey_seedfile::read(oathkey_seedfile::Format::AzureCsv, &bytes);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let records = parsed.into_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].serial, serial);
    assert_eq!(records[0].user, "alice@contoso.com");
    let code: oathkey_protocol::types::Code = daemon
        .client()
        .call(method::CODES_GET, json!({"token": serial}))
        .expect("codes.get");
    let b32 = records[0].secret.base32();
    let t = code.valid_from.expect("totp");
    assert_eq!(totp(&b32, t), code.code, "the file's seed is the key's");

    // Exporting to the same file again without Append/Replace is refused next to the field.
    h.step();
    assert!(shows_part(&h, "The file exists"));

    // Key Press: Enabled + Apply reaches the key (the virtual key approves the touch).
    let before: oathkey_protocol::types::Settings = daemon
        .client()
        .call(method::KEYS_GET_CONFIG, json!({}))
        .expect("keys.get_config");
    assert_eq!(before.key_press, Some(false));
    h.get_by_label("Enabled").click();
    h.step();
    h.get_by_label("Apply Key Press").click();
    wait_for(&mut h, "Key Press applied", WAIT, |h| shows(h, "Applied."));
    let settings: oathkey_protocol::types::Settings = daemon
        .client()
        .call(method::KEYS_GET_CONFIG, json!({}))
        .expect("keys.get_config");
    assert_eq!(settings.key_press, Some(true));

    // Mode: both interfaces off is refused in the form; U2F off + Apply reaches the key.
    assert_eq!((before.keyboard, before.u2f), (Some(true), Some(true)));
    assert_eq!(toggled(&h, "U2F"), Some(true), "the key's setting is shown");
    h.get_by_label("U2F").click();
    h.step();
    h.get_by_label("Keyboard").click();
    h.step();
    h.step();
    assert!(shows(
        &h,
        "Keep Keyboard or U2F on: a key with neither cannot be reached"
    ));
    assert!(disabled(&h, "Apply Mode"));
    h.get_by_label("Keyboard").click();
    h.step();
    h.step();
    assert!(!shows_part(&h, "Keep Keyboard or U2F on"));
    assert_eq!(
        (toggled(&h, "Keyboard"), toggled(&h, "U2F")),
        (Some(true), Some(false))
    );
    apply_mode(&mut h);
    let settings = config(&daemon);
    assert_eq!(
        (settings.keyboard, settings.u2f, settings.key_press),
        (Some(true), Some(false), Some(true)),
        "Mode applied, Key Press left as it was"
    );
    assert_eq!(
        toggled(&h, "U2F"),
        Some(false),
        "the form shows the key's new Mode"
    );

    // And back on.
    h.get_by_label("U2F").click();
    h.step();
    apply_mode(&mut h);
    let settings = config(&daemon);
    assert_eq!((settings.keyboard, settings.u2f), (Some(true), Some(true)));
}

/// The key's settings, from the daemon.
fn config(daemon: &Daemon) -> oathkey_protocol::types::Settings {
    daemon
        .client()
        .call(method::KEYS_GET_CONFIG, json!({}))
        .expect("keys.get_config")
}

/// Whether a checkbox (or toggle) is checked, as a screen reader reads it.
fn toggled(h: &H, label: &str) -> Option<bool> {
    h.get_by_label(label)
        .accesskit_node()
        .toggled()
        .map(|t| t == eframe::egui::accesskit::Toggled::True)
}

fn disabled(h: &H, label: &str) -> bool {
    h.get_by_label(label).accesskit_node().is_disabled()
}

/// Presses Apply Mode and waits for the daemon's answer.
fn apply_mode(h: &mut H) {
    h.get_by_label("Apply Mode").click();
    h.step();
    assert_eq!(h.state().app.state.admin.mode_status, Status::Busy, "sent");
    wait_for(h, "Mode applied", WAIT, |h| {
        h.state().app.state.admin.mode_status == Status::Done("Applied.".into())
    });
}

/// RFC 6238's SHA-256 test key (32 bytes).
const SEED_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";

#[test]
fn the_admin_form_saves_tokens_with_the_parameters_chosen() {
    const CAROL: &str = "carol@contoso.com";
    const DAVE: &str = "dave@contoso.com";
    let daemon = start_daemon(&[]);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "the Admin tab", WAIT, |h| shows(h, "Admin"));
    h.get_by_label("Admin").click();
    wait_for(&mut h, "the form", WAIT, |h| shows(h, "New Token"));
    let list = |daemon: &Daemon| -> Vec<TokenInfo> {
        daemon
            .client()
            .call(method::TOKENS_LIST, json!({}))
            .expect("tokens.list")
    };

    // TOTP, SHA256, 8 digits, 60 s, with a seed typed in.
    assert!(!shows_part(&h, "Azure's CSV upload takes only"));
    for choice in ["SHA256", "8 digits", "60 seconds"] {
        h.get_by_label(choice).click();
        h.step();
    }
    h.step();
    assert!(
        shows_part(&h, "Azure's CSV upload takes only"),
        "flagged for Azure"
    );
    select_all_and_type(&mut h, "Serial", "0099001");
    select_all_and_type(&mut h, "Seed", SEED_SHA256);
    select_all_and_type(&mut h, "Username (UPN)", CAROL);
    assert!(!save_disabled(&h));
    h.get_by_label("Save").click();
    wait_for(&mut h, "the saved message", WAIT, |h| {
        shows_part(h, &format!("Saved token 0099001 for {CAROL}"))
    });
    let tokens = list(&daemon);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let carol = &tokens[0];
    assert_eq!(
        (
            carol.serial.as_deref(),
            carol.account.as_str(),
            carol.kind,
            carol.algorithm,
            carol.period,
            carol.touch
        ),
        (
            Some("0099001"),
            CAROL,
            OtpKind::Totp,
            Some(Algorithm::Sha256),
            60,
            Some(false)
        ),
        "{carol:?}"
    );
    let code: oathkey_protocol::types::Code = daemon
        .client()
        .call(method::CODES_GET, json!({"token": "0099001"}))
        .expect("codes.get");
    let from = code.valid_from.expect("totp");
    assert_eq!(code.valid_until, Some(from + 60), "a 60 s period");
    assert_eq!(code.code.len(), 8);
    assert_eq!(
        code.code,
        reference_totp_b32("sha256", 8, 60, SEED_SHA256, from),
        "the key computes SHA-256, 8 digits, 60 s with the typed seed"
    );

    // HOTP (SHA256 and 8 digits still chosen), generated seed.
    h.get_by_label("HOTP").click();
    h.step();
    h.get_by_label("Generate").click();
    h.step();
    let serial = h.state().app.state.admin.serial.clone();
    assert_eq!(serial.len(), 8, "generated");
    select_all_and_type(&mut h, "Username (UPN)", DAVE);
    h.get_by_label("Save").click();
    wait_for(&mut h, "the saved message", WAIT, |h| {
        shows_part(h, &format!("Saved token {serial} for {DAVE}"))
    });
    let tokens = list(&daemon);
    let dave = tokens
        .iter()
        .find(|t| t.account == DAVE)
        .unwrap_or_else(|| panic!("{tokens:?}"));
    assert_eq!(
        (dave.serial.as_deref(), dave.kind, dave.algorithm),
        (
            Some(serial.as_str()),
            OtpKind::Hotp,
            Some(Algorithm::Sha256)
        ),
        "{dave:?}"
    );

    // The codes view shows them as saved: Carol's 8 digits in two groups and her
    // parameters, Dave's HOTP behind Get code.
    h.get_by_label("Codes").click();
    wait_for(&mut h, "Carol's code", WAIT, |h| {
        code_label(h, CAROL).is_some()
    });
    let label = code_label(&h, CAROL).expect("shown");
    let shown = code_of(&label);
    assert_eq!(shown.len(), 8, "{label}");
    assert!(shows(&h, &format!("{} {}", &shown[..4], &shown[4..])));
    assert!(shows(&h, "serial 0099001 · TOTP · SHA-256 · 60 s"));
    wait_for(&mut h, "Dave's Get code", WAIT, |h| {
        shows(h, &format!("Get code for {DAVE}"))
    });
    assert!(shows(&h, &format!("serial {serial} · HOTP · SHA-256")));
}

#[test]
fn the_app_says_when_the_daemon_is_gone_and_comes_back_with_it() {
    let mut daemon = start_daemon(&[]);
    daemon.create_token(ALICE, "0012345", false);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "alice's code", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });

    daemon.kill();
    let socket = daemon.socket.display().to_string();
    wait_for(&mut h, "the not-running message", WAIT, |h| {
        shows_part(h, &format!("oathkeyd is not running at {socket}"))
    });
    assert!(shows_part(&h, "oathkeyd --user"));
    assert!(code_label(&h, ALICE).is_none(), "no stale codes");

    daemon.restart();
    wait_for(&mut h, "the key and its code again", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    assert!(!shows_part(&h, "is not running"));
}

#[test]
fn keys_appear_and_disappear_live() {
    let daemon = start_daemon(&[]);
    let key = daemon.key_id();
    daemon.create_token(ALICE, "0012345", false);
    let mut h = app(&daemon.socket, Clock::System);
    wait_for(&mut h, "alice's code", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
    let _: Value = daemon
        .client()
        .call(method::VIRTUAL_UNPLUG, json!({"key": key}))
        .expect("unplug");
    wait_for(&mut h, "the key to go", WAIT, |h| {
        shows(h, "No key is plugged in.")
    });
    let _: Value = daemon
        .client()
        .call(method::VIRTUAL_PLUG, json!({"key": key}))
        .expect("plug");
    wait_for(&mut h, "the key to come back", WAIT, |h| {
        code_label(h, ALICE).is_some()
    });
}

/// A state as the daemon would leave it, without a daemon: one key, one token with a code.
fn offline_state(role: Role) -> AppState {
    let mut s = AppState::new("/nonexistent.sock".into(), Clock::Manual(100.0));
    s.apply(Update::Connected {
        hello: Hello {
            protocol: 1,
            daemon: "0.1.0".into(),
            role,
            uid: Some(1000),
        },
    });
    s.apply(Update::Keys(KeyList {
        keys: vec![KeyInfo {
            id: "0754237c".into(),
            model: "oathkey virtual key".into(),
            source: KeySource::Virtual,
            path: "virtual:0754237c".into(),
            firmware: "4.13.0".into(),
            pin_set: false,
            claimed: false,
            family: Default::default(),
            capabilities: Default::default(),
            locked: false,
            busy: None,
        }],
        unavailable: vec![],
    }));
    s.apply(Update::Codes(vec![CodeEntry {
        token: TokenInfo {
            key: "0754237c".into(),
            name: format!("0012345:{ALICE}"),
            serial: Some("0012345".into()),
            account: ALICE.into(),
            period: 30,
            kind: OtpKind::Totp,
            algorithm: None,
            touch: Some(false),
        },
        code: Some("123456".into()),
        digits: Some(6),
        valid_from: Some(90),
        valid_until: Some(120),
        error: None,
    }]));
    s.take_commands();
    s
}

#[test]
fn readers_do_not_see_the_admin_view() {
    let mut h = harness(DesktopApp::new(offline_state(Role::Reader), None));
    h.step();
    assert!(code_label(&h, ALICE).is_some());
    assert!(shows(&h, "oathkeyd 0.1.0 · reader"));
    assert!(!shows(&h, "Admin"), "no Admin tab for a reader");
    h.state_mut().app.state.tab = Tab::Admin;
    h.step();
    assert!(
        !shows(&h, "New Token"),
        "no admin form for a reader, whatever the tab"
    );
    assert!(code_label(&h, ALICE).is_some());

    // The same state as an admin does show it (so the checks above can fail).
    let mut h = harness(DesktopApp::new(offline_state(Role::Admin), None));
    h.step();
    h.get_by_label("Admin").click();
    h.step();
    h.step();
    assert!(shows(&h, "New Token"));
}

#[test]
fn the_code_label_reads_well_to_a_screen_reader() {
    let mut h = harness(DesktopApp::new(offline_state(Role::Reader), None));
    h.step();
    assert_eq!(
        code_label(&h, ALICE).as_deref(),
        Some("code 123456 for alice@contoso.com, 20 seconds left")
    );
    assert!(shows(&h, "123 456"), "shown in two groups");
    assert!(shows(&h, "Copy code for alice@contoso.com"));
    assert!(
        h.query_by(|n| n.label().is_some_and(|l| l == "20 seconds left"))
            .is_some(),
        "the countdown bar has a name"
    );
}

#[test]
fn scale_and_theme_switches_reach_egui() {
    let mut h = harness(DesktopApp::new(offline_state(Role::Reader), None));
    h.step();
    h.get_by_label("Scale 200%").click();
    h.step();
    h.step();
    assert_eq!(h.ctx.zoom_factor(), 2.0);
    h.get_by_label("Theme: Dark").click();
    h.step();
    h.step();
    assert_eq!(h.ctx.theme(), eframe::egui::Theme::Dark);
    h.get_by_label("Theme: Light").click();
    h.step();
    h.step();
    assert_eq!(h.ctx.theme(), eframe::egui::Theme::Light);
    // egui's own Ctrl +/- is followed by the setting.
    h.ctx.set_zoom_factor(1.5);
    h.step();
    assert_eq!(h.state().app.state.prefs.zoom, 1.5);
}
