//! Fuzz target `rpc_dispatch`: the check lives in `fuzz/checks/rpc_dispatch.rs`, shared with the replay test.
#![no_main]

#[path = "../checks/rpc_dispatch.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
