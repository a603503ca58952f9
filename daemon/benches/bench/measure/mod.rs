//! The measuring, one module per part of the report. Each returns plain figures (no text but
//! progress lines); `report.rs` renders them.

pub mod cli;
pub mod driver;
pub mod load;
pub mod memory;
pub mod seeding;
