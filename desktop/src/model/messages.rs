//! The messages around the state: what the backend reports ([`Update`]), what it is asked to
//! do ([`Command`]), and what the user did ([`Action`]).

use std::path::PathBuf;

use eframe::egui::ThemePreference;
use oathkey_protocol::types::{
    Code, CodeEntry, CreateTokenParams, Event, Hello, KeyList, SetConfigParams, Settings,
};
use oathkey_seedfile::Format;

use super::Tab;
use super::admin::{ConfigPart, ExportRequest};
use super::tokens::TokenRef;
use crate::error::DaemonError;

/// Why a single code was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The next period's code, near the end of the current one.
    Next,
    /// "Get code" on a touch or HOTP token.
    OnDemand,
}

/// A token the daemon created (without its secret: the form already showed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSummary {
    /// Key id.
    pub key: String,
    /// Serial.
    pub serial: String,
    /// UPN.
    pub account: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The file.
    pub path: PathBuf,
    /// Seeds written (0: none matched, nothing written).
    pub count: usize,
    /// Its format.
    pub format: Format,
}

/// What the backend reports.
#[derive(Debug, Clone)]
pub enum Update {
    /// Connected; the daemon's `hello`.
    Connected {
        /// Versions and role.
        hello: Hello,
    },
    /// The daemon cannot be reached (or went away).
    Disconnected {
        /// Why.
        error: DaemonError,
    },
    /// The events connection is (re)established: what happened meanwhile is unknown.
    EventsConnected,
    /// `keys.list`.
    Keys(KeyList),
    /// `keys.get_config` of one key.
    Settings {
        /// Key id.
        key: String,
        /// Its settings.
        settings: Settings,
    },
    /// `codes.all`: every token and its code (the end of a refresh).
    Codes(Vec<CodeEntry>),
    /// A refresh failed.
    RefreshFailed {
        /// Why.
        error: DaemonError,
    },
    /// One `codes.get`.
    Code {
        /// Which token.
        token: TokenRef,
        /// Why it was asked for.
        purpose: Purpose,
        /// The code, or why not.
        result: Result<Code, DaemonError>,
    },
    /// A `keys.set_config` finished.
    ConfigApplied {
        /// Key id.
        key: String,
        /// Which part of the form.
        part: ConfigPart,
        /// The settings afterwards, or why not.
        result: Result<Settings, DaemonError>,
    },
    /// A `tokens.create` finished.
    TokenCreated(Result<CreatedSummary, DaemonError>),
    /// An export finished.
    Exported(Result<ExportSummary, DaemonError>),
    /// A daemon event.
    Event(Event),
}

/// What the backend should do.
#[derive(Debug)]
pub enum Command {
    /// Read everything again: with `keys`, `keys.list` and each key's settings first; then
    /// `codes.all` (at `at`, see [`crate::Clock::at_param`]).
    Refresh {
        /// Also the key list and settings.
        keys: bool,
        /// The time to compute codes for.
        at: Option<u64>,
    },
    /// `codes.get` of one token.
    GetCode {
        /// Which token.
        token: TokenRef,
        /// The time to compute it for.
        at: Option<u64>,
        /// Why (long waits, such as a touch, run beside the other requests).
        purpose: Purpose,
    },
    /// `keys.set_config`.
    SetConfig {
        /// Which part of the form.
        part: ConfigPart,
        /// The settings to change.
        params: SetConfigParams,
    },
    /// `tokens.create` (the secret inside is zeroized when the command is dropped).
    CreateToken(CreateTokenParams),
    /// Export seeds to a file (the CLI's code path).
    Export(ExportRequest),
}

/// What the user did (returned by the view).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Copy this token's code.
    Copy(TokenRef),
    /// Copy the selected token's code (Ctrl+C).
    CopySelected,
    /// Select a token (for Ctrl+C).
    Select(TokenRef),
    /// "Get code" of a touch or HOTP token.
    GetCode(TokenRef),
    /// Switch views.
    SetTab(Tab),
    /// Change the zoom.
    SetZoom(f32),
    /// Change the theme.
    SetTheme(ThemePreference),
    /// Admin: work on this key.
    SelectKey(String),
    /// Admin: Mode's Apply.
    ApplyMode,
    /// Admin: Key Press's Apply.
    ApplyKeyPress,
    /// Admin: Generate serial and seed.
    Generate,
    /// Admin: Save the token to the key.
    Save,
    /// Admin: write the seed file.
    Export,
}
