//! Replays the fuzz corpora and regressions of the seed-file targets (`seed_*`, one per format)
//! through the same check as the fuzz targets, on the stable toolchain. Seeds named `ok-*` must
//! read without a problem (and round-trip: the check renders and reads them again), `bad-*`
//! must read with problems, each with a reason.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;
#[path = "../../../fuzz/checks/seedfile.rs"]
mod seedfile;

const TARGETS: [&str; 5] = [
    "seed_azure_csv",
    "seed_otpauth",
    "seed_pskc",
    "seed_graph_json",
    "seed_privacyidea_csv",
];

#[test]
fn seed_file_corpora_and_regressions() {
    for target in TARGETS {
        let format = seedfile::format_of(target);
        for input in replay::inputs(target) {
            let outcome = seedfile::check(format, &input.bytes);
            if input.is_ok_seed() {
                assert!(
                    outcome.problems == 0 && outcome.records > 0,
                    "{target}/{}: {outcome:?}",
                    input.name
                );
                assert_eq!(outcome.detected, Some(format), "{target}/{}", input.name);
            }
            if input.is_bad_seed() {
                assert!(outcome.problems > 0, "{target}/{}: {outcome:?}", input.name);
            }
        }
    }
}
