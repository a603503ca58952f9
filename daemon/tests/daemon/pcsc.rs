//! oathkeyd with smart-card keys through real middleware: a private pcscd with vsmartcard's
//! vpcd reader, the virtual card (`oathkey-emulator serve --vpcd`, yubikey profile) in it, the
//! real `oathkeyd` watching that pcscd, and the `oathkey` CLI against it. Other applications on
//! the same card are Yubico's yubikit and a plain pyscard client (`tests/python/pcsc_peer.py`).
//! Codes are held to the reference TOTP (totp-rs) and to what yubikit reads from the card.
//!
//! Needs root, pcscd and vsmartcard-vpcd (scripts/setup installs them) and the Python test
//! environment; outside CI a missing piece skips the test with the reason, under `CI=true` it
//! fails.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use oathkey_protocol::types::{KeyInfo, KeyList, KeySource};
use oathkey_testkit::pcscd::{self, Emulator, Pcscd, READER};
use oathkey_testkit::{Daemon, assert_exit, reference_totp_b32, unix_now};
use serde_json::Value;

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// vpcd's second reader.
const READER_2: &str = "Virtual PCD 00 01";

fn ready() -> bool {
    if !pcscd::available(&["oathtool"]) {
        return false;
    }
    let python = oathkey_testkit::python();
    let ok = Command::new(&python)
        .args(["-c", "import smartcard, ykman"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} lacks pyscard or ykman: run scripts/setup",
        python.display()
    );
    true
}

/// A private pcscd, a `yubikey` card in its first reader and a daemon watching it (with one
/// in-process virtual Nitrokey 3 beside it).
struct Rig {
    pcscd: Pcscd,
    card: Emulator,
    daemon: Daemon,
}

impl Rig {
    fn start(serial: &str) -> Self {
        let pcscd = Pcscd::start();
        let mut card = Emulator::start(
            pcscd.port,
            &[
                "--profile",
                "yubikey",
                "--touch",
                "button",
                "--serial",
                serial,
            ],
        );
        card.expect_line("card inserted", Duration::from_secs(10));
        let daemon = Daemon::builder()
            .admin_self()
            .pcscd(pcscd.socket())
            .args(["--emulate", "1"])
            .start();
        Self {
            pcscd,
            card,
            daemon,
        }
    }

    fn list(&self) -> KeyList {
        let ran = self.daemon.cli(&["keys", "--json"]);
        assert_exit(&ran, 0);
        serde_json::from_slice(&ran.stdout).expect("keys --json is a KeyList")
    }

    /// Waits until the listing satisfies `ok`; returns it.
    fn wait_list(&self, what: &str, ok: impl Fn(&KeyList) -> bool) -> KeyList {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.list();
            if ok(&list) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "never {what}: {list:?}\ndaemon log:\n{}\npcscd log:\n{}",
                self.daemon.log_text(),
                self.pcscd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn card_key(&self, reader: &str) -> KeyInfo {
        let list = self.wait_list(&format!("listed the card in {reader}"), |l| {
            l.keys.iter().any(|k| k.path == reader)
        });
        list.keys
            .into_iter()
            .find(|k| k.path == reader)
            .expect("listed")
    }

    /// `oathkey` with `args`, expecting exit status `code`; its stdout.
    fn cli(&self, args: &[&str], code: i32) -> String {
        let ran = self.daemon.cli(args);
        assert_exit(&ran, code);
        String::from_utf8_lossy(&ran.stdout).trim().to_string()
    }

    /// Another application on the card: `pcsc_peer.py` with `args`.
    fn peer(&self, args: &[&str]) -> Command {
        peer_command(&self.pcscd, args)
    }

    fn peer_output(&self, args: &[&str]) -> String {
        let out = self.peer(args).output().expect("python runs");
        assert!(
            out.status.success(),
            "pcsc_peer.py {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// oathtool's TOTP (SHA-1, 6 digits, 30 s) of the test secret at `at`.
fn oathtool_totp(at: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{at}"), SECRET])
        .output()
        .expect("oathtool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pcsc_peer.py")
}

/// A code read "now" against the reference at the same moment; read again when a time step
/// boundary fell between the two.
fn assert_code_now(read: impl Fn() -> String) {
    for _ in 0..3 {
        let before = unix_now() / 30;
        let code = read();
        if unix_now() / 30 == before {
            assert_eq!(code, reference_totp_b32("sha1", 6, 30, SECRET, unix_now()));
            return;
        }
    }
    panic!("three step boundaries in a row");
}

/// Creates the test token on the key `id` for `user`; its name on the key.
fn new_token(rig: &Rig, id: &str, user: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--key", id, "--json", "token", "new", "--user", user, "--secret", SECRET,
    ];
    args.extend_from_slice(extra);
    let out: Value = serde_json::from_str(&rig.cli(&args, 0)).expect("token new --json");
    out["name"]
        .as_str()
        .or_else(|| out["token"]["name"].as_str())
        .unwrap_or_else(|| panic!("no token name in {out}"))
        .to_string()
}

/// A process holding the card exclusively until told to let go.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Holder {
    fn take(rig: &impl Peer, reader: &str) -> Self {
        let mut child = rig
            .peer(&["hold", reader])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(
            first, "HELD",
            "the peer could not take the card exclusively"
        );
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn release(mut self) {
        writeln!(self.stdin, "go").expect("told");
        let line = self.lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(line, "RELEASED");
        assert!(self.child.wait().expect("ends").success());
    }
}

#[test]
fn a_yubikey_card_serves_beside_a_nitrokey_and_interoperates_with_yubikit() {
    if !ready() {
        return;
    }
    let rig = Rig::start("00BC614E");
    let list = rig.wait_list("listed both keys", |l| l.keys.len() == 2);
    let card = rig.card_key(READER);
    assert_eq!(card.source, KeySource::Pcsc);
    assert_eq!(card.family.name(), "ykoath-pcsc");
    assert!(card.capabilities.rename && card.capabilities.touch && !card.locked);
    assert!(
        list.keys
            .iter()
            .any(|k| k.source == KeySource::Virtual && k.family.name() == "nk3-hid"),
        "{list:?}"
    );

    // Seeded through oathkeyd, read through oathkeyd: the reference's code.
    let name = new_token(&rig, &card.id, "alice@example.com", &[]);
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));
    // At a fixed time (admins may ask), the code oathtool computes from the seed.
    let at = 1_111_111_109u64;
    assert_eq!(
        rig.cli(
            &["--key", &card.id, "--at", &at.to_string(), "code", &name],
            0
        ),
        oathtool_totp(at)
    );
    // Yubico's library, on the same card through the same pcscd while oathkeyd serves it,
    // computes the same code at a fixed time.
    assert_eq!(
        rig.peer_output(&["code", READER, &name, &at.to_string()]),
        reference_totp_b32("sha1", 6, 30, SECRET, at)
    );
    // And what yubikit writes, oathkeyd lists and reads (its token list is re-read within
    // seconds: other applications change the card too).
    rig.peer_output(&["put", READER, "Example:bob@example.com", SECRET]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tokens = rig.cli(&["--key", &card.id, "tokens"], 0);
        if tokens.contains("bob@example.com") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "yubikit's token never listed:\n{tokens}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", "Example:bob@example.com"], 0));

    // A token that needs a touch: oathkeyd waits for the card's button, when it verifies the
    // new token and for every code.
    let mut rig = rig;
    let creating = rig
        .daemon
        .cli_command(&[
            "--key",
            &card.id,
            "--json",
            "token",
            "new",
            "--user",
            "carol@example.com",
            "--secret",
            SECRET,
            "--touch",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oathkey runs");
    rig.card
        .expect_line("touch requested", Duration::from_secs(20));
    rig.card.control("press");
    let out = creating.wait_with_output().expect("oathkey ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("json");
    let touched = created["token"]["name"].as_str().expect("name").to_string();
    assert_eq!(created["token"]["touch"], true);
    let child = rig
        .daemon
        .cli_command(&["--key", &card.id, "code", &touched])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("oathkey runs");
    rig.card
        .expect_line("touch requested", Duration::from_secs(20));
    let pressed_in = unix_now() / 30;
    rig.card.control("press");
    let out = child.wait_with_output().expect("oathkey ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let expected: Vec<String> = [pressed_in, pressed_in + 1]
        .iter()
        .map(|s| reference_totp_b32("sha1", 6, 30, SECRET, s * 30))
        .collect();
    assert!(expected.contains(&code), "{code} not in {expected:?}");

    // The admin tool's Mode maps to the YubiKey's USB applications; Key Press has no global
    // setting on it (touch is per token) and is refused, saying so, before anything is sent.
    let shown = rig.cli(&["--key", &card.id, "config"], 0);
    assert!(shown.contains("U2F"), "{shown}");
    rig.cli(&["--key", &card.id, "config", "--u2f", "off"], 0);
    let json: Value =
        serde_json::from_str(&rig.cli(&["--key", &card.id, "--json", "config"], 0)).expect("json");
    assert_eq!(json["u2f"], false, "{json}");
    rig.cli(&["--key", &card.id, "config", "--u2f", "on"], 0);
    let ran = rig
        .daemon
        .cli(&["--key", &card.id, "config", "--key-press", "on"]);
    assert_ne!(ran.status.code(), Some(0));
    let said = String::from_utf8_lossy(&ran.stderr).to_lowercase();
    assert!(
        said.contains("key press") && said.contains("--touch"),
        "{said}"
    );

    // The Nitrokey beside it is untouched by all of this.
    let nk = list
        .keys
        .iter()
        .find(|k| k.source == KeySource::Virtual)
        .expect("virtual key");
    let nk_name = new_token(&rig, &nk.id, "dave@example.com", &[]);
    assert_code_now(|| rig.cli(&["--key", &nk.id, "code", &nk_name], 0));
}

#[test]
fn cards_come_and_go_with_their_readers_and_two_are_two_keys() {
    if !ready() {
        return;
    }
    let mut rig = Rig::start("00BC614E");
    let first = rig.card_key(READER);
    let name = new_token(&rig, &first.id, "alice@example.com", &[]);

    rig.card.control("remove");
    rig.wait_list("dropped the removed card", |l| {
        l.keys.iter().all(|k| k.path != READER)
    });
    // A request for it now is a typed "no such key".
    let ran = rig.daemon.cli(&["--key", &first.id, "code", &name]);
    assert_ne!(ran.status.code(), Some(0));
    rig.card.control("insert");
    let again = rig.card_key(READER);
    assert_eq!(
        again.id, first.id,
        "the same card comes back as the same key"
    );
    assert_code_now(|| rig.cli(&["--key", &first.id, "code", &name], 0));

    // A second card in vpcd's second reader: another key, its own tokens.
    let mut second = Emulator::start(
        rig.pcscd.port + 1,
        &["--profile", "yubikey", "--serial", "01020304"],
    );
    second.expect_line("card inserted", Duration::from_secs(10));
    let other = rig.card_key(READER_2);
    assert_ne!(other.id, first.id);
    let tokens = rig.cli(&["--key", &other.id, "tokens"], 0);
    assert!(!tokens.contains("alice@example.com"), "{tokens}");
    drop(second);
    rig.wait_list("dropped the second card", |l| {
        l.keys.iter().all(|k| k.path != READER_2)
    });
    assert_code_now(|| rig.cli(&["--key", &first.id, "code", &name], 0));
}

#[test]
fn an_access_code_locks_the_card_until_an_admin_unlocks_it() {
    if !ready() {
        return;
    }
    let mut rig = Rig::start("00BC614E");
    let card = rig.card_key(READER);
    let name = new_token(&rig, &card.id, "alice@example.com", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let code_file = dir.path().join("code");
    std::fs::write(&code_file, "correct horse\n").expect("written");
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "battery staple\n").expect("written");
    let code_path = code_file.to_str().expect("utf-8");
    rig.cli(
        &[
            "--key",
            &card.id,
            "access-code",
            "set",
            "--code-file",
            code_path,
        ],
        0,
    );
    // oathkeyd set it, so it knows it: still serving.
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));

    // Unplugged and plugged again, the card is locked to everyone, oathkeyd included.
    rig.card.control("remove");
    rig.wait_list("dropped the card", |l| {
        l.keys.iter().all(|k| k.path != READER)
    });
    rig.card.control("insert");
    let locked = rig.card_key(READER);
    assert!(locked.locked, "{locked:?}");
    let ran = rig.daemon.cli(&["--key", &card.id, "code", &name]);
    assert_exit(&ran, 8);
    // A wrong code is refused and leaves it locked; the right one opens it.
    let ran = rig.daemon.cli(&[
        "--key",
        &card.id,
        "unlock",
        "--code-file",
        wrong_file.to_str().expect("utf-8"),
    ]);
    assert_ne!(ran.status.code(), Some(0));
    assert!(rig.card_key(READER).locked);
    rig.cli(&["--key", &card.id, "unlock", "--code-file", code_path], 0);
    assert!(!rig.card_key(READER).locked);
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));
    // The log never holds the access code.
    let log = rig.daemon.log_text();
    assert!(!log.contains("correct horse") && !log.contains("battery staple"));
}

#[test]
fn a_card_held_exclusively_is_listed_busy_and_comes_back_when_released() {
    if !ready() {
        return;
    }
    let rig = Rig::start("00BC614E");
    let card = rig.card_key(READER);
    let name = new_token(&rig, &card.id, "alice@example.com", &[]);

    // Subscribers (the desktop app) are told when it becomes busy and when it is released.
    let mut events = rig
        .daemon
        .cli_command(&["events"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("oathkey events runs");
    std::thread::sleep(Duration::from_millis(300));
    // oathkeyd holds no connection between requests, so another application can take the
    // card exclusively (as scdaemon does by default) ...
    let holder = Holder::take(&rig, READER);
    let list = rig.wait_list("marked the key busy", |l| {
        l.keys.iter().any(|k| k.path == READER && k.busy.is_some())
    });
    let busy = list.keys.iter().find(|k| k.path == READER).expect("listed");
    let why = busy.busy.as_deref().expect("busy");
    assert!(why.contains("pcsc-shared") && why.contains(READER), "{why}");
    // ... and requests to it fail with Busy (exit 7) and say why, after a short wait.
    let ran = rig.daemon.cli(&["--key", &card.id, "code", &name]);
    assert_exit(&ran, 7);
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("exclusively"),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    holder.release();
    rig.wait_list("cleared the busy mark", |l| {
        l.keys.iter().any(|k| k.path == READER && k.busy.is_none())
    });
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));
    let _ = events.kill();
    let out = events.wait_with_output().expect("events ends");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Value| e["type"] == "busy_changed")
        .collect();
    assert!(
        lines.len() == 2 && lines[0]["busy"].is_string() && lines[1].get("busy").is_none(),
        "{lines:?}"
    );

    // A card already held when oathkeyd first sees it is listed unusable-busy, and attached
    // by itself once released.
    drop(rig.daemon);
    let holder = Holder::take(&rig_view(&rig.pcscd), READER);
    let daemon = Daemon::builder()
        .admin_self()
        .pcscd(rig.pcscd.socket())
        .start();
    let later = Rig {
        pcscd: rig.pcscd,
        card: rig.card,
        daemon,
    };
    let list = later.wait_list("listed the held card as busy", |l| {
        l.unavailable.iter().any(|u| u.path == READER && u.busy)
    });
    assert!(list.keys.is_empty(), "{list:?}");
    holder.release();
    let back = later.card_key(READER);
    assert_eq!(back.id, card.id);
    assert!(later.list().unavailable.is_empty());
}

/// A stand-in rig for starting a peer against `pcscd` while no daemon runs.
fn rig_view(pcscd: &Pcscd) -> PeerOnly<'_> {
    PeerOnly(pcscd)
}

struct PeerOnly<'a>(&'a Pcscd);

trait Peer {
    fn peer(&self, args: &[&str]) -> Command;
}

impl Peer for Rig {
    fn peer(&self, args: &[&str]) -> Command {
        Rig::peer(self, args)
    }
}

impl Peer for PeerOnly<'_> {
    fn peer(&self, args: &[&str]) -> Command {
        peer_command(self.0, args)
    }
}

/// `pcsc_peer.py` with `args`, a client of `pcscd`.
fn peer_command(pcscd: &Pcscd, args: &[&str]) -> Command {
    let mut cmd = Command::new(oathkey_testkit::python());
    cmd.arg(script())
        .args(args)
        .env("PCSCLITE_CSOCK_NAME", pcscd.socket())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

#[test]
fn another_application_working_between_our_reads_never_gets_us_a_wrong_code() {
    if !ready() {
        return;
    }
    let rig = Rig::start("00BC614E");
    let card = rig.card_key(READER);
    let name = new_token(&rig, &card.id, "alice@example.com", &[]);
    // A shared client that selects another applet (Management) in its own transactions, as
    // fast as it can, while oathkeyd reads codes: every read must select OATH again.
    let churn = rig
        .peer(&["churn", READER, "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut reads = 0;
    while reads < 40 {
        assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));
        reads += 1;
    }
    let out = churn.wait_with_output().expect("churn ends");
    // Nothing is stuck: the next read is served and right.
    assert_code_now(|| rig.cli(&["--key", &card.id, "code", &name], 0));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("CHURNED 500"),
        "the other application failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_pcscd_the_daemon_says_so_once_and_serves_its_other_keys() {
    // No root, pcscd or Python needed: the PC/SC socket named does not exist.
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::builder()
        .admin_self()
        .pcscd(dir.path().join("no-pcscd.comm"))
        .args(["--emulate", "1"])
        .ready_when_it_lists_a_key()
        .start();
    let ran = daemon.cli(&["keys", "--json"]);
    assert_exit(&ran, 0);
    let list: KeyList = serde_json::from_slice(&ran.stdout).expect("KeyList");
    assert_eq!(list.keys.len(), 1, "{list:?}");
    assert_eq!(list.keys[0].source, KeySource::Virtual);
    let id = list.keys[0].id.clone();
    let name = {
        let out: Value = serde_json::from_str(&{
            let ran = daemon.cli(&[
                "--json",
                "token",
                "new",
                "--user",
                "a@example.com",
                "--secret",
                SECRET,
            ]);
            assert_exit(&ran, 0);
            String::from_utf8_lossy(&ran.stdout).into_owned()
        })
        .expect("json");
        out["token"]["name"].as_str().expect("name").to_string()
    };
    assert_code_now(|| {
        let ran = daemon.cli(&["--key", &id, "code", &name]);
        assert_exit(&ran, 0);
        String::from_utf8_lossy(&ran.stdout).trim().to_string()
    });
    // It looks for pcscd again every 5 s, without saying so again.
    std::thread::sleep(Duration::from_secs(6));
    let log = daemon.log_text();
    assert_eq!(log.matches("no PC/SC service").count(), 1, "{log}");
}
