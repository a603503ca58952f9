//! Configuration: a TOML file where every field is optional, then command-line flags on top.
//!
//! Unknown fields are an error that names the file and the line, so a typo never silently
//! leaves a setting at its default. `docs/configuration.md` lists every field.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oathkey_emulator::TouchPolicy;
use serde::Deserialize;

/// The config file as written: every field optional.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Socket path.
    pub socket: Option<PathBuf>,
    /// Group that owns the socket (its members can connect as readers).
    pub socket_group: Option<String>,
    /// Socket permissions, octal text such as "0660".
    pub socket_mode: Option<String>,
    /// Users (names or numeric uids) who are admins.
    pub admin_users: Option<Vec<String>>,
    /// Groups (names or numeric gids) whose members are admins.
    pub admin_groups: Option<Vec<String>>,
    /// Log filter, such as "info" or "oathkeyd=debug".
    pub log_level: Option<String>,
    /// Look for real keys through hidapi.
    pub hid: Option<bool>,
    /// Watch PC/SC readers (pcscd) for YubiKeys and other smart-card keys.
    pub pcsc: Option<bool>,
    /// How often to look for plugged and unplugged keys, in milliseconds.
    pub hid_poll_ms: Option<u64>,
    /// How many in-process virtual keys to run.
    pub emulate: Option<u32>,
    /// Where virtual keys keep their state (and, later, the seed ledger).
    pub state_dir: Option<PathBuf>,
    /// Touch policy of the virtual keys: approve, deny, after:MS or button.
    pub emulate_touch: Option<String>,
    /// Microseconds per report the virtual keys take (1000 models a full-speed USB key; 0 is
    /// as fast as possible).
    pub emulate_report_us: Option<u64>,
    /// Virtual keys served by `oathkey-emulator serve --udp`, as host:port.
    pub udp_keys: Option<Vec<String>>,
    /// D-Bus: "auto" (the system bus for the system daemon, the session bus for a user daemon;
    /// carry on without D-Bus if the bus is not there), "system", "session" or "off".
    pub dbus: Option<String>,
    /// Most clients connected at once.
    pub max_clients: Option<usize>,
    /// Most connections one reader (uid) may hold.
    pub max_clients_per_user: Option<usize>,
    /// Connections kept for admins (readers never take the last ones).
    pub admin_reserved_clients: Option<usize>,
    /// Seconds a reader's connection may sit idle (no request, no subscription).
    pub idle_timeout_s: Option<u64>,
    /// Most requests one client may have in flight.
    pub max_requests_per_client: Option<usize>,
    /// Seconds a client may leave a line unfinished before it is disconnected.
    pub stalled_line_timeout_s: Option<u64>,
    /// Seconds in-flight requests get to finish at shutdown.
    pub shutdown_grace_s: Option<u64>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The file is not valid (the message carries line and column).
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.into(),
            cause,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })
    }

    /// Parses config text; the error names the line and column.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }
}

/// Whether and where the D-Bus frontend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbusMode {
    /// The bus that fits the scope, if it is there.
    Auto,
    /// The system bus; failing to get it stops the start.
    System,
    /// The session bus; failing to get it stops the start.
    Session,
    /// No D-Bus.
    Off,
}

impl std::str::FromStr for DbusMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "system" => Ok(Self::System),
            "session" => Ok(Self::Session),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "dbus must be auto, system, session or off, not {other:?}"
            )),
        }
    }
}

/// Whether the daemon serves the whole system or one user's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Runs as root or a service user; socket under /run.
    System,
    /// Runs as a user; socket under $XDG_RUNTIME_DIR.
    User,
}

/// The settings in force: file values, overridden by flags, filled with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// System or user daemon.
    pub scope: Scope,
    /// Socket path.
    pub socket: PathBuf,
    /// Socket group name.
    pub socket_group: Option<String>,
    /// Socket permission bits.
    pub socket_mode: u32,
    /// Admin users.
    pub admin_users: Vec<String>,
    /// Admin groups.
    pub admin_groups: Vec<String>,
    /// Log filter.
    pub log_level: String,
    /// Real keys through hidapi.
    pub hid: bool,
    /// Smart-card keys through PC/SC.
    pub pcsc: bool,
    /// Hot-plug polling interval.
    pub hid_poll: Duration,
    /// In-process virtual keys.
    pub emulate: u32,
    /// State directory.
    pub state_dir: PathBuf,
    /// Touch policy of virtual keys.
    pub emulate_touch: TouchPolicy,
    /// Time per report of virtual keys.
    pub emulate_report_interval: Duration,
    /// UDP virtual keys.
    pub udp_keys: Vec<String>,
    /// D-Bus frontend.
    pub dbus: DbusMode,
    /// Client limit.
    pub max_clients: usize,
    /// Per-reader connection limit.
    pub max_clients_per_user: usize,
    /// Connections kept for admins.
    pub admin_reserved_clients: usize,
    /// Idle reader connections are closed after this long.
    pub idle_timeout: Duration,
    /// Per-client in-flight limit.
    pub max_requests_per_client: usize,
    /// Partial-line timeout.
    pub stalled_line_timeout: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
}

/// Values from the command line; `None` leaves the file's value (or the default).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--socket`.
    pub socket: Option<PathBuf>,
    /// `--socket-group`.
    pub socket_group: Option<String>,
    /// `--admin-user` (adds).
    pub admin_users: Vec<String>,
    /// `--admin-group` (adds).
    pub admin_groups: Vec<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--no-hid`.
    pub no_hid: bool,
    /// `--no-pcsc`.
    pub no_pcsc: bool,
    /// `--emulate`.
    pub emulate: Option<u32>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--emulate-touch`.
    pub emulate_touch: Option<String>,
    /// `--emulate-report-us`.
    pub emulate_report_us: Option<u64>,
    /// `--udp-key` (adds).
    pub udp_keys: Vec<String>,
    /// `--dbus`.
    pub dbus: Option<String>,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("socket_mode {text:?} is not an octal permission such as \"0660\""))
}

impl Config {
    /// Resolves the settings for `scope` from a file (if any) and flags.
    pub fn resolve(scope: Scope, file: FileConfig, flags: &Overrides) -> Result<Self, String> {
        let socket = flags
            .socket
            .clone()
            .or(file.socket)
            .unwrap_or_else(|| default_socket(scope));
        if socket.as_os_str().is_empty() {
            return Err(
                "XDG_RUNTIME_DIR is not set, so a user daemon has no default socket; \
                        give one with --socket (clients find it through OATHKEY_SOCKET)"
                    .into(),
            );
        }
        let socket_mode = match &file.socket_mode {
            Some(m) => parse_mode(m)?,
            None if scope == Scope::System => 0o660,
            None => 0o600,
        };
        let mut admin_users = file.admin_users.unwrap_or_default();
        admin_users.extend(flags.admin_users.iter().cloned());
        let mut admin_groups = file.admin_groups.unwrap_or_default();
        admin_groups.extend(flags.admin_groups.iter().cloned());
        let mut udp_keys = file.udp_keys.unwrap_or_default();
        udp_keys.extend(flags.udp_keys.iter().cloned());
        let emulate_touch: TouchPolicy = flags
            .emulate_touch
            .clone()
            .or(file.emulate_touch)
            .map_or(Ok(TouchPolicy::default()), |t| t.parse())?;
        Ok(Self {
            scope,
            socket,
            socket_group: flags.socket_group.clone().or(file.socket_group),
            socket_mode,
            admin_users,
            admin_groups,
            log_level: flags
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            hid: !flags.no_hid && file.hid.unwrap_or(true),
            pcsc: !flags.no_pcsc && file.pcsc.unwrap_or(true),
            hid_poll: Duration::from_millis(file.hid_poll_ms.unwrap_or(500).max(50)),
            emulate: flags.emulate.or(file.emulate).unwrap_or(0),
            state_dir: flags
                .state_dir
                .clone()
                .or(file.state_dir)
                .unwrap_or_else(|| default_state_dir(scope)),
            emulate_touch,
            emulate_report_interval: Duration::from_micros(
                flags
                    .emulate_report_us
                    .or(file.emulate_report_us)
                    .unwrap_or(0),
            ),
            udp_keys,
            dbus: flags
                .dbus
                .clone()
                .or(file.dbus)
                .unwrap_or_else(|| "auto".into())
                .parse()?,
            max_clients: file.max_clients.unwrap_or(1024).max(1),
            max_clients_per_user: file.max_clients_per_user.unwrap_or(32).max(1),
            admin_reserved_clients: file.admin_reserved_clients.unwrap_or(32),
            idle_timeout: Duration::from_secs(file.idle_timeout_s.unwrap_or(120).max(1)),
            max_requests_per_client: file.max_requests_per_client.unwrap_or(64).max(1),
            stalled_line_timeout: Duration::from_secs(
                file.stalled_line_timeout_s.unwrap_or(30).max(1),
            ),
            shutdown_grace: Duration::from_secs(file.shutdown_grace_s.unwrap_or(5)),
        })
    }
}

/// The default socket for a scope.
pub fn default_socket(scope: Scope) -> PathBuf {
    match scope {
        Scope::System => PathBuf::from(oathkey_protocol::paths::SYSTEM_SOCKET),
        // Without $XDG_RUNTIME_DIR there is no private place clients would also look in;
        // resolve() asks for --socket instead of guessing one.
        Scope::User => oathkey_protocol::paths::user_socket().unwrap_or_default(),
    }
}

/// The default state directory for a scope.
pub fn default_state_dir(scope: Scope) -> PathBuf {
    match scope {
        Scope::System => PathBuf::from("/var/lib/oathkey"),
        Scope::User => std::env::var_os("XDG_STATE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("oathkey"),
    }
}

/// The default config file for a scope.
pub fn default_config_file(scope: Scope) -> PathBuf {
    match scope {
        Scope::System => PathBuf::from("/etc/oathkey/oathkeyd.toml"),
        Scope::User => std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(std::env::temp_dir)
            .join("oathkey/oathkeyd.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = Config::resolve(Scope::System, FileConfig::default(), &Overrides::default())
            .expect("valid");
        assert_eq!(c.socket, PathBuf::from("/run/oathkey/oathkeyd.sock"));
        assert_eq!(c.socket_mode, 0o660);
        assert!(c.hid);
        assert_eq!(c.emulate, 0);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/oathkey"));
        assert_eq!(c.max_clients, 1024);
        assert_eq!(c.max_clients_per_user, 32);
        assert_eq!(c.admin_reserved_clients, 32);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
    }

    #[test]
    fn flags_override_the_file() {
        let file =
            FileConfig::parse("emulate = 2\nlog_level = \"warn\"\nadmin_users = [\"alice\"]\n")
                .expect("valid");
        let flags = Overrides {
            socket: Some(PathBuf::from("/tmp/x.sock")),
            emulate: Some(3),
            admin_users: vec!["bob".into()],
            no_hid: true,
            ..Overrides::default()
        };
        let c = Config::resolve(Scope::User, file, &flags).expect("valid");
        assert_eq!(c.emulate, 3);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.admin_users, ["alice", "bob"]);
        assert!(!c.hid);
        assert_eq!(c.socket_mode, 0o600);
    }

    #[test]
    fn a_user_daemon_without_a_runtime_dir_needs_a_socket() {
        // Scope::User without --socket depends on $XDG_RUNTIME_DIR; with it unset (as in CI)
        // resolve refuses instead of guessing a path clients would not look in.
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            let err = Config::resolve(Scope::User, FileConfig::default(), &Overrides::default())
                .expect_err("no default socket");
            assert!(err.contains("--socket"), "{err}");
        }
        let flags = Overrides {
            socket: Some(PathBuf::from("/tmp/y.sock")),
            ..Overrides::default()
        };
        let c = Config::resolve(Scope::User, FileConfig::default(), &flags).expect("valid");
        assert_eq!(c.socket, PathBuf::from("/tmp/y.sock"));
    }

    #[test]
    fn unknown_fields_are_errors_with_a_line_number() {
        let err = FileConfig::parse("emulate = 1\n\nadmin_user = [\"typo\"]\n")
            .expect_err("unknown field");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("admin_user"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        let file = FileConfig::parse("socket_mode = \"rw-rw----\"").expect("a string");
        assert!(Config::resolve(Scope::System, file, &Overrides::default()).is_err());
        let file = FileConfig::parse("emulate_touch = \"sometimes\"").expect("a string");
        assert!(Config::resolve(Scope::System, file, &Overrides::default()).is_err());
        assert!(FileConfig::parse("emulate = \"two\"").is_err());
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("oathkeyd.toml");
        std::fs::write(&path, "bogus = 1\n").expect("written");
        let err = FileConfig::load(&path).expect_err("invalid").to_string();
        assert!(
            err.contains("oathkeyd.toml") && err.contains("line 1"),
            "{err}"
        );
    }
}
