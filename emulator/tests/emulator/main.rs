//! Integration tests of oathkey-emulator, one module per concern (one test binary).

mod card;
mod conformance;
mod driver;
mod framing;
mod fuzz_replay;
mod interop;
mod roundtrip;
mod vpcd;
mod vpcd_wire;
