//! PC/SC through pcsc-lite (the `pcsc` crate): smart-card keys shared with other applications,
//! and a reader monitor for hot-plug.
//!
//! Sharing rules, because the card is not ours alone (an authenticator app, gpg's scdaemon, a
//! browser may use it too):
//! - connect **shared**, never exclusive, and only for the length of one operation: between
//!   operations we hold no handle on the card, so an application that needs it exclusively
//!   (ykman, gpg's scdaemon without `pcsc-shared`) can take it, and we wait our turn;
//! - one PC/SC transaction per operation ([`PcscCard`] implements [`CardChannel`]); the driver
//!   selects its applet again inside each one;
//! - always let go with `SCARD_LEAVE_CARD`, never reset the card (that would throw away
//!   another application's session: a PIN it verified, an applet it selected);
//! - while another application holds the card exclusively (`SCARD_E_SHARING_VIOLATION`), back
//!   off and retry for a bounded time ([`SharingPolicy`]), then fail with
//!   [`Error::HeldExclusively`], which says what to do; never kill or signal anyone;
//! - a card reset by another application (`SCARD_W_RESET_CARD`) is reconnected, leaving it
//!   as it is.
//!
//! When pcscd is not installed or not running, [`establish`] fails with
//! [`Error::NoPcscService`]: the daemon logs it once and keeps serving HID and virtual keys.

use std::collections::HashMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

/// The PC/SC context ([`establish`]), re-exported so callers need not depend on `pcsc`.
pub use pcsc::Context;
use pcsc::{Card, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use zeroize::Zeroize;

use crate::error::Error;
use crate::ykoath::channel::{CardChannel, CardLink, SharingPolicy};
use crate::ykoath::driver::YkoathKey;

/// How often a transaction is begun again after the card was reset under us.
const MAX_RECONNECTS: usize = 3;

/// Connects to the PC/SC service. [`Error::NoPcscService`] when pcscd is not installed or not
/// running.
pub fn establish() -> Result<Context, Error> {
    Context::establish(Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::Shutdown => {
            Error::NoPcscService(e.to_string())
        }
        other => Error::Transport(format!("PC/SC: {other}")),
    })
}

/// The readers there are now (none is not an error).
pub fn list_readers(ctx: &Context) -> Result<Vec<String>, Error> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(service_error(e)),
    }
}

/// Opens the YKOATH key in `reader` with the default sharing policy.
pub fn open_key(ctx: &Context, reader: &str) -> Result<YkoathKey<PcscCard>, Error> {
    YkoathKey::open(PcscCard::connect(ctx, reader)?)
}

/// A smart card reached in shared mode, one connection per operation.
pub struct PcscCard {
    ctx: Context,
    name: CString,
    reader: String,
    atr: Vec<u8>,
    sharing: SharingPolicy,
}

impl std::fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.reader)
            .field("atr", &hex(&self.atr))
            .finish_non_exhaustive()
    }
}

impl PcscCard {
    /// Reaches the card in `reader`, shared, with the default [`SharingPolicy`].
    pub fn connect(ctx: &Context, reader: &str) -> Result<Self, Error> {
        Self::connect_with(ctx, reader, SharingPolicy::default())
    }

    /// Reaches the card in `reader`, shared, retrying while another application holds it
    /// exclusively for as long as `sharing` says. It connects once to read the card's ATR and
    /// lets go again: each operation connects for its own length.
    pub fn connect_with(
        ctx: &Context,
        reader: &str,
        sharing: SharingPolicy,
    ) -> Result<Self, Error> {
        let name = CString::new(reader)
            .map_err(|_| Error::InvalidArgument(format!("reader name {reader:?} has a NUL")))?;
        let mut card = Self {
            ctx: ctx.clone(),
            name,
            reader: reader.to_string(),
            atr: Vec::new(),
            sharing,
        };
        let handle = card.connect_now()?;
        let atr = handle.status2_owned().map(|s| s.atr().to_vec());
        card.let_go(handle);
        card.atr = atr.map_err(|e| card_error(e, reader))?;
        tracing::debug!(reader, atr = %hex(&card.atr), "card found (shared)");
        Ok(card)
    }

    /// A shared connection, waiting while someone else holds the card exclusively.
    fn connect_now(&self) -> Result<Card, Error> {
        let mut backoff = self.sharing.backoff();
        loop {
            match self
                .ctx
                .connect(&self.name, ShareMode::Shared, Protocols::ANY)
            {
                Ok(card) => return Ok(card),
                Err(pcsc::Error::SharingViolation) => backoff.wait(&self.reader)?,
                Err(e) => return Err(card_error(e, &self.reader)),
            }
        }
    }

    /// Disconnects, leaving the card as it is (dropping a `pcsc::Card` would reset it).
    fn let_go(&self, card: Card) {
        if let Err((card, e)) = card.disconnect(Disposition::LeaveCard) {
            tracing::debug!(reader = %self.reader, "disconnecting: {e}");
            // Not dropped: that would reset the card under other applications. The handle
            // is pcscd's to clean up when our context goes.
            std::mem::forget(card);
        }
    }

    /// One transaction on `card`, acknowledging a reset by someone else a few times.
    fn run<R>(
        &self,
        card: &mut Card,
        f: impl FnOnce(&mut dyn CardLink) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut backoff = self.sharing.backoff();
        let mut reconnects = 0;
        loop {
            match card.transaction2() {
                Ok(tx) => {
                    let mut link = TxLink {
                        card: &tx,
                        buf: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
                        reader: &self.reader,
                    };
                    let result = f(&mut link);
                    drop(link);
                    // Ending leaves the card as it is for the next application.
                    if let Err((_, e)) = tx.end(Disposition::LeaveCard) {
                        tracing::debug!(reader = %self.reader, "ending the transaction: {e}");
                    }
                    return result;
                }
                Err((_, pcsc::Error::SharingViolation)) => backoff.wait(&self.reader)?,
                Err((card, pcsc::Error::ResetCard)) if reconnects < MAX_RECONNECTS => {
                    // Another application reset the card: our handle must acknowledge it. The
                    // applet is selected again inside the transaction anyway.
                    reconnects += 1;
                    card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
                        .map_err(|e| card_error(e, &self.reader))?;
                }
                Err((_, e)) => return Err(card_error(e, &self.reader)),
            }
        }
    }
}

impl CardChannel for PcscCard {
    fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn CardLink) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut card = self.connect_now()?;
        let result = self.run(&mut card, f);
        self.let_go(card);
        result
    }

    fn reader(&self) -> &str {
        &self.reader
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }
}

/// The card inside one transaction.
struct TxLink<'a> {
    card: &'a Card,
    /// Receives answers, which may hold codes: wiped when the transaction ends.
    buf: Vec<u8>,
    reader: &'a str,
}

impl CardLink for TxLink<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
        self.card
            .transmit(apdu, &mut self.buf)
            .map(<[u8]>::to_vec)
            .map_err(|e| card_error(e, self.reader))
    }
}

impl Drop for TxLink<'_> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// Errors of the service itself (listing, waiting).
fn service_error(e: pcsc::Error) -> Error {
    match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::Shutdown => {
            Error::NoPcscService(e.to_string())
        }
        pcsc::Error::Cancelled => Error::Cancelled,
        other => Error::Transport(format!("PC/SC: {other}")),
    }
}

/// Errors talking to a card.
fn card_error(e: pcsc::Error, reader: &str) -> Error {
    match e {
        // The card or its reader went away, or pcscd with them.
        pcsc::Error::RemovedCard
        | pcsc::Error::NoSmartcard
        | pcsc::Error::UnknownReader
        | pcsc::Error::ReaderUnavailable
        | pcsc::Error::NoService
        | pcsc::Error::ServiceStopped
        | pcsc::Error::Shutdown => Error::Removed,
        pcsc::Error::SharingViolation => Error::HeldExclusively {
            reader: reader.to_string(),
        },
        pcsc::Error::Timeout => Error::Timeout(Duration::ZERO),
        pcsc::Error::Cancelled => Error::Cancelled,
        pcsc::Error::ResetCard => Error::Transport(format!(
            "the card in {reader:?} was reset by another application"
        )),
        other => Error::Transport(format!("PC/SC ({reader}): {other}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader and its card, as the monitor last saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStatus {
    /// The reader name (a key's path).
    pub reader: String,
    /// A card is in the reader (for a USB key: the key is plugged in).
    pub present: bool,
    /// The card's answer to reset, when present.
    pub atr: Vec<u8>,
    /// Another application holds the card exclusively: connecting fails until it lets go.
    pub exclusive: bool,
    /// Some application (maybe this one) is connected to the card.
    pub in_use: bool,
    /// The card does not answer (broken, or still powering up).
    pub mute: bool,
}

impl ReaderStatus {
    fn from_state(rs: &ReaderState) -> Self {
        let state = rs.event_state();
        let present = state.contains(State::PRESENT);
        Self {
            reader: rs.name().to_string_lossy().into_owned(),
            present,
            atr: if present {
                rs.atr().to_vec()
            } else {
                Vec::new()
            },
            exclusive: state.contains(State::EXCLUSIVE),
            in_use: state.contains(State::INUSE),
            mute: state.contains(State::MUTE),
        }
    }
}

/// What changed since the last [`ReaderMonitor::wait`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A reader appeared (with or without a card).
    Added(ReaderStatus),
    /// A reader's card came, went, or was taken or released by another application.
    Changed(ReaderStatus),
    /// A reader went away (for a USB key: it was unplugged).
    Removed {
        /// The reader name.
        reader: String,
    },
}

/// Watches readers and cards come and go with `SCardGetStatusChange`: it blocks in pcscd until
/// something changes or the timeout passes, and never talks to a card. The pseudo-reader
/// `\\?PnP?\Notification` reports readers plugged in or out. Drive it from a thread of its own.
///
/// pcsc-lite does not wake a wait when another application takes a card exclusively or lets
/// it go; the monitor asks pcscd for the readers' sharing flags afresh whenever a wait runs
/// out, so such a change is reported within one timeout (pick 1 to 5 s).
pub struct ReaderMonitor {
    ctx: Context,
    /// The PnP pseudo-reader first, then one entry per reader.
    states: Vec<ReaderState>,
    known: HashMap<String, ReaderStatus>,
}

impl std::fmt::Debug for ReaderMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderMonitor")
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

/// Wakes a [`ReaderMonitor::wait`] from another thread (shutdown).
#[derive(Clone)]
pub struct MonitorCanceller(Context);

impl std::fmt::Debug for MonitorCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MonitorCanceller")
    }
}

impl MonitorCanceller {
    /// Makes the monitor's current or next wait return [`Error::Cancelled`].
    pub fn cancel(&self) -> Result<(), Error> {
        self.0.cancel().map_err(service_error)
    }
}

impl ReaderMonitor {
    /// A monitor on its own PC/SC context ([`Error::NoPcscService`] without pcscd).
    pub fn new() -> Result<Self, Error> {
        Ok(Self::with_context(establish()?))
    }

    /// A monitor on `ctx` (the context may also be used to connect to cards).
    pub fn with_context(ctx: Context) -> Self {
        Self {
            ctx,
            states: vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)],
            known: HashMap::new(),
        }
    }

    /// The PC/SC context (to connect to the cards it reports).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// A handle that cancels waits from another thread.
    pub fn canceller(&self) -> MonitorCanceller {
        MonitorCanceller(self.ctx.clone())
    }

    /// Every reader as last seen.
    pub fn readers(&self) -> Vec<ReaderStatus> {
        let mut out: Vec<_> = self.known.values().cloned().collect();
        out.sort_by(|a, b| a.reader.cmp(&b.reader));
        out
    }

    /// Waits up to `timeout` for changes and returns them; empty when nothing changed. The
    /// first call reports every reader there is as [`ReaderEvent::Added`].
    /// [`Error::NoPcscService`] when pcscd stops (make a new monitor when it is back);
    /// [`Error::Cancelled`] after [`MonitorCanceller::cancel`].
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<ReaderEvent>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut events = self.sync_readers()?;
            for rs in &mut self.states {
                rs.sync_current_state();
            }
            let wait = if events.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.ctx.get_status_change(wait, &mut self.states) {
                Ok(()) => events.extend(self.collect_changes()),
                // pcsc-lite wakes waiters for cards and readers, not when an application takes
                // or releases a card: read the sharing flags afresh when a wait runs out.
                Err(pcsc::Error::Timeout) if events.is_empty() => {
                    events.extend(self.refresh_sharing()?);
                }
                Err(pcsc::Error::Timeout) => {}
                // A reader vanished between listing and waiting: list again.
                Err(pcsc::Error::UnknownReader) => continue,
                Err(e) => return Err(service_error(e)),
            }
            if !events.is_empty() || Instant::now() >= deadline {
                return Ok(events);
            }
        }
    }

    /// One reader as pcscd sees it now (one question to pcscd, none to the card): whether a
    /// card is in it and whether another application holds it exclusively. For a key that
    /// failed with [`Error::HeldExclusively`], to see when it is released.
    pub fn status(&self, reader: &str) -> Result<ReaderStatus, Error> {
        let name = CString::new(reader)
            .map_err(|_| Error::InvalidArgument(format!("reader name {reader:?} has a NUL")))?;
        let mut states = vec![ReaderState::new(name, State::UNAWARE)];
        match self.ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::UnknownReader) => return Err(Error::Removed),
            Err(e) => return Err(service_error(e)),
        }
        let state = states[0].event_state();
        if state.intersects(State::UNKNOWN | State::IGNORE) {
            return Err(Error::Removed);
        }
        Ok(ReaderStatus::from_state(&states[0]))
    }

    /// Reads every known reader's state afresh and reports those whose sharing changed (taken
    /// or released by another application).
    fn refresh_sharing(&mut self) -> Result<Vec<ReaderEvent>, Error> {
        let mut readers: Vec<String> = self.known.keys().cloned().collect();
        readers.sort();
        let mut events = Vec::new();
        for reader in readers {
            let status = match self.status(&reader) {
                Ok(status) => status,
                // Gone: the next wait's listing reports it.
                Err(Error::Removed) => continue,
                Err(e) => return Err(e),
            };
            // A card that came or went is the status wait's to report, with its ATR.
            if let Some(old) = self.known.get_mut(&reader)
                && old.present == status.present
                && (old.exclusive, old.in_use) != (status.exclusive, status.in_use)
            {
                old.exclusive = status.exclusive;
                old.in_use = status.in_use;
                events.push(ReaderEvent::Changed(old.clone()));
            }
        }
        Ok(events)
    }

    /// Brings the watched readers in line with pcscd's list: new ones are watched from an
    /// unaware state (so the next wait reports them at once), gone ones are reported removed.
    fn sync_readers(&mut self) -> Result<Vec<ReaderEvent>, Error> {
        let names = list_readers(&self.ctx)?;
        let mut events = Vec::new();
        let pnp = pcsc::PNP_NOTIFICATION();
        self.states.retain(|rs| {
            let name = rs.name();
            name == pnp || names.iter().any(|n| n.as_bytes() == name.to_bytes())
        });
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect();
        for reader in gone {
            self.known.remove(&reader);
            events.push(ReaderEvent::Removed { reader });
        }
        for name in names {
            let watched = self
                .states
                .iter()
                .any(|rs| rs.name().to_bytes() == name.as_bytes());
            if !watched {
                match CString::new(name) {
                    Ok(c) => self.states.push(ReaderState::new(c, State::UNAWARE)),
                    Err(e) => tracing::debug!("reader name with a NUL: {e}"),
                }
            }
        }
        Ok(events)
    }

    /// Turns the states pcscd marked as changed into events.
    fn collect_changes(&mut self) -> Vec<ReaderEvent> {
        let pnp = pcsc::PNP_NOTIFICATION();
        let mut events = Vec::new();
        let mut dead = Vec::new();
        for rs in &self.states {
            if rs.name() == pnp || !rs.event_state().contains(State::CHANGED) {
                continue;
            }
            let status = ReaderStatus::from_state(rs);
            if rs.event_state().intersects(State::UNKNOWN | State::IGNORE) {
                dead.push(status.reader.clone());
                if self.known.remove(&status.reader).is_some() {
                    events.push(ReaderEvent::Removed {
                        reader: status.reader,
                    });
                }
                continue;
            }
            match self.known.insert(status.reader.clone(), status.clone()) {
                None => events.push(ReaderEvent::Added(status)),
                Some(old) if old != status => events.push(ReaderEvent::Changed(status)),
                Some(_) => {}
            }
        }
        self.states
            .retain(|rs| !dead.iter().any(|d| d.as_bytes() == rs.name().to_bytes()));
        events
    }
}
