//! Integration tests of the desktop app, one module per concern (one test binary): the view
//! driven as a user would, and the app's log.

mod common;
mod logs;
mod ui;
