//! Integration tests of the `oathkey` CLI against real `oathkeyd` processes, one module per
//! concern (one test binary). The daemon's own process-level tests are in `daemon/tests`.

mod batches;
mod cli;
mod entra;
mod readme;
mod refusals;
mod secrets;
mod seed_text;
mod seeding;
