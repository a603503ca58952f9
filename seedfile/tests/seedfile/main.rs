//! Integration tests for oathkey-seedfile, one module per concern (one test binary).

mod common;
mod files;
mod fuzz_replay;
mod golden;
mod malformed;
mod roundtrip;
mod rules;
mod tools;
