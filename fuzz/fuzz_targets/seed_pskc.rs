//! Fuzz target `seed_pskc`: the check lives in `fuzz/checks/seedfile.rs`, shared with the replay
//! test.
#![no_main]

#[path = "../checks/seedfile.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(check::format_of("seed_pskc"), data);
});
