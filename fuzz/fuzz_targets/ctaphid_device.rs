//! Fuzz target `ctaphid_device`: the check lives in `fuzz/checks/ctaphid_device.rs`, shared with the replay test.
#![no_main]

#[path = "../checks/ctaphid_device.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
