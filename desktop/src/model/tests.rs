//! The model's rules: updates, rollover, touch, clipboard, roles.

use oathkey_protocol::types::{
    Code, CodeEntry, Event, Hello, KeyInfo, KeyList, KeySource, OtpKind, Role, TokenInfo,
};

use super::*;
use crate::error::Kind;
use oathkey_protocol::ErrorCode;
use oathkey_protocol::types::{NoCode, Operation};

const KEY: &str = "0754237c";
const NAME: &str = "12345678:alice@contoso.com";

fn hello(role: Role) -> Hello {
    Hello {
        protocol: 1,
        daemon: "0.1.0".into(),
        role,
        uid: Some(0),
    }
}

fn key_info(id: &str) -> KeyInfo {
    KeyInfo {
        id: id.into(),
        model: "oathkey virtual key".into(),
        source: KeySource::Virtual,
        path: format!("virtual:{id}"),
        firmware: "4.13.0".into(),
        pin_set: false,
        claimed: false,
        family: Default::default(),
        capabilities: Default::default(),
        locked: false,
        busy: None,
    }
}

fn token_info(name: &str, kind: OtpKind, touch: bool) -> TokenInfo {
    let (serial, account) = name.split_once(':').unwrap_or(("", name));
    TokenInfo {
        key: KEY.into(),
        name: name.into(),
        serial: Some(serial.into()),
        account: account.into(),
        period: 30,
        kind,
        algorithm: Some(oathkey_protocol::types::Algorithm::Sha1),
        touch: Some(touch),
    }
}

fn entry(code: Option<&str>, from: u64, error: Option<&str>) -> CodeEntry {
    CodeEntry {
        token: token_info(NAME, OtpKind::Totp, error == Some("TouchRequired")),
        code: code.map(str::to_owned),
        digits: code.map(|_| 6),
        valid_from: code.map(|_| from),
        valid_until: code.map(|_| from + 30),
        error: error.map(|e| NoCode::try_from(e.to_string()).expect("a known reason")),
    }
}

fn code(c: &str, from: u64) -> Code {
    Code {
        token: token_info(NAME, OtpKind::Totp, false),
        code: c.into(),
        digits: 6,
        valid_from: Some(from),
        valid_until: Some(from + 30),
    }
}

fn tref() -> TokenRef {
    TokenRef {
        key: KEY.into(),
        name: NAME.into(),
    }
}

/// Connected as `role`, one key, one token showing `123456` for [90, 120), clock at 100.
fn connected(role: Role) -> AppState {
    let mut s = AppState::new("/tmp/s.sock".into(), Clock::Manual(100.0));
    s.apply(Update::Connected { hello: hello(role) });
    s.apply(Update::Keys(KeyList {
        keys: vec![key_info(KEY)],
        unavailable: vec![],
    }));
    s.apply(Update::Codes(vec![entry(Some("123456"), 90, None)]));
    s.take_commands();
    s
}

fn shown(s: &AppState) -> Option<String> {
    s.token(&tref())
        .and_then(|t| t.current(s.clock.now_secs()))
        .map(|c| c.code.clone())
}

#[test]
fn connecting_asks_for_everything_once() {
    let mut s = AppState::new("/tmp/s.sock".into(), Clock::Manual(100.0));
    assert_eq!(s.connection, Connection::Connecting);
    s.apply(Update::Connected {
        hello: hello(Role::Admin),
    });
    assert!(s.is_admin());
    let cmds = s.take_commands();
    assert!(
        matches!(
            cmds.as_slice(),
            [Command::Refresh {
                keys: true,
                at: Some(100)
            }]
        ),
        "{cmds:?}"
    );
    // Events meanwhile do not start a second refresh while one runs...
    s.apply(Update::Event(Event::TokensChanged { key: KEY.into() }));
    assert!(s.take_commands().is_empty());
    // ...but one follows when it ends.
    s.apply(Update::Codes(vec![]));
    assert!(matches!(
        s.take_commands().as_slice(),
        [Command::Refresh { keys: false, .. }]
    ));
}

#[test]
fn codes_are_shown_per_key_and_cleared_when_the_daemon_goes() {
    let mut s = connected(Role::Reader);
    assert_eq!(shown(&s).as_deref(), Some("123456"));
    assert!(s.keys[0].tokens_loaded);
    s.apply(Update::Disconnected {
        error: DaemonError::not_running(std::path::Path::new("/tmp/s.sock")),
    });
    assert!(matches!(&s.connection, Connection::Unreachable(e) if e.kind == Kind::NotRunning));
    assert!(s.keys.is_empty() && s.role.is_none());
    assert!(
        s.recent_messages()
            .any(|m| m.text.contains("Lost the connection"))
    );
    s.tick();
    assert!(
        s.take_commands().is_empty(),
        "nothing is asked of a missing daemon"
    );
    s.apply(Update::Connected {
        hello: hello(Role::Reader),
    });
    assert!(matches!(
        s.take_commands().as_slice(),
        [Command::Refresh { keys: true, .. }]
    ));
}

#[test]
fn the_next_code_is_fetched_in_the_last_seconds_and_shown_at_rollover() {
    let mut s = connected(Role::Reader);
    s.tick();
    assert!(s.take_commands().is_empty(), "14 s left: nothing to fetch");
    s.clock.set(115.0);
    s.tick();
    let cmds = s.take_commands();
    assert!(
        matches!(cmds.as_slice(), [Command::GetCode { token, at: Some(120), purpose: Purpose::Next }] if *token == tref()),
        "{cmds:?}"
    );
    s.tick();
    assert!(s.take_commands().is_empty(), "asked once per period");
    s.apply(Update::Code {
        token: tref(),
        purpose: Purpose::Next,
        result: Ok(code("654321", 120)),
    });
    assert_eq!(
        s.token(&tref())
            .and_then(|t| t.next.as_ref())
            .map(|n| n.code.as_str()),
        Some("654321")
    );
    // The period ends: the next code shows at once, and all codes are read again.
    s.clock.set(120.0);
    s.tick();
    assert_eq!(shown(&s).as_deref(), Some("654321"));
    let cmds = s.take_commands();
    assert!(
        matches!(
            cmds.as_slice(),
            [Command::Refresh {
                keys: false,
                at: Some(120)
            }]
        ),
        "{cmds:?}"
    );
    let left = s
        .token(&tref())
        .and_then(|t| t.current(120))
        .and_then(|c| c.seconds_left(120.0));
    assert_eq!(left, Some(30));
}

#[test]
fn without_a_next_code_the_rollover_reads_again_at_most_once_a_second() {
    let mut s = connected(Role::Reader);
    s.clock.set(121.0);
    s.tick();
    assert_eq!(shown(&s), None, "an expired code is not current");
    assert_eq!(s.take_commands().len(), 1);
    s.apply(Update::RefreshFailed {
        error: DaemonError::new(Kind::Daemon(ErrorCode::Busy), "busy"),
    });
    s.tick();
    assert!(s.take_commands().is_empty(), "same second: no second read");
    s.clock.set(122.0);
    s.tick();
    assert_eq!(s.take_commands().len(), 1, "next second: read again");
    s.apply(Update::Codes(vec![entry(Some("777777"), 120, None)]));
    assert_eq!(shown(&s).as_deref(), Some("777777"));
}

#[test]
fn touch_tokens_wait_for_get_code_and_show_the_touch_prompt() {
    let mut s = connected(Role::Reader);
    s.apply(Update::Codes(vec![entry(None, 0, Some("TouchRequired"))]));
    let t = s.token(&tref()).expect("token");
    assert!(t.on_demand);
    assert_eq!(t.code, CodeState::NeedsTouch);
    s.take_commands();

    assert_eq!(s.act(Action::GetCode(tref())), None);
    let cmds = s.take_commands();
    assert!(
        matches!(
            cmds.as_slice(),
            [Command::GetCode {
                purpose: Purpose::OnDemand,
                ..
            }]
        ),
        "{cmds:?}"
    );
    s.act(Action::GetCode(tref()));
    assert!(s.take_commands().is_empty(), "one request at a time");

    s.apply(Update::Event(Event::TouchNeeded {
        key: KEY.into(),
        operation: Operation::Code,
        token: Some(NAME.into()),
    }));
    let key = s.key(KEY).expect("key");
    assert!(key.touch_is_for(&key.tokens[0]));
    assert_eq!(s.touch_prompts().count(), 1);
    s.apply(Update::Event(Event::TouchDone { key: KEY.into() }));
    assert_eq!(s.touch_prompts().count(), 0);

    s.apply(Update::Code {
        token: tref(),
        purpose: Purpose::OnDemand,
        result: Ok(code("424242", 90)),
    });
    assert_eq!(shown(&s).as_deref(), Some("424242"));
    // A refresh meanwhile keeps the code fetched with a touch.
    s.apply(Update::Codes(vec![entry(None, 0, Some("TouchRequired"))]));
    assert_eq!(shown(&s).as_deref(), Some("424242"));
    // At the period's end it goes back to "Get code", without reading (that needs a touch).
    s.take_commands();
    s.clock.set(120.0);
    s.tick();
    assert_eq!(
        s.token(&tref()).map(|t| t.code.clone()),
        Some(CodeState::NeedsTouch)
    );
    assert!(s.take_commands().is_empty());
}

#[test]
fn a_failed_get_code_is_shown_on_the_token() {
    let mut s = connected(Role::Reader);
    s.apply(Update::Codes(vec![entry(None, 0, Some("TouchRequired"))]));
    s.act(Action::GetCode(tref()));
    s.apply(Update::Code {
        token: tref(),
        purpose: Purpose::OnDemand,
        result: Err(DaemonError::new(
            Kind::Daemon(ErrorCode::TouchTimeout),
            "the key was not touched in time",
        )),
    });
    assert!(
        matches!(s.token(&tref()).map(|t| &t.code), Some(CodeState::Failed(e)) if e.kind == Kind::Daemon(ErrorCode::TouchTimeout))
    );
    assert!(s.recent_messages().any(|m| m.text.contains("TouchTimeout")));
}

#[test]
fn the_clipboard_is_cleared_thirty_seconds_after_a_copy() {
    let mut s = connected(Role::Reader);
    let text = s.act(Action::Copy(tref())).expect("a code to copy");
    assert_eq!(text.as_str(), "123456");
    assert_eq!(s.selected, Some(tref()));
    assert_eq!(s.clipboard_left(&tref()), Some(30));
    s.clock.advance(12.0);
    assert_eq!(s.clipboard_left(&tref()), Some(18));
    assert!(s.take_expired_clipboard().is_none());
    s.clock.advance(18.0);
    assert_eq!(
        s.take_expired_clipboard().map(|t| t.to_string()).as_deref(),
        Some("123456")
    );
    assert!(s.clipboard.is_none() && s.take_expired_clipboard().is_none());
}

#[test]
fn copying_something_else_stops_the_timer() {
    let mut s = connected(Role::Reader);
    s.act(Action::CopySelected)
        .expect("the only token is the target");
    s.clipboard_replaced();
    s.clock.advance(31.0);
    assert!(s.take_expired_clipboard().is_none());
}

#[test]
fn nothing_is_copied_without_a_current_code() {
    let mut s = connected(Role::Reader);
    s.clock.set(200.0);
    assert!(s.act(Action::Copy(tref())).is_none());
    assert!(s.act(Action::CopySelected).is_none());
    assert!(s.clipboard.is_none());
}

#[test]
fn keys_come_and_go_with_events() {
    let mut s = connected(Role::Reader);
    s.apply(Update::Event(Event::KeyAdded {
        key: key_info("0badcafe"),
    }));
    assert_eq!(s.keys.len(), 2);
    assert!(!s.key("0badcafe").expect("added").tokens_loaded);
    assert!(matches!(
        s.take_commands().as_slice(),
        [Command::Refresh { keys: true, .. }]
    ));
    s.selected = Some(tref());
    s.apply(Update::Event(Event::KeyRemoved { key: KEY.into() }));
    assert_eq!(s.keys.len(), 1);
    assert!(s.selected.is_none());
    assert!(s.recent_messages().any(|m| m.text.contains("removed")));
}

#[test]
fn config_changes_from_events_and_answers_reach_the_key() {
    let mut s = connected(Role::Admin);
    let settings = Settings {
        keyboard: Some(true),
        u2f: Some(false),
        key_press: Some(true),
    };
    s.apply(Update::Event(Event::ConfigChanged {
        key: KEY.into(),
        settings,
    }));
    assert_eq!(s.key(KEY).and_then(|k| k.settings), Some(settings));
    s.admin.key_press = Some(false);
    s.act(Action::ApplyKeyPress);
    let cmds = s.take_commands();
    assert!(
        matches!(cmds.as_slice(), [Command::SetConfig { part: ConfigPart::KeyPress, params }] if params.key_press == Some(false) && params.keyboard.is_none()),
        "{cmds:?}"
    );
    assert!(s.admin.key_press_status.is_busy());
    s.apply(Update::ConfigApplied {
        key: KEY.into(),
        part: ConfigPart::KeyPress,
        result: Ok(Settings {
            key_press: Some(false),
            ..settings
        }),
    });
    assert_eq!(
        s.admin.key_press, None,
        "the form shows the key's value again"
    );
    assert_eq!(s.admin.key_press_status, Status::Done("Applied.".into()));
}

#[test]
fn readers_get_no_admin_view_and_no_admin_requests() {
    let mut s = connected(Role::Reader);
    assert!(!s.is_admin());
    s.act(Action::SetTab(Tab::Admin));
    assert_eq!(s.tab, Tab::Codes);
    s.admin.generate().expect("rng");
    s.admin.upn = "alice@contoso.com".into();
    for a in [
        Action::Save,
        Action::ApplyMode,
        Action::Export,
        Action::Generate,
    ] {
        s.act(a);
    }
    assert!(s.take_commands().is_empty());
}

#[test]
fn save_sends_the_form_and_wipes_the_seed_once_saved() {
    let mut s = connected(Role::Admin);
    s.act(Action::Save);
    assert!(matches!(&s.admin.save_status, Status::Failed(e) if e.kind == Kind::InvalidForm));
    assert!(s.take_commands().is_empty(), "an invalid form is refused");

    s.act(Action::Generate);
    s.admin.upn = "alice@contoso.com".into();
    let serial = s.admin.serial.clone();
    s.act(Action::Save);
    let cmds = s.take_commands();
    let [Command::CreateToken(p)] = cmds.as_slice() else {
        panic!("{cmds:?}");
    };
    assert_eq!(p.serial.as_deref(), Some(serial.as_str()));
    assert_eq!(p.key.as_deref(), Some(KEY));
    assert!(s.admin.save_status.is_busy());

    s.apply(Update::TokenCreated(Ok(CreatedSummary {
        key: KEY.into(),
        serial: serial.clone(),
        account: "alice@contoso.com".into(),
    })));
    assert!(s.admin.seed.is_empty() && s.admin.serial.is_empty());
    assert_eq!(s.admin.saved_serials, [serial]);
    assert!(matches!(&s.admin.save_status, Status::Done(t) if t.contains("Saved token")));
}

#[test]
fn a_daemon_refusal_keeps_the_form_for_another_try() {
    let mut s = connected(Role::Admin);
    s.act(Action::Generate);
    s.admin.upn = "alice@contoso.com".into();
    s.act(Action::Save);
    s.apply(Update::TokenCreated(Err(DaemonError::new(
        Kind::Daemon(ErrorCode::AlreadyExists),
        "serial taken",
    ))));
    assert!(!s.admin.seed.is_empty());
    assert_eq!(
        s.admin.save_status,
        Status::Failed(DaemonError::new(
            Kind::Daemon(ErrorCode::AlreadyExists),
            "serial taken"
        ))
    );
}

#[test]
fn a_failed_refresh_is_retried() {
    let mut s = connected(Role::Reader);
    s.apply(Update::Event(Event::TokensChanged { key: KEY.into() }));
    s.take_commands();
    s.apply(Update::RefreshFailed {
        error: DaemonError::new(Kind::Daemon(ErrorCode::Busy), "busy"),
    });
    s.tick();
    assert!(s.take_commands().is_empty());
    s.clock.advance(REFRESH_RETRY_SECS as f64);
    s.tick();
    assert!(matches!(
        s.take_commands().as_slice(),
        [Command::Refresh { keys: true, .. }]
    ));
}

#[test]
fn hotp_tokens_are_read_only_on_request_and_their_code_stays() {
    let mut s = connected(Role::Reader);
    let mut e = entry(None, 0, Some("HotpNotRead"));
    e.token.kind = OtpKind::Hotp;
    s.apply(Update::Codes(vec![e.clone()]));
    assert_eq!(
        s.token(&tref()).map(|t| t.code.clone()),
        Some(CodeState::Hotp)
    );
    s.take_commands();
    s.act(Action::GetCode(tref()));
    assert!(matches!(
        s.take_commands().as_slice(),
        [Command::GetCode {
            purpose: Purpose::OnDemand,
            ..
        }]
    ));
    let mut c = code("555555", 0);
    c.valid_from = None;
    c.valid_until = None;
    s.apply(Update::Code {
        token: tref(),
        purpose: Purpose::OnDemand,
        result: Ok(c),
    });
    s.clock.advance(3600.0);
    s.tick();
    s.apply(Update::Codes(vec![e]));
    assert_eq!(
        shown(&s).as_deref(),
        Some("555555"),
        "an HOTP code has no end"
    );
    assert!(s.take_commands().is_empty(), "never read by itself");
}

#[test]
fn a_key_unlocked_with_its_access_code_is_shown_unlocked_and_read_again() {
    let mut s = connected(Role::Reader);
    s.apply(Update::Event(Event::LockChanged {
        key: KEY.into(),
        locked: true,
    }));
    assert!(s.keys[0].info.locked, "locked keys are marked");
    // The refresh that event asked for ends.
    s.take_commands();
    s.apply(Update::Keys(KeyList {
        keys: vec![KeyInfo {
            locked: true,
            ..key_info(KEY)
        }],
        unavailable: vec![],
    }));
    s.apply(Update::Codes(vec![]));
    s.take_commands();
    s.apply(Update::Event(Event::LockChanged {
        key: KEY.into(),
        locked: false,
    }));
    assert!(!s.keys[0].info.locked);
    assert!(
        matches!(
            s.take_commands().as_slice(),
            [Command::Refresh { keys: true, .. }]
        ),
        "its tokens are read again"
    );
}

#[test]
fn a_key_another_application_holds_is_marked_busy_and_read_again_when_released() {
    let mut s = connected(Role::Reader);
    s.take_commands();
    s.apply(Update::Event(Event::BusyChanged {
        key: KEY.into(),
        busy: Some("busy: held by scdaemon".into()),
    }));
    assert_eq!(
        s.keys[0].info.busy.as_deref(),
        Some("busy: held by scdaemon")
    );
    assert!(
        s.take_commands().is_empty(),
        "nothing is asked of a busy key"
    );
    s.apply(Update::Event(Event::BusyChanged {
        key: KEY.into(),
        busy: None,
    }));
    assert!(s.keys[0].info.busy.is_none());
    assert!(
        matches!(
            s.take_commands().as_slice(),
            [Command::Refresh { keys: true, .. }]
        ),
        "read again once released"
    );
}
