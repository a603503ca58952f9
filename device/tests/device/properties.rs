//! Property tests of the host side's encodings: CTAPHID fragmentation of any message length
//! reassembles to the message, and answer TLVs parse back to what was written.
//! (Label round trips are in `src/label.rs`; the APDU and TLV round trips between the host's
//! encoders and the key's parsers are in the emulator's `tests/emulator/roundtrip.rs`.)

use oathkey_device::apdu::{TlvError, push_tlv, tlvs};
use oathkey_device::ctaphid::wire::{
    FrameError, INIT_DATA, MAX_MESSAGE, Packet, REPORT_SIZE, fragment, packets_for,
};
use proptest::prelude::*;

fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any message up to 7609 bytes splits into `packets_for(len)` reports that parse back to
    /// the channel, the command, the length and the bytes, zero-padded.
    #[test]
    fn fragments_reassemble_to_the_message(
        len in prop_oneof![0..=MAX_MESSAGE, Just(0usize), Just(INIT_DATA), Just(MAX_MESSAGE)],
        seed in any::<u8>(),
        cid in any::<u32>(),
        command in 0u8..0x80,
    ) {
        let payload = message(len, seed);
        let reports = fragment(cid, command, &payload).expect("fits");
        prop_assert_eq!(reports.len(), packets_for(len));
        let mut rebuilt = Vec::new();
        for (i, report) in reports.iter().enumerate() {
            prop_assert_eq!(report.len(), REPORT_SIZE);
            match (i, Packet::parse(report)) {
                (0, Packet::Init { cid: c, cmd, bcnt, data }) => {
                    prop_assert_eq!((c, cmd, usize::from(bcnt)), (cid, command, len));
                    rebuilt.extend_from_slice(data);
                }
                (i, Packet::Cont { cid: c, seq, data }) if i > 0 => {
                    prop_assert_eq!((c, usize::from(seq)), (cid, i - 1));
                    rebuilt.extend_from_slice(data);
                }
                (i, other) => prop_assert!(false, "report {} is {:?}", i, other),
            }
        }
        prop_assert!(rebuilt[len..].iter().all(|&b| b == 0), "padding is not zero");
        rebuilt.truncate(len);
        prop_assert_eq!(rebuilt, payload);
    }

    #[test]
    fn longer_messages_are_refused(extra in 1usize..2000) {
        let payload = vec![0u8; MAX_MESSAGE + extra];
        prop_assert_eq!(fragment(1, 1, &payload), Err(FrameError::TooLong(MAX_MESSAGE + extra)));
    }

    /// Answer TLVs (one raw length byte) parse back to the items written.
    #[test]
    fn answer_tlvs_round_trip(
        items in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..=255)),
            0..8,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for (tag, value) in &items {
            bytes.push(*tag);
            bytes.push(value.len() as u8);
            bytes.extend_from_slice(value);
        }
        let parsed: Vec<(u8, Vec<u8>)> = tlvs(&bytes)
            .map(|r| r.map(|(t, v)| (t, v.to_vec())))
            .collect::<Result<_, _>>()
            .expect("valid");
        prop_assert_eq!(&parsed, &items);
        // Cut anywhere inside an item: the items before it, then one truncation error there.
        if !bytes.is_empty() {
            let at = cut.index(bytes.len());
            let results: Vec<_> = tlvs(&bytes[..at]).collect();
            let errors = results.iter().filter(|r| r.is_err()).count();
            prop_assert!(errors <= 1);
            if let Some(Err(TlvError::Truncated(offset))) = results.last() {
                prop_assert!(*offset < at);
            }
        }
    }

    /// Short request TLVs (under 128 bytes) are answer TLVs too; long ones take `81 xx`.
    #[test]
    fn request_tlvs_use_the_short_form_below_128(
        tag in any::<u8>(),
        value in prop::collection::vec(any::<u8>(), 0..=255),
    ) {
        let mut bytes = Vec::new();
        push_tlv(&mut bytes, tag, &value).expect("fits");
        if value.len() < 0x80 {
            let parsed: Vec<_> = tlvs(&bytes).collect();
            prop_assert_eq!(parsed, vec![Ok((tag, &value[..]))]);
        } else {
            prop_assert_eq!(&bytes[..3], &[tag, 0x81, value.len() as u8]);
            prop_assert_eq!(&bytes[3..], &value[..]);
        }
    }
}
