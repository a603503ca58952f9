//! Keys through PC/SC: YubiKeys and other YKOATH keys (and a Nitrokey 3's CCID interface), shared
//! with every other application that uses them through pcscd.
//!
//! One thread follows pcscd's reader and card events (`SCardGetStatusChange`, never polling a
//! card): a card that appears is opened (shared, one transaction per operation, the applet
//! selected again in each: `oathkey_device::pcsc`) and attached; one that goes away is detached.
//! A card another application holds exclusively (gpg's scdaemon without `pcsc-shared`, ykman)
//! is listed as busy with what to do, and attached by itself once released. Without pcscd the
//! daemon says so once and keeps serving its other keys; it looks for pcscd again now and then
//! (pcscd is socket-activated and may come later).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use oathkey_device::Error as DeviceError;
use oathkey_device::pcsc::{ReaderEvent, ReaderMonitor, ReaderStatus, establish, open_key};
use oathkey_protocol::types::KeySource;
use tracing::{debug, info, warn};

use super::registry::Registry;

/// How long one wait for reader events lasts: the stop flag is checked this often, and a card
/// another application held is looked at again (pcscd does not wake a wait when it is
/// released).
const WAIT: Duration = Duration::from_secs(1);
/// How long without pcscd before looking for it again.
const RETRY: Duration = Duration::from_secs(5);

/// Starts the thread that attaches and detaches PC/SC keys until `stop` is raised.
pub fn start_pcsc_watcher(
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("pcsc-watcher".into())
        .spawn(move || watch(&registry, &stop))
}

fn watch(registry: &Arc<Registry>, stop: &AtomicBool) {
    let mut said_absent = false;
    while !stop.load(Ordering::SeqCst) {
        let mut monitor = match ReaderMonitor::new() {
            Ok(m) => m,
            Err(e) => {
                if !said_absent {
                    // The device error already says what to do (install and start pcscd).
                    info!(
                        "{e}; smart-card keys (YubiKey, ...) are not watched until it runs (looked for every 5 s); HID and virtual keys are served"
                    );
                    said_absent = true;
                }
                sleep_unless_stopped(stop, RETRY);
                continue;
            }
        };
        if said_absent {
            info!("PC/SC service found: watching smart-card readers");
            said_absent = false;
        }
        let mut cards = Cards::default();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match monitor.wait(WAIT) {
                Ok(events) => {
                    for event in events {
                        cards.handle(registry, event);
                    }
                    cards.retry_busy(registry, &monitor);
                }
                Err(e) => {
                    // pcscd stopped (or restarts): its keys are gone with it.
                    warn!("the PC/SC service went away ({e}); its keys are detached");
                    cards.forget_all(registry);
                    sleep_unless_stopped(stop, Duration::from_millis(500));
                    break;
                }
            }
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < total && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(step);
        waited += step;
    }
}

/// What this thread knows about each reader's card.
#[derive(Debug, Default)]
struct Cards {
    /// Readers whose card is not an OATH key, by its ATR: not tried again until the card changes.
    not_oath: BTreeMap<String, Vec<u8>>,
    /// Readers whose card another application held when last tried.
    busy: BTreeMap<String, ReaderStatus>,
}

impl Cards {
    fn handle(&mut self, registry: &Arc<Registry>, event: ReaderEvent) {
        match event {
            ReaderEvent::Added(status) | ReaderEvent::Changed(status) => {
                if status.present {
                    self.card_present(registry, status);
                } else {
                    self.card_gone(registry, &status.reader);
                }
            }
            ReaderEvent::Removed { reader } => self.card_gone(registry, &reader),
        }
    }

    fn card_present(&mut self, registry: &Arc<Registry>, status: ReaderStatus) {
        let reader = status.reader.clone();
        if registry.has_path(&reader) {
            // Attached: we hold no connection between operations, so another application may
            // take it exclusively. Say so in the listing; requests meanwhile wait a little,
            // then fail with Busy and the same advice.
            let busy = status.exclusive.then(|| held_exclusively(&reader));
            if registry.set_busy(&reader, busy.clone()) {
                match busy {
                    Some(_) => {
                        info!(%reader, "a smart-card key is held exclusively by another application")
                    }
                    None => {
                        info!(%reader, "the smart-card key was released by the other application")
                    }
                }
            }
            return;
        }
        if status.exclusive {
            // Trying would only wait out the sharing policy: list it busy at once.
            self.mark_busy(registry, status);
            return;
        }
        if self.not_oath.get(&reader) == Some(&status.atr) {
            return;
        }
        if status.mute {
            debug!(%reader, "the card does not answer yet");
            return;
        }
        // Each key gets a PC/SC context of its own: pcsc-lite runs one call at a time per
        // context, and the monitor's sits in a status-change wait most of the time.
        match establish().and_then(|ctx| open_key(&ctx, &reader)) {
            Ok(key) => {
                self.busy.remove(&reader);
                registry.clear_unavailable(&reader);
                if let Err(e) = registry.attach(Box::new(key), KeySource::Pcsc, None, None) {
                    warn!(%reader, "cannot start the key's actor: {e}");
                }
            }
            Err(DeviceError::HeldExclusively { .. }) => self.mark_busy(registry, status),
            Err(DeviceError::Unsupported(why)) => {
                // A bank card, a PIV-only card: not ours, and not worth a line every second.
                debug!(%reader, "not an OATH key: {why}");
                self.not_oath.insert(reader, status.atr);
            }
            Err(DeviceError::Removed) => {}
            Err(e) => {
                let reason = e.to_string();
                if registry.unavailable_reason(&reader).as_deref() != Some(reason.as_str()) {
                    warn!(%reader, "smart-card key cannot be used: {reason}");
                }
                registry.set_unavailable(KeySource::Pcsc, &reader, reason, false);
            }
        }
    }

    fn mark_busy(&mut self, registry: &Arc<Registry>, status: ReaderStatus) {
        let reader = status.reader.clone();
        if !self.busy.contains_key(&reader) {
            info!(%reader, "a smart-card key is held exclusively by another application");
        }
        registry.set_unavailable(KeySource::Pcsc, &reader, held_exclusively(&reader), true);
        self.busy.insert(reader, status);
    }

    fn card_gone(&mut self, registry: &Arc<Registry>, reader: &str) {
        self.not_oath.remove(reader);
        self.busy.remove(reader);
        registry.clear_unavailable(reader);
        registry.remove_path(reader);
    }

    /// Cards another application held are tried again on every round: pcscd does not say when
    /// they are released.
    fn retry_busy(&mut self, registry: &Arc<Registry>, monitor: &ReaderMonitor) {
        let busy: Vec<ReaderStatus> = self.busy.values().cloned().collect();
        for status in busy {
            let still_exclusive = monitor
                .readers()
                .iter()
                .find(|r| r.reader == status.reader)
                .is_some_and(|r| r.present && r.exclusive);
            if !still_exclusive {
                self.card_present(registry, status);
            }
        }
    }

    fn forget_all(&mut self, registry: &Arc<Registry>) {
        for reader in registry.paths(KeySource::Pcsc) {
            registry.remove_path(&reader);
        }
        for reader in registry.unavailable_paths(KeySource::Pcsc) {
            registry.clear_unavailable(&reader);
        }
        self.not_oath.clear();
        self.busy.clear();
    }
}

/// What a listing says about a key another application holds: the device error's own words
/// (which name the reader and scdaemon's `pcsc-shared`).
fn held_exclusively(reader: &str) -> String {
    let e = DeviceError::HeldExclusively {
        reader: reader.to_string(),
    };
    format!("busy: {e}")
}
