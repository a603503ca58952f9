//! oathkeyd: the daemon that owns every OTP key and serves many clients safely.
//!
//! # Layout
//! - [`config`]: the TOML configuration and command-line overrides.
//! - [`auth`]: callers and their roles (reader, admin) from peer credentials; [`budget`]: how
//!   many connections each may hold.
//! - [`keys`]: the key registry, one actor (thread) per key, and the key sources (hidapi
//!   hot-plug polling, in-process virtual keys, UDP virtual keys).
//! - [`service`]: the service core: every operation with its authorization. Frontends only
//!   translate. A new token is checked against `oathkey-otp`'s TOTP, the computation the
//!   virtual key uses too.
//! - [`ledger`]: the write-ahead seed ledger: every seed is on disk before it goes to a key.
//! - [`rpc`]: JSON-RPC 2.0 parsing and dispatch to the service; [`strict_json`] reads its
//!   lines, refusing objects that repeat a member.
//! - [`dbus`]: the D-Bus frontend (Linux): the same service on the system or session bus.
//! - [`socket`], [`server`]: the local socket (permissions, single-instance lock) and the
//!   connection handling (limits, cancellation on disconnect, events).
//! - [`statedir`], [`safe_fs`]: the state directory, locked by one daemon, and the rules that
//!   keep another local user from preparing the paths where seeds are written.
//!
//! [`start`] brings a daemon up from a [`config::Config`] and returns a [`Running`] daemon that
//! can be reconfigured (SIGHUP) and shut down (SIGTERM); the binary only adds signal handling,
//! so tests run the same code in-process.

pub mod auth;
pub mod budget;
pub mod clock;
pub mod config;
pub mod dbus;
pub mod keys;
pub mod ledger;
pub mod rpc;
pub mod safe_fs;
pub mod server;
pub mod service;
pub mod socket;
pub mod statedir;
pub mod strict_json;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::keys::Registry;
use crate::keys::sources::{UdpKeys, start_virtual_keys};
use crate::server::Limits;
use crate::service::Service;
use crate::socket::SocketGuard;

/// A running daemon.
#[derive(Debug)]
pub struct Running {
    service: Arc<Service>,
    config: Config,
    udp: UdpKeys,
    stop_sources: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    socket: SocketGuard,
    state: statedir::StateDir,
    dbus: Option<dbus::DbusFrontend>,
}

/// Starts a daemon: binds the socket (refusing if another daemon holds it), attaches the
/// configured keys, and serves.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    // The state directory first: a daemon that cannot have it never shows a socket.
    let state = statedir::StateDir::open(&config.state_dir, &config.socket)?;
    let (listener, socket) = socket::bind(
        &config.socket,
        config.socket_mode,
        config.socket_group.as_deref(),
    )?;
    let ledger_path = state.path().join("seeds.ledger");
    let ledger = tokio::task::spawn_blocking(move || ledger::Ledger::open(&ledger_path))
        .await
        .context("the seed ledger failed to open")??;
    let registry = Registry::new();
    let service = Arc::new(Service::new(
        registry.clone(),
        Authorizer::new(&config.admin_users, &config.admin_groups),
        Arc::new(ledger),
    ));
    let touch = config.emulate_touch;
    let (reg, count, dir, pace) = (
        registry.clone(),
        config.emulate,
        state.path().to_path_buf(),
        config.emulate_report_interval,
    );
    tokio::task::spawn_blocking(move || start_virtual_keys(&reg, count, &dir, touch, pace))
        .await
        .context("virtual keys failed to start")??;
    service.settle_and_follow().await;

    let stop_sources = Arc::new(AtomicBool::new(false));
    #[cfg(feature = "hid")]
    if config.hid {
        keys::sources::start_hid_poller(registry.clone(), config.hid_poll, stop_sources.clone())
            .context("failed to start the hot-plug poller")?;
    }
    #[cfg(feature = "pcsc")]
    if config.pcsc {
        keys::pcsc::start_pcsc_watcher(registry.clone(), stop_sources.clone())
            .context("failed to start the PC/SC watcher")?;
    }
    let udp = UdpKeys::default();
    udp.set(&registry, &config.udp_keys);

    let limits = Limits {
        max_clients: config.max_clients,
        max_clients_per_user: config.max_clients_per_user,
        admin_reserved: config.admin_reserved_clients,
        idle_timeout: config.idle_timeout,
        max_requests: config.max_requests_per_client,
        max_line: oathkey_protocol::codec::MAX_LINE,
        stalled_line: config.stalled_line_timeout,
        shutdown_grace: config.shutdown_grace,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut stop = shutdown_rx;
    let server = tokio::spawn(server::serve(
        listener,
        service.clone(),
        limits,
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        },
    ));
    let dbus = start_dbus(&service, &config).await?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        socket = %config.socket.display(),
        keys = registry.list().len(),
        "oathkeyd ready"
    );
    Ok(Running {
        service,
        config,
        udp,
        stop_sources,
        shutdown,
        server,
        socket,
        state,
        dbus,
    })
}

/// Starts the D-Bus frontend as configured. `auto` carries on without it when there is no bus
/// (or another daemon owns the name); an explicit bus that cannot be had stops the start.
async fn start_dbus(
    service: &Arc<Service>,
    config: &Config,
) -> anyhow::Result<Option<dbus::DbusFrontend>> {
    use config::{DbusMode, Scope};
    let bus = match (config.dbus, config.scope) {
        (DbusMode::Off, _) => return Ok(None),
        (DbusMode::System, _) | (DbusMode::Auto, Scope::System) => dbus::Bus::System,
        (DbusMode::Session, _) | (DbusMode::Auto, Scope::User) => dbus::Bus::Session,
    };
    match dbus::serve(service.clone(), bus).await {
        Ok(frontend) => Ok(Some(frontend)),
        Err(e) if config.dbus == DbusMode::Auto => {
            tracing::warn!(
                "no D-Bus frontend ({bus:?} bus: {e}); the socket still serves everything"
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("cannot serve on the {bus:?} D-Bus: {e}")),
    }
}

impl Running {
    /// The service core (in-process tests and the D-Bus frontend use it directly).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies a reloaded configuration: admin rules and UDP keys change at once; settings
    /// that need a restart are reported.
    pub fn reload(&mut self, new: Config) -> Vec<String> {
        let mut restart = Vec::new();
        if new.socket != self.config.socket
            || new.socket_mode != self.config.socket_mode
            || new.socket_group != self.config.socket_group
        {
            restart.push("socket".to_string());
        }
        if new.emulate_report_interval != self.config.emulate_report_interval
            || new.emulate != self.config.emulate
            || new.state_dir != self.config.state_dir
            || new.emulate_touch != self.config.emulate_touch
        {
            restart.push("virtual keys".to_string());
        }
        if new.hid != self.config.hid || new.hid_poll != self.config.hid_poll {
            restart.push("hid".to_string());
        }
        if new.pcsc != self.config.pcsc {
            restart.push("pcsc".to_string());
        }
        if new.stalled_line_timeout != self.config.stalled_line_timeout
            || new.shutdown_grace != self.config.shutdown_grace
        {
            restart.push("client timeouts".to_string());
        }
        if new.dbus != self.config.dbus {
            restart.push("dbus".to_string());
        }
        if new.max_clients != self.config.max_clients
            || new.max_requests_per_client != self.config.max_requests_per_client
            || new.max_clients_per_user != self.config.max_clients_per_user
            || new.admin_reserved_clients != self.config.admin_reserved_clients
            || new.idle_timeout != self.config.idle_timeout
        {
            restart.push("client limits".to_string());
        }
        self.service
            .set_authorizer(Authorizer::new(&new.admin_users, &new.admin_groups));
        self.udp.set(self.service.registry(), &new.udp_keys);
        info!(admin_users = ?new.admin_users, admin_groups = ?new.admin_groups, udp_keys = ?new.udp_keys, "configuration reloaded");
        self.config = new;
        restart
    }

    /// Stops accepting, lets in-flight requests finish (within the grace period), stops the
    /// key sources and removes the socket.
    pub async fn shutdown(self) {
        drop(self.dbus);
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.stop_sources.store(true, Ordering::SeqCst);
        self.udp.stop();
        drop(self.socket);
        // Last: the ledger is flushed with every write; another daemon may have it now.
        drop(self.state);
        info!("oathkeyd stopped");
    }
}
