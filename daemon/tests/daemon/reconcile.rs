//! The crash windows of write-ahead seeding, made deterministic: a ledger left with records
//! that never settled (the daemon died after recording a seed, or after writing it to the key
//! but before verifying it). At start the daemon settles every one of them against the key.

use std::time::Duration;

use oathkey_device::{Key, NewCredential, OtpKind as DevKind};
use oathkey_emulator::{Config as VirtualConfig, VirtualKeyHandle};
use oathkey_protocol::SecretText;
use oathkey_protocol::types::{Algorithm, OtpKind, SeedState};
use oathkeyd::config::{Config, FileConfig, Overrides, Scope};
use oathkeyd::ledger::{Ledger, seed_info};
use secrecy::SecretSlice;

const SERIAL: u32 = 0x0A0B_0C0D;

fn put(key: &mut Key<oathkey_emulator::VirtualTransport>, name: &str, secret: &[u8]) {
    key.put(
        &NewCredential {
            name: name.into(),
            kind: DevKind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            secret: SecretSlice::from(secret.to_vec()),
            touch_required: false,
            pin_protected: false,
            initial_counter: 0,
        },
        None,
    )
    .expect("written");
}

#[test]
fn a_pending_touch_token_never_blocks_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    {
        let vconfig = VirtualConfig {
            serial: Some(SERIAL),
            ..VirtualConfig::default()
        };
        let handle =
            VirtualKeyHandle::open(vconfig, state.join("virtual-key-0.json")).expect("key state");
        let mut key = Key::open(handle.connect().expect("plugged")).expect("opens");
        key.put(
            &NewCredential {
                name: "T1:touch@contoso.com".into(),
                kind: DevKind::Totp,
                algorithm: Algorithm::Sha1,
                digits: 6,
                secret: SecretSlice::from(b"12345678901234567890".to_vec()),
                touch_required: true,
                pin_protected: false,
                initial_counter: 0,
            },
            None,
        )
        .expect("written");
    }
    let info = seed_info(
        "0a0b0c0d",
        "T1:touch@contoso.com",
        "T1",
        "touch@contoso.com",
        OtpKind::Totp,
        Algorithm::Sha1,
        6,
        30,
        0,
        "virtual",
    );
    {
        let ledger = Ledger::open(&state.join("seeds.ledger")).expect("ledger");
        ledger
            .begin(
                info.clone(),
                SecretText::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            )
            .expect("recorded");
    }
    let flags = Overrides {
        socket: Some(dir.path().join("s.sock")),
        state_dir: Some(state.clone()),
        emulate: Some(1),
        // Nobody touches: a start that waited for the touch would take the touch timeout.
        emulate_touch: Some("deny".into()),
        no_hid: true,
        ..Overrides::default()
    };
    let config = Config::resolve(Scope::User, FileConfig::default(), &flags).expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = std::time::Instant::now();
    let daemon = rt.block_on(oathkeyd::start(config)).expect("starts");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start took {:?}",
        started.elapsed()
    );
    let record = daemon
        .service()
        .ledger()
        .records()
        .into_iter()
        .find(|r| r.info.id == info.id)
        .expect("record");
    assert_eq!(
        record.info.state,
        SeedState::Written,
        "on the key; not verified"
    );
    assert!(
        record
            .info
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("touch"),
        "{:?}",
        record.info.reason
    );
    assert!(record.info.state.exportable());
    rt.block_on(daemon.shutdown());
}

#[test]
fn unsettled_seeds_are_settled_against_the_key_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let secret = b"12345678901234567890";
    let other = b"abcdefghijabcdefghij";
    {
        // The key as a crash left it: S1 written with its seed, S3 with a different seed than
        // recorded (a key that stored something else), S2 never written.
        let vconfig = VirtualConfig {
            serial: Some(SERIAL),
            ..VirtualConfig::default()
        };
        let handle =
            VirtualKeyHandle::open(vconfig, state.join("virtual-key-0.json")).expect("key state");
        let mut key = Key::open(handle.connect().expect("plugged")).expect("opens");
        put(&mut key, "S1:one@contoso.com", secret);
        put(&mut key, "S3:three@contoso.com", other);
    }
    let b32 = |s: &[u8]| SecretText::new(data_encoding::BASE32_NOPAD.encode(s));
    let info = |serial: &str, user: &str| {
        seed_info(
            "0a0b0c0d",
            &format!("{serial}:{user}"),
            serial,
            user,
            OtpKind::Totp,
            Algorithm::Sha1,
            6,
            30,
            0,
            "oathkey virtual key",
        )
    };
    let (one, two, three) = (
        info("S1", "one@contoso.com"),
        info("S2", "two@contoso.com"),
        info("S3", "three@contoso.com"),
    );
    {
        let ledger = Ledger::open(&state.join("seeds.ledger")).expect("ledger");
        ledger.begin(one.clone(), b32(secret)).expect("recorded");
        ledger.begin(two.clone(), b32(secret)).expect("recorded");
        ledger.begin(three.clone(), b32(secret)).expect("recorded");
        ledger
            .mark(&three.id, SeedState::Written, None)
            .expect("marked");
    }

    let flags = Overrides {
        socket: Some(dir.path().join("s.sock")),
        state_dir: Some(state.clone()),
        emulate: Some(1),
        no_hid: true,
        ..Overrides::default()
    };
    let config = Config::resolve(Scope::User, FileConfig::default(), &flags).expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = rt.block_on(oathkeyd::start(config)).expect("starts");

    let state_of = |id: &str| {
        daemon
            .service()
            .ledger()
            .records()
            .into_iter()
            .find(|r| r.info.id == id)
            .expect("record")
            .info
    };
    // Settled before the daemon served anyone.
    assert_eq!(
        state_of(&one.id).state,
        SeedState::Verified,
        "on the key with the recorded seed"
    );
    assert_eq!(
        state_of(&two.id).state,
        SeedState::NotOnKey,
        "never reached the key"
    );
    let three_now = state_of(&three.id);
    assert_eq!(
        three_now.state,
        SeedState::Failed,
        "the key computes something else"
    );
    assert!(
        three_now
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("deleted"),
        "{three_now:?}"
    );

    // The key no longer holds the token that did not match its record.
    let entry = daemon
        .service()
        .registry()
        .list()
        .into_iter()
        .next()
        .expect("key");
    let handle = entry.virtual_handle.clone().expect("virtual");
    std::thread::sleep(Duration::from_millis(50));
    let names: Vec<String> = handle
        .state()
        .credentials
        .iter()
        .map(|c| String::from_utf8_lossy(&c.name).into_owned())
        .collect();
    assert_eq!(names, ["S1:one@contoso.com"]);
    rt.block_on(daemon.shutdown());
}

#[test]
fn a_seed_another_tool_deleted_from_the_key_is_marked_missing_and_no_longer_exported() {
    use oathkey_protocol::types::{CreateTokenParams, SeedsParams};

    let dir = tempfile::tempdir().expect("tempdir");
    let flags = Overrides {
        socket: Some(dir.path().join("s.sock")),
        state_dir: Some(dir.path().join("state")),
        emulate: Some(1),
        no_hid: true,
        ..Overrides::default()
    };
    let config = Config::resolve(Scope::User, FileConfig::default(), &flags).expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let daemon = rt.block_on(oathkeyd::start(config)).expect("starts");
    let service = daemon.service();
    let admin = service.caller(1, Some(0), Some(0), None);
    let create = |account: &str, serial: &str| {
        rt.block_on(service.create_token(
            &admin,
            CreateTokenParams {
                account: account.into(),
                serial: Some(serial.into()),
                ..serde_json::from_value(serde_json::json!({"account": account})).expect("defaults")
            },
        ))
        .expect("created")
    };
    let gone = create("gone@contoso.com", "G1");
    let kept = create("kept@contoso.com", "K1");
    let state_of = |id: &str| {
        service
            .ledger()
            .records()
            .into_iter()
            .find(|r| r.info.id == id)
            .expect("record")
            .info
            .state
    };
    assert_eq!(
        state_of(gone.seed_id.as_deref().expect("id")),
        SeedState::Verified
    );

    // Another tool (a second connection to the key, as ykman or nitropy would make) deletes
    // one token behind the daemon's back.
    let entry = service.registry().list().into_iter().next().expect("key");
    let handle = entry.virtual_handle.clone().expect("virtual");
    let mut other_tool = Key::open(handle.connect().expect("plugged")).expect("opens");
    other_tool
        .delete(&gone.token.name, None)
        .expect("deleted by the other tool");

    // The next time the daemon lists the key (a search that misses looks afresh), the ledger
    // follows.
    let missed = rt.block_on(oathkeyd::rpc::call(
        service,
        &admin,
        "codes.get",
        Some(serde_json::json!({"token": "G1"})),
    ));
    assert_eq!(missed.map_err(|e| e.code.name()), Err("TokenNotFound"));
    assert_eq!(
        state_of(gone.seed_id.as_deref().expect("id")),
        SeedState::Missing
    );
    assert_eq!(
        state_of(kept.seed_id.as_deref().expect("id")),
        SeedState::Verified,
        "the token still on the key is untouched"
    );
    let exportable = service
        .seeds_export(&admin, SeedsParams::default())
        .expect("export");
    assert_eq!(
        exportable
            .iter()
            .map(|r| r.info.serial.as_str())
            .collect::<Vec<_>>(),
        ["K1"],
        "a seed no key holds is not exported"
    );
    let stale = service
        .seeds_list(
            &admin,
            SeedsParams {
                stale: true,
                ..SeedsParams::default()
            },
        )
        .expect("list");
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].serial, "G1");
    assert!(
        stale[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("another tool"),
        "{:?}",
        stale[0].reason
    );
    rt.block_on(daemon.shutdown());
}
