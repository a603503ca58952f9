//! Replays the fuzz corpora and regressions of the host-side targets (`ctaphid_host`,
//! `apdu_host`) through the same checks as the fuzz targets, on the stable toolchain. Seeds
//! named `ok-*` must be accepted and `bad-*` refused with a typed error.

#[path = "../../../fuzz/checks/apdu_host.rs"]
mod apdu_host;
#[path = "../../../fuzz/checks/ctaphid_host.rs"]
mod ctaphid_host;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use oathkey_device::Error;

#[test]
fn ctaphid_host_corpus_and_regressions() {
    let inputs = replay::inputs("ctaphid_host");
    for input in &inputs {
        let outcome = ctaphid_host::check(&input.bytes);
        if input.is_ok_seed() {
            assert!(
                matches!(outcome, ctaphid_host::Outcome::Answer(_)),
                "{}: {outcome:?}",
                input.name
            );
        }
        if input.is_bad_seed() {
            let ctaphid_host::Outcome::Failed(e) = &outcome else {
                panic!("{}: accepted: {outcome:?}", input.name);
            };
            assert!(
                matches!(
                    e,
                    Error::Protocol(_) | Error::Ctaphid { .. } | Error::Busy(_) | Error::Removed
                ),
                "{}: {e:?}",
                input.name
            );
        }
    }
}

#[test]
fn apdu_host_corpus_and_regressions() {
    let inputs = replay::inputs("apdu_host");
    let mut sessions = 0;
    for input in &inputs {
        let outcome = apdu_host::check(&input.bytes);
        let name = input.name.as_str();
        match (&outcome, input.is_ok_seed(), input.is_bad_seed()) {
            (apdu_host::Outcome::Parsed { select, .. }, true, _) if name.contains("select") => {
                assert!(select, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Parsed { list, .. }, true, _) if name.contains("list") => {
                assert!(list, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Parsed { calculate, .. }, true, _) if name.contains("calc") => {
                assert!(calculate, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Parsed { select, .. }, _, true) if name.contains("select") => {
                assert!(!select, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Parsed { list, .. }, _, true) if name.contains("list") => {
                assert!(!list, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Parsed { calculate, .. }, _, true) if name.contains("calc") => {
                assert!(!calculate, "{name}: {outcome:?}")
            }
            (apdu_host::Outcome::Session { opened, ok, .. }, true, _) => {
                // Answers recorded from the virtual key replay as a working session.
                assert!(*opened && *ok > 0, "{name}: {outcome:?}");
                sessions += 1;
            }
            (apdu_host::Outcome::Session { opened, .. }, _, true) => {
                assert!(!opened, "{name}: {outcome:?}")
            }
            _ => {}
        }
    }
    assert!(sessions > 0, "no recorded session replayed");
}
