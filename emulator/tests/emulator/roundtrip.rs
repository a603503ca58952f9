//! Property tests across the two sides: whatever the host encodes, the virtual key decodes to
//! the same thing, and back.
//! - CTAPHID: the host fragments a message of any length (0..=7609 bytes), the key reassembles
//!   it, echoes it (PING) fragmented again, and the host reassembles the echo.
//! - APDUs: the host's command encoding (short and extended lengths) parses on the key to the
//!   same instruction, parameters and data.
//! - TLVs: request TLVs (BER lengths) the host writes read back on the key; answer TLVs (one
//!   raw length byte) the key writes read back on the host.

use oathkey_device::apdu::{Command, push_tlv, tlvs};
use oathkey_device::ctaphid::wire::{MAX_MESSAGE, cmd};
use oathkey_device::ctaphid::{CallOptions, CtapHid, Timeouts};
use oathkey_emulator::apdu::{Reader, parse, put_tlv};
use oathkey_emulator::{Config, VirtualKeyHandle};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_message_survives_host_and_key_framing(
        len in prop_oneof![0..=MAX_MESSAGE, Just(57usize), Just(58usize), Just(MAX_MESSAGE)],
        seed in any::<u8>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ seed).collect();
        let key = VirtualKeyHandle::new(Config::default());
        let mut hid = CtapHid::new(key.connect().expect("connects"), Timeouts::default());
        hid.init().expect("a channel");
        let echo = hid
            .call(cmd::PING, &payload, CallOptions::default())
            .expect("the key answers");
        prop_assert_eq!(echo.len(), len);
        prop_assert_eq!(echo, payload);
        // One report per packet each way: the key took exactly what the host sent.
        let packets = oathkey_device::ctaphid::wire::packets_for(len) as u64;
        let stats = key.stats();
        prop_assert_eq!(stats.reports_in, 1 + packets);
        prop_assert_eq!(stats.reports_out, 1 + packets);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn command_apdus_parse_on_the_key(
        ins in any::<u8>(),
        p1 in any::<u8>(),
        p2 in any::<u8>(),
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..=300),
            prop::collection::vec(any::<u8>(), 250..=7000),
        ],
    ) {
        let bytes = Command::new(ins, p1, p2, data.clone()).to_bytes();
        let apdu = parse(&bytes).expect("a host APDU is an APDU");
        prop_assert_eq!((apdu.cla, apdu.ins, apdu.p1, apdu.p2), (0, ins, p1, p2));
        prop_assert_eq!(&apdu.data, &data);
    }

    #[test]
    fn request_tlvs_read_back_on_the_key(
        items in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=255)),
            0..6,
        ),
    ) {
        let mut bytes = Vec::new();
        for (tag, value) in &items {
            push_tlv(&mut bytes, *tag, value).expect("fits");
        }
        let mut reader = Reader::new(&bytes);
        for (tag, value) in &items {
            prop_assert_eq!(reader.tlv(), Ok((*tag, &value[..])));
        }
        prop_assert!(reader.is_empty());
    }

    #[test]
    fn answer_tlvs_read_back_on_the_host(
        items in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=255)),
            0..6,
        ),
    ) {
        let mut bytes = Vec::new();
        for (tag, value) in &items {
            put_tlv(&mut bytes, *tag, value);
        }
        let parsed: Vec<(u8, Vec<u8>)> = tlvs(&bytes)
            .map(|r| r.map(|(t, v)| (t, v.to_vec())))
            .collect::<Result<_, _>>()
            .expect("valid");
        prop_assert_eq!(parsed, items);
    }
}
