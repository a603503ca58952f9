//! The D-Bus frontend as other desktop software sees it. Each test starts its own dbus-daemon
//! (no system bus needed) and the real oathkeyd on it.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oathkey_testkit::{Daemon, assert_exit, bin, is_root, reference_totp_b32, stdout};
use serde_json::{Value, json};

/// A private bus any uid may connect to (so the reader tests can use uid 65534).
struct Bus {
    child: Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bus(dir: &Path) -> Bus {
    let socket = dir.join("bus");
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .expect("bus config");
    let child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (scripts/setup installs package dbus)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the bus did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    Bus {
        child,
        address: format!("unix:path={}", socket.display()),
    }
}

/// A daemon on its own bus.
struct Env {
    daemon: Daemon,
    bus: Bus,
    _dir: tempfile::TempDir,
}

fn start(emulate: &str) -> Env {
    start_with(&["--emulate", emulate])
}

fn start_with(args: &[&str]) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bus = start_bus(dir.path());
    // The bus address goes to the daemon process only (Command::env), never to this process.
    let daemon = Daemon::start_with_env(
        Some("socket_mode = \"0666\"\n"),
        &[args, &["--dbus", "session"]].concat(),
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())],
    );
    // Wait until the name is taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = busctl(&bus.address, &["status", "org.oathkey.Daemon1"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "oathkeyd never took its bus name:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Env {
        daemon,
        bus,
        _dir: dir,
    }
}

fn busctl(address: &str, args: &[&str]) -> Output {
    Command::new("busctl")
        .arg(format!("--address={address}"))
        .args(args)
        .output()
        .expect("busctl (package systemd)")
}

fn busctl_json(address: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json=short"];
    all.extend_from_slice(args);
    let out = busctl(address, &all);
    assert!(
        out.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

const DEST: &str = "org.oathkey.Daemon1";
const MANAGER: &str = "/org/oathkey/Daemon1/Manager";

fn key_paths(address: &str) -> Vec<String> {
    let v = busctl_json(
        address,
        &["call", DEST, MANAGER, "org.oathkey.Manager1", "ListKeys"],
    );
    v["data"][0]
        .as_array()
        .expect("ao")
        .iter()
        .map(|p| p.as_str().expect("path").to_string())
        .collect()
}

#[test]
fn busctl_and_gdbus_list_keys_and_read_a_code() {
    let env = start("1");
    let created = env.daemon.cli(&[
        "token",
        "new",
        "--user",
        "alice@contoso.com",
        "--serial",
        "0012345",
        "--json",
    ]);
    assert_exit(&created, 0);
    let secret = serde_json::from_slice::<Value>(&created.stdout).expect("JSON")["secret"]
        .as_str()
        .expect("secret")
        .to_string();

    let paths = key_paths(&env.bus.address);
    assert_eq!(paths.len(), 1);
    let key = &paths[0];
    let model = busctl_json(
        &env.bus.address,
        &["get-property", DEST, key, "org.oathkey.Key1", "Model"],
    );
    assert_eq!(model["data"], "oathkey virtual key");
    for t in [59u64, 1_234_567_890] {
        let v = busctl_json(
            &env.bus.address,
            &[
                "call",
                DEST,
                key,
                "org.oathkey.Key1",
                "GetCode",
                "st",
                "0012345",
                &t.to_string(),
            ],
        );
        let code = v["data"][0]["code"]["data"].as_str().expect("code");
        assert_eq!(
            code,
            reference_totp_b32("sha1", 6, 30, &secret, t),
            "busctl at {t}"
        );
    }
    // gdbus, another implementation of the client side.
    let out = Command::new("gdbus")
        .args([
            "call",
            "--address",
            &env.bus.address,
            "--dest",
            DEST,
            "--object-path",
            key,
            "--method",
            "org.oathkey.Key1.GetCode",
            "0012345",
            "59",
        ])
        .output()
        .expect("gdbus (package libglib2.0-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "'{}'",
            reference_totp_b32("sha1", 6, 30, &secret, 59)
        )),
        "{text}"
    );

    let hello = busctl_json(
        &env.bus.address,
        &["call", DEST, MANAGER, "org.oathkey.Manager1", "Hello"],
    );
    assert_eq!(hello["data"][0], 1);
    assert_eq!(
        hello["data"][2], "admin",
        "tests run as the daemon's own uid or root"
    );
}

#[test]
fn errors_are_named_dbus_errors() {
    let env = start("1");
    let key = &key_paths(&env.bus.address)[0];
    let out = busctl(
        &env.bus.address,
        &[
            "call",
            DEST,
            key,
            "org.oathkey.Key1",
            "GetCode",
            "st",
            "nobody",
            "0",
        ],
    );
    assert!(!out.status.success());
    // gdbus prints the error name.
    let out = Command::new("gdbus")
        .args([
            "call",
            "--address",
            &env.bus.address,
            "--dest",
            DEST,
            "--object-path",
            key,
            "--method",
            "org.oathkey.Key1.GetCode",
            "nobody",
            "0",
        ])
        .output()
        .expect("gdbus");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("org.oathkey.Error.TokenNotFound"), "{err}");
    let out = Command::new("gdbus")
        .args([
            "call",
            "--address",
            &env.bus.address,
            "--dest",
            DEST,
            "--object-path",
            key,
            "--method",
            "org.oathkey.Key1.CreateToken",
            "{'account': <'x@y.z'>, 'colour': <'red'>}",
        ])
        .output()
        .expect("gdbus");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("org.oathkey.Error.InvalidParams"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_reader_is_refused_every_admin_method() {
    if !is_root() {
        eprintln!("not root: the reader test needs setpriv to become uid 65534; skipped");
        return;
    }
    let env = start("1");
    let key = key_paths(&env.bus.address)[0].clone();
    assert_exit(
        &env.daemon.cli(&[
            "token",
            "new",
            "--user",
            "alice@contoso.com",
            "--serial",
            "R1",
        ]),
        0,
    );
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                "busctl",
            ])
            .arg(format!("--address={}", env.bus.address))
            .args(args)
            .output()
            .expect("setpriv")
    };
    // Reading works.
    let read = as_nobody(&[
        "call",
        DEST,
        &key,
        "org.oathkey.Key1",
        "GetCode",
        "st",
        "R1",
        "0",
    ]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let hello = as_nobody(&["call", DEST, MANAGER, "org.oathkey.Manager1", "Hello"]);
    assert!(stdout(&hello).contains("\"reader\""), "{}", stdout(&hello));
    // Every admin method is refused.
    for args in [
        vec![
            "call",
            DEST,
            &key,
            "org.oathkey.Key1",
            "CreateToken",
            "a{sv}",
            "1",
            "account",
            "s",
            "m@contoso.com",
        ],
        vec![
            "call",
            DEST,
            &key,
            "org.oathkey.Key1",
            "DeleteToken",
            "s",
            "R1",
        ],
        vec![
            "call",
            DEST,
            &key,
            "org.oathkey.Key1",
            "Configure",
            "a{sb}",
            "1",
            "key_press",
            "true",
        ],
        vec!["call", DEST, &key, "org.oathkey.Key1", "Claim"],
        vec![
            "call",
            DEST,
            &key,
            "org.oathkey.Key1",
            "GetCode",
            "st",
            "R1",
            "2000000000",
        ],
    ] {
        let out = as_nobody(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("admin") || err.contains("Permission"),
            "{args:?}: {err}"
        );
    }
    // Nothing changed.
    let tokens: Vec<Value> = env
        .daemon
        .client()
        .call("tokens.list", Value::Null)
        .expect("lists");
    assert_eq!(tokens.len(), 1);
    // Each refusal is in the daemon's log with who and where.
    let log = env.daemon.log_text();
    let denials = log
        .lines()
        .filter(|l| {
            l.contains("denied:") && l.contains("uid=Some(65534)") && l.contains("frontend=dbus")
        })
        .count();
    assert_eq!(denials, 5, "five refusals logged: {log}");
}

#[test]
fn hot_plug_signals_and_stable_paths() {
    let env = start("2");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.oathkey.Manager1")
            .build()
            .expect("rule");
        let (_conn, mut signals) = signals_on(&env.bus.address, rule).await;
        let before = key_paths(&env.bus.address);
        let list: oathkey_protocol::types::KeyList = env
            .daemon
            .client()
            .call("keys.list", Value::Null)
            .expect("lists");
        let id = list.keys[0].id.clone();
        let mut admin = env.daemon.client();
        let _: Value = admin
            .call("virtual.unplug", json!({"key": id}))
            .expect("unplugged");
        let got = next_signal(&mut signals).await;
        assert_eq!(got.0, "KeyRemoved");
        assert_eq!(got.2, id);
        assert_eq!(key_paths(&env.bus.address).len(), 1);
        let _: Value = admin
            .call("virtual.plug", json!({"key": id}))
            .expect("plugged");
        let got = next_signal(&mut signals).await;
        assert_eq!(got.0, "KeyAdded");
        assert!(
            before.contains(&got.1),
            "the same path as before the unplug: {} in {before:?}",
            got.1
        );
        let mut after = key_paths(&env.bus.address);
        let mut before = before;
        after.sort();
        before.sort();
        assert_eq!(after, before);
    });
}

/// A new connection to the bus at `address` and the messages on it that match `rule`.
async fn signals_on(
    address: &str,
    rule: zbus::MatchRule<'_>,
) -> (zbus::Connection, zbus::MessageStream) {
    let conn = zbus::connection::Builder::address(address)
        .build()
        .await
        .expect("bus");
    let stream = zbus::MessageStream::for_match_rule(rule, &conn, None)
        .await
        .expect("stream");
    (conn, stream)
}

async fn next_signal(stream: &mut zbus::MessageStream) -> (String, String, String) {
    let msg = next_message(stream, &["KeyAdded", "KeyRemoved"], Duration::from_secs(5)).await;
    let member = msg
        .header()
        .member()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let (path, id): (zbus::OwnedObjectPath, String) = msg.body().deserialize().expect("(os)");
    (member, path.to_string(), id)
}

/// The next signal named one of `members`, within `within`.
async fn next_message(
    stream: &mut zbus::MessageStream,
    members: &[&str],
    within: Duration,
) -> zbus::Message {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("one of {members:?} in time"))
            .expect("stream open")
            .expect("message");
        let member = msg.header().member().map(|m| m.to_string());
        if member.is_some_and(|m| members.contains(&m.as_str())) {
            return msg;
        }
    }
}

#[test]
fn a_vanished_claimer_loses_its_claim() {
    let env = start("1");
    let key = key_paths(&env.bus.address)[0].clone();
    // Another application watches the Claimed property.
    let watch_rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_watch_conn, mut changes) = watch_rt.block_on(async {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path(key.as_str())
            .build()
            .expect("rule");
        signals_on(&env.bus.address, rule).await
    });
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let conn = rt.block_on(async {
        let conn = zbus::connection::Builder::address(env.bus.address.as_str())
            .build()
            .await
            .expect("bus");
        conn.call_method(
            Some(DEST),
            key.as_str(),
            Some("org.oathkey.Key1"),
            "Claim",
            &(),
        )
        .await
        .expect("claimed");
        conn
    });
    let claimed = busctl_json(
        &env.bus.address,
        &["get-property", DEST, &key, "org.oathkey.Key1", "Claimed"],
    );
    assert_eq!(claimed["data"], true);
    assert!(watch_rt.block_on(next_claimed(&mut changes)));
    let refused = env.daemon.cli(&["token", "new", "--user", "x@contoso.com"]);
    assert_exit(&refused, 7);
    // The claimer leaves the bus without releasing.
    drop(conn);
    drop(rt);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = env.daemon.cli(&["token", "new", "--user", "x@contoso.com"]);
        if out.status.code() == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "claim not released: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!watch_rt.block_on(next_claimed(&mut changes)));
}

/// The next value of `Claimed` in a PropertiesChanged signal.
async fn next_claimed(stream: &mut zbus::MessageStream) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("PropertiesChanged in time")
            .expect("stream open")
            .expect("message");
        let (interface, changed, _invalidated): (
            String,
            HashMap<String, zbus::OwnedVariant>,
            Vec<String>,
        ) = msg.body().deserialize().expect("(sa{sv}as)");
        if interface == "org.oathkey.Key1"
            && let Some(v) = changed.get("Claimed")
        {
            return bool::try_from(v).expect("a boolean");
        }
    }
}

/// Extracts one `<interface>` element and normalises whitespace.
fn interface_xml(xml: &str, name: &str) -> String {
    let start = xml
        .find(&format!("<interface name=\"{name}\">"))
        .unwrap_or_else(|| panic!("no {name} in:\n{xml}"));
    let end = start + xml[start..].find("</interface>").expect("closed") + "</interface>".len();
    xml[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn published_introspection_matches_docs() {
    let env = start("1");
    let key = key_paths(&env.bus.address)[0].clone();
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/dbus");
    for (path, iface) in [
        (MANAGER.to_string(), "org.oathkey.Manager1"),
        (key, "org.oathkey.Key1"),
    ] {
        let live = busctl_json(
            &env.bus.address,
            &[
                "call",
                DEST,
                &path,
                "org.freedesktop.DBus.Introspectable",
                "Introspect",
            ],
        );
        let live = live["data"][0].as_str().expect("xml").to_string();
        let documented =
            std::fs::read_to_string(docs.join(format!("{iface}.xml"))).expect("docs/dbus file");
        assert_eq!(
            interface_xml(&live, iface),
            interface_xml(&documented, iface),
            "docs/dbus/{iface}.xml differs from what oathkeyd publishes; regenerate it"
        );
    }
}

/// A stand-in for polkitd: answers CheckAuthorization from a table and records the questions.
struct FakePolkit {
    allow: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.freedesktop.PolicyKit1.Authority")]
impl FakePolkit {
    fn check_authorization(
        &self,
        _subject: (String, HashMap<String, zbus::OwnedVariant>),
        action_id: String,
        _details: HashMap<String, String>,
        _flags: u32,
        _cancellation_id: String,
    ) -> (bool, bool, HashMap<String, String>) {
        self.asked.lock().expect("lock").push(action_id);
        (self.allow, false, HashMap::new())
    }
}

#[test]
fn polkit_is_asked_for_admin_verbs_where_it_runs() {
    let env = start("1");
    let key = key_paths(&env.bus.address)[0].clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for allow in [false, true] {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let conn = rt.block_on(async {
            zbus::connection::Builder::address(env.bus.address.as_str())
                .serve_at(
                    "/org/freedesktop/PolicyKit1/Authority",
                    FakePolkit {
                        allow,
                        asked: asked.clone(),
                    },
                )
                .name("org.freedesktop.PolicyKit1")
                .build()
                .await
                .expect("fake polkit on the bus")
        });
        let out = Command::new("gdbus")
            .args([
                "call",
                "--address",
                &env.bus.address,
                "--dest",
                DEST,
                "--object-path",
                &key,
                "--method",
                "org.oathkey.Key1.CreateToken",
                &format!("{{'account': <'p{allow}@contoso.com'>}}"),
            ])
            .output()
            .expect("gdbus");
        if allow {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("org.oathkey.Error.PermissionDenied"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let log = env.daemon.log_text();
            assert!(
                log.contains("denied: polkit does not allow org.oathkey.create-token"),
                "a polkit refusal is logged: {log}"
            );
        }
        assert_eq!(
            asked.lock().expect("lock").as_slice(),
            ["org.oathkey.create-token"]
        );
        // Reading asks for the reader action.
        let read = Command::new("gdbus")
            .args([
                "call",
                "--address",
                &env.bus.address,
                "--dest",
                DEST,
                "--object-path",
                &key,
                "--method",
                "org.oathkey.Key1.ListTokens",
            ])
            .output()
            .expect("gdbus");
        assert_eq!(read.status.success(), allow);
        assert!(
            asked
                .lock()
                .expect("lock")
                .contains(&"org.oathkey.read-codes".to_string())
        );
        drop(conn);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_explicit_bus_that_is_missing_stops_the_start_but_auto_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin("oathkeyd"))
        .args(["--user", "--no-hid", "--dbus", "session", "--socket"])
        .arg(dir.path().join("s.sock"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", dir.path().join("no-bus").display()),
        )
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("D-Bus"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Daemon::start_with_env(
        None,
        &["--dbus", "auto"],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
    );
    assert!(
        d.log_text().contains("no D-Bus frontend"),
        "{}",
        d.log_text()
    );
    let _: oathkey_protocol::types::Hello = d
        .client()
        .call("hello", Value::Null)
        .expect("the socket serves");
}

#[test]
fn a_touch_wait_ends_when_its_dbus_caller_leaves() {
    let env = start_with(&["--emulate", "1", "--emulate-touch", "button"]);
    let key = key_paths(&env.bus.address)[0].clone();
    let id = env.daemon.key_id();
    // A touch token; creating it may itself wait for the button, so press until it is done.
    let cli = {
        let socket = env.daemon.socket.clone();
        std::thread::spawn(move || {
            Command::new(bin("oathkey"))
                .args([
                    "token",
                    "new",
                    "--user",
                    "t@contoso.com",
                    "--serial",
                    "T1",
                    "--touch",
                ])
                .env("OATHKEY_SOCKET", socket)
                .stdin(Stdio::null())
                .output()
                .expect("oathkey runs")
        })
    };
    let mut admin = env.daemon.client();
    while !cli.is_finished() {
        let _: Value = admin
            .call("virtual.press", json!({"key": id}))
            .expect("press");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_exit(&cli.join().expect("joined"), 0);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.oathkey.Key1")
            .build()
            .expect("rule");
        let (_conn, mut signals) = signals_on(&env.bus.address, rule).await;
        // A caller asks for the code and waits; the key waits for its button.
        let mut caller = Command::new("busctl")
            .arg(format!("--address={}", env.bus.address))
            .args([
                "--timeout=60",
                "call",
                DEST,
                &key,
                "org.oathkey.Key1",
                "GetCode",
                "st",
                "T1",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("busctl");
        assert_eq!(
            next_key_signal(&mut signals, Duration::from_secs(10)).await,
            "TouchNeeded"
        );
        // It goes away. Without cancellation the wait would last the key's 15 s touch timeout.
        let left = Instant::now();
        caller.kill().expect("kill");
        caller.wait().expect("reaped");
        assert_eq!(
            next_key_signal(&mut signals, Duration::from_secs(5)).await,
            "TouchDone"
        );
        eprintln!(
            "the touch wait ended {:?} after its caller left",
            left.elapsed()
        );
    });
    // Nothing waits for the button any more.
    let pressed: bool = admin
        .call("virtual.press", json!({"key": id}))
        .expect("press");
    assert!(!pressed, "a request still waited for a touch");
    assert!(
        env.daemon.log_text().contains("the caller left the bus"),
        "{}",
        env.daemon.log_text()
    );
}

/// The next TouchNeeded/TouchDone signal of a key, within `within`.
async fn next_key_signal(stream: &mut zbus::MessageStream, within: Duration) -> String {
    let msg = next_message(stream, &["TouchNeeded", "TouchDone"], within).await;
    msg.header()
        .member()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

#[test]
fn token_and_settings_changes_are_signalled() {
    let env = start("1");
    let key = key_paths(&env.bus.address)[0].clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_conn, mut signals) = rt.block_on(async {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path(key.as_str())
            .build()
            .expect("rule");
        signals_on(&env.bus.address, rule).await
    });

    // A token created through the socket: TokensChanged on the key's object.
    assert_exit(
        &env.daemon.cli(&[
            "token",
            "new",
            "--user",
            "sig@contoso.com",
            "--serial",
            "S1",
        ]),
        0,
    );
    rt.block_on(next_message(
        &mut signals,
        &["TokensChanged"],
        Duration::from_secs(5),
    ));
    assert_exit(&env.daemon.cli(&["token", "delete", "S1"]), 0);
    rt.block_on(next_message(
        &mut signals,
        &["TokensChanged"],
        Duration::from_secs(5),
    ));

    // Key Press turned on: PropertiesChanged carries the new Settings.
    assert_exit(&env.daemon.cli(&["config", "--key-press", "on"]), 0);
    let settings = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = next_message(&mut signals, &["PropertiesChanged"], left).await;
            let (interface, changed, _invalidated): (
                String,
                HashMap<String, zbus::OwnedVariant>,
                Vec<String>,
            ) = msg.body().deserialize().expect("(sa{sv}as)");
            if interface == "org.oathkey.Key1"
                && let Some(v) = changed.get("Settings")
            {
                return HashMap::<String, bool>::try_from(v.try_clone().expect("clone"))
                    .expect("a{sb}");
            }
        }
    });
    assert_eq!(settings.get("key_press"), Some(&true), "{settings:?}");
    let live = busctl_json(
        &env.bus.address,
        &["get-property", DEST, &key, "org.oathkey.Key1", "Settings"],
    );
    assert_eq!(live["data"]["key_press"], true, "{live}");
}
