//! Writes the seed corpora under `fuzz/corpus/<target>/`: valid frames, APDUs, RPC lines and
//! seed files made with the project's own encoders (and recorded from the virtual key), plus a
//! few broken ones. Names say what to expect: `ok-*` inputs are accepted, `bad-*` refused,
//! `any-*` either; the replay tests in the workspace crates check that.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus` (stable is fine).
//! Existing `ok-*`, `bad-*` and `any-*` files are replaced; other files are kept.

#[path = "../checks/apdu_device.rs"]
mod apdu_device;
#[path = "../checks/apdu_host.rs"]
mod apdu_host;
#[path = "../checks/ctaphid_device.rs"]
mod ctaphid_device;
#[path = "../checks/ctaphid_host.rs"]
mod ctaphid_host;
#[path = "../checks/seedfile.rs"]
mod seedfile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use oathkey_device::admin::{self, command};
use oathkey_device::apdu::Command;
use oathkey_device::ctaphid::wire::{
    self, BROADCAST_CID, MAX_MESSAGE, Packet, REPORT_SIZE, Report, TYPE_INIT, cmd, err,
};
use oathkey_device::oath::{self, Algorithm, NewCredential, OtpKind, SelectInfo, ins};
use oathkey_device::{DeviceInfo, Key, Transport, TransportError};
use oathkey_emulator::{Config, TouchPolicy, VirtualKeyHandle, VirtualTransport};
use secrecy::SecretSlice;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = root().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        Self { dir }
    }

    /// Removes the generated files of every target (fuzzing finds are kept).
    fn clear_all() {
        let Ok(targets) = std::fs::read_dir(root().join("corpus")) else {
            return;
        };
        for target in targets {
            for entry in std::fs::read_dir(target.expect("entry").path()).expect("readable") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if ["ok-", "bad-", "any-"].iter().any(|p| name.starts_with(p)) {
                    std::fs::remove_file(&path).expect("removable");
                }
            }
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        assert!(["ok-", "bad-", "any-"].iter().any(|p| name.starts_with(p)));
        std::fs::write(self.dir.join(name), bytes).expect("written");
    }
}

fn raw(cid: u32, byte4: u8, rest: &[u8]) -> Report {
    let mut r = [0u8; REPORT_SIZE];
    r[..4].copy_from_slice(&cid.to_be_bytes());
    r[4] = byte4;
    r[5..5 + rest.len()].copy_from_slice(rest);
    r
}

fn frag(cid: u32, command: u8, payload: &[u8]) -> Vec<Report> {
    wire::fragment(cid, command, payload).expect("fits")
}

fn concat(reports: &[Report]) -> Vec<u8> {
    reports.iter().flatten().copied().collect()
}

fn totp(name: &str, touch: bool) -> NewCredential {
    NewCredential {
        name: name.into(),
        kind: OtpKind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        secret: SecretSlice::from(b"12345678901234567890".to_vec()),
        touch_required: touch,
        pin_protected: false,
        initial_counter: 0,
    }
}

fn bytes(c: &Command) -> Vec<u8> {
    c.to_bytes().to_vec()
}

fn ctaphid_host() {
    let c = Corpus::new("ctaphid_host");
    let cid = ctaphid_host::CID;
    // Round-trip mode: mode bit 0, then noise bits.
    c.put("ok-roundtrip-empty", &[0x01, 0]);
    let select_answer = [
        0x90, 0x00, 0x79, 3, 4, 13, 0, 0x71, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x8F, 4, 0, 0x12, 0x34,
        0x56,
    ];
    let mut v = vec![0x03, 2];
    v.extend_from_slice(&select_answer);
    c.put("ok-roundtrip-select-answer-keepalive", &v);
    let mut v = vec![0x29, 3];
    v.extend((0..200u32).map(|i| i as u8));
    c.put("ok-roundtrip-200-bytes-foreign-report", &v);
    let mut v = vec![0xFD, 0];
    v.extend((0..MAX_MESSAGE).map(|i| (i * 7) as u8));
    c.put("ok-roundtrip-7609-bytes", &v);

    // Raw mode: what the key answers, report by report. Command index 0 is PING.
    let raw_input = |command_index: u8, reports: &[Report]| {
        let mut v = vec![0x00, command_index];
        v.extend(concat(reports));
        v
    };
    c.put(
        "ok-raw-ping-answer",
        &raw_input(0, &frag(cid, cmd::PING, b"hello")),
    );
    let mut script = vec![raw(cid, TYPE_INIT | cmd::KEEPALIVE, &[0, 1, 2])];
    script.extend(frag(cid, cmd::VENDOR_SECRETS, &[0x90; 150]));
    c.put("ok-raw-keepalive-then-3-packets", &raw_input(2, &script));
    let mut script = frag(cid, cmd::VENDOR_ADMIN, &[0x42; 120]);
    script.insert(1, raw(cid ^ 1, 0, &[9; 10]));
    script.insert(
        0,
        raw(0x1234_5678, TYPE_INIT | cmd::ERROR, &[0, 1, err::OTHER]),
    );
    c.put("ok-raw-other-channels-interleaved", &raw_input(3, &script));
    c.put(
        "ok-raw-stray-continuation-first",
        &raw_input(0, &[raw(cid, 5, &[1, 2, 3]), frag(cid, cmd::PING, b"x")[0]]),
    );
    c.put(
        "bad-raw-channel-busy",
        &raw_input(0, &frag(cid, cmd::ERROR, &[err::CHANNEL_BUSY])),
    );
    c.put(
        "bad-raw-invalid-channel",
        &raw_input(0, &frag(cid, cmd::ERROR, &[err::INVALID_CHANNEL])),
    );
    c.put(
        "bad-raw-invalid-seq-error",
        &raw_input(1, &frag(cid, cmd::ERROR, &[err::INVALID_SEQ])),
    );
    let mut script = frag(cid, cmd::PING, &[7; 130]);
    script.swap(1, 2);
    c.put("bad-raw-continuations-out-of-order", &raw_input(0, &script));
    c.put(
        "bad-raw-length-over-maximum",
        &raw_input(0, &[raw(cid, TYPE_INIT | cmd::PING, &[0xFF, 0xFF])]),
    );
    c.put(
        "bad-raw-answer-to-another-command",
        &raw_input(0, &frag(cid, cmd::WINK, &[])),
    );
    c.put(
        "bad-raw-truncated-answer",
        &raw_input(0, &frag(cid, cmd::PING, &[1; 100])[..1]),
    );
    c.put("bad-raw-silence", &[0x00, 0]);
}

fn ctaphid_device() {
    let c = Corpus::new("ctaphid_device");
    // Records: control byte (bit 0: our channel; bits 1..=3: time step; bit 4: press), report.
    let records = |header: u8, items: &[(u8, Report)]| {
        let mut v = vec![header];
        for (control, report) in items {
            v.push(*control);
            v.extend_from_slice(report);
        }
        v
    };
    let ours = |reports: Vec<Report>| reports.into_iter().map(|r| (1u8, r)).collect::<Vec<_>>();
    // The CID bytes of stamped reports are replaced by the harness.
    let select = bytes(&SelectInfo::command());
    c.put(
        "ok-ping",
        &records(0, &ours(frag(0, cmd::PING, b"ping from the corpus"))),
    );
    c.put(
        "ok-select-secrets-app",
        &records(0, &ours(frag(0, cmd::VENDOR_SECRETS, &select))),
    );
    let put = bytes(
        &totp("0012345:alice@contoso.com", false)
            .to_command()
            .expect("valid"),
    );
    let calc = bytes(&oath::calculate_command("0012345:alice@contoso.com", 1).expect("valid"));
    let mut items = ours(frag(0, cmd::VENDOR_SECRETS, &put));
    items.extend(ours(frag(0, cmd::VENDOR_SECRETS, &calc)));
    items.extend(ours(frag(
        0,
        cmd::VENDOR_SECRETS,
        &bytes(&oath::list_command(true)),
    )));
    c.put("ok-put-calculate-list", &records(0, &items));
    let long_ping: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut items = ours(frag(0, cmd::PING, &long_ping));
    // 100 ms between the continuations: well within the 500 ms message timeout.
    for item in items.iter_mut().skip(1) {
        item.0 |= 2 << 1;
    }
    c.put("ok-paced-long-ping", &records(0x10, &items));
    // Button policy: DELETE waits for the touch; the press comes with the last report.
    let mut items = ours(frag(0, cmd::VENDOR_SECRETS, &put));
    let delete = bytes(&oath::name_command(ins::DELETE, "0012345:alice@contoso.com").expect("ok"));
    let mut del = ours(frag(0, cmd::VENDOR_SECRETS, &delete));
    if let Some(last) = del.last_mut() {
        last.0 |= 0x10;
    }
    items.extend(del);
    c.put("ok-touch-by-button", &records(0x02, &items));
    let admin_status = ours(frag(0, cmd::VENDOR_ADMIN, &[command::STATUS]));
    c.put("ok-admin-status", &records(0x04, &admin_status));
    c.put(
        "ok-wink-and-lock",
        &records(
            0,
            &[
                ours(frag(0, cmd::WINK, &[])),
                ours(frag(0, cmd::LOCK, &[2])),
                ours(frag(0, cmd::LOCK, &[0])),
            ]
            .concat(),
        ),
    );

    let mut wrong_seq = ours(frag(0, cmd::PING, &[3; 200]));
    wrong_seq.remove(1);
    c.put("bad-wrong-sequence", &records(0, &wrong_seq));
    let mut timeout = ours(frag(0, cmd::PING, &[3; 100]));
    timeout[1].0 |= 4 << 1; // 501 ms later
    c.put("bad-message-timeout", &records(0, &timeout));
    c.put(
        "bad-reserved-channel",
        &records(0, &[(0, frag(0, cmd::PING, b"x")[0])]),
    );
    c.put(
        "bad-unknown-channel",
        &records(0, &[(0, frag(0x0BAD_0BAD, cmd::PING, b"x")[0])]),
    );
    c.put(
        "bad-init-wrong-length",
        &records(0, &[(0, frag(BROADCAST_CID, cmd::INIT, &[1; 9])[0])]),
    );
    c.put(
        "bad-length-over-maximum",
        &records(0, &[(1, raw(0, TYPE_INIT | cmd::PING, &[0xFF, 0xFF]))]),
    );
    c.put(
        "bad-unknown-command",
        &records(0, &ours(frag(0, 0x55, b"?"))),
    );
    c.put(
        "bad-lock-parameter",
        &records(0, &ours(frag(0, cmd::LOCK, &[11]))),
    );
    c.put(
        "bad-not-an-apdu",
        &records(0, &ours(frag(0, cmd::VENDOR_SECRETS, &[0, 1]))),
    );
    let mut interrupted = ours(frag(0, cmd::PING, &[5; 100]));
    interrupted.insert(1, (1, frag(0, cmd::PING, b"new")[0]));
    c.put(
        "bad-new-message-before-the-last-ends",
        &records(0, &interrupted),
    );
}

/// A transport that records the answers a real (virtual) key gives, for session scripts.
struct Recorder {
    inner: VirtualTransport,
    cid: Option<u32>,
    partial: Option<(u8, usize, Vec<u8>)>,
    touch: bool,
    answers: Vec<apdu_host::Answer>,
}

impl Transport for Recorder {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        if let Packet::Init { cid, cmd, .. } = Packet::parse(report)
            && cmd != wire::cmd::INIT
        {
            self.cid = Some(cid);
        }
        self.inner.write(report)
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let got = self.inner.read(timeout)?;
        if let (Some(report), Some(our)) = (&got, self.cid) {
            match (Packet::parse(report), self.partial.take()) {
                (
                    Packet::Init {
                        cid,
                        cmd,
                        bcnt,
                        data,
                    },
                    None,
                ) if cid == our => {
                    let total = usize::from(bcnt);
                    let buf = data[..total.min(data.len())].to_vec();
                    self.partial = Some((cmd, total, buf));
                }
                (Packet::Cont { cid, data, .. }, Some((c, total, mut buf))) if cid == our => {
                    let take = (total - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    self.partial = Some((c, total, buf));
                }
                (_, partial) => self.partial = partial,
            }
            if let Some((c, total, buf)) = &self.partial
                && buf.len() == *total
            {
                let answer = match *c {
                    wire::cmd::KEEPALIVE => {
                        self.touch = true;
                        None
                    }
                    wire::cmd::ERROR => Some(apdu_host::Answer::Error(buf[0])),
                    _ if std::mem::take(&mut self.touch) => {
                        Some(apdu_host::Answer::Touch(buf.clone()))
                    }
                    _ => Some(apdu_host::Answer::Data(buf.clone())),
                };
                self.answers.extend(answer);
                self.partial = None;
            }
        }
        Ok(got)
    }

    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
}

fn record_session(mode: u8, config: Config, setup: &[&str]) -> Vec<u8> {
    let handle = VirtualKeyHandle::new(config);
    let mut recorder = Recorder {
        inner: handle.connect().expect("connects"),
        cid: None,
        partial: None,
        touch: false,
        answers: Vec::new(),
    };
    // Prepare the key's state first, unrecorded.
    {
        let mut key = Key::open(handle.connect().expect("connects")).expect("opens");
        for op in setup {
            apdu_host::operation(&mut key, op).expect("setup works");
        }
    }
    recorder.answers.clear();
    let mut key = Key::open_with(recorder, apdu_host::timeouts()).expect("opens");
    for op in apdu_host::rotation(mode) {
        let _ = apdu_host::operation(&mut key, op);
    }
    let recorder = key.hid_mut().transport_mut();
    let mut out = vec![0x80 | mode];
    for a in std::mem::take(&mut recorder.answers) {
        out.extend(a.encode());
    }
    out
}

fn apdu_host() {
    let c = Corpus::new("apdu_host");
    // Parser mode (mode bit 7 clear): answer bodies the parsers see.
    let parsers = |body: &[u8]| {
        let mut v = vec![0x00];
        v.extend_from_slice(body);
        v
    };
    c.put(
        "ok-select-without-pin",
        &parsers(&[
            0x79, 3, 4, 13, 0, 0x71, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0x8F, 4, 0, 0x12, 0x34, 0x56,
        ]),
    );
    c.put(
        "ok-select-with-pin",
        &parsers(&[
            0x79, 3, 4, 10, 0, 0x82, 1, 8, 0x8F, 4, 0xDE, 0xAD, 0xBE, 0xEF,
        ]),
    );
    let mut list = Vec::new();
    for (kind, name) in [(0x21u8, "0012345:alice@contoso.com"), (0x12, "60/S2:bob")] {
        list.push(0x72);
        list.push(u8::try_from(name.len() + 1).expect("short"));
        list.push(kind);
        list.extend_from_slice(name.as_bytes());
    }
    c.put("ok-list", &parsers(&list));
    c.put(
        "ok-calculate",
        &parsers(&[0x76, 5, 6, 0x50, 0xef, 0x7f, 0x19]),
    );
    c.put("ok-admin-status", &parsers(&[0, 0, 0, 0, 0, 0, 0]));
    let fields = admin::to_cbor(&vec![admin::FieldEntry {
        n: "otp.key_press".into(),
        c: true,
        r: false,
        d: false,
        t: 0,
    }])
    .expect("encodes");
    c.put("ok-admin-fields", &parsers(&fields));
    c.put("bad-select-truncated-tlv", &parsers(&[0x79, 3, 4, 13]));
    c.put("bad-select-no-version", &parsers(&[0x8F, 4, 0, 0, 0, 1]));
    c.put(
        "bad-calculate-11-digits",
        &parsers(&[0x76, 5, 11, 1, 2, 3, 4]),
    );
    c.put("bad-list-wrong-tag", &parsers(&[0x75, 1, 0]));

    // Session mode: answers recorded from the virtual key, for every rotation of operations.
    for mode in [0u8, 2, 4, 7, 11, 13, 15] {
        let name = format!(
            "ok-session-virtual-key-from-{}",
            apdu_host::OPERATIONS[usize::from(mode)]
        );
        c.put(&name, &record_session(mode, Config::default(), &["put"]));
    }
    c.put(
        "ok-session-nitrokey3-touch-denied",
        &record_session(
            4,
            Config {
                profile: oathkey_emulator::Profile::Nitrokey3,
                touch: TouchPolicy::Deny,
                touch_timeout: Duration::from_millis(20),
                ..Config::default()
            },
            &[],
        ),
    );
    c.put(
        "bad-session-select-refused",
        &[
            &[0x80u8][..],
            &apdu_host::Answer::Data(vec![0x6A, 0x82]).encode(),
        ]
        .concat(),
    );
    c.put(
        "bad-session-no-secrets-app",
        &[
            &[0x80u8][..],
            &apdu_host::Answer::Error(err::INVALID_CMD).encode(),
        ]
        .concat(),
    );
    c.put("bad-session-silent-key", &[0x80]);
}

fn apdu_device() {
    let c = Corpus::new("apdu_device");
    let secrets = |payload: Vec<u8>, touched: bool| apdu_device::Request {
        admin: false,
        touched,
        payload,
    };
    let admin_req = |payload: Vec<u8>| apdu_device::Request {
        admin: true,
        touched: true,
        payload,
    };
    let input = |header: u8, requests: &[apdu_device::Request]| {
        let mut v = vec![header];
        for r in requests {
            v.extend(r.encode());
        }
        v
    };
    let name = "0012345:alice@contoso.com";
    let put = bytes(&totp(name, false).to_command().expect("valid"));
    let put_touch = bytes(
        &totp("60/T1:touch@contoso.com", true)
            .to_command()
            .expect("valid"),
    );
    let mut hotp = totp("H1:hotp@contoso.com", false);
    hotp.kind = OtpKind::Hotp;
    hotp.algorithm = Algorithm::Sha256;
    hotp.initial_counter = 5;
    let put_hotp = bytes(&hotp.to_command().expect("valid"));
    let calc = bytes(&oath::calculate_command(name, 1).expect("valid"));
    let pin = |i, new: Option<&[u8]>| bytes(&oath::pin_command(i, b"123456", new).expect("ok"));
    c.put(
        "ok-select-put-calculate-list",
        &input(
            0,
            &[
                secrets(bytes(&SelectInfo::command()), true),
                secrets(put.clone(), true),
                secrets(put_touch.clone(), true),
                secrets(put_hotp, true),
                secrets(calc.clone(), true),
                secrets(bytes(&oath::list_command(true)), true),
                secrets(bytes(&oath::list_command(false)), true),
            ],
        ),
    );
    c.put(
        "ok-pin-set-verify-change",
        &input(
            0,
            &[
                secrets(pin(ins::SET_PIN, None), true),
                secrets(pin(ins::VERIFY_PIN, None), true),
                secrets(pin(ins::CHANGE_PIN, Some(b"654321")), true),
                secrets(bytes(&SelectInfo::command()), true),
            ],
        ),
    );
    c.put(
        "ok-update-delete-reset",
        &input(
            0,
            &[
                secrets(put.clone(), true),
                secrets(
                    bytes(
                        &oath::update_command(name, Some("0012345:bob@x"), Some(true)).expect("ok"),
                    ),
                    true,
                ),
                secrets(
                    bytes(&oath::name_command(ins::DELETE, "0012345:bob@x").expect("ok")),
                    true,
                ),
                secrets(bytes(&Command::new(ins::RESET, 0xDE, 0xAD, vec![])), true),
            ],
        ),
    );
    let get = |field: &str| {
        let mut p = vec![command::GET_CONFIG];
        p.extend_from_slice(field.as_bytes());
        p
    };
    c.put(
        "ok-admin-app",
        &input(
            0,
            &[
                admin_req(vec![command::STATUS]),
                admin_req(vec![command::LIST_AVAILABLE_FIELDS]),
                admin_req(get("otp.key_press")),
                admin_req(admin::set_config_payload("otp.key_press", "true").expect("ok")),
                admin_req(get("otp.key_press")),
            ],
        ),
    );
    // Many credentials: LIST takes SEND REMAINING.
    let mut many = vec![secrets(bytes(&SelectInfo::command()), true)];
    for i in 0..48 {
        // 64-byte names: 48 LIST entries take more than one 3070-byte chunk.
        let cred = totp(&format!("{i:07}:{}@contoso.com", "u".repeat(44)), false);
        many.push(secrets(bytes(&cred.to_command().expect("valid")), true));
    }
    many.push(secrets(bytes(&oath::list_command(true)), true));
    many.push(secrets(
        bytes(&Command::new(ins::SEND_REMAINING, 0, 0, vec![])),
        true,
    ));
    c.put("ok-list-with-paging", &input(0, &many));

    c.put(
        "bad-not-an-apdu",
        &input(0, &[secrets(vec![0, 0xA4, 0], true)]),
    );
    c.put(
        "bad-wrong-class",
        &input(0, &[secrets(vec![0x80, 0xA4, 4, 0], true)]),
    );
    c.put(
        "bad-unknown-instruction",
        &input(0, &[secrets(vec![0, 0x99, 0, 0], true)]),
    );
    c.put(
        "bad-truncated-tlv",
        &input(
            0,
            &[secrets(vec![0, ins::PUT, 0, 0, 3, 0x71, 5, b'a'], true)],
        ),
    );
    c.put(
        "bad-calculate-unknown-name",
        &input(0, &[secrets(calc, true)]),
    );
    c.put(
        "bad-delete-not-touched",
        &input(
            0,
            &[
                secrets(put, true),
                secrets(
                    bytes(&oath::name_command(ins::DELETE, name).expect("ok")),
                    false,
                ),
            ],
        ),
    );
    c.put(
        "bad-nitrokey3-has-no-fields",
        &input(1, &[admin_req(get("mode.u2f"))]),
    );
    c.put(
        "bad-admin-rubbish",
        &input(
            0,
            &[
                admin_req(vec![command::SET_CONFIG, 0xFF, 0x13]),
                admin_req(vec![]),
            ],
        ),
    );
    c.put(
        "bad-extended-length-mismatch",
        &input(0, &[secrets(vec![0, 1, 0, 0, 0, 1, 0, 7], true)]),
    );
}

fn rpc_line() {
    let c = Corpus::new("rpc_line");
    let put = |name: &str, control: u8, text: &[u8]| {
        let mut v = vec![control];
        v.extend_from_slice(text);
        c.put(name, &v);
    };
    put(
        "ok-hello",
        0,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\"}\n",
    );
    put(
        "ok-codes-get-crlf-split",
        0x30,
        b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"codes.get\",\"params\":{\"token\":\"alice@contoso.com\",\"at\":59}}\r\n{\"jsonrpc\":\"2.0\",\"method\":\"keys.list\"}\n",
    );
    put(
        "ok-batch",
        0,
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"keys.list\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tokens.list\",\"params\":{\"key\":\"00c0ffee\"}}]\n",
    );
    put(
        "ok-null-id-and-unicode",
        0x50,
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"tokens.create\",\"params\":{\"account\":\"j\u{00f6}rg@contoso.com\",\"serial\":\"0012345\"}}\n".as_bytes(),
    );
    put("bad-not-json", 0, b"{not json\n");
    put("bad-empty-batch", 0, b"[]\n");
    put(
        "bad-wrong-version-and-id",
        0,
        b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"hello\"}\n{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"hello\"}\n{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"hello\"}\n",
    );
    put("bad-not-utf8", 0, b"\xff\xfe{}\n");
    put(
        "bad-line-over-limit",
        0x21,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"padding\":\"xxxxxxxx\"}}\n",
    );
    put(
        "bad-batch-with-rubbish",
        0,
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\"},5,\"x\"]\n",
    );
}

fn rpc_dispatch() {
    let c = Corpus::new("rpc_dispatch");
    let lines = |ls: &[&str]| {
        let mut v = Vec::new();
        for l in ls {
            v.extend_from_slice(l.as_bytes());
            v.push(b'\n');
        }
        v
    };
    c.put(
        "ok-hello-keys",
        &lines(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"hello"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"keys.list"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"keys.info","params":{"key":"00c0ffee"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"keys.get_config"}"#,
            r#"{"jsonrpc":"2.0","method":"keys.wink"}"#,
        ]),
    );
    c.put(
        "ok-token-lifecycle",
        &lines(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"tokens.create","params":{"account":"alice@contoso.com","serial":"0012345"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"codes.get","params":{"token":"0012345","at":1234567890}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tokens.list"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"codes.all","params":{"include_touch":true}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"seeds.list"}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"seeds.export"}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"tokens.delete","params":{"token":"0012345"}}"#,
        ]),
    );
    c.put(
        "ok-batch-create-touch-token-and-read",
        &lines(&[
            r#"[{"jsonrpc":"2.0","id":1,"method":"tokens.create","params":{"account":"bob@contoso.com","serial":"T1","touch":true,"period":60,"digits":8,"algorithm":"sha256","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}},{"jsonrpc":"2.0","id":2,"method":"codes.get","params":{"token":"T1"}},{"jsonrpc":"2.0","id":3,"method":"keys.set_config","params":{"key_press":true}}]"#,
        ]),
    );
    c.put(
        "ok-claim-unplug-plug",
        &lines(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"keys.claim"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"keys.release"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"virtual.unplug"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"virtual.plug","params":{"key":"00c0ffee"}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"virtual.press"}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"seeds.purge","params":{"exported":true}}"#,
        ]),
    );
    c.put(
        "bad-params",
        &lines(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"codes.get","params":{"token":5}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"hello","params":{"x":1}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tokens.create","params":{"account":"a@b.c","digits":9}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"keys.info","params":{"key":"nope"}}"#,
        ]),
    );
    c.put(
        "bad-unknown-method-and-token",
        &lines(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"no.such"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"codes.get","params":{"token":"missing"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tokens.delete","params":{"token":"missing"}}"#,
        ]),
    );
    c.put("bad-not-json", &lines(&["{\"jsonrpc\":", "[]", "42"]));
}

fn seedfiles() {
    let golden = root().join("../seedfile/tests/golden");
    let sample = |file: &str| std::fs::read(golden.join(file)).expect("golden file");
    // Each golden file with the text of a secret (the first one) the format must refuse.
    for (target, file, secret, broken) in [
        (
            "seed_azure_csv",
            "sample.azure-csv.csv",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,",
            "GEZDGNBV!Y3TQOJQ,",
        ),
        (
            "seed_otpauth",
            "sample.otpauth.txt",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&",
            "GEZ1DGNBVGY3TQOJQ&",
        ),
        (
            "seed_pskc",
            "sample.pskc.xml",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
            "not base64!",
        ),
        (
            "seed_graph_json",
            "sample.graph-json.json",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"",
            "GEZDGNBV0Y3TQOJQ\"",
        ),
        (
            "seed_privacyidea_csv",
            "sample.privacyidea-csv.csv",
            "3132333435363738393031323334353637383930,",
            "31323g,",
        ),
    ] {
        let c = Corpus::new(target);
        let text = sample(file);
        c.put(&format!("ok-golden-{file}"), &text);
        // Half a file (which may still be valid: a cut inside a URI's query, say), and the
        // file with a broken secret: readers report, never panic.
        c.put("any-cut-in-half", &text[..text.len() / 2]);
        let golden = String::from_utf8_lossy(&text);
        assert!(golden.contains(secret), "{file} has no {secret}");
        c.put(
            "bad-secret-not-encoded",
            golden.replacen(secret, broken, 1).as_bytes(),
        );
        let format = seedfile::format_of(target);
        let outcome = seedfile::check(format, &text);
        assert!(
            outcome.problems == 0 && outcome.records > 0,
            "{target}: {outcome:?}"
        );
    }
    let c = Corpus::new("seed_azure_csv");
    c.put(
        "ok-bom-crlf",
        b"\xEF\xBB\xBFupn,serial number,secret key,time interval,manufacturer,model\r\nalice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,Deepnet,SafePass\r\n",
    );
    c.put(
        "bad-hex-secret-and-period",
        b"upn,serial number,secret key,time interval,manufacturer,model\nbob@contoso.com,7,3132333435,45,x,y\n",
    );
    let c = Corpus::new("seed_otpauth");
    c.put(
        "ok-hotp-sha256",
        b"otpauth://hotp/Contoso:alice@contoso.com?secret=JBSWY3DPEHPK3PXP&issuer=Contoso&algorithm=SHA256&digits=8&counter=3\n",
    );
    c.put("bad-not-a-uri", b"https://example.com/\n");
}

/// Seed ledgers written by the daemon's own `Ledger`, then damaged the ways disks and people do.
fn ledger() {
    use oathkey_protocol::SecretText;
    use oathkey_protocol::types::{Algorithm, OtpKind, SeedState};
    use oathkeyd::ledger::{Ledger, seed_info};

    let c = Corpus::new("seed_ledger");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seeds.ledger");
    let ledger = Ledger::open(&path).expect("opens");
    let mut ids = Vec::new();
    for (i, (user, kind, secret)) in [
        ("alice@contoso.com", OtpKind::Totp, "JBSWY3DPEHPK3PXP"),
        ("bob@contoso.com", OtpKind::Totp, "GEZDGNBVGY3TQOJQ"),
        ("carol@contoso.com", OtpKind::Hotp, "MFRGGZDFMZTWQ2LK"),
    ]
    .into_iter()
    .enumerate()
    {
        let serial = format!("0000{i}");
        let info = seed_info(
            "0754237c",
            &format!("{serial}:{user}"),
            &serial,
            user,
            kind,
            Algorithm::Sha1,
            6,
            30,
            0,
            "oathkey virtual key",
        );
        ids.push(info.id.clone());
        ledger
            .begin(info, SecretText::new(secret.into()))
            .expect("begins");
    }
    ledger.mark(&ids[0], SeedState::Written, None).expect("marks");
    ledger.mark(&ids[0], SeedState::Verified, None).expect("marks");
    ledger
        .mark(&ids[1], SeedState::Failed, Some("not touched in time".into()))
        .expect("marks");
    ledger
        .mark_exported(&ids[..1], "azure-csv")
        .expect("exports");
    drop(ledger);
    let text = std::fs::read(&path).expect("reads");
    c.put("ok-written-by-the-daemon", &text);
    c.put("ok-empty", b"");
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    // A crash in the middle of the last write.
    let mut torn = text.clone();
    torn.truncate(text.len() - 20);
    c.put("ok-torn-last-line", &torn);
    // The same begin line twice (a hand-merged ledger): both seeds are kept.
    let mut dup = text.clone();
    dup.extend_from_slice(lines[0]);
    dup.push(b'\n');
    c.put("ok-same-id-twice", &dup);
    // A damaged line in the middle, CRLF line ends, a NUL block (a filesystem's torn page).
    let mut damaged = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 2 {
            damaged.extend_from_slice(b"{\"op\":\"begin\",\"id\":");
        } else {
            damaged.extend_from_slice(l);
        }
        damaged.push(b'\n');
    }
    c.put("ok-damaged-line", &damaged);
    let crlf: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
        .collect();
    c.put("ok-crlf", &crlf);
    let mut nul = text.clone();
    nul.extend_from_slice(&[0u8; 64]);
    nul.push(b'\n');
    nul.extend_from_slice(lines[1]);
    nul.push(b'\n');
    c.put("ok-nul-block", &nul);
    // No record at all: unknown ops, states for unknown ids, binary garbage.
    c.put("bad-binary", &[0xff, 0xfe, 0x00, b'\n', 0x7b, 0x80, b'\n']);
    c.put(
        "bad-unknown-ops",
        b"{\"op\":\"rename\",\"id\":\"x\"}\n{\"op\":\"state\",\"id\":\"nope\",\"state\":\"verified\",\"reason\":null,\"at\":1}\n[]\nnull\n",
    );
}

fn check_names(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("corpus") {
        let target = entry.expect("entry").path();
        let files = std::fs::read_dir(&target).expect("target dir").count();
        println!("{}: {files} files", target.display());
    }
}

fn main() {
    Corpus::clear_all();
    ctaphid_host();
    ctaphid_device();
    apdu_host();
    apdu_device();
    rpc_line();
    rpc_dispatch();
    seedfiles();
    ledger();
    check_names(&root().join("corpus"));
    // Every ok-/bad- file must pass its check (the replay tests say more).
    for entry in std::fs::read_dir(root().join("corpus/ctaphid_host")).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("file");
        ctaphid_host::check(&bytes);
    }
    for entry in std::fs::read_dir(root().join("corpus/ctaphid_device")).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("file");
        ctaphid_device::check(&bytes);
    }
    for entry in std::fs::read_dir(root().join("corpus/apdu_device")).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("file");
        apdu_device::check(&bytes);
    }
}
