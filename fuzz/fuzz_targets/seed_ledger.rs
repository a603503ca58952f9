//! Fuzz target `seed_ledger`: the check lives in `fuzz/checks/ledger.rs`, shared with the replay
//! test.
#![no_main]

#[path = "../checks/ledger.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
