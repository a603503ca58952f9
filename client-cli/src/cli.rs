//! The command line, as clap definitions (also the source of the man page and completions).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Show the key's Mode and Key Press settings, or change them (each change needs a touch).
    Config(ConfigArgs),
    /// Create or delete tokens (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the main job on a virtual key: a private daemon, a seeded token, live codes.
    Demo {
        /// How many code periods to show live.
        #[arg(long, default_value_t = 2)]
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
}

/// The admin tool's form.
#[derive(Args, Debug)]
pub struct NewToken {
    /// The user the token is for (the UPN, e.g. alice@contoso.com).
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

fn parse_period(s: &str) -> Result<u32, String> {
    match s {
        "30" => Ok(30),
        "60" => Ok(60),
        _ => Err("period must be 30 or 60 seconds (what Azure MFA accepts)".into()),
    }
}
