//! oathkey-desktop: the desktop app of oathkeyd. It shows every token on every key with its
//! code and a countdown, copies codes to the clipboard, prompts for touches, follows keys as
//! they come and go, and gives admins the vendor admin tool's form. It talks to the daemon
//! only through [`oathkey_protocol::Client`], never to a key.
//!
//! # Layout
//! - [`model`]: everything the window shows, as plain data; [`model::AppState::apply`] takes
//!   the daemon's answers and events, [`model::AppState::act`] the user's actions,
//!   [`model::AppState::tick`] the passing of time. No I/O, so it is unit-tested directly.
//! - [`view`]: draws an [`model::AppState`] with egui and returns the user's
//!   [`model::Action`]s. Tested without a display through egui_kittest (by accessible label).
//! - [`backend`]: the worker and events threads that own the daemon connections.
//! - [`app`]: the glue of one frame, and the `eframe::App`.
//! - [`validate`]: the admin form's field checks (pure functions); the seed field decodes with
//!   `oathkey-otp`, the daemon's decoder.
//! - [`secret`]: the seed's zeroizing text buffer, and Generate (serial and seed).
//! - [`clock`]: system time, or a clock the tests move.
//! - [`error`]: errors as shown: message and stable name.
//!
//! User documentation: `docs/desktop.md`.

pub mod app;
pub mod backend;
pub mod clock;
pub mod error;
pub mod model;
pub mod secret;
pub mod validate;
pub mod view;

pub use app::DesktopApp;
pub use backend::Backend;
pub use clock::Clock;
pub use model::AppState;
