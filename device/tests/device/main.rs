//! Integration tests of oathkey-device, one module per concern (one test binary).

mod fuzz_replay;
mod properties;
mod ykoath;
