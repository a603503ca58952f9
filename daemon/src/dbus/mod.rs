//! The D-Bus frontend: a second door into the same service core, with no logic of its own.
//!
//! Bus name `org.oathkey.Daemon1`; `org.oathkey.Manager1` at `/org/oathkey/Daemon1/Manager`;
//! `org.oathkey.Key1` on `/org/oathkey/Daemon1/Keys/<id>` for each key present. Service events
//! become signals; claims end when the claiming bus name vanishes. `docs/dbus.md` describes it,
//! and `docs/dbus/*.xml` holds the introspection a test compares with the running service.

pub mod callers;
pub mod error;
pub mod interfaces;

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use oathkey_protocol::types::Event;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};
use zbus::fdo::DBusProxy;

use self::callers::Callers;
use self::interfaces::{
    KeyObject, KeyObjectSignals, MANAGER_PATH, Manager, ManagerSignals, key_path,
};
use crate::service::Service;

/// The well-known bus name.
pub const BUS_NAME: &str = "org.oathkey.Daemon1";

/// Which bus to serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (the packaged daemon).
    System,
    /// The session bus (a user daemon).
    Session,
}

/// A running D-Bus frontend; dropping it leaves the bus.
#[derive(Debug)]
pub struct DbusFrontend {
    _conn: zbus::Connection,
    pump: tokio::task::JoinHandle<()>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for DbusFrontend {
    fn drop(&mut self) {
        self.pump.abort();
        self.watch.abort();
    }
}

/// Connects to the bus, takes the name, exports the manager and every present key, and starts
/// turning service events into signals.
pub async fn serve(service: Arc<Service>, bus: Bus) -> zbus::Result<DbusFrontend> {
    let callers = Arc::new(Callers::new(service.clone()));
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
    };
    // Subscribe before exporting, so no key added in between is missed.
    let events = service.subscribe();
    let conn = builder
        .serve_at(
            MANAGER_PATH,
            Manager {
                service: service.clone(),
                callers: callers.clone(),
            },
        )
        .name(BUS_NAME)
        .build()
        .await?;
    for entry in service.registry().list() {
        export_key(&conn, &service, &callers, &entry.id).await;
    }
    info!(bus = ?bus, name = BUS_NAME, "serving on D-Bus");
    let pump = tokio::spawn(pump_events(
        conn.clone(),
        service.clone(),
        callers.clone(),
        events,
    ));
    let watch = tokio::spawn(watch_names(conn.clone(), callers));
    Ok(DbusFrontend {
        _conn: conn,
        pump,
        watch,
    })
}

async fn export_key(
    conn: &zbus::Connection,
    service: &Arc<Service>,
    callers: &Arc<Callers>,
    id: &str,
) {
    let object = KeyObject {
        id: id.to_string(),
        service: service.clone(),
        callers: callers.clone(),
    };
    if let Err(e) = conn.object_server().at(key_path(id), object).await {
        warn!(key = id, "cannot export the key on D-Bus: {e}");
    }
}

async fn pump_events(
    conn: zbus::Connection,
    service: Arc<Service>,
    callers: Arc<Callers>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
) {
    let server = conn.object_server();
    // The keys with an object on the bus, to resynchronise with the registry when events were
    // lost: a missed KeyAdded would otherwise leave a key off the bus until it is replugged.
    let mut exported: HashSet<String> = service
        .registry()
        .list()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                warn!(
                    lost = n,
                    "D-Bus signals dropped: events came faster than the bus took them; resynchronising the key objects"
                );
                let now: HashSet<String> = service
                    .registry()
                    .list()
                    .iter()
                    .map(|e| e.id.clone())
                    .collect();
                for id in now.difference(&exported) {
                    if let Err(e) = key_added(&conn, &service, &callers, id).await {
                        debug!(key = %id, "no KeyAdded signal: {e}");
                    }
                }
                for id in exported.difference(&now) {
                    if let Err(e) = key_removed(&conn, id).await {
                        debug!(key = %id, "no KeyRemoved signal: {e}");
                    }
                }
                exported = now;
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let result: zbus::Result<()> = async {
            match &event {
                Event::KeyAdded { key } => {
                    exported.insert(key.id.clone());
                    key_added(&conn, &service, &callers, &key.id).await?;
                }
                Event::KeyRemoved { key } => {
                    exported.remove(key);
                    key_removed(&conn, key).await?;
                }
                Event::TouchNeeded {
                    key,
                    operation,
                    token,
                } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object
                        .touch_needed(operation.name(), token.as_deref().unwrap_or(""))
                        .await?;
                }
                Event::TouchDone { key } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object.touch_done().await?;
                }
                Event::TokensChanged { key } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object.tokens_changed().await?;
                }
                Event::ConfigChanged { key, .. } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object
                        .get()
                        .await
                        .settings_changed(object.signal_emitter())
                        .await?;
                }
                Event::ClaimChanged { key, .. } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object
                        .get()
                        .await
                        .claimed_changed(object.signal_emitter())
                        .await?;
                }
                Event::LockChanged { key, .. } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object
                        .get()
                        .await
                        .locked_changed(object.signal_emitter())
                        .await?;
                }
                Event::BusyChanged { key, .. } => {
                    let object = server.interface::<_, KeyObject>(key_path(key)).await?;
                    object
                        .get()
                        .await
                        .busy_changed(object.signal_emitter())
                        .await?;
                }
                Event::EventsLost { .. } => {}
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            debug!(?event, "no D-Bus signal for an event: {e}");
        }
    }
}

/// Exports a key's object and announces it.
async fn key_added(
    conn: &zbus::Connection,
    service: &Arc<Service>,
    callers: &Arc<Callers>,
    id: &str,
) -> zbus::Result<()> {
    export_key(conn, service, callers, id).await;
    let manager = conn
        .object_server()
        .interface::<_, Manager>(MANAGER_PATH)
        .await?;
    manager.key_added(key_path(id).as_ref(), id).await
}

/// Announces a key's removal and takes its object off the bus.
async fn key_removed(conn: &zbus::Connection, id: &str) -> zbus::Result<()> {
    let server = conn.object_server();
    let manager = server.interface::<_, Manager>(MANAGER_PATH).await?;
    manager.key_removed(key_path(id).as_ref(), id).await?;
    server.remove::<KeyObject, _>(key_path(id)).await?;
    Ok(())
}

/// Ends the claims of callers that leave the bus (like fprintd's Claim/Release).
async fn watch_names(conn: zbus::Connection, callers: Arc<Callers>) {
    let Ok(dbus) = DBusProxy::new(&conn).await else {
        return;
    };
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        return;
    };
    while let Some(signal) = changes.next().await {
        let Ok(args) = signal.args() else { continue };
        if args.new_owner().is_none() {
            callers.vanished(args.name());
        }
    }
}
