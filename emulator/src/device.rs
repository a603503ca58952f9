//! The virtual key's core: CTAPHID channels and reassembly on the device side, arbitration
//! between channels, touch waits, and dispatch to the apps.
//!
//! The core is a state machine driven from outside: [`VirtualKey::receive`] for each report the
//! host writes, [`VirtualKey::poll`] when time passes, [`VirtualKey::take_output`] for reports
//! to send. Every call takes the current instant, so tests can drive it with a manual clock and
//! the fronts (in-process, UDP, uhid) only move reports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use oathkey_device::ctaphid::wire::{
    self, BROADCAST_CID, INIT_DATA, MAX_MESSAGE, Packet, Report, capability, cmd, err,
};
use tracing::{debug, trace, warn};

use crate::admin;
use crate::config::{Config, TouchPolicy};
use crate::faults::{self, Faults, OutputFate};
use crate::secrets::{self, Ctx, SecretsApp};
use crate::state::{KeyState, StateError, StateFile};

/// Who sent a request, so that fronts with several peers (UDP) can route the answer.
pub type Origin = u64;

/// The device version reported by INIT, and by the admin app's VERSION.
pub const FIRMWARE_VERSION: (u8, u8, u8) = (0, 1, 0);

/// A message being received.
#[derive(Debug)]
struct Rx {
    cid: u32,
    cmd: u8,
    total: usize,
    buf: Vec<u8>,
    next_seq: u8,
    last_packet: Instant,
    origin: Origin,
}

/// Work parked until a touch.
#[derive(Debug)]
enum Work {
    Secrets(secrets::Deferred),
    Admin(admin::Change),
}

/// A transaction waiting for a touch. While it waits, other channels get CHANNEL_BUSY.
#[derive(Debug)]
struct Pending {
    cid: u32,
    cmd: u8,
    origin: Origin,
    work: Work,
    /// When the key gives up waiting ("not touched").
    deadline: Instant,
    /// When the simulated user touches, if they do.
    touch_at: Option<Instant>,
}

#[derive(Debug)]
struct Outgoing {
    at: Instant,
    origin: Origin,
    report: Report,
}

/// Counters for tests and the demo.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Reports received.
    pub reports_in: u64,
    /// Reports sent.
    pub reports_out: u64,
    /// WINK requests.
    pub winks: u64,
    /// Requests that waited for a touch.
    pub touch_requests: u64,
    /// Channels allocated.
    pub channels_allocated: u64,
}

/// The virtual key.
#[derive(Debug)]
pub struct VirtualKey {
    config: Config,
    state: KeyState,
    store: Option<StateFile>,
    /// Allocated channels, least recently used first.
    channels: VecDeque<u32>,
    next_cid: u32,
    rx: Option<Rx>,
    pending: Option<Pending>,
    lock: Option<(u32, Instant)>,
    secrets: SecretsApp,
    outbox: VecDeque<Outgoing>,
    /// When the last queued report leaves (for USB-like pacing).
    line_free_at: Option<Instant>,
    faults: Faults,
    stats: Stats,
}

impl VirtualKey {
    /// A key with fresh, unsaved state.
    pub fn new(config: Config) -> Self {
        let state = KeyState::new(config.serial);
        Self::with_state(config, state, None)
    }

    /// A key whose state lives in `file` (loaded if it exists, created otherwise).
    pub fn open(config: Config, file: StateFile) -> Result<Self, StateError> {
        let state = match file.load()? {
            Some(state) => state,
            None => {
                let state = KeyState::new(config.serial);
                file.save(&state)?;
                state
            }
        };
        Ok(Self::with_state(config, state, Some(file)))
    }

    fn with_state(config: Config, state: KeyState, store: Option<StateFile>) -> Self {
        let mut seed = [0u8; 4];
        let _ = getrandom::fill(&mut seed);
        Self {
            config,
            state,
            store,
            channels: VecDeque::new(),
            next_cid: u32::from_be_bytes(seed).max(1),
            rx: None,
            pending: None,
            lock: None,
            secrets: SecretsApp::default(),
            outbox: VecDeque::new(),
            line_free_at: None,
            faults: Faults::default(),
            stats: Stats::default(),
        }
    }

    /// The behaviour settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the touch policy (takes effect for the next touch request).
    pub fn set_touch_policy(&mut self, policy: TouchPolicy) {
        self.config.touch = policy;
    }

    /// Changes the pacing of outgoing reports.
    pub fn set_report_interval(&mut self, interval: Duration) {
        self.config.report_interval = interval;
    }

    /// The persistent state (for inspection in tests).
    pub fn state(&self) -> &KeyState {
        &self.state
    }

    /// The fault plan, to arm faults.
    pub fn faults_mut(&mut self) -> &mut Faults {
        &mut self.faults
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a request waits for a touch right now.
    pub fn waiting_for_touch(&self) -> bool {
        self.pending.is_some()
    }

    /// The user presses the button. Returns whether a request was waiting for it.
    pub fn press(&mut self, now: Instant) -> bool {
        match self.pending.take() {
            Some(p) => {
                self.finish(p, true, now);
                true
            }
            None => false,
        }
    }

    /// Forgets everything volatile, as a power cycle does (used on replug).
    pub fn power_cycle(&mut self) {
        self.channels.clear();
        self.rx = None;
        self.pending = None;
        self.lock = None;
        self.secrets = SecretsApp::default();
        self.outbox.clear();
        self.line_free_at = None;
        self.faults = Faults::default();
    }

    /// Handles one report from the host.
    pub fn receive(&mut self, report: &Report, origin: Origin, now: Instant) {
        self.poll(now);
        self.stats.reports_in += 1;
        if self.faults.take_input_drop() {
            trace!("fault: dropped an incoming report");
            return;
        }
        match Packet::parse(report) {
            Packet::Init {
                cid,
                cmd,
                bcnt,
                data,
            } => self.init_packet(cid, cmd, usize::from(bcnt), data, origin, now),
            Packet::Cont { cid, seq, data } => self.cont_packet(cid, seq, data, now),
        }
    }

    fn init_packet(
        &mut self,
        cid: u32,
        command: u8,
        bcnt: usize,
        data: &[u8],
        origin: Origin,
        now: Instant,
    ) {
        if cid == wire::RESERVED_CID {
            return self.error(cid, err::INVALID_CHANNEL, origin, now);
        }
        if command == cmd::INIT {
            return self.init_command(cid, bcnt, data, origin, now);
        }
        if cid == BROADCAST_CID || !self.channels.contains(&cid) {
            return self.error(cid, err::INVALID_CHANNEL, origin, now);
        }
        self.touch_channel(cid);
        if command == cmd::CANCEL {
            // CANCEL has no answer of its own; it ends a touch wait on this channel.
            if self.pending.as_ref().is_some_and(|p| p.cid == cid)
                && let Some(p) = self.pending.take()
            {
                debug!("request cancelled by the host");
                self.finish(p, false, now);
            }
            return;
        }
        if let Some(rx) = &self.rx {
            if rx.cid == cid {
                // A new message while the last one is incomplete: the last one is broken.
                self.rx = None;
                return self.error(cid, err::INVALID_SEQ, origin, now);
            }
            return self.error(cid, err::CHANNEL_BUSY, origin, now);
        }
        let locked_out = self
            .lock
            .is_some_and(|(owner, until)| owner != cid && now < until);
        if self.pending.is_some() || locked_out || self.faults.busy(now) {
            return self.error(cid, err::CHANNEL_BUSY, origin, now);
        }
        if bcnt > MAX_MESSAGE {
            return self.error(cid, err::INVALID_LEN, origin, now);
        }
        if bcnt <= INIT_DATA {
            return self.dispatch(cid, command, data[..bcnt].to_vec(), origin, now);
        }
        let mut buf = Vec::with_capacity(bcnt);
        buf.extend_from_slice(data);
        self.rx = Some(Rx {
            cid,
            cmd: command,
            total: bcnt,
            buf,
            next_seq: 0,
            last_packet: now,
            origin,
        });
    }

    fn cont_packet(&mut self, cid: u32, seq: u8, data: &[u8], now: Instant) {
        let Some(rx) = self.rx.as_mut() else {
            trace!("ignored a continuation packet with no message in progress");
            return;
        };
        if rx.cid != cid {
            trace!("ignored a continuation packet from another channel");
            return;
        }
        if seq != rx.next_seq {
            let origin = rx.origin;
            self.rx = None;
            return self.error(cid, err::INVALID_SEQ, origin, now);
        }
        rx.next_seq += 1;
        rx.last_packet = now;
        let take = (rx.total - rx.buf.len()).min(data.len());
        rx.buf.extend_from_slice(&data[..take]);
        if rx.buf.len() == rx.total
            && let Some(rx) = self.rx.take()
        {
            self.dispatch(rx.cid, rx.cmd, rx.buf, rx.origin, now);
        }
    }

    fn init_command(&mut self, cid: u32, bcnt: usize, data: &[u8], origin: Origin, now: Instant) {
        if bcnt != 8 {
            return self.error(cid, err::INVALID_LEN, origin, now);
        }
        let channel = if cid == BROADCAST_CID {
            self.allocate()
        } else if self.channels.contains(&cid) {
            // Resync: whatever this channel had in progress is abandoned.
            if self.rx.as_ref().is_some_and(|rx| rx.cid == cid) {
                self.rx = None;
            }
            if self.pending.as_ref().is_some_and(|p| p.cid == cid) {
                self.pending = None;
            }
            self.touch_channel(cid);
            cid
        } else {
            return self.error(cid, err::INVALID_CHANNEL, origin, now);
        };
        let mut answer = Vec::with_capacity(17);
        answer.extend_from_slice(&data[..8]);
        answer.extend_from_slice(&channel.to_be_bytes());
        let (major, minor, build) = FIRMWARE_VERSION;
        answer.extend_from_slice(&[
            wire::PROTOCOL_VERSION,
            major,
            minor,
            build,
            capability::WINK | capability::NMSG,
        ]);
        self.send(cid, cmd::INIT, &answer, origin, now);
    }

    fn allocate(&mut self) -> u32 {
        loop {
            let cid = self.next_cid;
            self.next_cid = self.next_cid.wrapping_add(1);
            if cid == wire::RESERVED_CID || cid == BROADCAST_CID || self.channels.contains(&cid) {
                continue;
            }
            if self.channels.len() >= self.config.max_channels.max(1) {
                self.channels.pop_front();
            }
            self.channels.push_back(cid);
            self.stats.channels_allocated += 1;
            return cid;
        }
    }

    fn touch_channel(&mut self, cid: u32) {
        if let Some(i) = self.channels.iter().position(|&c| c == cid) {
            self.channels.remove(i);
            self.channels.push_back(cid);
        }
    }

    fn dispatch(&mut self, cid: u32, command: u8, payload: Vec<u8>, origin: Origin, now: Instant) {
        match command {
            cmd::PING => self.send(cid, command, &payload, origin, now),
            cmd::WINK => {
                self.stats.winks += 1;
                debug!("wink");
                self.send(cid, command, &[], origin, now);
            }
            cmd::LOCK => match payload.as_slice() {
                [0] => {
                    self.lock = None;
                    self.send(cid, command, &[], origin, now);
                }
                [secs @ 1..=10] => {
                    self.lock = Some((cid, now + Duration::from_secs(u64::from(*secs))));
                    self.send(cid, command, &[], origin, now);
                }
                _ => self.error(cid, err::INVALID_PAR, origin, now),
            },
            cmd::VENDOR_SECRETS => {
                let mut ctx = Ctx {
                    state: &mut self.state,
                    profile: self.config.profile,
                    max_credentials: self.config.max_credentials,
                    dirty: false,
                };
                let step = self.secrets.handle(&mut ctx, &payload);
                let dirty = ctx.dirty;
                self.persist(dirty);
                match step {
                    secrets::Step::Answer(answer) => self.send(cid, command, &answer, origin, now),
                    secrets::Step::NotApdu => self.error(cid, err::INVALID_LEN, origin, now),
                    secrets::Step::NeedsTouch(d) => {
                        self.await_touch(cid, command, origin, Work::Secrets(d), now)
                    }
                }
            }
            cmd::VENDOR_ADMIN => match admin::handle(&self.state, self.config.profile, &payload) {
                admin::Step::Answer(answer) => self.send(cid, command, &answer, origin, now),
                admin::Step::CtapError(code) => self.error(cid, code, origin, now),
                admin::Step::NeedsTouch(change) => {
                    self.await_touch(cid, command, origin, Work::Admin(change), now)
                }
            },
            cmd::VENDOR_VERSION => {
                let (major, minor, patch) = FIRMWARE_VERSION;
                if payload == [1] {
                    let text = format!("{major}.{minor}.{patch}");
                    self.send(cid, command, text.as_bytes(), origin, now);
                } else {
                    // Trussed's encoding: 10 bits major, 16 bits minor, 6 bits patch.
                    let packed =
                        (u32::from(major) << 22) | (u32::from(minor) << 6) | u32::from(patch);
                    self.send(cid, command, &packed.to_be_bytes(), origin, now);
                }
            }
            cmd::VENDOR_UUID => {
                let uuid = self.state.uuid.clone();
                self.send(cid, command, &uuid, origin, now);
            }
            _ => self.error(cid, err::INVALID_CMD, origin, now),
        }
    }

    fn await_touch(&mut self, cid: u32, command: u8, origin: Origin, work: Work, now: Instant) {
        self.stats.touch_requests += 1;
        let deadline = now + self.config.touch_timeout;
        let touch_at = match self.config.touch {
            TouchPolicy::Approve => Some(now),
            TouchPolicy::Deny | TouchPolicy::Button => None,
            TouchPolicy::After(delay) => Some(now + delay),
        };
        debug!(policy = ?self.config.touch, "waiting for a touch");
        let pending = Pending {
            cid,
            cmd: command,
            origin,
            work,
            deadline,
            touch_at,
        };
        if touch_at.is_some_and(|t| t <= now && t < deadline) {
            self.finish(pending, true, now);
        } else {
            // The Nitrokey 3 secrets app sends no KEEPALIVE while it waits: the host sees
            // silence until the answer.
            self.pending = Some(pending);
        }
    }

    fn finish(&mut self, pending: Pending, touched: bool, now: Instant) {
        let answer = match pending.work {
            Work::Secrets(deferred) => {
                let mut ctx = Ctx {
                    state: &mut self.state,
                    profile: self.config.profile,
                    max_credentials: self.config.max_credentials,
                    dirty: false,
                };
                let answer = self.secrets.resume(&mut ctx, deferred, touched);
                let dirty = ctx.dirty;
                self.persist(dirty);
                answer
            }
            Work::Admin(change) => {
                let (answer, dirty) = admin::resume(&mut self.state, change, touched);
                self.persist(dirty);
                answer
            }
        };
        self.send(pending.cid, pending.cmd, &answer, pending.origin, now);
    }

    fn persist(&mut self, dirty: bool) {
        if let (true, Some(store)) = (dirty, &self.store)
            && let Err(e) = store.save(&self.state)
        {
            warn!("virtual key could not save its state: {e}");
        }
    }

    /// Lets time pass: message timeouts, touch decisions, lock expiry.
    pub fn poll(&mut self, now: Instant) {
        if let Some(rx) = &self.rx
            && now.duration_since(rx.last_packet) > self.config.message_timeout
        {
            let (cid, origin) = (rx.cid, rx.origin);
            self.rx = None;
            debug!("message timed out between packets");
            self.error(cid, err::MSG_TIMEOUT, origin, now);
        }
        if let Some(p) = &self.pending {
            let touched = p.touch_at.is_some_and(|t| t <= now && t < p.deadline);
            if (touched || now >= p.deadline)
                && let Some(p) = self.pending.take()
            {
                self.finish(p, touched, now);
            }
        }
        if self.lock.is_some_and(|(_, until)| now >= until) {
            self.lock = None;
        }
    }

    /// When something will happen without input: the caller should poll again then.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let rx = self
            .rx
            .as_ref()
            .map(|rx| rx.last_packet + self.config.message_timeout);
        let pending = self.pending.as_ref().map(|p| match p.touch_at {
            Some(t) if t < p.deadline => t,
            _ => p.deadline,
        });
        let out = self.outbox.front().map(|o| o.at);
        let stall = self.faults.stall_until;
        [rx, pending, out, stall].into_iter().flatten().min()
    }

    /// The next report to send, if one is due. Faults apply here.
    pub fn take_output(&mut self, now: Instant) -> Option<(Origin, Report)> {
        loop {
            if self.faults.stalled(now) {
                return None;
            }
            let front = self.outbox.front()?;
            if front.at > now {
                return None;
            }
            let Outgoing {
                origin, mut report, ..
            } = self.outbox.pop_front()?;
            match self.faults.output_fate() {
                OutputFate::Send => {}
                OutputFate::Drop => {
                    trace!("fault: dropped an outgoing report");
                    continue;
                }
                OutputFate::Corrupt => {
                    trace!("fault: corrupted an outgoing report");
                    faults::corrupt(&mut report);
                }
                OutputFate::Duplicate => {
                    trace!("fault: duplicated an outgoing report");
                    self.outbox.push_front(Outgoing {
                        at: now,
                        origin,
                        report,
                    });
                }
            }
            self.stats.reports_out += 1;
            return Some((origin, report));
        }
    }

    fn error(&mut self, cid: u32, code: u8, origin: Origin, now: Instant) {
        trace!(cid = format_args!("{cid:08x}"), code, "CTAPHID error");
        self.send(cid, cmd::ERROR, &[code], origin, now);
    }

    fn send(&mut self, cid: u32, command: u8, payload: &[u8], origin: Origin, now: Instant) {
        let Ok(reports) = wire::fragment(cid, command, payload) else {
            // Only app answers could be this long, and none is; fail loudly but safely.
            warn!(len = payload.len(), "answer too long for CTAPHID");
            return self.error(cid, err::OTHER, origin, now);
        };
        for report in reports {
            // Each report occupies the line for one interval and arrives at its end, as on an
            // interrupt endpoint polled once per interval.
            let start = match self.line_free_at {
                Some(free) if free > now => free,
                _ => now,
            };
            let at = start + self.config.report_interval;
            self.line_free_at = Some(at);
            self.outbox.push_back(Outgoing { at, origin, report });
        }
    }
}
