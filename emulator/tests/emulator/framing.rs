//! CTAPHID edge cases on the virtual key's device side, report by report, on a manual clock:
//! wrong sequence numbers, over-long lengths, interleaved channels, timeouts, locks, cancels
//! and rubbish. After every fault the key answers the right ERROR and stays usable.

use std::time::{Duration, Instant};

use oathkey_device::ctaphid::wire::{self, BROADCAST_CID, Packet, Report, cmd, err};
use oathkey_emulator::{Config, TouchPolicy, VirtualKey};
use proptest::prelude::*;

struct Bench {
    key: VirtualKey,
    now: Instant,
}

impl Bench {
    fn new(config: Config) -> Self {
        Self {
            key: VirtualKey::new(config),
            now: Instant::now(),
        }
    }

    fn send(&mut self, report: &Report) {
        self.key.receive(report, 0, self.now);
    }

    fn send_all(&mut self, reports: &[Report]) {
        for r in reports {
            self.send(r);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.key.poll(self.now);
    }

    fn take(&mut self) -> Vec<Report> {
        self.key.poll(self.now);
        std::iter::from_fn(|| self.key.take_output(self.now).map(|(_, r)| r)).collect()
    }

    /// Collects one whole message from the outputs: (cid, cmd, payload).
    fn message(&mut self) -> (u32, u8, Vec<u8>) {
        let reports = self.take();
        assert!(!reports.is_empty(), "the key said nothing");
        let Packet::Init {
            cid,
            cmd,
            bcnt,
            data,
        } = Packet::parse(&reports[0])
        else {
            panic!("first report is not an init packet");
        };
        let mut payload = data.to_vec();
        for (i, r) in reports[1..].iter().enumerate() {
            let Packet::Cont { seq, data, .. } = Packet::parse(r) else {
                panic!("stray init")
            };
            assert_eq!(usize::from(seq), i);
            payload.extend_from_slice(data);
        }
        payload.truncate(usize::from(bcnt));
        (cid, cmd, payload)
    }

    fn init(&mut self) -> u32 {
        let nonce = [7, 6, 5, 4, 3, 2, 1, 0];
        self.send_all(&wire::fragment(BROADCAST_CID, cmd::INIT, &nonce).expect("fits"));
        let (cid, command, payload) = self.message();
        assert_eq!((cid, command), (BROADCAST_CID, cmd::INIT));
        assert_eq!(payload.len(), 17);
        assert_eq!(&payload[..8], &nonce);
        u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]])
    }

    fn request(&mut self, cid: u32, command: u8, payload: &[u8]) -> (u32, u8, Vec<u8>) {
        self.send_all(&wire::fragment(cid, command, payload).expect("fits"));
        self.message()
    }

    fn assert_error(&mut self, cid: u32, code: u8) {
        assert_eq!(self.message(), (cid, cmd::ERROR, vec![code]));
    }

    fn assert_ping_works(&mut self, cid: u32) {
        let payload: Vec<u8> = (0..200).map(|i| i as u8).collect();
        assert_eq!(
            self.request(cid, cmd::PING, &payload),
            (cid, cmd::PING, payload)
        );
    }
}

fn raw(cid: u32, byte4: u8, rest: &[u8]) -> Report {
    let mut r = [0u8; 64];
    r[..4].copy_from_slice(&cid.to_be_bytes());
    r[4] = byte4;
    r[5..5 + rest.len()].copy_from_slice(rest);
    r
}

#[test]
fn init_allocates_distinct_channels_and_reports_capabilities() {
    let mut b = Bench::new(Config::default());
    let nonce = [1; 8];
    b.send_all(&wire::fragment(BROADCAST_CID, cmd::INIT, &nonce).expect("fits"));
    let (_, _, payload) = b.message();
    assert_eq!(payload[12], 2, "CTAPHID protocol version");
    assert_eq!(payload[16], wire::capability::WINK | wire::capability::NMSG);
    let a = u32::from_be_bytes([payload[8], payload[9], payload[10], payload[11]]);
    let c = b.init();
    assert_ne!(a, c);
    assert!(![0, BROADCAST_CID].contains(&a));
}

#[test]
fn bad_channels_and_lengths_get_the_right_errors() {
    let mut b = Bench::new(Config::default());
    // INIT must carry exactly 8 bytes.
    b.send(&raw(BROADCAST_CID, 0x86, &[0, 4, 1, 2, 3, 4]));
    b.assert_error(BROADCAST_CID, err::INVALID_LEN);
    // Only INIT may use the broadcast channel; channel 0 is reserved; unknown channels fail.
    b.send(&raw(BROADCAST_CID, 0x81, &[0, 1, 9]));
    b.assert_error(BROADCAST_CID, err::INVALID_CHANNEL);
    b.send(&raw(0, 0x81, &[0, 1, 9]));
    b.assert_error(0, err::INVALID_CHANNEL);
    b.send(&raw(0x1234_5678, 0x81, &[0, 1, 9]));
    b.assert_error(0x1234_5678, err::INVALID_CHANNEL);

    let cid = b.init();
    // A length beyond 7609 bytes.
    b.send(&raw(cid, 0x81, &[0x1D, 0xBA]));
    b.assert_error(cid, err::INVALID_LEN);
    // Unknown commands, and MSG on a key that says NMSG.
    b.send(&raw(cid, 0x80 | 0x33, &[0, 0]));
    b.assert_error(cid, err::INVALID_CMD);
    b.send(&raw(cid, 0x80 | cmd::MSG, &[0, 0]));
    b.assert_error(cid, err::INVALID_CMD);
    b.assert_ping_works(cid);
}

#[test]
fn wrong_sequence_aborts_the_message() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    let reports = wire::fragment(cid, cmd::PING, &[5; 200]).expect("fits");
    b.send(&reports[0]);
    b.send(&reports[2]); // seq 1 instead of 0
    b.assert_error(cid, err::INVALID_SEQ);
    // The rest of the broken message is ignored; the channel works again.
    b.send(&reports[3]);
    assert!(b.take().is_empty());
    b.assert_ping_works(cid);
}

#[test]
fn a_new_message_before_the_last_one_ends_is_a_sequence_error() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    let first = wire::fragment(cid, cmd::PING, &[1; 100]).expect("fits");
    b.send(&first[0]);
    b.send(&wire::fragment(cid, cmd::PING, b"x").expect("fits")[0]);
    b.assert_error(cid, err::INVALID_SEQ);
    b.assert_ping_works(cid);
}

#[test]
fn interleaved_channels_get_channel_busy_until_the_first_finishes() {
    let mut b = Bench::new(Config::default());
    let (a, c) = (b.init(), b.init());
    let payload: Vec<u8> = (0..150).map(|i| i as u8).collect();
    let from_a = wire::fragment(a, cmd::PING, &payload).expect("fits");
    b.send(&from_a[0]);
    b.send(&wire::fragment(c, cmd::PING, b"me too").expect("fits")[0]);
    b.assert_error(c, err::CHANNEL_BUSY);
    // A continuation from the other channel is ignored, not mixed into A's message.
    b.send(&raw(c, 0, &[0xEE; 10]));
    assert!(b.take().is_empty());
    b.send_all(&from_a[1..]);
    assert_eq!(b.message(), (a, cmd::PING, payload));
    b.assert_ping_works(c);
}

#[test]
fn a_gap_of_more_than_500_ms_times_the_message_out() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    let reports = wire::fragment(cid, cmd::PING, &[3; 100]).expect("fits");
    b.send(&reports[0]);
    b.advance(Duration::from_millis(450));
    assert!(b.take().is_empty(), "not yet");
    b.send(&reports[1]);
    assert_eq!(b.message().2, vec![3; 100], "450 ms gaps are fine");

    b.send(&reports[0]);
    b.advance(Duration::from_millis(501));
    b.assert_error(cid, err::MSG_TIMEOUT);
    // The late continuation is ignored and the channel is usable.
    b.send(&reports[1]);
    assert!(b.take().is_empty());
    b.assert_ping_works(cid);
}

#[test]
fn init_on_a_busy_channel_resynchronises_it() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    let reports = wire::fragment(cid, cmd::PING, &[3; 100]).expect("fits");
    b.send(&reports[0]);
    let nonce = [9; 8];
    b.send_all(&wire::fragment(cid, cmd::INIT, &nonce).expect("fits"));
    let (got_cid, command, payload) = b.message();
    assert_eq!((got_cid, command), (cid, cmd::INIT));
    assert_eq!(&payload[..8], &nonce);
    assert_eq!(
        &payload[8..12],
        &cid.to_be_bytes(),
        "same channel after resync"
    );
    b.send(&reports[1]);
    assert!(b.take().is_empty(), "the aborted message is gone");
    b.assert_ping_works(cid);
}

#[test]
fn lock_reserves_the_key_for_one_channel() {
    let mut b = Bench::new(Config::default());
    let (a, c) = (b.init(), b.init());
    assert_eq!(b.request(a, cmd::LOCK, &[1]), (a, cmd::LOCK, vec![]));
    b.send(&wire::fragment(c, cmd::PING, b"x").expect("fits")[0]);
    b.assert_error(c, err::CHANNEL_BUSY);
    b.assert_ping_works(a);
    b.advance(Duration::from_millis(1001));
    b.assert_ping_works(c);
    assert_eq!(
        b.request(a, cmd::LOCK, &[11]),
        (a, cmd::ERROR, vec![err::INVALID_PAR])
    );
}

#[test]
fn a_touch_wait_blocks_other_channels_and_cancel_ends_it() {
    let mut b = Bench::new(Config {
        touch: TouchPolicy::Button,
        ..Config::default()
    });
    let (a, c) = (b.init(), b.init());
    // RESET always waits for a touch.
    b.send_all(&wire::fragment(a, cmd::VENDOR_SECRETS, &[0, 0x04, 0xDE, 0xAD]).expect("fits"));
    assert!(
        b.take().is_empty(),
        "silent while waiting for the touch (no keepalives)"
    );
    assert!(b.key.waiting_for_touch());
    b.send(&wire::fragment(c, cmd::PING, b"x").expect("fits")[0]);
    b.assert_error(c, err::CHANNEL_BUSY);
    b.send(&raw(a, 0x80 | cmd::CANCEL, &[0, 0]));
    assert_eq!(b.message(), (a, cmd::VENDOR_SECRETS, vec![0x69, 0x82]));
    b.assert_ping_works(c);
}

#[test]
fn the_touch_wait_ends_after_the_touch_timeout() {
    let mut b = Bench::new(Config {
        touch: TouchPolicy::Deny,
        ..Config::default()
    });
    let cid = b.init();
    b.send_all(&wire::fragment(cid, cmd::VENDOR_SECRETS, &[0, 0x04, 0xDE, 0xAD]).expect("fits"));
    b.advance(Duration::from_millis(14_900));
    assert!(b.take().is_empty());
    b.advance(Duration::from_millis(200));
    assert_eq!(b.message(), (cid, cmd::VENDOR_SECRETS, vec![0x69, 0x82]));
}

#[test]
fn rubbish_apdus_get_status_words_or_invalid_len() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    let app = |b: &mut Bench, apdu: &[u8]| b.request(cid, cmd::VENDOR_SECRETS, apdu);
    // Not an APDU at all: no status word, a CTAPHID error.
    assert_eq!(
        app(&mut b, &[0, 0xA1]),
        (cid, cmd::ERROR, vec![err::INVALID_LEN])
    );
    assert_eq!(
        app(&mut b, &[0, 0xA1, 0, 0, 9, 1]),
        (cid, cmd::ERROR, vec![err::INVALID_LEN])
    );
    let sw = |b: &mut Bench, apdu: &[u8]| app(b, apdu).2;
    assert_eq!(sw(&mut b, &[0x01, 0xA1, 0, 0]), [0x6E, 0x00]);
    assert_eq!(sw(&mut b, &[0x80, 0xA1, 0, 0]), [0x68, 0x82]);
    assert_eq!(sw(&mut b, &[0, 0x55, 0, 0]), [0x6D, 0x00]);
    assert_eq!(
        sw(&mut b, &[0, 0x04, 0, 0]),
        [0x6D, 0x00],
        "RESET needs P1P2 DE AD"
    );
    assert_eq!(
        sw(&mut b, &[0, 0xA4, 4, 0, 3, 1, 2, 3]),
        [0x6A, 0x82],
        "wrong AID"
    );
    assert_eq!(
        sw(&mut b, &[0, 0xA2, 0, 1, 3, 0x71, 9, 1]),
        [0x6A, 0x80],
        "truncated TLV"
    );
    assert_eq!(
        sw(&mut b, &[0, 0xA2, 0, 1, 3, 0x71, 1, b'a']),
        [0x6A, 0x80],
        "no challenge"
    );
    assert_eq!(
        sw(&mut b, &[0, 0xA5, 0, 0]),
        [0x69, 0x85],
        "nothing remains"
    );
    assert_eq!(
        sw(&mut b, &[0, 0xA1, 0, 0, 1, 7]),
        [0x6A, 0x80],
        "unknown LIST version"
    );
    // A PUT whose key field is too short, and one of a kind the key does not have.
    assert_eq!(
        sw(&mut b, &[0, 0x01, 0, 0, 7, 0x71, 1, b'a', 0x73, 2, 0x21, 6]),
        [0x6A, 0x80]
    );
    assert_eq!(
        sw(
            &mut b,
            &[0, 0x01, 0, 0, 8, 0x71, 1, b'a', 0x73, 3, 0x41, 6, 1]
        ),
        [0x6A, 0x81]
    );
    // After all that, the app still works.
    let select = [0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 5, 0x27, 0x21, 1];
    assert_eq!(&sw(&mut b, &select)[..2], &[0x90, 0x00]);
}

#[test]
fn the_channel_table_recycles_the_least_recently_used() {
    let mut b = Bench::new(Config {
        max_channels: 3,
        ..Config::default()
    });
    let first = b.init();
    let second = b.init();
    b.assert_ping_works(first); // first is now more recent than second
    b.init();
    b.init(); // evicts second
    b.send(&wire::fragment(second, cmd::PING, b"x").expect("fits")[0]);
    b.assert_error(second, err::INVALID_CHANNEL);
    b.assert_ping_works(first);
}

#[test]
fn usb_pacing_spaces_the_reports() {
    let mut b = Bench::new(Config::default());
    let cid = b.init();
    b.key.set_report_interval(Duration::from_millis(1));
    b.advance(Duration::from_millis(5));
    b.send_all(&wire::fragment(cid, cmd::PING, &[0; 200]).expect("fits"));
    // 200 bytes take 4 reports, each arriving one interval after the one before.
    assert_eq!(
        b.take().len(),
        0,
        "nothing arrives before its transmission time"
    );
    b.advance(Duration::from_millis(1));
    assert_eq!(b.take().len(), 1);
    b.advance(Duration::from_millis(1));
    assert_eq!(b.take().len(), 1);
    b.advance(Duration::from_millis(2));
    assert_eq!(b.take().len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever arrives, the key never panics, and a well-behaved host is served afterwards.
    #[test]
    fn rubbish_never_breaks_the_key(
        reports in prop::collection::vec(prop::array::uniform32(any::<u8>()), 0..40),
        tails in prop::collection::vec(prop::array::uniform32(any::<u8>()), 0..40),
        gaps in prop::collection::vec(0u64..700, 0..40),
    ) {
        let mut b = Bench::new(Config { touch: TouchPolicy::Approve, ..Config::default() });
        let good = b.init();
        for (i, head) in reports.iter().enumerate() {
            let mut r = [0u8; 64];
            r[..32].copy_from_slice(head);
            if let Some(tail) = tails.get(i) {
                r[32..].copy_from_slice(tail);
            }
            // Aim some rubbish at the good channel so that it reaches the apps.
            if i % 3 == 0 {
                r[..4].copy_from_slice(&good.to_be_bytes());
            }
            b.send(&r);
            b.advance(Duration::from_millis(gaps.get(i).copied().unwrap_or(0)));
            b.take();
        }
        // Let any message in progress time out and any touch wait finish.
        b.advance(Duration::from_secs(16));
        b.take();
        let fresh = b.init();
        b.assert_ping_works(fresh);
    }
}
