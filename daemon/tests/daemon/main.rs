//! Integration tests of oathkeyd, one module per concern (one test binary): in process (the
//! daemon's library on a runtime of its own) and as a process (the real `oathkeyd`, with the
//! `oathkey` CLI and `oathkey-emulator` where a test needs them).

mod bad_input;
mod coalescing;
mod common;
mod crash;
mod dbus;
mod faults;
mod fuzz_replay;
mod hardening;
mod herds;
mod load;
mod pcsc;
mod process;
mod reconcile;
mod secrets;
mod touch_fairness;
