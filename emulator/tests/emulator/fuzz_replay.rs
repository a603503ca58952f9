//! Replays the fuzz corpora and regressions of the device-side targets (`ctaphid_device`,
//! `apdu_device`) through the same checks as the fuzz targets, on the stable toolchain. Seeds
//! named `ok-*` must be served without an error and `bad-*` must get the key's typed refusals
//! (CTAPHID errors, status words).

#[path = "../../../fuzz/checks/apdu_device.rs"]
mod apdu_device;
#[path = "../../../fuzz/checks/ctaphid_device.rs"]
mod ctaphid_device;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use oathkey_device::ctaphid::wire::cmd;

#[test]
fn ctaphid_device_corpus_and_regressions() {
    for input in replay::inputs("ctaphid_device") {
        let outcome = ctaphid_device::check(&input.bytes);
        let errors = outcome.errors();
        if input.is_ok_seed() {
            assert!(errors.is_empty(), "{}: errors {errors:?}", input.name);
            assert!(
                outcome.messages.iter().any(|m| m.cmd != cmd::INIT),
                "{}: no answer",
                input.name
            );
        }
        if input.is_bad_seed() {
            assert!(!errors.is_empty(), "{}: no error: {outcome:?}", input.name);
        }
    }
}

#[test]
fn apdu_device_corpus_and_regressions() {
    use apdu_device::Reply;
    for input in replay::inputs("apdu_device") {
        let outcome = apdu_device::check(&input.bytes);
        let refused = |r: &Reply| match r {
            Reply::Status(sw) => *sw != 0x9000 && *sw & 0xFF00 != 0x6100,
            Reply::NotApdu | Reply::AdminError(_) => true,
            // Admin answers: a status byte first, 0 for success (STATUS and the field list
            // have no status byte but never start with a failure code either).
            Reply::Admin(a) => a.first().is_some_and(|&s| (1..=8).contains(&s)) && a.len() == 1,
        };
        assert!(!outcome.replies.is_empty(), "{}: no request", input.name);
        if input.is_ok_seed() {
            let bad: Vec<_> = outcome.replies.iter().filter(|r| refused(r)).collect();
            assert!(bad.is_empty(), "{}: refused {bad:?}", input.name);
        }
        if input.is_bad_seed() {
            assert!(
                outcome.replies.iter().any(refused),
                "{}: nothing refused: {outcome:?}",
                input.name
            );
        }
    }
}
