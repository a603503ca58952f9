//! Method names, parameters, results and events of protocol version 1.
//!
//! Every field a later version may add is optional on the reading side (`#[serde(default)]`),
//! so an older client keeps working with a newer daemon of the same protocol version.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::secret::SecretText;

/// Method names as text (the typed table is [`crate::methods`], where each name is tied to its
/// params and result; these are taken from it).
pub mod method {
    use crate::methods::{self as m, Method};

    /// `hello`.
    pub const HELLO: &str = m::Hello::NAME;
    /// `keys.list`.
    pub const KEYS_LIST: &str = m::KeysList::NAME;
    /// `keys.info`.
    pub const KEYS_INFO: &str = m::KeysInfo::NAME;
    /// `keys.wink`.
    pub const KEYS_WINK: &str = m::KeysWink::NAME;
    /// `keys.get_config`.
    pub const KEYS_GET_CONFIG: &str = m::KeysGetConfig::NAME;
    /// `keys.set_config`.
    pub const KEYS_SET_CONFIG: &str = m::KeysSetConfig::NAME;
    /// `keys.claim`.
    pub const KEYS_CLAIM: &str = m::KeysClaim::NAME;
    /// `keys.release`.
    pub const KEYS_RELEASE: &str = m::KeysRelease::NAME;
    /// `tokens.list`.
    pub const TOKENS_LIST: &str = m::TokensList::NAME;
    /// `tokens.create`.
    pub const TOKENS_CREATE: &str = m::TokensCreate::NAME;
    /// `tokens.delete`.
    pub const TOKENS_DELETE: &str = m::TokensDelete::NAME;
    /// `tokens.rename`.
    pub const TOKENS_RENAME: &str = m::TokensRename::NAME;
    /// `keys.unlock`.
    pub const KEYS_UNLOCK: &str = m::KeysUnlock::NAME;
    /// `keys.set_access_code`.
    pub const KEYS_SET_ACCESS_CODE: &str = m::KeysSetAccessCode::NAME;
    /// `codes.get`.
    pub const CODES_GET: &str = m::CodesGet::NAME;
    /// `codes.all`.
    pub const CODES_ALL: &str = m::CodesAll::NAME;
    /// `events.subscribe`.
    pub const EVENTS_SUBSCRIBE: &str = m::EventsSubscribe::NAME;
    /// `virtual.unplug`.
    pub const VIRTUAL_UNPLUG: &str = m::VirtualUnplug::NAME;
    /// `virtual.plug`.
    pub const VIRTUAL_PLUG: &str = m::VirtualPlug::NAME;
    /// `virtual.press`.
    pub const VIRTUAL_PRESS: &str = m::VirtualPress::NAME;
    /// `seeds.list`.
    pub const SEEDS_LIST: &str = m::SeedsList::NAME;
    /// `seeds.export`.
    pub const SEEDS_EXPORT: &str = m::SeedsExport::NAME;
    /// `seeds.mark_exported`.
    pub const SEEDS_MARK_EXPORTED: &str = m::SeedsMarkExported::NAME;
    /// `seeds.purge`.
    pub const SEEDS_PURGE: &str = m::SeedsPurge::NAME;
    /// The notification method that carries an [`super::Event`].
    pub const EVENT: &str = "event";
}

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List keys and tokens, read codes.
    Reader,
    /// Everything: configure keys, create and delete tokens, claim keys.
    Admin,
}

/// The answer to `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The daemon's protocol version.
    pub protocol: u32,
    /// The daemon's version.
    pub daemon: String,
    /// The caller's role.
    pub role: Role,
    /// The caller's uid as the daemon saw it.
    #[serde(default)]
    pub uid: Option<u32>,
}

/// Where a key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// A real key through hidapi.
    Hid,
    /// A smart card (or a key's CCID interface) through PC/SC.
    Pcsc,
    /// A virtual key inside the daemon (`--emulate`).
    Virtual,
    /// A virtual key served over UDP (`--udp-key`).
    Udp,
}

/// A key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Stable id while the key stays plugged in: its serial as 8 hex digits.
    pub id: String,
    /// Model name.
    pub model: String,
    /// Where it was found.
    pub source: KeySource,
    /// Device path (hidraw node, `virtual:...`, `udp://...`).
    pub path: String,
    /// Secrets app version, such as `4.13.0`.
    pub firmware: String,
    /// Whether a PIN is set.
    pub pin_set: bool,
    /// Whether some client holds a claim on it.
    #[serde(default)]
    pub claimed: bool,
    /// The protocol it speaks.
    #[serde(default)]
    pub family: KeyFamily,
    /// What it can do; a request for the rest is refused with `Unsupported`.
    #[serde(default)]
    pub capabilities: KeyCapabilities,
    /// Whether its tokens are locked behind an access code (`keys.unlock`).
    #[serde(default)]
    pub locked: bool,
    /// Set while another application holds the key exclusively (a smart card taken by gpg's
    /// scdaemon or ykman): why, and what to do. Requests to it fail with `Busy` until it is
    /// released; then this goes away by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<String>,
}

/// The protocol a key speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyFamily {
    /// The Nitrokey 3 secrets app over the FIDO HID interface.
    #[default]
    Nk3Hid,
    /// YKOATH over CCID through PC/SC (YubiKey, Nitrokey 3 and other trussed keys).
    YkoathPcsc,
}

impl KeyFamily {
    /// Every family, for documentation and tests.
    pub const ALL: [KeyFamily; 2] = [KeyFamily::Nk3Hid, KeyFamily::YkoathPcsc];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            KeyFamily::Nk3Hid => "nk3-hid",
            KeyFamily::YkoathPcsc => "ykoath-pcsc",
        }
    }
}

/// What a key can do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyCapabilities {
    /// It computes codes the host can read (false: a display-only token).
    #[serde(default)]
    pub codes: bool,
    /// `tokens.create`.
    #[serde(default)]
    pub create: bool,
    /// `tokens.delete`.
    #[serde(default)]
    pub delete: bool,
    /// `tokens.rename`.
    #[serde(default)]
    pub rename: bool,
    /// Tokens can require a touch (`touch` in `tokens.create`).
    #[serde(default)]
    pub touch: bool,
    /// HOTP tokens.
    #[serde(default)]
    pub hotp: bool,
    /// The hashes it computes with.
    #[serde(default)]
    pub algorithms: Vec<Algorithm>,
    /// The device settings it has: `keyboard`, `u2f`, `key_press`.
    #[serde(default)]
    pub settings: Vec<SettingName>,
    /// An access code can lock its tokens (`keys.unlock`, `keys.set_access_code`).
    #[serde(default)]
    pub access_code: bool,
    /// `keys.wink`.
    #[serde(default)]
    pub wink: bool,
}

/// One of the admin tool's device settings, by the name [`Settings`] and
/// [`SetConfigParams`] use for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingName {
    /// Mode: Keyboard.
    Keyboard,
    /// Mode: U2F.
    U2f,
    /// Key Press.
    KeyPress,
}

/// A device the daemon found but cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableKey {
    /// Device path (hidraw node, PC/SC reader).
    pub path: String,
    /// Why (permissions, protocol failure, held by another application), and what to do.
    pub reason: String,
    /// Another application holds the key exclusively; it becomes usable by itself once released.
    #[serde(default)]
    pub busy: bool,
}

/// The answer to `keys.list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyList {
    /// Usable keys.
    pub keys: Vec<KeyInfo>,
    /// Supported devices that could not be opened.
    #[serde(default)]
    pub unavailable: Vec<UnavailableKey>,
}

/// Params naming a key; optional when exactly one key is present.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyParams {
    /// Key id.
    #[serde(default)]
    pub key: Option<String>,
}

/// The vendor tool's device settings; `None` where the key does not support one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Mode: Keyboard.
    pub keyboard: Option<bool>,
    /// Mode: U2F.
    pub u2f: Option<bool>,
    /// Key Press: every code needs a touch.
    pub key_press: Option<bool>,
}

/// Params of `keys.set_config`: the settings to change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfigParams {
    /// Key id.
    #[serde(default)]
    pub key: Option<String>,
    /// Mode: Keyboard.
    #[serde(default)]
    pub keyboard: Option<bool>,
    /// Mode: U2F.
    #[serde(default)]
    pub u2f: Option<bool>,
    /// Key Press.
    #[serde(default)]
    pub key_press: Option<bool>,
}

/// HOTP or TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpKind {
    /// Time based (RFC 6238).
    #[default]
    Totp,
    /// Counter based (RFC 4226).
    Hotp,
    /// Something else another tool put on the key.
    Other,
}

/// The HMAC hash: the one type every crate shares, defined in `oathkey-otp` beside the
/// computation. Its serde names (`"sha1"`, `"sha256"`, `"sha512"`) are this protocol's.
pub use oathkey_otp::Algorithm;

/// A token on a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The key it is on.
    pub key: String,
    /// Its raw name on the key (`[period/]serial:account`).
    pub name: String,
    /// Token serial, if the name follows the convention.
    #[serde(default)]
    pub serial: Option<String>,
    /// The account (UPN).
    pub account: String,
    /// TOTP period in seconds.
    pub period: u32,
    /// HOTP or TOTP.
    pub kind: OtpKind,
    /// Hash, where the key reports it.
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// Whether every code needs a touch (the token's own flag; Key Press adds to it).
    #[serde(default)]
    pub touch: Option<bool>,
}

/// Params naming a token: its name, serial or account (unique on the key or across keys).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenParams {
    /// Key id; optional.
    #[serde(default)]
    pub key: Option<String>,
    /// Name, serial or account.
    pub token: String,
}

/// Params of `tokens.rename`: the token keeps its seed, serial and period; its account (the
/// user's UPN) changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameParams {
    /// Key id; optional.
    #[serde(default)]
    pub key: Option<String>,
    /// The token: name, serial or account.
    pub token: String,
    /// The new account.
    pub account: String,
}

/// Params of `keys.unlock`: the access code of a key whose tokens are locked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockParams {
    /// Key id; optional with one key.
    #[serde(default)]
    pub key: Option<String>,
    /// The access code (a password). The daemon keeps only the key derived from it, in memory,
    /// until the key is unplugged or the daemon stops.
    pub code: SecretText,
}

/// Params of `keys.set_access_code`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessCodeParams {
    /// Key id; optional with one key.
    #[serde(default)]
    pub key: Option<String>,
    /// The new access code; absent or `null` clears it.
    #[serde(default)]
    pub code: Option<SecretText>,
}

/// Params of `codes.get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeParams {
    /// Key id; optional.
    #[serde(default)]
    pub key: Option<String>,
    /// Name, serial or account; optional when the key(s) hold exactly one token.
    #[serde(default)]
    pub token: Option<String>,
    /// Unix time to compute the code for (tests). Readers may only ask within one period of now.
    #[serde(default)]
    pub at: Option<u64>,
}

/// Params of `codes.all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodesParams {
    /// Key id; all keys when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// Unix time (as in `codes.get`).
    #[serde(default)]
    pub at: Option<u64>,
    /// Also compute tokens that need a touch (one touch each); skipped by default.
    #[serde(default)]
    pub include_touch: bool,
}

/// A code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// The token.
    pub token: TokenInfo,
    /// The code.
    pub code: String,
    /// Its length.
    pub digits: u8,
    /// TOTP: first second the code is valid (unix time).
    #[serde(default)]
    pub valid_from: Option<u64>,
    /// TOTP: first second of the next code.
    #[serde(default)]
    pub valid_until: Option<u64>,
}

/// One entry of `codes.all`: a code, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeEntry {
    /// The token.
    pub token: TokenInfo,
    /// The code, when computed.
    #[serde(default)]
    pub code: Option<String>,
    /// Its length.
    #[serde(default)]
    pub digits: Option<u8>,
    /// TOTP validity start.
    #[serde(default)]
    pub valid_from: Option<u64>,
    /// TOTP validity end.
    #[serde(default)]
    pub valid_until: Option<u64>,
    /// Why there is no code.
    #[serde(default)]
    pub error: Option<NoCode>,
}

/// Why `codes.all` has no code for a token: a token it skips, or the error reading it gave.
/// On the wire, the reason's name (`"TouchRequired"`, or an [`ErrorCode`] name such as
/// `"TouchTimeout"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum NoCode {
    /// The token needs a touch; ask for it with `include_touch`.
    TouchRequired,
    /// Reading an HOTP code would use it up; read it with `codes.get`.
    HotpNotRead,
    /// Not an OTP token (another tool's credential).
    NotOtp,
    /// Reading the code failed with this error.
    Failed(ErrorCode),
}

impl NoCode {
    /// The skip reasons (not errors), for documentation and tests.
    pub const SKIPS: [NoCode; 3] = [NoCode::TouchRequired, NoCode::HotpNotRead, NoCode::NotOtp];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            NoCode::TouchRequired => "TouchRequired",
            NoCode::HotpNotRead => "HotpNotRead",
            // The name it always had on the wire: the key cannot compute an OTP for it.
            NoCode::NotOtp => "Unsupported",
            NoCode::Failed(code) => code.name(),
        }
    }
}

impl From<NoCode> for String {
    fn from(n: NoCode) -> String {
        n.name().to_string()
    }
}

impl TryFrom<String> for NoCode {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        NoCode::SKIPS
            .into_iter()
            .find(|s| s.name() == name)
            .or_else(|| ErrorCode::from_name(&name).map(NoCode::Failed))
            .ok_or_else(|| format!("unknown reason {name:?}"))
    }
}

/// What a key waits for a touch for (in [`Event::TouchNeeded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Reading a code.
    Code,
    /// Reading a code back after writing a token (verification).
    Verify,
    /// Writing a token.
    Create,
    /// Deleting a token.
    Delete,
    /// Changing Mode or Key Press.
    Config,
    /// Listing tokens.
    List,
    /// Blinking.
    Wink,
    /// Renaming a token.
    Rename,
    /// Unlocking tokens with an access code, or setting one.
    AccessCode,
}

impl Operation {
    /// Every operation, for documentation and tests.
    pub const ALL: [Operation; 9] = [
        Operation::Code,
        Operation::Verify,
        Operation::Create,
        Operation::Delete,
        Operation::Config,
        Operation::List,
        Operation::Wink,
        Operation::Rename,
        Operation::AccessCode,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Code => "code",
            Operation::Verify => "verify",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Config => "config",
            Operation::List => "list",
            Operation::Wink => "wink",
            Operation::Rename => "rename",
            Operation::AccessCode => "access_code",
        }
    }
}

/// Params of `tokens.create`: the vendor admin tool's form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenParams {
    /// Key id; optional with one key.
    #[serde(default)]
    pub key: Option<String>,
    /// The user (UPN).
    pub account: String,
    /// Token serial; generated when absent.
    #[serde(default)]
    pub serial: Option<String>,
    /// Base32 secret to import; a fresh 160-bit secret is generated when absent.
    #[serde(default)]
    pub secret: Option<SecretText>,
    /// TOTP (default) or HOTP.
    #[serde(default)]
    pub kind: OtpKind,
    /// Hash, SHA-1 by default.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// 6 (default) or 8.
    #[serde(default = "default_digits")]
    pub digits: u8,
    /// Period in seconds: 1 to 86400, 30 by default (Azure accepts only 30 or 60; the CLI
    /// offers those).
    #[serde(default = "default_period")]
    pub period: u32,
    /// Every code needs a touch.
    #[serde(default)]
    pub touch: bool,
    /// First HOTP counter value.
    #[serde(default)]
    pub counter: u32,
}

fn default_digits() -> u8 {
    6
}

fn default_period() -> u32 {
    30
}

/// The answer to `tokens.create`; the only time the secret leaves the daemon unasked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The seed's record in the daemon's ledger.
    #[serde(default)]
    pub seed_id: Option<String>,
    /// The token as listed.
    pub token: TokenInfo,
    /// Its serial.
    pub serial: String,
    /// The Base32 secret (no padding).
    pub secret: SecretText,
    /// Code length.
    pub digits: u8,
    /// Hash.
    pub algorithm: Algorithm,
    /// Period.
    pub period: u32,
    /// HOTP or TOTP.
    pub kind: OtpKind,
}

/// Where a seed stands. Written ahead: a record exists before the key is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedState {
    /// Recorded; the key may or may not hold it yet (the write did not report back).
    Pending,
    /// On the key; not (yet) verified by reading a code back.
    Written,
    /// On the key, and a code read back matched the daemon's own computation.
    Verified,
    /// The write failed or the code did not match; `reason` says what the key holds.
    Failed,
    /// The key was checked and does not hold it (the write never happened).
    NotOnKey,
    /// Deleted from its key through oathkey (`tokens.delete`).
    Deleted,
    /// Its key holds a newer seed under the same name (the token was written again).
    Replaced,
    /// Its key was seen without it: deleted by another tool, or the key was reset.
    Missing,
}

impl SeedState {
    /// Whether a seed in this state belongs in a seed file by default: the key holds it
    /// (verified by a code read back, or written: the key accepted it, but reading a code back
    /// needed a touch, used up an HOTP code, or was cut short).
    pub fn exportable(self) -> bool {
        matches!(self, SeedState::Verified | SeedState::Written)
    }

    /// Whether no key holds a seed in this state any more (or ever did): a record kept for
    /// history, or for removing the token from the MFA service it was uploaded to.
    pub fn stale(self) -> bool {
        matches!(
            self,
            SeedState::NotOnKey | SeedState::Deleted | SeedState::Replaced | SeedState::Missing
        )
    }
}

/// A seed record without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedInfo {
    /// Record id.
    pub id: String,
    /// The key it was written to.
    pub key: String,
    /// The credential name on the key.
    pub name: String,
    /// Token serial.
    pub serial: String,
    /// The user (UPN).
    pub user: String,
    /// HOTP or TOTP.
    pub kind: OtpKind,
    /// Hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: u8,
    /// Period.
    pub period: u32,
    /// Initial HOTP counter.
    #[serde(default)]
    pub counter: u32,
    /// Where it stands.
    pub state: SeedState,
    /// Why it failed, or what the key holds.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it was recorded (unix time).
    pub created_at: u64,
    /// When it was last written to a seed file.
    #[serde(default)]
    pub exported_at: Option<u64>,
    /// The key model (for the seed file's model column).
    #[serde(default)]
    pub model: Option<String>,
}

/// A seed record with its secret (admin only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedRecord {
    /// The record.
    #[serde(flatten)]
    pub info: SeedInfo,
    /// The Base32 secret.
    pub secret: SecretText,
}

/// Which seed records to list or export.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedsParams {
    /// Only these serials.
    #[serde(default)]
    pub serials: Option<Vec<String>>,
    /// Only these users.
    #[serde(default)]
    pub users: Option<Vec<String>>,
    /// Also records that are not verified on a key (pending, failed, not on key).
    #[serde(default)]
    pub include_incomplete: bool,
    /// Only records never exported.
    #[serde(default)]
    pub not_exported: bool,
    /// Only records whose seed no key holds (see [`SeedState::stale`]); implies
    /// `include_incomplete`.
    #[serde(default)]
    pub stale: bool,
}

/// Params of `seeds.mark_exported`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkExportedParams {
    /// Record ids.
    pub ids: Vec<String>,
    /// The format written (for the record).
    pub format: String,
}

/// Params of `seeds.purge`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeParams {
    /// Delete records already exported.
    #[serde(default)]
    pub exported: bool,
    /// Delete records whose seed no key holds (deleted, replaced, missing, never written),
    /// exported or not. Seeds a key may hold are never deleted unless exported.
    #[serde(default)]
    pub stale: bool,
}

/// Something that happened, sent as an `event` notification to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A key appeared and is ready.
    KeyAdded {
        /// The key.
        key: KeyInfo,
    },
    /// A key went away; its pending requests failed with `KeyRemoved`.
    KeyRemoved {
        /// Its id.
        key: String,
    },
    /// The key waits for a touch.
    TouchNeeded {
        /// Key id.
        key: String,
        /// What it waits for.
        operation: Operation,
        /// The token concerned, if any.
        #[serde(default)]
        token: Option<String>,
    },
    /// The touch wait ended (touched, timed out or cancelled).
    TouchDone {
        /// Key id.
        key: String,
    },
    /// Tokens were created or deleted.
    TokensChanged {
        /// Key id.
        key: String,
    },
    /// A client claimed the key for a multi-step job, or its claim ended (released, or the
    /// client went away).
    ClaimChanged {
        /// Key id.
        key: String,
        /// Whether a client holds a claim now.
        claimed: bool,
    },
    /// A key's tokens were unlocked with its access code, or locked again (its access code set
    /// or cleared).
    LockChanged {
        /// Key id.
        key: String,
        /// Whether its tokens are locked now.
        locked: bool,
    },
    /// Another application took a smart-card key exclusively (`busy` says why and what to
    /// do), or released it (`busy` absent).
    BusyChanged {
        /// Key id.
        key: String,
        /// Why it is busy, as in `KeyInfo.busy`; absent once released.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        busy: Option<String>,
    },
    /// Mode or Key Press changed.
    ConfigChanged {
        /// Key id.
        key: String,
        /// The new settings.
        settings: Settings,
    },
    /// Events were dropped because the client read too slowly.
    EventsLost {
        /// How many.
        count: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// docs/protocol.md, which users read: every value the wire has a closed set of must be
    /// documented there, so that docs and code cannot drift apart unnoticed.
    const DOCS: &str = include_str!("../../docs/protocol.md");

    #[test]
    fn every_closed_set_of_wire_values_is_documented() {
        for code in ErrorCode::ALL {
            assert!(
                DOCS.contains(&format!("| `{}` |", code.name())),
                "error {} is not in the error table of docs/protocol.md",
                code.name()
            );
        }
        for skip in NoCode::SKIPS {
            assert!(
                DOCS.contains(&format!("| `\"{}\"` |", skip.name())),
                "codes.all reason {} is not documented",
                skip.name()
            );
        }
        let touch_needed = DOCS
            .lines()
            .find(|l| l.starts_with("| `touch_needed` |"))
            .expect("touch_needed in the events table");
        for op in Operation::ALL {
            assert!(
                touch_needed.contains(&format!("`{}`", op.name())),
                "operation {} is not documented: {touch_needed}",
                op.name()
            );
            assert_eq!(
                serde_json::to_value(op).expect("encodes"),
                json!(op.name()),
                "the documented name is the wire name"
            );
        }
        for (name, admin) in crate::methods::ALL {
            let row = DOCS
                .lines()
                .find(|l| l.starts_with(&format!("| [`{name}`]")))
                .unwrap_or_else(|| panic!("method {name} is not in the method table"));
            assert_eq!(row.contains("**admin**"), *admin, "{row}");
        }
        let state = DOCS
            .lines()
            .find(|l| l.starts_with("| `state` |"))
            .expect("SeedInfo's state row");
        for s in [
            SeedState::Pending,
            SeedState::Written,
            SeedState::Verified,
            SeedState::Failed,
            SeedState::NotOnKey,
            SeedState::Deleted,
            SeedState::Replaced,
            SeedState::Missing,
        ] {
            let name = serde_json::to_value(s).expect("encodes");
            assert!(
                state.contains(&format!("`{name}`")),
                "{name} not in {state}"
            );
        }
    }

    #[test]
    fn no_code_reasons_are_names_on_the_wire() {
        for (reason, wire) in [
            (NoCode::TouchRequired, "TouchRequired"),
            (NoCode::HotpNotRead, "HotpNotRead"),
            (NoCode::NotOtp, "Unsupported"),
            (NoCode::Failed(ErrorCode::TouchTimeout), "TouchTimeout"),
            (NoCode::Failed(ErrorCode::Busy), "Busy"),
        ] {
            assert_eq!(serde_json::to_value(reason).expect("encodes"), json!(wire));
            assert_eq!(
                serde_json::from_value::<NoCode>(json!(wire)).expect("decodes"),
                reason
            );
        }
        assert!(serde_json::from_value::<NoCode>(json!("Whatever")).is_err());
    }

    #[test]
    fn events_are_tagged_by_type() {
        let e = Event::KeyRemoved {
            key: "0badcafe".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).expect("encodes"),
            json!({"type": "key_removed", "key": "0badcafe"})
        );
        let back: Event =
            serde_json::from_value(json!({"type": "touch_done", "key": "k"})).expect("decodes");
        assert_eq!(back, Event::TouchDone { key: "k".into() });
    }

    #[test]
    fn create_token_defaults_are_the_admin_tools() {
        let p: CreateTokenParams =
            serde_json::from_value(json!({"account": "a@b.c"})).expect("decodes");
        assert_eq!(
            (p.kind, p.algorithm, p.digits, p.period, p.touch),
            (OtpKind::Totp, Algorithm::Sha1, 6, 30, false)
        );
        assert!(p.secret.is_none() && p.serial.is_none());
        let err = serde_json::from_value::<CreateTokenParams>(json!({"account": "a", "colour": 1}));
        assert!(err.is_err(), "unknown params are refused");
    }

    #[test]
    fn created_token_debug_hides_the_secret() {
        let created = CreatedToken {
            seed_id: None,
            token: TokenInfo {
                key: "k".into(),
                name: "1:a".into(),
                serial: Some("1".into()),
                account: "a".into(),
                period: 30,
                kind: OtpKind::Totp,
                algorithm: Some(Algorithm::Sha1),
                touch: Some(false),
            },
            serial: "1".into(),
            secret: SecretText::new("JBSWY3DPEHPK3PXP".into()),
            digits: 6,
            algorithm: Algorithm::Sha1,
            period: 30,
            kind: OtpKind::Totp,
        };
        assert!(!format!("{created:?}").contains("JBSWY3DPEHPK3PXP"));
        // ...but the wire form carries it: this answer exists to hand it to the admin.
        assert_eq!(
            serde_json::to_value(&created).expect("encodes")["secret"],
            json!("JBSWY3DPEHPK3PXP")
        );
    }
}
