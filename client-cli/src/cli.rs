//! The command line, as clap definitions (also the source of the man page and completions).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use oathkey_protocol::types::Algorithm;

/// oathkey: programmable OTP keys from the command line.
///
/// Talks to oathkeyd, which owns the keys. Scripts: `oathkey code` prints only the code.
#[derive(Parser, Debug)]
#[command(name = "oathkey", version, propagate_version = true)]
pub struct Cli {
    /// oathkeyd's socket (default: $OATHKEY_SOCKET, a user daemon's socket, then the system one).
    #[arg(long, global = true, value_name = "PATH", env = "OATHKEY_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The key to use, by id (its serial); needed when several keys are plugged in.
    #[arg(long, global = true, value_name = "ID")]
    pub key: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Compute codes for this unix time instead of now (admins; readers within one period).
    #[arg(long, global = true, value_name = "UNIX_TIME")]
    pub at: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the keys oathkeyd owns.
    Keys,
    /// List the tokens on the key(s).
    Tokens,
    /// Print one token's current code (and nothing else).
    Code {
        /// The token: its name, serial or account; optional when there is only one.
        token: Option<String>,
    },
    /// Show every token's code with the seconds it stays valid.
    Codes {
        /// Also compute codes of tokens that need a touch (one touch each).
        #[arg(long)]
        include_touch: bool,
    },
    /// Make a key blink so you can tell which one it is.
    Wink,
    /// Print the daemon's events (keys plugged and unplugged, touch requests, changes) as JSON
    /// lines as they happen.
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Show the key's Mode and Key Press settings, or change them (each change needs a touch).
    Config(ConfigArgs),
    /// Unlock a key whose tokens are locked with an access code (admin). oathkeyd keeps the key
    /// derived from it in memory until the key is unplugged or oathkeyd stops.
    Unlock(CodeSource),
    /// Set or clear a key's access code (admin).
    #[command(subcommand, name = "access-code")]
    AccessCode(AccessCodeCommand),
    /// Create or delete tokens (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Seed one key per user and write the seed file: insert a key, it is seeded, remove it,
    /// insert the next (admin).
    Provision(ProvisionArgs),
    /// Write seeds from the daemon's ledger to a seed file (admin).
    Export(ExportArgs),
    /// The daemon's seed ledger (admin).
    #[command(subcommand)]
    Seeds(SeedsCommand),
    /// Check seed files without a daemon.
    #[command(subcommand)]
    Seedfile(SeedfileCommand),
    /// Microsoft Entra ID: sign in, upload tokens through Microsoft Graph, compare with the
    /// ledger (see docs/entra.md).
    #[command(subcommand)]
    Entra(EntraCommand),
    /// Check a code against a seed file, as the MFA service's activation does (no daemon).
    Activate(ActivateArgs),
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true, name = "generate-assets")]
    GenerateAssets {
        /// Output directory (man/ and completions/ are created in it).
        dir: PathBuf,
    },
    /// Run the main job on a virtual key: a private daemon, a seeded token, live codes.
    Demo {
        /// How many codes to show live, one per 30 s period: the current one and those after.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        periods: u32,
    },
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl Switch {
    /// As a boolean.
    pub fn enabled(self) -> bool {
        self == Switch::On
    }
}

/// `oathkey config` options.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Mode: the keyboard interface.
    #[arg(long, value_enum)]
    pub keyboard: Option<Switch>,
    /// Mode: the U2F/FIDO function.
    #[arg(long, value_enum)]
    pub u2f: Option<Switch>,
    /// Key Press: every code needs a touch of the key.
    #[arg(long, value_enum)]
    pub key_press: Option<Switch>,
}

/// Hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hash {
    /// HMAC-SHA-1 (Azure's CSV upload takes only this).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

/// The one hash type every crate shares. `Hash` exists only because clap's `ValueEnum` (the
/// possible values and their help) cannot be implemented for another crate's type, and
/// `oathkey-otp` stays free of clap.
impl From<Hash> for Algorithm {
    fn from(h: Hash) -> Self {
        match h {
            Hash::Sha1 => Algorithm::Sha1,
            Hash::Sha256 => Algorithm::Sha256,
            Hash::Sha512 => Algorithm::Sha512,
        }
    }
}

/// `oathkey token ...`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token on the key: the vendor admin tool's New Token, Generate and Save.
    New(NewToken),
    /// Delete a token from the key (touch needed).
    Delete {
        /// The token: its name, serial or account.
        token: String,
    },
    /// Give a token another user (account), keeping its seed, serial and period, on keys that
    /// rename in place (YubiKey 5.3 and later); the seed ledger follows.
    Rename {
        /// The token: its name, serial or account.
        token: String,
        /// The new user (UPN).
        #[arg(long, value_name = "UPN")]
        user: String,
    },
}

/// Where an access code comes from: the terminal, or a file (never the command line, where
/// other users and shell histories would see it).
#[derive(Args, Debug)]
pub struct CodeSource {
    /// Read the access code from the first line of this file (a systemd credential, a file
    /// only you can read) instead of asking on the terminal.
    #[arg(long, value_name = "FILE")]
    pub code_file: Option<PathBuf>,
}

/// `oathkey access-code ...`
#[derive(Subcommand, Debug)]
pub enum AccessCodeCommand {
    /// Set the key's access code: its tokens are then locked for every application that does
    /// not give it (asked twice on the terminal).
    Set(CodeSource),
    /// Clear the key's access code.
    Clear,
}

/// The admin tool's form.
#[derive(Args, Debug)]
pub struct NewToken {
    /// The user the token is for (the UPN, e.g. alice@contoso.com). Any name is taken; one that
    /// an export format would refuse is warned about at once.
    #[arg(long, value_name = "UPN")]
    pub user: String,
    /// Token serial (text; leading zeros kept); generated when absent.
    #[arg(long)]
    pub serial: Option<String>,
    /// Hash function.
    #[arg(long, value_enum, default_value = "sha1")]
    pub hash: Hash,
    /// Code length.
    #[arg(long, default_value_t = 6, value_parser = parse_digits)]
    pub digits: u8,
    /// Period in seconds.
    #[arg(long, default_value_t = 30, value_parser = parse_period)]
    pub period: u32,
    /// Time-based token (the default).
    #[arg(long, conflicts_with = "hotp")]
    pub totp: bool,
    /// Counter-based token.
    #[arg(long)]
    pub hotp: bool,
    /// First HOTP counter value.
    #[arg(long, default_value_t = 0, requires = "hotp")]
    pub counter: u32,
    /// Every code needs a touch of the key.
    #[arg(long)]
    pub touch: bool,
    /// Import this Base32 secret instead of generating one (read from the environment variable
    /// OATHKEY_SECRET when the value is `-`, so it stays out of the process list).
    #[arg(long, value_name = "BASE32")]
    pub secret: Option<String>,
}

fn parse_digits(s: &str) -> Result<u8, String> {
    match s {
        "6" => Ok(6),
        "8" => Ok(8),
        _ => Err("digits must be 6 or 8".into()),
    }
}

/// A code as people type it: digits, maybe grouped with spaces ("123 456"), 6 or 8 of them.
/// Anything else cannot be a code, which is bad usage rather than a code not accepted.
fn parse_code(s: &str) -> Result<String, String> {
    let code: String = s.chars().filter(|c| *c != ' ').collect();
    if code.bytes().all(|b| b.is_ascii_digit()) && matches!(code.len(), 6 | 8) {
        Ok(code)
    } else {
        Err("a code is 6 or 8 digits (spaces are ignored)".into())
    }
}

fn parse_period(s: &str) -> Result<u32, String> {
    match s {
        "30" => Ok(30),
        "60" => Ok(60),
        _ => Err("period must be 30 or 60 seconds (what Azure MFA accepts)".into()),
    }
}

/// Seed-file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Azure MFA / Entra ID CSV (tseed.csv).
    AzureCsv,
    /// otpauth:// URIs, one per line.
    Otpauth,
    /// PSKC 1.0 XML (RFC 6030), plain secrets.
    Pskc,
    /// Microsoft Graph bulk JSON body.
    GraphJson,
    /// privacyIDEA OATH CSV.
    PrivacyideaCsv,
}

/// Whose rules a seed file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// Azure MFA / Entra ID CSV upload.
    Azure,
    /// Microsoft Graph.
    Graph,
    /// privacyIDEA.
    Privacyidea,
    /// Only basic sanity.
    Any,
}

/// `oathkey provision`.
#[derive(Args, Debug)]
pub struct ProvisionArgs {
    /// File with one user (UPN) per line; blank lines and lines starting with # are ignored
    /// (a # inside a line is part of the UPN, as in guest accounts' #EXT#). UTF-8 (with or
    /// without a byte order mark) or UTF-16 with one, as Notepad and Excel save it.
    #[arg(long, value_name = "FILE")]
    pub users: PathBuf,
    /// The Azure CSV seed file to append to (created 0600 if missing; users already in it are
    /// skipped, so an interrupted run can be started again).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Seed every key plugged in now (a USB hub) instead of waiting for one key at a time.
    #[arg(long)]
    pub keys_present: bool,
    /// Set Mode: Keyboard on each key.
    #[arg(long, value_enum)]
    pub keyboard: Option<Switch>,
    /// Set Mode: U2F on each key.
    #[arg(long, value_enum)]
    pub u2f: Option<Switch>,
    /// Set Key Press on each key.
    #[arg(long, value_enum)]
    pub key_press: Option<Switch>,
    /// Hash function (Azure's CSV takes only SHA-1).
    #[arg(long, value_enum, default_value = "sha1")]
    pub hash: Hash,
    /// Code length (Azure: 6).
    #[arg(long, default_value_t = 6, value_parser = parse_digits)]
    pub digits: u8,
    /// Period in seconds.
    #[arg(long, default_value_t = 30, value_parser = parse_period)]
    pub period: u32,
    /// Every code needs a touch.
    #[arg(long)]
    pub touch: bool,
    /// The manufacturer column of the seed file (default: from the key's model).
    #[arg(long)]
    pub manufacturer: Option<String>,
    /// The model column of the seed file (default: the key's model).
    #[arg(long)]
    pub model: Option<String>,
    /// Write rows Azure's rules would reject (each with a warning) instead of refusing. Tokens
    /// the CSV cannot hold at all (SHA-256/512, 8 digits) are refused anyway.
    #[arg(long)]
    pub force: bool,
    /// Also seed keys that already hold tokens (by default only blank keys are used, so that a
    /// key seeded by an interrupted run is not given to a second user).
    #[arg(long)]
    pub allow_used_keys: bool,
    /// Give up waiting for a key after this many seconds (0: wait forever).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub wait: u64,
}

/// `oathkey export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The format to write.
    #[arg(long, value_enum, default_value = "azure-csv")]
    pub format: FormatArg,
    /// The file to write (created 0600); standard output when absent.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Add to an existing file of the same format.
    #[arg(long, conflicts_with = "replace")]
    pub append: bool,
    /// Replace an existing file.
    #[arg(long)]
    pub replace: bool,
    /// Write rows the target would reject instead of refusing (each is shown as a warning).
    #[arg(long)]
    pub force: bool,
    /// Mark the seeds exported even when writing to a pipe or a terminal (by default, output
    /// to standard output is marked only when it is redirected into a file), so that
    /// `seeds purge --exported` deletes them: use it once the output is safely stored.
    #[arg(long)]
    pub mark_exported: bool,
    /// Also seeds not known to be on a key: pending, failed, not on key (by default only
    /// verified and written seeds are exported).
    #[arg(long)]
    pub include_incomplete: bool,
    /// Only seeds never exported before.
    #[arg(long)]
    pub new_only: bool,
    /// Only this serial (repeatable).
    #[arg(long = "serial", value_name = "SERIAL")]
    pub serials: Vec<String>,
    /// Only this user (repeatable).
    #[arg(long = "user", value_name = "UPN")]
    pub users: Vec<String>,
    /// Also write a QR code PNG per token (its otpauth URI) into this directory.
    #[arg(long, value_name = "DIR")]
    pub qr_dir: Option<PathBuf>,
    /// The manufacturer column (default: from the key's model).
    #[arg(long)]
    pub manufacturer: Option<String>,
    /// The model column (default: the key's model).
    #[arg(long)]
    pub model: Option<String>,
}

/// `oathkey seeds ...`
#[derive(Subcommand, Debug)]
pub enum SeedsCommand {
    /// List the seed records (no secrets).
    List {
        /// Also records not verified on a key.
        #[arg(long)]
        all: bool,
        /// Only records whose seed no key holds any more (deleted, replaced, missing from the
        /// key, never written): tokens to remove from the MFA service they were uploaded to.
        #[arg(long, conflicts_with = "all")]
        stale: bool,
    },
    /// Delete seeds from the ledger.
    #[command(group = clap::ArgGroup::new("which").required(true).multiple(true))]
    Purge {
        /// Delete the seeds already exported to a seed file.
        #[arg(long, group = "which")]
        exported: bool,
        /// Delete the seeds no key holds any more (see `seeds list --stale`), exported or not.
        #[arg(long, group = "which")]
        stale: bool,
    },
}

/// `oathkey seedfile ...`
#[derive(Subcommand, Debug)]
pub enum SeedfileCommand {
    /// Validate a seed file and print every problem with its line, as the target would.
    Check {
        /// The file.
        file: PathBuf,
        /// Whose rules to check against (default: the format's own target).
        #[arg(long, value_enum)]
        target: Option<TargetArg>,
        /// The file's format (default: detected).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
}

/// `oathkey activate`.
#[derive(Args, Debug)]
pub struct ActivateArgs {
    /// The seed file holding the token.
    #[arg(long, value_name = "FILE")]
    pub seed_file: PathBuf,
    /// The token's serial.
    #[arg(long)]
    pub serial: String,
    /// The code the key shows: 6 or 8 digits (spaces are ignored).
    #[arg(long, value_parser = parse_code)]
    pub code: String,
    /// How many steps on each side of now are accepted (Azure: 1; at most 100, the most
    /// `check_code` searches: a larger window is refused rather than searched as 100).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(0..=oathkey_seedfile::activate::MAX_WINDOW))]
    pub window: u64,
    /// The seed file's format (default: detected).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

/// `oathkey entra` commands.
#[derive(Subcommand, Debug)]
pub enum EntraCommand {
    /// Sign in to Microsoft Graph: in a browser with a code (device authorization), or
    /// unattended with the app's certificate or client secret. Tokens are cached 0600.
    Login(EntraApp),
    /// Delete the cached sign-in.
    Logout,
    /// Create the ledger's verified tokens (or a seed file's) in Entra, assigned to their
    /// users; skip those Entra has (by serial); with --activate, activate each with a code
    /// read from its key (admin).
    Upload(EntraUploadArgs),
    /// Entra's tokens beside the ledger's seeds, with what to do about each (admin).
    Status(EntraApp),
}

/// The tenant and app registration (flags override `entra.toml`).
#[derive(Args, Debug, Clone, Default)]
pub struct EntraApp {
    /// The tenant: its id or a domain (default: `tenant` in entra.toml).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// The app registration's Application (client) ID (default: `client_id` in entra.toml).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Sign in unattended with this PEM file holding the app's certificate and its unencrypted
    /// RSA key (client credentials; default: `certificate` in entra.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "client_secret_file")]
    pub certificate: Option<PathBuf>,
    /// Sign in unattended with the client secret in this file's first line, for example a
    /// systemd credential ($CREDENTIALS_DIRECTORY/...); never on the command line (default:
    /// `client_secret_file` in entra.toml).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
}

/// `oathkey entra upload` options.
#[derive(Args, Debug)]
pub struct EntraUploadArgs {
    /// The tenant and app.
    #[command(flatten)]
    pub app: EntraApp,
    /// Take the tokens from this seed file (any format oathkey reads) instead of the ledger.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Activate each token with the code its key shows now (the key must be plugged in).
    #[arg(long)]
    pub activate: bool,
    /// Show what would be done; change nothing in the tenant.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the report (serial, upn, action, result, error) to this CSV file (0600).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}
