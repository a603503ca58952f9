//! Where keys come from: real keys found by polling hidapi, in-process virtual keys, and virtual
//! keys served over UDP. Each source runs in its own thread (opening a key blocks) and hands
//! opened keys to the registry.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use oathkey_device::ctaphid::Timeouts;
use oathkey_device::{DynKey, Key, Nk3Key, Transport, UdpTransport};
// In-process virtual keys are the emulator crate's: the daemon links the virtual key itself
// (`--emulate`), which is why it depends on the emulator at all. UDP keys need only the device
// crate's host transport.
use oathkey_emulator::{Config as VirtualConfig, TouchPolicy, VirtualKeyHandle};
use oathkey_protocol::types::KeySource;
use tracing::{debug, info, warn};

use super::actor::Health;
use super::registry::Registry;

/// How often a missing UDP key is tried again.
const UDP_RETRY: Duration = Duration::from_secs(1);

/// Starts `count` in-process virtual keys whose state lives in `state_dir`.
pub fn start_virtual_keys(
    registry: &Arc<Registry>,
    count: u32,
    state_dir: &Path,
    touch: TouchPolicy,
    report_interval: Duration,
) -> anyhow::Result<()> {
    use anyhow::Context;
    if count == 0 {
        return Ok(());
    }
    std::fs::create_dir_all(state_dir).with_context(|| {
        format!(
            "failed to create the state directory {}",
            state_dir.display()
        )
    })?;
    for i in 0..count {
        let path = state_dir.join(format!("virtual-key-{i}.json"));
        let config = VirtualConfig {
            touch,
            report_interval,
            ..VirtualConfig::default()
        };
        let handle = VirtualKeyHandle::open(config, &path)
            .with_context(|| format!("failed to open virtual key state {}", path.display()))?;
        attach_virtual(registry, handle)?;
    }
    Ok(())
}

/// Opens a virtual key through its in-process transport and attaches it.
pub fn attach_virtual(
    registry: &Arc<Registry>,
    handle: VirtualKeyHandle,
) -> anyhow::Result<String> {
    let transport: Box<dyn Transport> = Box::new(handle.connect()?);
    let key: DynKey = Box::new(Nk3Key::new(Key::open(transport)?));
    let entry = registry.attach(key, KeySource::Virtual, Some(handle), None)?;
    Ok(entry.id.clone())
}

/// A supervisor thread and the flag that stops it.
type Supervisor = (Arc<AtomicBool>, JoinHandle<()>);

/// Supervises the UDP keys: one thread per address keeps it attached while it answers.
#[derive(Debug, Default)]
pub struct UdpKeys {
    running: Mutex<BTreeMap<String, Supervisor>>,
}

impl UdpKeys {
    /// Makes the supervised set equal to `addrs` (SIGHUP may change it).
    pub fn set(&self, registry: &Arc<Registry>, addrs: &[String]) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|addr, (stop, _)| {
            let keep = addrs.contains(addr);
            if !keep {
                stop.store(true, Ordering::SeqCst);
                registry.remove_path(&format!("udp://{addr}"));
            }
            keep
        });
        for addr in addrs {
            if running.contains_key(addr) {
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let (thread_stop, registry, addr_owned) =
                (stop.clone(), registry.clone(), addr.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("udp-{addr}"))
                .spawn(move || supervise_udp(&registry, &addr_owned, &thread_stop));
            match spawned {
                Ok(handle) => {
                    running.insert(addr.clone(), (stop, handle));
                }
                Err(e) => warn!(%addr, "cannot start the UDP key supervisor: {e}"),
            }
        }
    }

    /// Stops every supervisor.
    pub fn stop(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for (stop, _) in running.values() {
            stop.store(true, Ordering::SeqCst);
        }
        running.clear();
    }
}

fn supervise_udp(registry: &Arc<Registry>, addr: &str, stop: &AtomicBool) {
    let mut warned = false;
    while !stop.load(Ordering::SeqCst) {
        let attached = UdpTransport::connect(addr)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let timeouts = Timeouts {
                    quick: Duration::from_millis(500),
                    ..Timeouts::default()
                };
                Key::open_with(Box::new(t) as Box<dyn Transport>, timeouts)
                    .map(|k| Box::new(Nk3Key::new(k)) as DynKey)
                    .map_err(|e| e.to_string())
            })
            .and_then(|key| {
                let health = Health {
                    idle: Duration::from_secs(2),
                    failures: 2,
                };
                registry
                    .attach(key, KeySource::Udp, None, Some(health))
                    .map_err(|e| e.to_string())
            });
        match attached {
            Ok(entry) => {
                info!(%addr, key = %entry.id, "UDP key attached");
                warned = false;
                let path = format!(
                    "udp://{}",
                    addr.parse::<std::net::SocketAddr>()
                        .map_or(addr.to_string(), |a| a.to_string())
                );
                while !stop.load(Ordering::SeqCst) && registry.has_path(&path) {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Err(e) => {
                if !warned {
                    debug!(%addr, "UDP key not reachable yet: {e}");
                    warned = true;
                }
            }
        }
        std::thread::sleep(UDP_RETRY);
    }
}

/// Polls hidapi for supported keys: attaches new ones, removes vanished ones.
#[cfg(feature = "hid")]
pub fn start_hid_poller(
    registry: Arc<Registry>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hid-poller".into())
        .spawn(move || {
            let mut api = match hidapi::HidApi::new() {
                Ok(api) => api,
                Err(e) => {
                    warn!("real keys are unavailable: hidapi failed to start: {e}");
                    return;
                }
            };
            while !stop.load(Ordering::SeqCst) {
                poll_hid_once(&registry, &mut api);
                std::thread::sleep(interval);
            }
        })
}

#[cfg(feature = "hid")]
fn poll_hid_once(registry: &Arc<Registry>, api: &mut hidapi::HidApi) {
    use oathkey_device::hid::{HidTransport, enumerate};
    let found = match enumerate(api) {
        Ok(found) => found,
        Err(e) => {
            debug!("HID enumeration failed: {e}");
            return;
        }
    };
    let present: Vec<&str> = found.iter().map(|f| f.info.path.as_str()).collect();
    for path in registry.paths(KeySource::Hid) {
        if !present.contains(&path.as_str()) {
            registry.remove_path(&path);
        }
    }
    for path in registry.unavailable_paths(KeySource::Hid) {
        if !present.contains(&path.as_str()) {
            registry.clear_unavailable(&path);
        }
    }
    for device in found.iter().filter(|f| f.model.is_some()) {
        let path = &device.info.path;
        // Unusable devices are tried again on every poll: udev fixes a node's permissions just
        // after the kernel creates it, and an admin may fix them by hand.
        if registry.has_path(path) {
            continue;
        }
        let opened = HidTransport::open(api, &device.info)
            .map_err(oathkey_device::Error::from)
            .and_then(|t| Key::open(Box::new(t) as Box<dyn Transport>))
            .map(|k| Box::new(Nk3Key::new(k)) as DynKey);
        match opened {
            Ok(key) => {
                if let Err(e) = registry.attach(key, KeySource::Hid, None, None) {
                    warn!(%path, "cannot start the key's actor: {e}");
                }
            }
            Err(e) => {
                let reason = e.to_string();
                if registry.unavailable_reason(path).as_deref() != Some(reason.as_str()) {
                    warn!(%path, "supported key cannot be used: {reason}");
                }
                registry.set_unavailable(KeySource::Hid, path, reason, false);
            }
        }
    }
}
