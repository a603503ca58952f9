//! What only the daemon's tests share (the rest is in the testkit): an in-process daemon on a
//! private socket, and the name of an error answer.

use std::path::PathBuf;

use oathkeyd::config::{Config, FileConfig, Overrides, Scope};

/// The name of an error answer (`error.data.name`), if the error is a JSON-RPC error.
pub fn error_name(e: &oathkey_protocol::ClientError) -> Option<String> {
    match e {
        oathkey_protocol::ClientError::Rpc(o) => o
            .data
            .as_ref()
            .and_then(|d| d["name"].as_str())
            .map(str::to_owned),
        _ => None,
    }
}

/// A daemon running in this process.
pub struct InProcess {
    /// The runtime the daemon runs on.
    pub rt: tokio::runtime::Runtime,
    /// The daemon, until [`InProcess::shutdown`].
    pub daemon: Option<oathkeyd::Running>,
    /// Its socket and state directory, removed when dropped.
    _dir: tempfile::TempDir,
    /// Its socket.
    pub socket: PathBuf,
}

impl InProcess {
    /// Starts a daemon with `emulate` virtual keys, no hidapi, no D-Bus, this process's user as
    /// an admin, and the given config file text.
    pub fn start(emulate: u32, file: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("s.sock");
        let flags = Overrides {
            socket: Some(socket.clone()),
            state_dir: Some(dir.path().join("state")),
            emulate: Some(emulate),
            no_hid: true,
            dbus: Some("off".into()),
            admin_users: vec![nix::unistd::getuid().as_raw().to_string()],
            ..Overrides::default()
        };
        let file = FileConfig::parse(file).expect("valid config text");
        let config = Config::resolve(Scope::User, file, &flags).expect("valid config");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let daemon = rt.block_on(oathkeyd::start(config)).expect("starts");
        Self {
            rt,
            daemon: Some(daemon),
            _dir: dir,
            socket,
        }
    }

    pub fn running(&self) -> &oathkeyd::Running {
        self.daemon.as_ref().expect("running")
    }

    pub fn client(&self) -> oathkey_protocol::Client {
        oathkey_protocol::Client::connect(&self.socket).expect("client connects")
    }

    pub fn shutdown(mut self) {
        if let Some(d) = self.daemon.take() {
            self.rt.block_on(d.shutdown());
        }
    }
}
