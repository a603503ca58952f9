//! The keys the daemon owns: who they are, their actors, claims, cached token lists, and the
//! added/removed events. Locks here are short and never held across an await or a key exchange.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use oathkey_device::{
    Capabilities, CredentialInfo, Error as DeviceError, Family as DeviceFamily, Setting,
};
use oathkey_emulator::VirtualKeyHandle;
use oathkey_protocol::types::{
    Event, KeyCapabilities, KeyFamily, KeyInfo, KeySource, SettingName, Settings, UnavailableKey,
};
use tokio::sync::broadcast;
use tracing::info;

use super::actor::{ActorHandle, DynKey, Health};

/// How long a cached token list is trusted before LIST runs again (other tools may change the
/// key behind our back; our own changes invalidate it at once).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Mutable facts about a key.
#[derive(Debug, Default)]
struct KeyFacts {
    tokens: Option<(Instant, Vec<CredentialInfo>)>,
    settings: Settings,
    claim: Option<u64>,
    /// Tokens locked behind an access code not given yet.
    locked: bool,
    /// Held exclusively by another application: why and what to do.
    busy: Option<String>,
}

/// One attached key.
#[derive(Debug)]
pub struct KeyEntry {
    /// Stable id (serial as 8 hex digits).
    pub id: String,
    /// Static description.
    info: KeyInfo,
    /// The actor that owns the key.
    pub actor: ActorHandle,
    /// For virtual keys: the key itself (unplug, press).
    pub virtual_handle: Option<VirtualKeyHandle>,
    generation: u64,
    facts: Mutex<KeyFacts>,
    /// Held while the token list is read from the key to refill an expired cache, so that the
    /// clients that find it expired at the same moment wait for one LIST instead of each
    /// queueing their own (an async lock: it is held across that exchange on purpose).
    refilling: tokio::sync::Mutex<()>,
    /// Readers' requests that may wait for a touch on this key, per uid: each can hold the key
    /// for the touch timeout, so one user may not queue many of them.
    touch_waits: Mutex<HashMap<Option<u32>, usize>>,
}

/// A reader's right to wait for a touch on a key; given back when dropped.
#[derive(Debug)]
pub struct TouchTurn {
    entry: Arc<KeyEntry>,
    uid: Option<u32>,
}

impl Drop for TouchTurn {
    fn drop(&mut self) {
        let mut waits = self
            .entry
            .touch_waits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = waits.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                waits.remove(&self.uid);
            }
        }
    }
}

impl KeyEntry {
    fn facts(&self) -> MutexGuard<'_, KeyFacts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key's description with its current claim and lock state.
    pub fn info(&self) -> KeyInfo {
        let facts = self.facts();
        KeyInfo {
            claimed: facts.claim.is_some(),
            locked: facts.locked,
            busy: facts.busy.clone(),
            ..self.info.clone()
        }
    }

    /// Records whether its tokens are locked; says whether that changed.
    pub fn set_locked(&self, locked: bool) -> bool {
        std::mem::replace(&mut self.facts().locked, locked) != locked
    }

    /// The settings as last read or written.
    pub fn settings(&self) -> Settings {
        self.facts().settings
    }

    /// Records new settings.
    pub fn set_settings(&self, settings: Settings) {
        self.facts().settings = settings;
    }

    /// The cached token list, if fresh.
    pub fn cached_tokens(&self) -> Option<Vec<CredentialInfo>> {
        match &self.facts().tokens {
            Some((at, tokens)) if at.elapsed() < TOKEN_CACHE_TTL => Some(tokens.clone()),
            _ => None,
        }
    }

    /// Waits for the right to refill an expired token cache; check [`Self::cached_tokens`]
    /// again once it is granted: whoever held it may have refilled it.
    pub async fn refill_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refilling.lock().await
    }

    /// Stores a fresh token list.
    pub fn store_tokens(&self, tokens: Vec<CredentialInfo>) {
        self.facts().tokens = Some((Instant::now(), tokens));
    }

    /// Forgets the token list (after a change).
    pub fn invalidate_tokens(&self) {
        self.facts().tokens = None;
    }

    /// A turn to wait for a touch for a reader with `uid`, unless that uid already has `limit`
    /// such requests on this key.
    pub fn touch_turn(self: &Arc<Self>, uid: Option<u32>, limit: usize) -> Option<TouchTurn> {
        let mut waits = self.touch_waits.lock().unwrap_or_else(|p| p.into_inner());
        let n = waits.entry(uid).or_default();
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(TouchTurn {
            entry: self.clone(),
            uid,
        })
    }

    /// The connection holding a claim.
    pub fn claimant(&self) -> Option<u64> {
        self.facts().claim
    }

    /// Claims the key for `conn`; fails if another connection holds it.
    pub fn claim(&self, conn: u64) -> Result<(), u64> {
        let mut facts = self.facts();
        match facts.claim {
            Some(other) if other != conn => Err(other),
            _ => {
                facts.claim = Some(conn);
                Ok(())
            }
        }
    }

    /// Releases `conn`'s claim; says whether it held one.
    pub fn release(&self, conn: u64) -> bool {
        let mut facts = self.facts();
        if facts.claim == Some(conn) {
            facts.claim = None;
            true
        } else {
            false
        }
    }
}

/// A device found but not usable now.
#[derive(Debug, Clone)]
struct Unavailable {
    source: KeySource,
    reason: String,
    /// Another application holds it; it becomes usable once released.
    busy: bool,
}

#[derive(Debug, Default)]
struct Inner {
    keys: BTreeMap<String, Arc<KeyEntry>>,
    unavailable: BTreeMap<String, Unavailable>,
    /// Unplugged virtual keys, kept so that `virtual.plug` can bring them back.
    parked: BTreeMap<String, VirtualKeyHandle>,
}

/// Every key the daemon owns.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
    generation: AtomicU64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Self {
            inner: Mutex::default(),
            events,
            generation: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The event channel.
    pub fn events(&self) -> &broadcast::Sender<Event> {
        &self.events
    }

    /// Takes an opened key into service: reads its settings, starts its actor, announces it.
    /// Blocking (talks to the key); call it from a source thread.
    pub fn attach(
        self: &Arc<Self>,
        mut key: DynKey,
        source: KeySource,
        virtual_handle: Option<VirtualKeyHandle>,
        health: Option<Health>,
    ) -> std::io::Result<Arc<KeyEntry>> {
        let settings = read_settings(&mut key);
        let identity = key.identity();
        let base_id = identity.serial.clone().unwrap_or_else(|| {
            identity
                .path
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        });
        let family = family(key.family());
        let capabilities = capabilities(&key.capabilities());
        let locked = key.locked();
        let info_template = |id: String| KeyInfo {
            id,
            model: identity.model.clone(),
            source,
            path: identity.path.clone(),
            firmware: identity.firmware.clone(),
            pin_set: identity.pin_set,
            claimed: false,
            family,
            capabilities: capabilities.clone(),
            locked,
            busy: None,
        };
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        let mut inner = self.lock();
        // Two keys reporting the same serial (cloned virtual keys) still get distinct ids.
        let mut id = base_id.clone();
        let mut n = 2;
        while inner.keys.contains_key(&id) {
            id = format!("{base_id}-{n}");
            n += 1;
        }
        let weak: Weak<Registry> = Arc::downgrade(self);
        let exit_id = id.clone();
        let actor = ActorHandle::spawn(
            id.clone(),
            key,
            self.events.clone(),
            health,
            Box::new(move || {
                if let Some(registry) = weak.upgrade() {
                    registry.remove(&exit_id, Some(generation));
                }
            }),
        )?;
        let entry = Arc::new(KeyEntry {
            id: id.clone(),
            info: info_template(id.clone()),
            actor,
            virtual_handle,
            generation,
            facts: Mutex::new(KeyFacts {
                settings,
                locked,
                ..KeyFacts::default()
            }),
            refilling: tokio::sync::Mutex::new(()),
            touch_waits: Mutex::default(),
        });
        inner.unavailable.remove(&identity.path);
        inner.parked.remove(&id);
        inner.keys.insert(id.clone(), entry.clone());
        drop(inner);
        info!(key = %id, path = %identity.path, family = %family.name(), "key added");
        let _ = self.events.send(Event::KeyAdded { key: entry.info() });
        Ok(entry)
    }

    /// Removes a key (only the given generation, when one is given, so that a late exit of an
    /// old actor cannot remove a re-attached key). Announces it; says whether it was there.
    pub fn remove(&self, id: &str, generation: Option<u64>) -> bool {
        let mut inner = self.lock();
        let matches = inner
            .keys
            .get(id)
            .is_some_and(|e| generation.is_none_or(|g| e.generation == g));
        if !matches {
            return false;
        }
        inner.keys.remove(id);
        drop(inner);
        info!(key = %id, "key removed");
        let _ = self.events.send(Event::KeyRemoved {
            key: id.to_string(),
        });
        true
    }

    /// Removes whatever key sits at `path`.
    pub fn remove_path(&self, path: &str) -> bool {
        let id = self
            .lock()
            .keys
            .values()
            .find(|e| e.info.path == path)
            .map(|e| e.id.clone());
        id.is_some_and(|id| self.remove(&id, None))
    }

    /// Marks the attached key at `path` as held exclusively by another application (`Some`
    /// with why and what to do) or released (`None`); says whether that changed.
    /// Clients are told with [`Event::BusyChanged`].
    pub fn set_busy(&self, path: &str, busy: Option<String>) -> bool {
        let entry = self
            .lock()
            .keys
            .values()
            .find(|e| e.info.path == path)
            .cloned();
        let Some(entry) = entry else {
            return false;
        };
        let changed = std::mem::replace(&mut entry.facts().busy, busy.clone()) != busy;
        if changed {
            let _ = self.events.send(Event::BusyChanged {
                key: entry.id.clone(),
                busy,
            });
        }
        changed
    }

    /// Whether a key at `path` is attached.
    pub fn has_path(&self, path: &str) -> bool {
        self.lock().keys.values().any(|e| e.info.path == path)
    }

    /// The paths of attached keys from `source`.
    pub fn paths(&self, source: KeySource) -> Vec<String> {
        self.lock()
            .keys
            .values()
            .filter(|e| e.info.source == source)
            .map(|e| e.info.path.clone())
            .collect()
    }

    /// One key.
    pub fn get(&self, id: &str) -> Option<Arc<KeyEntry>> {
        let inner = self.lock();
        inner.keys.get(id).cloned().or_else(|| {
            // Ids are hex: accept any case.
            inner
                .keys
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(id))
                .map(|(_, e)| e.clone())
        })
    }

    /// Every key, ordered by id.
    pub fn list(&self) -> Vec<Arc<KeyEntry>> {
        self.lock().keys.values().cloned().collect()
    }

    /// Records a supported device of `source` that cannot be used, why, and whether that is
    /// because another application holds it (`busy`).
    pub fn set_unavailable(&self, source: KeySource, path: &str, reason: String, busy: bool) {
        self.lock().unavailable.insert(
            path.to_string(),
            Unavailable {
                source,
                reason,
                busy,
            },
        );
    }

    /// Forgets an unusable device (it went away).
    pub fn clear_unavailable(&self, path: &str) {
        self.lock().unavailable.remove(path);
    }

    /// Why a device is unusable, if it is.
    pub fn unavailable_reason(&self, path: &str) -> Option<String> {
        self.lock().unavailable.get(path).map(|u| u.reason.clone())
    }

    /// Paths of unusable devices from `source`.
    pub fn unavailable_paths(&self, source: KeySource) -> Vec<String> {
        self.lock()
            .unavailable
            .iter()
            .filter(|(_, u)| u.source == source)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Supported devices that could not be used.
    pub fn unavailable(&self) -> Vec<UnavailableKey> {
        self.lock()
            .unavailable
            .iter()
            .map(|(path, u)| UnavailableKey {
                path: path.clone(),
                reason: u.reason.clone(),
                busy: u.busy,
            })
            .collect()
    }

    /// Keeps an unplugged virtual key for a later `virtual.plug`.
    pub fn park(&self, id: &str, handle: VirtualKeyHandle) {
        self.lock().parked.insert(id.to_string(), handle);
    }

    /// Takes a parked virtual key.
    pub fn unpark(&self, id: &str) -> Option<VirtualKeyHandle> {
        let mut inner = self.lock();
        let found = inner
            .parked
            .keys()
            .find(|k| k.eq_ignore_ascii_case(id))
            .cloned()?;
        inner.parked.remove(&found)
    }

    /// Releases every claim a connection holds (it closed).
    pub fn release_claims(&self, conn: u64) {
        for entry in self.list() {
            if entry.release(conn) {
                info!(key = %entry.id, conn, "claim released: client disconnected");
                let _ = self.events.send(Event::ClaimChanged {
                    key: entry.id.clone(),
                    claimed: false,
                });
            }
        }
    }
}

/// Reads the vendor tool's settings; a key without them reports `None` for each.
/// The wire name of a family (the device crate does not speak the protocol).
fn family(f: DeviceFamily) -> KeyFamily {
    match f {
        DeviceFamily::Nk3Hid => KeyFamily::Nk3Hid,
        DeviceFamily::YkoathPcsc => KeyFamily::YkoathPcsc,
    }
}

/// What a key can do, as clients see it.
pub fn capabilities(c: &Capabilities) -> KeyCapabilities {
    KeyCapabilities {
        codes: c.codes,
        create: c.create,
        delete: c.delete,
        rename: c.rename,
        touch: c.touch,
        hotp: c.hotp,
        algorithms: c.algorithms.clone(),
        settings: c
            .settings
            .iter()
            .map(|s| match s {
                Setting::ModeKeyboard => SettingName::Keyboard,
                Setting::ModeU2f => SettingName::U2f,
                Setting::OtpKeyPress => SettingName::KeyPress,
            })
            .collect(),
        access_code: c.access_code,
        wink: c.wink,
    }
}

pub fn read_settings(key: &mut DynKey) -> Settings {
    let mut read = |s| match key.setting(s) {
        Ok(v) => Some(v),
        Err(DeviceError::Unsupported(_)) => None,
        Err(e) => {
            tracing::debug!("reading {s}: {e}");
            None
        }
    };
    Settings {
        keyboard: read(Setting::ModeKeyboard),
        u2f: read(Setting::ModeU2f),
        key_press: read(Setting::OtpKeyPress),
    }
}
