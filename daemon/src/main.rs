//! `oathkeyd`: the daemon binary. Parses flags, sets up logging, runs the daemon, handles
//! signals: SIGHUP reloads the configuration, SIGTERM and SIGINT shut down cleanly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use oathkeyd::config::{Config, FileConfig, Overrides, Scope, default_config_file};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::reload;

#[derive(Parser, Debug)]
#[command(
    name = "oathkeyd",
    version,
    about = "The oathkey daemon: owns OTP keys, serves clients"
)]
struct Args {
    /// Config file (default: /etc/oathkey/oathkeyd.toml for the system daemon,
    /// $XDG_CONFIG_HOME/oathkey/oathkeyd.toml for a user daemon; used if it exists).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run as the system daemon (the default when started as root).
    #[arg(long, conflicts_with = "user")]
    system: bool,
    /// Run as a user (session) daemon (the default when not root).
    #[arg(long)]
    user: bool,
    /// Socket path.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Group that owns the socket.
    #[arg(long, value_name = "GROUP")]
    socket_group: Option<String>,
    /// Make this user (name or uid) an admin; repeatable.
    #[arg(long = "admin-user", value_name = "USER")]
    admin_users: Vec<String>,
    /// Make members of this group (name or gid) admins; repeatable.
    #[arg(long = "admin-group", value_name = "GROUP")]
    admin_groups: Vec<String>,
    /// Run N in-process virtual keys.
    #[arg(long, value_name = "N")]
    emulate: Option<u32>,
    /// Directory for the seed ledger and the virtual keys' state.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Touch policy of the virtual keys: approve, deny, after:MS or button.
    #[arg(long, value_name = "POLICY")]
    emulate_touch: Option<String>,
    /// Microseconds each report of a virtual key takes (1000 models a full-speed USB key).
    #[arg(long, value_name = "US")]
    emulate_report_us: Option<u64>,
    /// Attach a virtual key served by `oathkey-emulator serve --udp ADDR`; repeatable.
    #[arg(long = "udp-key", value_name = "ADDR")]
    udp_keys: Vec<String>,
    /// D-Bus frontend: auto, system, session or off.
    #[arg(long, value_name = "BUS")]
    dbus: Option<String>,
    /// Do not look for real HID keys (Nitrokey 3).
    #[arg(long)]
    no_hid: bool,
    /// Do not look for smart-card keys through PC/SC (pcscd).
    #[arg(long)]
    no_pcsc: bool,
    /// Write the man page into DIR and exit (for packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_man: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or directives like oathkeyd=debug);
    /// the environment variable OATHKEY_LOG works too.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
}

impl Args {
    fn scope(&self) -> Scope {
        if self.system || (!self.user && nix::unistd::geteuid().is_root()) {
            Scope::System
        } else {
            Scope::User
        }
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            socket: self.socket.clone(),
            socket_group: self.socket_group.clone(),
            admin_users: self.admin_users.clone(),
            admin_groups: self.admin_groups.clone(),
            log_level: self
                .log_level
                .clone()
                .or_else(|| std::env::var("OATHKEY_LOG").ok()),
            no_hid: self.no_hid,
            no_pcsc: self.no_pcsc,
            emulate: self.emulate,
            state_dir: self.state_dir.clone(),
            emulate_touch: self.emulate_touch.clone(),
            emulate_report_us: self.emulate_report_us,
            udp_keys: self.udp_keys.clone(),
            dbus: self.dbus.clone(),
        }
    }

    /// Reads the config file (an explicit one must exist) and applies the flags.
    fn load(&self) -> Result<Config> {
        let scope = self.scope();
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => {
                let path = default_config_file(scope);
                if path.exists() {
                    FileConfig::load(&path)?
                } else {
                    FileConfig::default()
                }
            }
        };
        Config::resolve(scope, file, &self.overrides()).map_err(anyhow::Error::msg)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        use clap::CommandFactory;
        let mut page = Vec::new();
        let man = clap_mangen::Man::new(Args::command()).section("8");
        return match man
            .render(&mut page)
            .and_then(|()| std::fs::create_dir_all(dir))
            .and_then(|()| std::fs::write(dir.join("oathkeyd.8"), page))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("oathkeyd: cannot write the man page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oathkeyd: {e:#}");
            return ExitCode::from(2);
        }
    };
    // A user daemon beside the system one would fight it for the same keys (the logged-in user
    // can open them too, for WebAuthn). D-Bus session activation may start one: refuse.
    let system_socket = std::path::Path::new(oathkey_protocol::paths::SYSTEM_SOCKET);
    if config.scope == Scope::User && config.hid && oathkeyd::socket::serving(system_socket) {
        eprintln!(
            "oathkeyd: the system oathkeyd is running ({}) and owns the keys; use it (oathkey and \
             oathkey-desktop find it by default), stop it first (systemctl stop oathkeyd), or run \
             this one with --no-hid for virtual keys only",
            system_socket.display()
        );
        return ExitCode::FAILURE;
    }
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|e| {
        eprintln!(
            "oathkeyd: bad log filter {:?} ({e}); using info",
            config.log_level
        );
        EnvFilter::new("info")
    });
    let (filter, filter_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                // Colours only for people: journald and log files get plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oathkeyd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args, config, filter_handle)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr (journald takes it from there), whatever the log filter.
            eprintln!("oathkeyd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    args: &Args,
    config: Config,
    filter: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
) -> Result<()> {
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut daemon = oathkeyd::start(config).await?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration");
                match args.load() {
                    Ok(new) => {
                        match EnvFilter::try_new(&new.log_level) {
                            Ok(f) => { let _ = filter.reload(f); }
                            Err(e) => warn!("keeping the old log filter: {e}"),
                        }
                        let restart = daemon.reload(new);
                        if !restart.is_empty() {
                            warn!("changes to {} take effect after a restart", restart.join(", "));
                        }
                    }
                    Err(e) => warn!("keeping the old configuration: {e:#}"),
                }
            }
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
        }
    }
    daemon.shutdown().await;
    Ok(())
}
