//! `org.oathkey.Manager1`: the daemon as a whole (keys, codes of every key, seeds).

use std::sync::Arc;

use oathkey_protocol::PROTOCOL_VERSION;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath};

use crate::dbus::callers::Callers;
use crate::dbus::error::DbusError;
use crate::service::Service;

use super::*;

/// `org.oathkey.Manager1`.
#[derive(Debug)]
pub struct Manager {
    /// The service core.
    pub service: Arc<Service>,
    /// Callers.
    pub callers: Arc<Callers>,
}

#[zbus::interface(name = "org.oathkey.Manager1")]
impl Manager {
    /// The object paths of the keys present.
    async fn list_keys(&self) -> Vec<OwnedObjectPath> {
        self.service
            .registry()
            .list()
            .iter()
            .map(|e| key_path(&e.id))
            .collect()
    }

    /// Protocol version, daemon version and the caller's role.
    #[zbus(out_args("protocol", "daemon", "role"))]
    async fn hello(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(u32, String, String), DbusError> {
        let caller = self.callers.caller(conn, &header).await?;
        let hello = self.service.hello(&caller);
        Ok((hello.protocol, hello.daemon, enum_name(&hello.role)))
    }

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// The API's protocol version (the same number JSON-RPC `hello` reports).
    #[zbus(property)]
    fn protocol_version(&self) -> u32 {
        PROTOCOL_VERSION
    }

    /// A key appeared and is ready.
    #[zbus(signal)]
    pub async fn key_added(
        emitter: &SignalEmitter<'_>,
        key: ObjectPath<'_>,
        id: &str,
    ) -> zbus::Result<()>;

    /// A key went away; its pending requests failed with KeyRemoved.
    #[zbus(signal)]
    pub async fn key_removed(
        emitter: &SignalEmitter<'_>,
        key: ObjectPath<'_>,
        id: &str,
    ) -> zbus::Result<()>;
}
