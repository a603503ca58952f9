//! Integration tests for oathkey-seedfile, one module per concern.

mod common;
mod files;
mod golden;
mod malformed;
mod roundtrip;
mod rules;
mod tools;
