//! Fuzz target `apdu_host`: the check lives in `fuzz/checks/apdu_host.rs`, shared with the replay test.
#![no_main]

#[path = "../checks/apdu_host.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
