//! The host side of CTAPHID: channel allocation, message exchange, busy retries and resync.
//!
//! The key may be shared with a browser that talks FIDO on its own channel, so reports for other
//! channels are skipped, and CHANNEL_BUSY means "try again shortly", not "broken". An exchange
//! that breaks half-way (timeout, bad sequence, cancelled) leaves the channel in an unknown
//! state; the next call resynchronises with INIT before it sends anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, trace, warn};

use super::wire::{self, BROADCAST_CID, Packet, TYPE_INIT, cmd, err, keepalive};
use crate::error::Error;
use crate::transport::Transport;

/// How long the host waits for the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For requests that never wait for the user (INIT, PING, WINK, LIST).
    pub quick: Duration,
    /// For requests that may wait for a touch: the key is silent for up to about 15 s, then
    /// answers "security status not satisfied".
    pub touch: Duration,
    /// How long CHANNEL_BUSY answers are retried before the call fails with [`Error::Busy`].
    pub busy: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            quick: Duration::from_secs(3),
            touch: Duration::from_secs(20),
            busy: Duration::from_secs(10),
        }
    }
}

/// Which timeout a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The key answers at once.
    Quick,
    /// The key may wait for a touch first.
    Touch,
}

/// Per-call options: the timeout class, a cancel flag and a touch callback.
#[derive(Default, Clone, Copy)]
pub struct CallOptions<'a> {
    /// Use the touch timeout instead of the quick one.
    pub wait: Option<Wait>,
    /// When this becomes true, the host sends CANCEL and gives up on the answer.
    pub cancel: Option<&'a AtomicBool>,
    /// Called once when the key says (KEEPALIVE) that it waits for user presence.
    pub on_touch_needed: Option<&'a (dyn Fn() + Sync)>,
}

impl std::fmt::Debug for CallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("wait", &self.wait)
            .field("cancel", &self.cancel.map(|c| c.load(Ordering::Relaxed)))
            .field("on_touch_needed", &self.on_touch_needed.is_some())
            .finish()
    }
}

/// What the key said about itself in its INIT response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitInfo {
    /// CTAPHID protocol version (2).
    pub protocol: u8,
    /// Device version: major, minor, build.
    pub version: (u8, u8, u8),
    /// Capability flags (`wire::capability`).
    pub capabilities: u8,
}

/// How long the host waits for the answer to its own CANCEL before giving up on a request.
const CANCEL_GRACE: Duration = Duration::from_millis(1500);
/// Polling step while a cancel flag may be raised.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// First and largest pause between CHANNEL_BUSY retries.
const BUSY_BACKOFF_START: Duration = Duration::from_millis(10);
const BUSY_BACKOFF_MAX: Duration = Duration::from_millis(250);

/// A CTAPHID connection to one device over one [`Transport`].
pub struct CtapHid<T> {
    transport: T,
    /// Our channel, once allocated. `None` forces a broadcast INIT before the next request.
    cid: Option<u32>,
    /// Set after an exchange broke: the next request first resynchronises the channel.
    needs_resync: bool,
    info: Option<InitInfo>,
    timeouts: Timeouts,
}

impl<T> std::fmt::Debug for CtapHid<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtapHid")
            .field("cid", &self.cid.map(|c| format!("{c:08x}")))
            .field("needs_resync", &self.needs_resync)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> CtapHid<T> {
    /// Wraps a transport; no channel is allocated until the first request (or [`Self::init`]).
    pub fn new(transport: T, timeouts: Timeouts) -> Self {
        Self {
            transport,
            cid: None,
            needs_resync: false,
            info: None,
            timeouts,
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Mutable access to the transport (tests inject faults through it).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The allocated channel, if any.
    pub fn channel(&self) -> Option<u32> {
        self.cid
    }

    /// The INIT information of the current channel.
    pub fn init_info(&self) -> Option<InitInfo> {
        self.info
    }

    /// Allocates a fresh channel with a broadcast INIT.
    pub fn init(&mut self) -> Result<InitInfo, Error> {
        let (cid, info) = self.init_on(BROADCAST_CID)?;
        debug!(
            cid = format_args!("{cid:08x}"),
            ?info,
            "allocated CTAPHID channel"
        );
        self.cid = Some(cid);
        self.needs_resync = false;
        self.info = Some(info);
        Ok(info)
    }

    /// Makes sure a usable channel exists: allocate one, or resynchronise a broken one.
    fn ensure_channel(&mut self) -> Result<u32, Error> {
        match self.cid {
            Some(cid) if !self.needs_resync => Ok(cid),
            Some(cid) => {
                // INIT on our own channel aborts whatever the key still does for us and tells
                // us where the stale traffic ends. If the key no longer knows the channel
                // (replugged, rebooted), fall back to a fresh allocation.
                match self.init_on(cid) {
                    Ok((same, info)) if same == cid => {
                        debug!(
                            cid = format_args!("{cid:08x}"),
                            "resynchronised CTAPHID channel"
                        );
                        self.needs_resync = false;
                        self.info = Some(info);
                        Ok(cid)
                    }
                    Ok(_) | Err(Error::Ctaphid { .. }) | Err(Error::Timeout(_)) => {
                        self.init().map(|_| self.cid.unwrap_or(BROADCAST_CID))
                    }
                    Err(e) => Err(e),
                }
            }
            None => self.init().map(|_| self.cid.unwrap_or(BROADCAST_CID)),
        }
    }

    /// Sends INIT with a fresh nonce on `target` and waits for the answer carrying that nonce.
    fn init_on(&mut self, target: u32) -> Result<(u32, InitInfo), Error> {
        let start = Instant::now();
        let mut backoff = BUSY_BACKOFF_START;
        loop {
            match self.init_once(target) {
                Err(Error::Ctaphid {
                    code: err::CHANNEL_BUSY,
                }) => {
                    backoff = self.busy_pause(start, backoff, None)?;
                }
                other => return other,
            }
        }
    }

    fn init_once(&mut self, target: u32) -> Result<(u32, InitInfo), Error> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| Error::Transport(format!("no randomness: {e}")))?;
        for report in wire::fragment(target, cmd::INIT, &nonce)? {
            self.transport.write(&report)?;
        }
        let deadline = Instant::now() + self.timeouts.quick;
        loop {
            let Some(report) = self.read_until(deadline)? else {
                return Err(Error::Timeout(self.timeouts.quick));
            };
            match Packet::parse(&report) {
                Packet::Init {
                    cid,
                    cmd: cmd::INIT,
                    bcnt,
                    data,
                } if cid == target => {
                    if bcnt < 17 || data[..8] != nonce {
                        // An answer to somebody else's INIT on the broadcast channel.
                        continue;
                    }
                    let new_cid = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
                    if new_cid == 0 || new_cid == BROADCAST_CID {
                        return Err(Error::Protocol(format!(
                            "key allocated an invalid channel {new_cid:08x}"
                        )));
                    }
                    let info = InitInfo {
                        protocol: data[12],
                        version: (data[13], data[14], data[15]),
                        capabilities: data[16],
                    };
                    return Ok((new_cid, info));
                }
                Packet::Init {
                    cid,
                    cmd: cmd::ERROR,
                    data,
                    ..
                } if cid == target => {
                    return Err(Error::Ctaphid { code: data[0] });
                }
                other => trace!(cid = format_args!("{:08x}", other.cid()), "skipped report"),
            }
        }
    }

    /// Reads one report, waiting at most until `deadline`.
    fn read_until(&mut self, deadline: Instant) -> Result<Option<wire::Report>, Error> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        Ok(self.transport.read(left)?)
    }

    /// Sleeps before the next CHANNEL_BUSY retry, or fails once the busy budget is spent.
    fn busy_pause(
        &self,
        start: Instant,
        backoff: Duration,
        cancel: Option<&AtomicBool>,
    ) -> Result<Duration, Error> {
        let spent = start.elapsed();
        if spent >= self.timeouts.busy {
            return Err(Error::Busy(self.timeouts.busy));
        }
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled);
        }
        std::thread::sleep(backoff.min(self.timeouts.busy - spent));
        Ok((backoff * 2).min(BUSY_BACKOFF_MAX))
    }

    /// Sends one request and returns the response payload.
    ///
    /// CHANNEL_BUSY is retried with growing pauses up to the busy budget; a key that forgot our
    /// channel gets one fresh allocation and one more try (it rejected the request unread, so
    /// resending cannot run it twice).
    pub fn call(
        &mut self,
        command: u8,
        payload: &[u8],
        opts: CallOptions<'_>,
    ) -> Result<Vec<u8>, Error> {
        if payload.len() > wire::MAX_MESSAGE {
            return Err(Error::InvalidArgument(format!(
                "request of {} bytes exceeds the CTAPHID maximum of {} bytes",
                payload.len(),
                wire::MAX_MESSAGE
            )));
        }
        let start = Instant::now();
        let mut backoff = BUSY_BACKOFF_START;
        let mut reallocated = false;
        loop {
            let cid = self.ensure_channel()?;
            match self.exchange(cid, command, payload, opts) {
                Err(Error::Ctaphid {
                    code: err::CHANNEL_BUSY,
                }) => {
                    trace!("key busy on another channel; retrying");
                    backoff = self.busy_pause(start, backoff, opts.cancel)?;
                }
                Err(Error::Ctaphid {
                    code: err::INVALID_CHANNEL,
                }) if !reallocated => {
                    warn!("key does not know our channel any more; allocating a new one");
                    reallocated = true;
                    self.cid = None;
                }
                Err(e) => {
                    if e.breaks_channel() {
                        self.needs_resync = true;
                    }
                    return Err(e);
                }
                Ok(response) => return Ok(response),
            }
        }
    }

    /// One request/response exchange on `cid`, without retries.
    fn exchange(
        &mut self,
        cid: u32,
        command: u8,
        payload: &[u8],
        opts: CallOptions<'_>,
    ) -> Result<Vec<u8>, Error> {
        self.discard_stale()?;
        for report in wire::fragment(cid, command, payload)? {
            self.transport.write(&report)?;
        }
        let wait = match opts.wait.unwrap_or(Wait::Quick) {
            Wait::Quick => self.timeouts.quick,
            Wait::Touch => self.timeouts.touch,
        };
        let mut deadline = Instant::now() + wait;
        let mut cancel_sent = false;
        let mut touch_reported = false;
        // (expected total length, next sequence number, bytes so far)
        let mut partial: Option<(usize, u8, Vec<u8>)> = None;
        loop {
            if !cancel_sent && opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                debug!("request cancelled; sending CANCEL");
                let mut report = [0u8; wire::REPORT_SIZE];
                report[..4].copy_from_slice(&cid.to_be_bytes());
                report[4] = TYPE_INIT | cmd::CANCEL;
                self.transport.write(&report)?;
                cancel_sent = true;
                deadline = Instant::now() + CANCEL_GRACE;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(if cancel_sent {
                    Error::Cancelled
                } else {
                    Error::Timeout(wait)
                });
            }
            let step = if opts.cancel.is_some() && !cancel_sent {
                (deadline - now).min(CANCEL_POLL)
            } else {
                deadline - now
            };
            let Some(report) = self.transport.read(step)? else {
                continue;
            };
            let packet = Packet::parse(&report);
            if packet.cid() != cid {
                // Another application's channel (a browser doing WebAuthn, say).
                continue;
            }
            match (packet, partial.as_mut()) {
                (
                    Packet::Init {
                        cmd: cmd::KEEPALIVE,
                        data,
                        ..
                    },
                    None,
                ) => {
                    // The key is alive; give it the full wait again from here.
                    deadline = Instant::now() + if cancel_sent { CANCEL_GRACE } else { wait };
                    if data[0] == keepalive::UP_NEEDED && !touch_reported {
                        touch_reported = true;
                        if let Some(cb) = opts.on_touch_needed {
                            cb();
                        }
                    }
                }
                (
                    Packet::Init {
                        cmd: cmd::ERROR,
                        data,
                        ..
                    },
                    _,
                ) => {
                    return Err(Error::Ctaphid { code: data[0] });
                }
                (
                    Packet::Init {
                        cmd: got,
                        bcnt,
                        data,
                        ..
                    },
                    None,
                ) if got == command => {
                    let total = usize::from(bcnt);
                    if total > wire::MAX_MESSAGE {
                        return Err(Error::Protocol(format!(
                            "response length {total} exceeds the CTAPHID maximum"
                        )));
                    }
                    let mut buf = Vec::with_capacity(total);
                    buf.extend_from_slice(&data[..total.min(wire::INIT_DATA)]);
                    if buf.len() == total {
                        return Ok(buf);
                    }
                    partial = Some((total, 0, buf));
                }
                (Packet::Init { cmd: got, .. }, _) => {
                    return Err(Error::Protocol(format!(
                        "expected a response to command {command:#04x}, got {got:#04x}"
                    )));
                }
                (Packet::Cont { seq, data, .. }, Some((total, next, buf))) => {
                    if seq != *next {
                        return Err(Error::Protocol(format!(
                            "response continuation out of order: expected {next}, got {seq}"
                        )));
                    }
                    *next += 1;
                    let take = (*total - buf.len()).min(wire::CONT_DATA);
                    buf.extend_from_slice(&data[..take]);
                    if buf.len() == *total {
                        return Ok(std::mem::take(buf));
                    }
                }
                (Packet::Cont { seq, .. }, None) => {
                    trace!(seq, "skipped stray continuation packet");
                }
            }
        }
    }

    /// Throws away reports already waiting before a new request goes out. CTAPHID answers carry
    /// no request number, so a late or duplicated answer still queued would otherwise be taken
    /// for the answer to the next request.
    fn discard_stale(&mut self) -> Result<(), Error> {
        for _ in 0..wire::MAX_SEQ * 2 {
            match self.transport.read(Duration::ZERO)? {
                Some(report) => {
                    trace!(
                        cid = format_args!("{:08x}", Packet::parse(&report).cid()),
                        "discarded a stale report"
                    );
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// PING: the key echoes the payload. Returns an error if the echo differs.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        let echo = self.call(cmd::PING, payload, CallOptions::default())?;
        if echo != payload {
            self.needs_resync = true;
            return Err(Error::Protocol(format!(
                "PING echo differs: sent {} bytes, got {} bytes back",
                payload.len(),
                echo.len()
            )));
        }
        Ok(())
    }

    /// WINK: the key blinks so the user can tell which one it is.
    pub fn wink(&mut self) -> Result<(), Error> {
        self.call(cmd::WINK, &[], CallOptions::default()).map(drop)
    }
}
