//! The virtual key as a smart card: an APDU-level model behind a card reader (the [`vpcd`]
//! front puts it behind pcscd). Two profiles share the state file and the touch policy with
//! the HID key:
//! - [`CardProfile::YubiKey`]: a YubiKey 5-like card with the OATH app ([`ykoath`]) and the
//!   Management app ([`management`]); everything else (PIV, OpenPGP, OTP...) answers `6A 82`.
//! - [`CardProfile::Nk3`]: a Nitrokey 3 over CCID: the secrets app ([`secrets`], the same one
//!   the HID key runs) with its CCID framing (data first, status word last); no Management app.
//!
//! The card does what the reader cannot: ISO 7816 command chaining (CLA `10`), response
//! chaining (`61 xx` and SEND REMAINING) and touch waits (a CCID card cannot send keepalives:
//! it holds the APDU until the touch comes or times out, as a YubiKey does). Like the HID core
//! it is a state machine: [`Card::transmit`], [`Card::poll`] and [`Card::press`] take the
//! current instant, so tests drive it with a manual clock.
//!
//! [`vpcd`]: crate::vpcd
//! [`ykoath`]: crate::ykoath
//! [`management`]: crate::management
//! [`secrets`]: crate::secrets

use std::time::Instant;

use oathkey_device::apdu::StatusWord;
use oathkey_device::oath::AID as OATH_AID;
use tracing::{debug, warn};
use zeroize::Zeroizing;

use crate::apdu::{self, Apdu};
use crate::config::{Config, Profile, TouchPolicy};
use crate::management;
use crate::secrets::{self, Ctx, SecretsApp, Step};
use crate::state::{AccessKey, KeyState, StateError, StateFile};
use crate::ykoath::{self, Outcome, YkOath};

/// Which card the virtual key models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProfile {
    /// A YubiKey 5-like card: YKOATH with its quirks and the Management app.
    YubiKey,
    /// A Nitrokey 3 over CCID: the secrets app.
    Nk3,
}

impl std::str::FromStr for CardProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yubikey" => Ok(Self::YubiKey),
            "nk3" | "nitrokey3" => Ok(Self::Nk3),
            other => Err(format!("unknown card profile {other:?}: yubikey or nk3")),
        }
    }
}

/// The card's answer to reset: a generic T=1 card, deliberately not a YubiKey's.
///
/// `3B` direct convention; T0 `8C`: TD1 follows, 12 historical bytes; TD1 `80`: TD2 follows
/// (T=0 nominal, as PC/SC part 3 writes contactless ATRs); TD2 `01`: T=1; historical bytes a
/// category indicator `80` and a compact-TLV "card issuer's data" `5A` carrying `oathkey-vc`;
/// then TCK, the XOR of T0 through the last historical byte. yubikit treats an ATR whose second
/// byte has the high nibble `F` as a YubiKey on USB and then looks for its USB device: this
/// one reads as a card in an external reader (yubikit's NFC path), which is what it is.
pub const ATR: [u8; 17] = atr();

const fn atr() -> [u8; 17] {
    let mut atr = [
        0x3B, 0x8C, 0x80, 0x01, 0x80, 0x5A, b'o', b'a', b't', b'h', b'k', b'e', b'y', b'-', b'v',
        b'c', 0,
    ];
    let mut tck = 0u8;
    let mut i = 1;
    while i < 16 {
        tck ^= atr[i];
        i += 1;
    }
    atr[16] = tck;
    atr
}

/// Data bytes per answer before the card chains with `61 xx`: what a short APDU can carry.
pub const CHUNK: usize = 256;

/// ISO 7816 SELECT.
const INS_SELECT: u8 = 0xA4;
/// ISO 7816 GET RESPONSE: how the Management app's host fetches chained answers.
const INS_GET_RESPONSE: u8 = 0xC0;
/// Longest command-chained request accepted (far above anything YKOATH sends).
const MAX_CHAINED: usize = 4096;

/// What the card answers to an APDU.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The response APDU (data, then the status word).
    Answer(Vec<u8>),
    /// The APDU waits for a touch: the answer comes from [`Card::poll`] or [`Card::press`].
    Waiting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applet {
    None,
    Oath,
    Management,
}

#[derive(Debug)]
enum Work {
    Oath(ykoath::Deferred),
    Secrets(secrets::Deferred),
}

#[derive(Debug)]
struct Pending {
    work: Work,
    deadline: Instant,
    touch_at: Option<Instant>,
}

/// The rest of a chained answer and the instruction that fetches it.
struct Remainder {
    ins: u8,
    data: Zeroizing<Vec<u8>>,
}

/// A command arriving in parts (CLA `10`): a PUT's parts carry a secret.
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Zeroizing<Vec<u8>>,
}

// Buffered APDU data stays out of debug output: lengths are enough.
impl std::fmt::Debug for Remainder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remainder")
            .field("ins", &self.ins)
            .field("len", &self.data.len())
            .finish()
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("ins", &self.ins)
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// The virtual smart card.
#[derive(Debug)]
pub struct Card {
    config: Config,
    profile: CardProfile,
    state: KeyState,
    store: Option<StateFile>,
    powered: bool,
    applet: Applet,
    oath: YkOath,
    secrets: SecretsApp,
    pending: Option<Pending>,
    remainder: Option<Remainder>,
    chain: Option<Chain>,
    reboot: bool,
}

fn status(sw: StatusWord) -> Vec<u8> {
    sw.to_bytes().to_vec()
}

impl Card {
    /// A card with fresh, unsaved state.
    pub fn new(config: Config, profile: CardProfile) -> Self {
        let state = KeyState::new(config.serial);
        Self::with_state(config, profile, state, None)
    }

    /// A card whose state lives in `file` (loaded if it exists, created otherwise): the same
    /// file format as the HID key's.
    pub fn open(config: Config, profile: CardProfile, file: StateFile) -> Result<Self, StateError> {
        let state = match file.load()? {
            Some(state) => state,
            None => {
                let state = KeyState::new(config.serial);
                file.save(&state)?;
                state
            }
        };
        Ok(Self::with_state(config, profile, state, Some(file)))
    }

    fn with_state(
        config: Config,
        profile: CardProfile,
        state: KeyState,
        store: Option<StateFile>,
    ) -> Self {
        Self {
            config,
            profile,
            state,
            store,
            powered: false,
            applet: Applet::None,
            oath: YkOath::default(),
            secrets: SecretsApp::default(),
            pending: None,
            remainder: None,
            chain: None,
            reboot: false,
        }
    }

    /// The modelled card.
    pub fn profile(&self) -> CardProfile {
        self.profile
    }

    /// The answer to reset.
    pub fn atr(&self) -> &'static [u8] {
        &ATR
    }

    /// The persistent state (for inspection in tests).
    pub fn state(&self) -> &KeyState {
        &self.state
    }

    /// Whether the card has power.
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// Changes the touch policy (takes effect for the next touch request).
    pub fn set_touch_policy(&mut self, policy: TouchPolicy) {
        self.config.touch = policy;
    }

    /// Sets the OATH access code as a host would from `password` (tests and demos start a
    /// card locked this way; the derived key is stored, never the password).
    pub fn set_access_code(&mut self, password: &str) {
        let key = ykoath::derive_access_key(password.as_bytes(), &self.state.card.oath_salt);
        self.state.card.access_key = Some(AccessKey {
            kind_alg: 0x21,
            key: Zeroizing::new(key.to_vec()),
        });
        self.persist(true);
    }

    /// Whether an APDU waits for a touch.
    pub fn waiting_for_touch(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the host asked for a reboot (Management WRITE CONFIG); reading clears it. The
    /// front then takes the card away and brings it back, as a YubiKey re-enumerates.
    pub fn take_reboot(&mut self) -> bool {
        std::mem::take(&mut self.reboot)
    }

    /// Power on (cold reset): a fresh session, nothing selected.
    pub fn power_on(&mut self) {
        self.forget_session();
        self.powered = true;
    }

    /// Power off: everything volatile is lost, a touch wait included.
    pub fn power_off(&mut self) {
        self.forget_session();
        self.powered = false;
    }

    /// Warm reset: as power on, the applet selection and a validated access code are gone.
    pub fn reset(&mut self) {
        self.forget_session();
        self.powered = true;
    }

    fn forget_session(&mut self) {
        self.applet = Applet::None;
        self.oath = YkOath::default();
        self.secrets = SecretsApp::default();
        self.pending = None;
        self.remainder = None;
        self.chain = None;
    }

    /// Handles one command APDU.
    pub fn transmit(&mut self, bytes: &[u8], now: Instant) -> Reply {
        if self.pending.take().is_some() {
            // A reader sends nothing while an APDU is out; if one comes, the old one is gone.
            warn!("a new APDU arrived while one waited for a touch; the waiting one is dropped");
        }
        let Some(apdu) = apdu::parse(bytes) else {
            self.remainder = None;
            self.chain = None;
            return Reply::Answer(status(StatusWord::WRONG_LENGTH));
        };
        let apdu = match self.unchain(apdu) {
            Ok(Some(apdu)) => apdu,
            Ok(None) => return Reply::Answer(status(StatusWord::OK)),
            Err(sw) => return Reply::Answer(status(sw)),
        };
        if let Some(rest) = self.remainder.take()
            && apdu.ins == rest.ins
            && apdu.cla == 0
        {
            return Reply::Answer(self.chunk(rest.ins, rest.data.to_vec()));
        }
        if let Err(sw) = apdu::check_class(apdu.cla) {
            return Reply::Answer(status(sw));
        }
        // YKOATH's CALCULATE ALL shares SELECT's instruction byte (A4): P1 04 tells them apart.
        if apdu.ins == INS_SELECT && apdu.p1 == 0x04 {
            return Reply::Answer(self.select(&apdu, bytes));
        }
        match (self.applet, self.profile) {
            (Applet::None, _) => Reply::Answer(status(StatusWord::INS_NOT_SUPPORTED)),
            (Applet::Oath, CardProfile::YubiKey) => {
                let mut dirty = false;
                let outcome = self.oath.handle(&mut self.state, &apdu, &mut dirty);
                self.persist(dirty);
                match outcome {
                    Outcome::Done(result) => {
                        Reply::Answer(self.finish(ykoath::ins::SEND_REMAINING, result))
                    }
                    Outcome::NeedsTouch(d) => self.await_touch(Work::Oath(d), now),
                }
            }
            (Applet::Oath, CardProfile::Nk3) => {
                let step = self.secrets_step(bytes);
                match step {
                    Step::Answer(answer) => Reply::Answer(ccid_order(&answer)),
                    Step::NotApdu => Reply::Answer(status(StatusWord::WRONG_LENGTH)),
                    Step::NeedsTouch(d) => self.await_touch(Work::Secrets(d), now),
                }
            }
            (Applet::Management, _) => {
                let mut dirty = false;
                let answer = management::handle(&mut self.state, &apdu, &mut dirty);
                self.persist(dirty);
                self.reboot |= answer.reboot;
                Reply::Answer(self.finish(INS_GET_RESPONSE, answer.result))
            }
        }
    }

    /// Folds command chaining: `None` while parts arrive, the whole command at the last part.
    fn unchain(&mut self, apdu: Apdu) -> Result<Option<Apdu>, StatusWord> {
        // The Nitrokey 3 app refuses chaining itself (`68 84`); only the YubiKey-like card
        // reassembles.
        if self.profile != CardProfile::YubiKey {
            return Ok(Some(apdu));
        }
        let chained = apdu.cla & 0x10 != 0;
        let mut chain = match self.chain.take() {
            Some(c) if c.ins == apdu.ins && c.p1 == apdu.p1 && c.p2 == apdu.p2 => Some(c),
            _ => None,
        };
        if !chained {
            return Ok(Some(match chain.take() {
                Some(mut c) => {
                    c.data.extend_from_slice(&apdu.data);
                    Apdu {
                        cla: apdu.cla,
                        ins: apdu.ins,
                        p1: apdu.p1,
                        p2: apdu.p2,
                        data: std::mem::take(&mut *c.data),
                    }
                }
                None => apdu,
            }));
        }
        let mut c = chain.unwrap_or(Chain {
            ins: apdu.ins,
            p1: apdu.p1,
            p2: apdu.p2,
            data: Zeroizing::new(Vec::new()),
        });
        if c.data.len() + apdu.data.len() > MAX_CHAINED {
            return Err(StatusWord::WRONG_LENGTH);
        }
        c.data.extend_from_slice(&apdu.data);
        self.chain = Some(c);
        Ok(None)
    }

    fn select(&mut self, apdu: &Apdu, bytes: &[u8]) -> Vec<u8> {
        if apdu.p2 != 0x00 {
            return status(StatusWord::INCORRECT_P1P2);
        }
        let aid = apdu.data.as_slice();
        match self.profile {
            CardProfile::YubiKey if aid == OATH_AID => {
                self.applet = Applet::Oath;
                let answer = self.oath.select(&self.state);
                self.finish(ykoath::ins::SEND_REMAINING, Ok(answer))
            }
            CardProfile::YubiKey if aid == management::AID => {
                self.applet = Applet::Management;
                self.finish(INS_GET_RESPONSE, Ok(management::select()))
            }
            CardProfile::Nk3 if aid == OATH_AID => {
                self.applet = Applet::Oath;
                self.secrets = SecretsApp::default();
                match self.secrets_step(bytes) {
                    Step::Answer(answer) => ccid_order(&answer),
                    _ => status(StatusWord::UNKNOWN),
                }
            }
            // PIV, OpenPGP, OTP, FIDO...: not on this card. A failed SELECT leaves the current
            // selection as it was (ISO 7816-4).
            _ => {
                debug!(aid = %data_encoding::HEXUPPER.encode(aid), "SELECT of an app this card lacks");
                status(StatusWord::NOT_FOUND)
            }
        }
    }

    fn secrets_step(&mut self, bytes: &[u8]) -> Step {
        let mut ctx = Ctx {
            state: &mut self.state,
            profile: Profile::Nitrokey3,
            max_credentials: self.config.max_credentials,
            dirty: false,
        };
        let step = self.secrets.handle(&mut ctx, bytes);
        let dirty = ctx.dirty;
        self.persist(dirty);
        step
    }

    /// Writes an answer: data and `90 00`, or the first chunk and `61 xx` when it is longer
    /// than a short APDU carries, or the failure's status word.
    fn finish(&mut self, more_ins: u8, result: Result<Vec<u8>, StatusWord>) -> Vec<u8> {
        match result {
            Ok(data) => self.chunk(more_ins, data),
            Err(sw) => status(sw),
        }
    }

    fn chunk(&mut self, more_ins: u8, mut data: Vec<u8>) -> Vec<u8> {
        if data.len() <= CHUNK {
            data.extend_from_slice(&StatusWord::OK.to_bytes());
            return data;
        }
        let rest = data.split_off(CHUNK);
        // SW2 counts what is left; 00 stands for 256 or more.
        let left = u8::try_from(rest.len()).unwrap_or(0);
        self.remainder = Some(Remainder {
            ins: more_ins,
            data: Zeroizing::new(rest),
        });
        data.extend_from_slice(&[0x61, left]);
        data
    }

    fn await_touch(&mut self, work: Work, now: Instant) -> Reply {
        let deadline = now + self.config.touch_timeout;
        let touch_at = match self.config.touch {
            TouchPolicy::Approve => Some(now),
            TouchPolicy::Deny | TouchPolicy::Button => None,
            TouchPolicy::After(delay) => Some(now + delay),
        };
        debug!(policy = ?self.config.touch, "card waits for a touch");
        let pending = Pending {
            work,
            deadline,
            touch_at,
        };
        if touch_at.is_some_and(|t| t <= now && t < deadline) {
            Reply::Answer(self.complete(pending, true))
        } else {
            self.pending = Some(pending);
            Reply::Waiting
        }
    }

    fn complete(&mut self, pending: Pending, touched: bool) -> Vec<u8> {
        let mut dirty = false;
        match pending.work {
            Work::Oath(d) => {
                let result = self.oath.resume(&mut self.state, &d, touched, &mut dirty);
                self.persist(dirty);
                self.finish(ykoath::ins::SEND_REMAINING, result)
            }
            Work::Secrets(d) => {
                let mut ctx = Ctx {
                    state: &mut self.state,
                    profile: Profile::Nitrokey3,
                    max_credentials: self.config.max_credentials,
                    dirty: false,
                };
                let answer = self.secrets.resume(&mut ctx, d, touched);
                dirty = ctx.dirty;
                self.persist(dirty);
                ccid_order(&answer)
            }
        }
    }

    /// Lets time pass: a touch that came (policy `after:MS`) or a wait that timed out.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        let p = self.pending.as_ref()?;
        let touched = p.touch_at.is_some_and(|t| t <= now && t < p.deadline);
        if !touched && now < p.deadline {
            return None;
        }
        let p = self.pending.take()?;
        Some(self.complete(p, touched))
    }

    /// The user presses the button: the answer of the APDU that waited for it, if one did.
    pub fn press(&mut self, _now: Instant) -> Option<Vec<u8>> {
        let p = self.pending.take()?;
        Some(self.complete(p, true))
    }

    /// When [`Card::poll`] has something to do without input.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| match p.touch_at {
            Some(t) if t < p.deadline => t,
            _ => p.deadline,
        })
    }

    fn persist(&mut self, dirty: bool) {
        if let (true, Some(store)) = (dirty, &self.store)
            && let Err(e) = store.save(&self.state)
        {
            warn!("virtual card could not save its state: {e}");
        }
    }
}

/// The secrets app answers status word first (its CTAPHID framing); CCID puts it last.
fn ccid_order(answer: &[u8]) -> Vec<u8> {
    match answer {
        [sw1, sw2, data @ ..] => {
            let mut out = Vec::with_capacity(answer.len());
            out.extend_from_slice(data);
            out.extend_from_slice(&[*sw1, *sw2]);
            out
        }
        _ => status(StatusWord::UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_is_a_valid_t1_atr_and_not_a_yubikeys() {
        assert_eq!(ATR[0], 0x3B);
        assert_ne!(
            ATR[1] & 0xF0,
            0xF0,
            "yubikit would take it for a YubiKey on USB"
        );
        assert_eq!(usize::from(ATR[1] & 0x0F), 12, "historical bytes");
        assert_eq!(ATR[3] & 0x0F, 1, "TD2 offers T=1");
        assert_eq!(ATR[1..].iter().fold(0, |a, b| a ^ b), 0, "TCK");
    }

    #[test]
    fn ccid_order_moves_the_status_word_last() {
        assert_eq!(ccid_order(&[0x90, 0x00, 1, 2]), vec![1, 2, 0x90, 0x00]);
        assert_eq!(ccid_order(&[0x6A, 0x82]), vec![0x6A, 0x82]);
    }
}
