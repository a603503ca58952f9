//! Fuzz target `rpc_line`: the check lives in `fuzz/checks/rpc_line.rs`, shared with the replay test.
#![no_main]

#[path = "../checks/rpc_line.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
