//! The device crate's `Key` driver against the virtual key, in process: every operation, the
//! error each refusal maps to, touch and PIN rules, persistence, hot-unplug and recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oathkey_device::ctaphid::Timeouts;
use oathkey_device::{Algorithm, Error, Key, NewCredential, OtpKind, Setting, TouchWait};
use oathkey_emulator::{Config, Faults, Profile, TouchPolicy, VirtualKeyHandle, VirtualTransport};
use secrecy::{SecretSlice, SecretString};

const RFC_SECRET: &[u8] = b"12345678901234567890";

fn quick_timeouts() -> Timeouts {
    Timeouts {
        quick: Duration::from_millis(400),
        touch: Duration::from_secs(3),
        busy: Duration::from_secs(2),
    }
}

fn key_with(config: Config) -> (VirtualKeyHandle, Key<VirtualTransport>) {
    let handle = VirtualKeyHandle::new(config);
    let key = Key::open_with(handle.connect().expect("plugged"), quick_timeouts()).expect("opens");
    (handle, key)
}

fn key() -> (VirtualKeyHandle, Key<VirtualTransport>) {
    key_with(Config {
        serial: Some(0x0BAD_CAFE),
        ..Config::default()
    })
}

fn totp(name: &str) -> NewCredential {
    NewCredential {
        name: name.into(),
        kind: OtpKind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        secret: SecretSlice::from(RFC_SECRET.to_vec()),
        touch_required: false,
        pin_protected: false,
        initial_counter: 0,
    }
}

fn pin(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn names(key: &mut Key<VirtualTransport>, pin: Option<&SecretString>) -> Vec<String> {
    key.list(pin)
        .expect("lists")
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn open_reports_app_version_serial_and_device_identity() {
    let (_h, key) = key();
    assert_eq!(key.app_info().version, (4, 13, 0));
    assert_eq!(key.app_info().serial, Some(0x0BAD_CAFE));
    assert_eq!(key.app_info().pin_retries, None);
    assert_eq!(key.device_info().vendor_id, 0x1209);
    assert_eq!(
        oathkey_device::Model::identify(key.device_info()),
        Some(oathkey_device::Model::VirtualKey)
    );
    let init = key.init_info().expect("INIT done");
    assert_eq!(init.protocol, 2);
}

#[test]
fn put_list_calculate_delete() {
    let (_h, mut key) = key();
    assert!(key.list(None).expect("lists").is_empty());
    key.put(&totp("0001:alice@contoso.com"), None)
        .expect("registers");
    let mut touchy = totp("60/0002:bob@contoso.com");
    touchy.touch_required = true;
    touchy.algorithm = Algorithm::Sha256;
    touchy.digits = 8;
    key.put(&touchy, None).expect("registers");

    let listed = key.list(None).expect("lists");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "0001:alice@contoso.com");
    assert_eq!(listed[0].kind, Some(OtpKind::Totp));
    assert_eq!(listed[0].touch_required, Some(false));
    assert_eq!(listed[1].algorithm, Some(Algorithm::Sha256));
    assert_eq!(listed[1].touch_required, Some(true));

    // RFC 6238 appendix B, SHA-1 at T = 59, reduced to 6 digits.
    let otp = key
        .totp("0001:alice@contoso.com", 59, TouchWait::Never, None)
        .expect("computes");
    assert_eq!(otp.code, "287082");

    key.delete("0001:alice@contoso.com", None).expect("deletes");
    assert_eq!(names(&mut key, None), ["60/0002:bob@contoso.com"]);
    assert_eq!(
        key.delete("0001:alice@contoso.com", None),
        Err(Error::NotFound)
    );
    assert_eq!(
        key.calculate("nope", 1, TouchWait::Never, None),
        Err(Error::NotFound)
    );
}

#[test]
fn duplicate_names_and_full_keys_are_refused() {
    let (_h, mut key) = key_with(Config {
        max_credentials: 3,
        ..Config::default()
    });
    for i in 0..3 {
        key.put(&totp(&format!("S{i}:u")), None).expect("fits");
    }
    assert_eq!(key.put(&totp("S0:u"), None), Err(Error::NoSpace));
    key.delete("S2:u", None).expect("deletes");
    assert_eq!(key.put(&totp("S0:u"), None), Err(Error::AlreadyExists));
}

#[test]
fn hotp_counter_advances_per_code_rfc4226() {
    let (h, mut key) = key();
    let mut cred = totp("hotp:rfc4226");
    cred.kind = OtpKind::Hotp;
    key.put(&cred, None).expect("registers");
    let expected = ["755224", "287082", "359152", "969429", "338314", "254676"];
    for want in expected {
        // HOTP ignores the challenge.
        assert_eq!(
            key.calculate("hotp:rfc4226", 999, TouchWait::Never, None)
                .expect("computes")
                .code,
            want
        );
    }
    assert_eq!(h.state().credentials[0].counter, 6);

    let mut cred = totp("hotp:from7");
    cred.kind = OtpKind::Hotp;
    cred.initial_counter = 7;
    key.put(&cred, None).expect("registers");
    assert_eq!(
        key.calculate("hotp:from7", 0, TouchWait::Never, None)
            .expect("computes")
            .code,
        "162583"
    );
}

#[test]
fn touch_policies_decide_touch_credentials() {
    let (h, mut key) = key_with(Config {
        touch: TouchPolicy::Deny,
        touch_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    let mut cred = totp("touch:me");
    cred.touch_required = true;
    // PUT of a touch credential needs a touch itself.
    assert_eq!(key.put(&cred, None), Err(Error::TouchTimeout));
    h.set_touch_policy(TouchPolicy::After(Duration::from_millis(50)));
    key.put(&cred, None).expect("touched after 50 ms");
    key.put(&totp("plain:one"), None).expect("no touch needed");

    h.set_touch_policy(TouchPolicy::Deny);
    let started = Instant::now();
    assert_eq!(
        key.totp("touch:me", 59, TouchWait::Expected, None),
        Err(Error::TouchTimeout)
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A credential without touch is not affected by the policy.
    assert_eq!(
        key.totp("plain:one", 59, TouchWait::Never, None)
            .expect("computes")
            .code,
        "287082"
    );
    // A touch past the key's own timeout is too late.
    h.set_touch_policy(TouchPolicy::After(Duration::from_secs(5)));
    assert_eq!(
        key.totp("touch:me", 59, TouchWait::Expected, None),
        Err(Error::TouchTimeout)
    );
}

#[test]
fn the_button_releases_a_waiting_code_and_the_hook_is_told() {
    let (h, mut key) = key_with(Config {
        touch: TouchPolicy::Button,
        ..Config::default()
    });
    let told = Arc::new(AtomicUsize::new(0));
    let counter = told.clone();
    key.set_touch_hook(Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })));
    h.set_touch_policy(TouchPolicy::Approve);
    let mut cred = totp("button:code");
    cred.touch_required = true;
    key.put(&cred, None).expect("registers");
    h.set_touch_policy(TouchPolicy::Button);

    let presser = {
        let h = h.clone();
        std::thread::spawn(move || {
            assert!(
                h.wait_for_touch_request(Duration::from_secs(2)),
                "key never asked for a touch"
            );
            assert!(h.press());
        })
    };
    let otp = key
        .totp("button:code", 59, TouchWait::Expected, None)
        .expect("released by the button");
    presser.join().expect("presser ran");
    assert_eq!(otp.code, "287082");
    assert_eq!(
        told.load(Ordering::SeqCst),
        2,
        "hook told before PUT and before CALCULATE"
    );
    assert!(!h.press(), "nothing waits any more");
}

#[test]
fn key_press_setting_makes_every_code_need_a_touch() {
    let (h, mut key) = key_with(Config {
        touch_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    key.put(&totp("plain:code"), None).expect("registers");
    assert!(!key.setting(Setting::OtpKeyPress).expect("reads"));
    key.set_setting(Setting::OtpKeyPress, true)
        .expect("approved touch");
    assert!(key.setting(Setting::OtpKeyPress).expect("reads"));
    h.set_touch_policy(TouchPolicy::Deny);
    assert_eq!(
        key.totp("plain:code", 59, TouchWait::Expected, None),
        Err(Error::TouchTimeout)
    );
    // Changing a setting needs a touch too.
    assert_eq!(
        key.set_setting(Setting::OtpKeyPress, false),
        Err(Error::TouchTimeout)
    );
    h.set_touch_policy(TouchPolicy::Approve);
    key.set_setting(Setting::OtpKeyPress, false)
        .expect("approved");
    h.set_touch_policy(TouchPolicy::Deny);
    assert_eq!(
        key.totp("plain:code", 59, TouchWait::Never, None)
            .expect("no touch")
            .code,
        "287082"
    );
}

#[test]
fn mode_settings_and_their_rules() {
    let (h, mut key) = key();
    assert!(key.setting(Setting::ModeKeyboard).expect("reads"));
    assert!(key.setting(Setting::ModeU2f).expect("reads"));
    key.set_setting(Setting::ModeKeyboard, false)
        .expect("changes");
    assert!(!h.state().settings.keyboard);
    // Turning off the last interface would make the key unreachable.
    assert!(matches!(
        key.set_setting(Setting::ModeU2f, false),
        Err(Error::Config {
            reason: "invalid value for this field",
            ..
        })
    ));
    let fields = key.config_fields().expect("lists");
    let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["mode.keyboard", "mode.u2f", "otp.key_press"]);
    assert!(fields[0].needs_reboot && !fields[2].needs_reboot);
    assert!(matches!(
        key.get_config("no.such.field"),
        Err(Error::Unsupported(_))
    ));
    let status = key
        .admin_status()
        .expect("status")
        .expect("has an admin app");
    assert_eq!(status.init_status, 0);
}

#[test]
fn a_stock_nitrokey3_has_no_vendor_settings_and_no_sha512() {
    let (_h, mut key) = key_with(Config {
        profile: Profile::Nitrokey3,
        ..Config::default()
    });
    assert!(matches!(
        key.setting(Setting::OtpKeyPress),
        Err(Error::Unsupported(_))
    ));
    assert!(key.config_fields().expect("lists").is_empty());
    let mut cred = totp("sha512:x");
    cred.algorithm = Algorithm::Sha512;
    key.put(&cred, None).expect("the app stores it");
    assert!(matches!(
        key.totp("sha512:x", 59, TouchWait::Never, None),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn pin_lifecycle_and_pin_protected_credentials() {
    let (_h, mut key) = key();
    assert_eq!(key.verify_pin(&pin("1234")), Err(Error::PinNotSet));
    key.set_pin(&pin("1234")).expect("sets");
    assert_eq!(key.app_info().pin_retries, Some(8));
    assert_eq!(key.set_pin(&pin("9999")), Err(Error::PinAlreadySet));

    let mut hidden = totp("pin:secret");
    hidden.pin_protected = true;
    assert_eq!(key.put(&hidden, None), Err(Error::PinRequired));
    key.put(&hidden, Some(&pin("1234")))
        .expect("registers with the PIN");
    key.put(&totp("open:code"), None).expect("registers");

    // Hidden without the PIN, visible with it; the PIN authorises one request only.
    assert_eq!(names(&mut key, None), ["open:code"]);
    let with_pin = key.list(Some(&pin("1234"))).expect("lists");
    assert_eq!(with_pin.len(), 2);
    assert_eq!(with_pin[0].pin_protected, Some(true));
    assert_eq!(names(&mut key, None), ["open:code"]);
    assert_eq!(
        key.totp("pin:secret", 59, TouchWait::Never, None),
        Err(Error::NotFound)
    );
    let otp = key
        .totp("pin:secret", 59, TouchWait::Never, Some(&pin("1234")))
        .expect("computes");
    assert_eq!(otp.code, "287082");
    // Hidden names still count for uniqueness.
    assert_eq!(
        key.put(&totp("pin:secret"), None),
        Err(Error::AlreadyExists)
    );

    assert_eq!(
        key.verify_pin(&pin("0000")),
        Err(Error::WrongPin {
            retries_left: Some(7)
        })
    );
    key.change_pin(&pin("1234"), &pin("5678")).expect("changes");
    assert_eq!(key.app_info().pin_retries, Some(8));
    key.delete("pin:secret", Some(&pin("5678")))
        .expect("deletes with the PIN");
}

#[test]
fn eight_wrong_pins_block_and_only_reset_helps() {
    let (_h, mut key) = key();
    key.set_pin(&pin("1234")).expect("sets");
    for left in (1..8).rev() {
        assert_eq!(
            key.verify_pin(&pin("0000")),
            Err(Error::WrongPin {
                retries_left: Some(left)
            })
        );
    }
    assert_eq!(key.verify_pin(&pin("0000")), Err(Error::PinBlocked));
    // The right PIN no longer helps.
    assert_eq!(key.verify_pin(&pin("1234")), Err(Error::PinBlocked));
    key.reset().expect("resets");
    assert_eq!(key.app_info().pin_retries, None);
    key.set_pin(&pin("1234")).expect("a new PIN after reset");
}

#[test]
fn update_renames_and_changes_touch() {
    let (h, mut key) = key();
    key.put(&totp("old:name"), None).expect("registers");
    key.put(&totp("other:name"), None).expect("registers");
    key.update("old:name", Some("new:name"), Some(true), None)
        .expect("updates");
    let listed = key.list(None).expect("lists");
    assert_eq!(listed[0].name, "new:name");
    assert_eq!(listed[0].touch_required, Some(true));
    assert_eq!(
        key.update("new:name", Some("other:name"), None, None),
        Err(Error::AlreadyExists)
    );
    assert_eq!(
        key.update("gone:name", Some("x:y"), None, None),
        Err(Error::NotFound)
    );
    h.set_touch_policy(TouchPolicy::Deny);
    // The key waits for a touch first; with touch timeouts shortened by the test config the
    // wait ends in TouchTimeout.
    let (_h2, mut strict) = key_with(Config {
        touch: TouchPolicy::Deny,
        touch_timeout: Duration::from_millis(200),
        ..Config::default()
    });
    assert_eq!(
        strict.update("any:name", Some("x:y"), None, None),
        Err(Error::TouchTimeout)
    );
}

#[test]
fn long_lists_are_fetched_with_send_remaining() {
    let (_h, mut key) = key();
    // 50 entries of 64 bytes each do not fit in one 3070-byte answer.
    let expected: Vec<String> = (0..50)
        .map(|i| format!("{i:04}:{}", "u".repeat(55)))
        .collect();
    for name in &expected {
        key.put(&totp(name), None).expect("registers");
    }
    assert_eq!(names(&mut key, None), expected);
}

#[test]
fn state_survives_a_restart_of_the_virtual_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key.json");
    let serial = {
        let handle = VirtualKeyHandle::open(Config::default(), &path).expect("creates");
        let mut key =
            Key::open_with(handle.connect().expect("plugged"), quick_timeouts()).expect("opens");
        key.put(&totp("0001:persist@example.com"), None)
            .expect("registers");
        key.set_pin(&pin("2468")).expect("sets");
        key.app_info().serial
    };
    let handle = VirtualKeyHandle::open(Config::default(), &path).expect("loads");
    let mut key =
        Key::open_with(handle.connect().expect("plugged"), quick_timeouts()).expect("opens");
    assert_eq!(key.app_info().serial, serial);
    assert_eq!(key.app_info().pin_retries, Some(8));
    assert_eq!(names(&mut key, None), ["0001:persist@example.com"]);
    assert_eq!(
        key.totp("0001:persist@example.com", 59, TouchWait::Never, None)
            .expect("computes")
            .code,
        "287082"
    );
}

#[test]
fn ping_wink_and_the_largest_message() {
    let (h, mut key) = key();
    key.ping(b"").expect("empty ping");
    let big: Vec<u8> = (0..7609).map(|i| (i * 7) as u8).collect();
    key.ping(&big).expect("7609-byte ping");
    key.wink().expect("winks");
    assert_eq!(h.stats().winks, 1);
    assert!(matches!(
        key.ping(&vec![0; 7610]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn unplug_fails_requests_and_replug_works_again() {
    let (h, mut key) = key();
    key.put(&totp("0001:a@b.c"), None).expect("registers");
    h.unplug();
    assert_eq!(key.list(None), Err(Error::Removed));
    assert!(h.connect().is_err(), "nothing to open while unplugged");
    h.replug();
    // The old handle stays dead like a closed file descriptor; a new one works.
    assert_eq!(key.list(None), Err(Error::Removed));
    let mut again = Key::open_with(h.connect().expect("plugged"), quick_timeouts()).expect("opens");
    assert_eq!(names(&mut again, None), ["0001:a@b.c"]);
}

#[test]
fn cancel_ends_a_touch_wait_at_once() {
    let (h, mut key) = key_with(Config {
        touch: TouchPolicy::Button,
        ..Config::default()
    });
    let flag = Arc::new(AtomicBool::new(false));
    key.set_cancel_flag(Some(flag.clone()));
    let canceller = {
        let (h, flag) = (h.clone(), flag.clone());
        std::thread::spawn(move || {
            assert!(h.wait_for_touch_request(Duration::from_secs(2)));
            flag.store(true, Ordering::SeqCst);
        })
    };
    let started = Instant::now();
    let result = key.delete("whatever", None);
    canceller.join().expect("ran");
    assert!(
        matches!(result, Err(Error::Cancelled) | Err(Error::TouchTimeout)),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        !h.with_key(|k| k.waiting_for_touch()),
        "the key stopped waiting"
    );
    flag.store(false, Ordering::SeqCst);
    assert!(key.list(None).is_ok(), "the key is usable after a cancel");
}

#[test]
fn busy_key_is_retried_until_free() {
    let (h, mut key) = key();
    h.set_faults(Faults {
        busy_until: Some(Instant::now() + Duration::from_millis(300)),
        ..Faults::default()
    });
    let started = Instant::now();
    key.list(None)
        .expect("served once the other application is done");
    assert!(started.elapsed() >= Duration::from_millis(250));

    h.set_faults(Faults {
        busy_until: Some(Instant::now() + Duration::from_secs(10)),
        ..Faults::default()
    });
    assert_eq!(key.list(None), Err(Error::Busy(Duration::from_secs(2))));
}

#[test]
fn a_browser_mid_message_on_another_channel_is_waited_out() {
    use oathkey_device::Transport;
    use oathkey_device::ctaphid::wire;
    let (h, mut key) = key();
    // The "browser" opens its own port and starts a two-packet message, then goes quiet: the
    // key keeps the transaction until its 500 ms message timeout.
    let mut browser = h.connect().expect("plugged");
    let mut init = wire::fragment(wire::BROADCAST_CID, wire::cmd::INIT, &[1; 8]).expect("fits");
    browser.write(&init.remove(0)).expect("writes");
    let answer = browser
        .read(Duration::from_secs(1))
        .expect("reads")
        .expect("INIT answer");
    let cid = u32::from_be_bytes([answer[15], answer[16], answer[17], answer[18]]);
    let ping = wire::fragment(cid, wire::cmd::PING, &[0; 100]).expect("fits");
    browser.write(&ping[0]).expect("writes");
    let started = Instant::now();
    key.list(None)
        .expect("served after the browser's message timed out");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_driver_recovers_from_dropped_corrupted_and_stalled_reports() {
    let handle = VirtualKeyHandle::new(Config::default());
    let timeouts = Timeouts {
        touch: Duration::from_millis(800),
        ..quick_timeouts()
    };
    let mut key = Key::open_with(handle.connect().expect("plugged"), timeouts).expect("opens");
    let h = handle;
    key.put(&totp("0001:x@y.z"), None).expect("registers");
    // Waits as long as a touch may take, as for a token whose touch setting is unknown.
    let code =
        |key: &mut Key<VirtualTransport>| key.totp("0001:x@y.z", 59, TouchWait::Possible, None);

    h.set_faults(Faults {
        drop_outputs: 1,
        ..Faults::default()
    });
    assert_eq!(code(&mut key), Err(Error::Timeout(timeouts.touch)));
    assert_eq!(code(&mut key).expect("resynced").code, "287082");

    // A token known not to need a touch: a lost answer costs the quick timeout only.
    h.set_faults(Faults {
        drop_outputs: 1,
        ..Faults::default()
    });
    assert_eq!(
        key.totp("0001:x@y.z", 59, TouchWait::Never, None),
        Err(Error::Timeout(timeouts.quick))
    );
    assert_eq!(code(&mut key).expect("resynced").code, "287082");

    h.set_faults(Faults {
        corrupt_outputs: 1,
        ..Faults::default()
    });
    assert!(matches!(code(&mut key), Err(Error::Protocol(_))));
    assert_eq!(code(&mut key).expect("resynced").code, "287082");

    // A short stall is waited out; one past the timeout fails and the next call resyncs.
    h.set_faults(Faults {
        stall_until: Some(Instant::now() + Duration::from_millis(300)),
        ..Faults::default()
    });
    assert_eq!(code(&mut key).expect("waited out").code, "287082");
    h.set_faults(Faults {
        stall_until: Some(Instant::now() + Duration::from_millis(1200)),
        ..Faults::default()
    });
    let stalled = code(&mut key);
    assert!(matches!(stalled, Err(Error::Timeout(_))), "{stalled:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        code(&mut key).expect("resynced after the stall").code,
        "287082"
    );

    // A duplicated report is a stray packet the driver skips.
    h.set_faults(Faults {
        duplicate_outputs: 1,
        ..Faults::default()
    });
    assert_eq!(code(&mut key).expect("duplicate ignored").code, "287082");
    assert_eq!(code(&mut key).expect("still in step").code, "287082");

    // A lost request: the key never hears it, the driver times out and recovers.
    h.set_faults(Faults {
        drop_inputs: 1,
        ..Faults::default()
    });
    let lost = code(&mut key);
    assert!(matches!(lost, Err(Error::Timeout(_))), "{lost:?}");
    assert_eq!(code(&mut key).expect("resynced").code, "287082");
}
