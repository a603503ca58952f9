//! The OATH secrets app, device side, in the Nitrokey 3 dialect (app version 4.13.0).
//!
//! A request is checked as far as the app checks it before asking for a touch; requests that
//! need a touch come back as [`Step::NeedsTouch`] and finish in [`SecretsApp::resume`] once the
//! touch came (or did not). The order of checks and the status words follow the Nitrokey 3 app,
//! so that host tools see the same answers from the virtual key as from the real one.

use oathkey_device::apdu::StatusWord;
use oathkey_device::oath::{AID, ins, list_property, put_property, tag};
use oathkey_device::{Algorithm, AlgorithmBits};
use zeroize::Zeroizing;

use crate::apdu::{self, Apdu, Reader, answer, put_tlv};
use crate::config::Profile;
use crate::state::{KeyState, PinRecord, StoredCredential};

/// The version SELECT reports: major 4 (for YubiKey tooling), then the app's 0.13.0.
pub const VERSION: [u8; 3] = [4, 13, 0];
/// Longest name, secret or PIN the app stores.
pub const MAX_FIELD: usize = 128;
/// Data bytes per answer chunk (3072 minus the status word).
const CHUNK: usize = 3070;

const KIND_HOTP: u8 = 0x10;
const KIND_TOTP: u8 = 0x20;

/// Where the app stands after a request.
#[derive(Debug)]
pub enum Step {
    /// The answer (status word first).
    Answer(Vec<u8>),
    /// The payload was no APDU: the transport answers CTAPHID INVALID_LEN.
    NotApdu,
    /// The request waits for a touch; pass it to [`SecretsApp::resume`] afterwards.
    NeedsTouch(Deferred),
}

/// A request parked until the user touches the key.
#[derive(Debug)]
pub struct Deferred {
    op: Op,
    /// Whether a PIN verification preceded the request.
    authorised: bool,
}

enum Op {
    Put(StoredCredential),
    Delete(Vec<u8>),
    Reset,
    Calculate {
        name: Vec<u8>,
        challenge: Vec<u8>,
    },
    VerifyPin(Zeroizing<Vec<u8>>),
    SetPin(Zeroizing<Vec<u8>>),
    ChangePin {
        old: Zeroizing<Vec<u8>>,
        new: Zeroizing<Vec<u8>>,
    },
    Update {
        name: Vec<u8>,
        new_name: Option<Vec<u8>>,
        touch: Option<bool>,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PINs and secrets stay out of debug output; the operation's kind is enough.
        f.write_str(match self {
            Op::Put(_) => "Put",
            Op::Delete(_) => "Delete",
            Op::Reset => "Reset",
            Op::Calculate { .. } => "Calculate",
            Op::VerifyPin(_) => "VerifyPin",
            Op::SetPin(_) => "SetPin",
            Op::ChangePin { .. } => "ChangePin",
            Op::Update { .. } => "Update",
        })
    }
}

/// What the app needs from the device around it.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The persistent state.
    pub state: &'a mut KeyState,
    /// The modelled key.
    pub profile: Profile,
    /// Most credentials the key holds.
    pub max_credentials: usize,
    /// Set when the state changed and must be saved.
    pub dirty: bool,
}

/// LIST paging: where SEND REMAINING carries on.
#[derive(Debug, Clone, Copy)]
struct Paging {
    next: usize,
    extended: bool,
    authorised: bool,
}

/// The app's volatile state (lost on unplug, like RAM).
#[derive(Debug, Default)]
pub struct SecretsApp {
    /// A PIN verification succeeded on the previous request.
    pin_key_loaded: bool,
    /// A LIST answer that did not fit one chunk.
    paging: Option<Paging>,
}

type AppResult = Result<Vec<u8>, StatusWord>;

fn ensure(cond: bool, sw: StatusWord) -> Result<(), StatusWord> {
    if cond { Ok(()) } else { Err(sw) }
}

impl SecretsApp {
    /// Handles one request payload.
    pub fn handle(&mut self, ctx: &mut Ctx<'_>, payload: &[u8]) -> Step {
        let Some(apdu) = apdu::parse(payload) else {
            self.paging = None;
            return Step::NotApdu;
        };
        // The PIN authorises exactly one request: whatever comes next uses it up.
        let authorised = std::mem::take(&mut self.pin_key_loaded);
        let paging = self.paging.take();
        let result = apdu::check_class(apdu.cla)
            .and_then(|()| self.dispatch(ctx, &apdu, authorised, paging));
        match result {
            Ok(step) => step,
            Err(sw) => Step::Answer(answer(sw, &[])),
        }
    }

    fn dispatch(
        &mut self,
        ctx: &mut Ctx<'_>,
        apdu: &Apdu,
        authorised: bool,
        paging: Option<Paging>,
    ) -> Result<Step, StatusWord> {
        let ok = |data: Vec<u8>| Ok(Step::Answer(answer(StatusWord::OK, &data)));
        let touch = |op| Ok(Step::NeedsTouch(Deferred { op, authorised }));
        let data = apdu.data.as_slice();
        match (apdu.ins, apdu.p1, apdu.p2) {
            (ins::SELECT, 0x04, 0x00) => ok(select(ctx, data)?),
            (ins::LIST, 0, 0) => {
                let extended = match data {
                    [] => false,
                    [1] => true,
                    _ => return Err(StatusWord::INCORRECT_DATA),
                };
                Ok(self.list(
                    ctx,
                    Paging {
                        next: 0,
                        extended,
                        authorised,
                    },
                ))
            }
            (ins::SEND_REMAINING, 0, 0) => match paging {
                Some(p) => Ok(self.list(ctx, p)),
                None => Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            },
            (ins::PUT, 0, 0) => {
                let cred = parse_put(data)?;
                if cred.touch && !cred.pin_encrypted {
                    touch(Op::Put(cred))
                } else {
                    ok(put(ctx, cred, authorised)?)
                }
            }
            (ins::DELETE, 0, 0) => {
                let name = Reader::new(data).expect(tag::NAME)?.to_vec();
                // The app asks for the touch before it looks the name up.
                touch(Op::Delete(name))
            }
            (ins::RESET, 0xDE, 0xAD) => touch(Op::Reset),
            (ins::CALCULATE, 0x00, 0x01) => {
                let mut r = Reader::new(data);
                let name = r.expect(tag::NAME)?.to_vec();
                let challenge = r.expect(tag::CHALLENGE)?.to_vec();
                let cred = find(ctx.state, &name, authorised).ok_or(StatusWord::NOT_FOUND)?;
                let kind = cred.kind_alg & 0xF0;
                ensure(
                    kind == KIND_HOTP || kind == KIND_TOTP,
                    StatusWord::CONDITIONS_NOT_SATISFIED,
                )?;
                if Algorithm::from_bits(cred.kind_alg) == Some(Algorithm::Sha512)
                    && ctx.profile == Profile::Nitrokey3
                {
                    return Err(StatusWord(0x6A81));
                }
                // Key Press (our profile's device setting) makes every code need a touch.
                let key_press = ctx.profile == Profile::Oathkey && ctx.state.settings.key_press;
                // A PIN-encrypted credential was already touched for by VERIFY PIN.
                if (cred.touch || key_press) && !cred.pin_encrypted {
                    touch(Op::Calculate { name, challenge })
                } else {
                    ok(calculate(ctx, &name, &challenge, authorised)?)
                }
            }
            (ins::VERIFY_PIN, 0, 0) => {
                let pin = Reader::new(data).expect(tag::PIN)?;
                ensure(pin.len() <= MAX_FIELD, StatusWord::INCORRECT_DATA)?;
                ensure(
                    ctx.state.pin.is_some(),
                    StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                )?;
                touch(Op::VerifyPin(Zeroizing::new(pin.to_vec())))
            }
            (ins::SET_PIN, 0, 0) => {
                let pin = Reader::new(data).expect(tag::PIN)?;
                ensure(
                    ctx.state.pin.is_none(),
                    StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                )?;
                touch(Op::SetPin(Zeroizing::new(pin.to_vec())))
            }
            (ins::CHANGE_PIN, 0, 0) => {
                let mut r = Reader::new(data);
                let old = Zeroizing::new(r.expect(tag::PIN)?.to_vec());
                let new = Zeroizing::new(r.expect(tag::NEW_PIN)?.to_vec());
                ensure(
                    ctx.state.pin.is_some(),
                    StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                )?;
                touch(Op::ChangePin { old, new })
            }
            (ins::UPDATE_CREDENTIAL, 0, 0) => {
                let mut r = Reader::new(data);
                let name = r.expect(tag::NAME)?.to_vec();
                ensure(!name.is_empty(), StatusWord::INCORRECT_DATA)?;
                let (mut new_name, mut touch_flag) = (None, None);
                while !r.is_empty() {
                    match r.tlv()? {
                        (tag::NAME, v) => new_name = Some(v.to_vec()),
                        (tag::PROPERTY, [p]) => touch_flag = Some(p & put_property::TOUCH != 0),
                        // Password-safe fields: a feature this key does not have.
                        (0x83..=0x85, _) => return Err(StatusWord(0x6A81)),
                        _ => return Err(StatusWord::INCORRECT_DATA),
                    }
                }
                touch(Op::Update {
                    name,
                    new_name,
                    touch: touch_flag,
                })
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    /// Finishes a request that waited for a touch.
    pub fn resume(&mut self, ctx: &mut Ctx<'_>, deferred: Deferred, touched: bool) -> Vec<u8> {
        let result = if touched {
            self.run(ctx, deferred)
        } else {
            Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
        };
        match result {
            Ok(data) => answer(StatusWord::OK, &data),
            Err(sw) => answer(sw, &[]),
        }
    }

    fn run(&mut self, ctx: &mut Ctx<'_>, d: Deferred) -> AppResult {
        let authorised = d.authorised;
        match d.op {
            Op::Put(cred) => put(ctx, cred, authorised),
            Op::Delete(name) => {
                let index = position(ctx.state, &name, authorised).ok_or(StatusWord::NOT_FOUND)?;
                ctx.state.credentials.remove(index);
                ctx.dirty = true;
                Ok(vec![])
            }
            Op::Reset => {
                ctx.state.credentials.clear();
                ctx.state.pin = None;
                ctx.dirty = true;
                Ok(vec![])
            }
            Op::Calculate { name, challenge } => calculate(ctx, &name, &challenge, authorised),
            Op::VerifyPin(pin) => {
                let record = ctx
                    .state
                    .pin
                    .as_mut()
                    .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
                let result = check_pin(record, &pin);
                ctx.dirty = true;
                result?;
                self.pin_key_loaded = true;
                Ok(vec![])
            }
            Op::SetPin(pin) => {
                ensure(
                    ctx.state.pin.is_none(),
                    StatusWord::SECURITY_STATUS_NOT_SATISFIED,
                )?;
                ensure(pin.len() <= MAX_FIELD, StatusWord::VERIFICATION_FAILED)?;
                ctx.state.pin = Some(PinRecord::new(&pin));
                ctx.dirty = true;
                Ok(vec![])
            }
            Op::ChangePin { old, new } => {
                let record = ctx
                    .state
                    .pin
                    .as_mut()
                    .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
                let result = check_pin(record, &old);
                ctx.dirty = true;
                result?;
                ensure(new.len() <= MAX_FIELD, StatusWord::VERIFICATION_FAILED)?;
                ctx.state.pin = Some(PinRecord::new(&new));
                Ok(vec![])
            }
            Op::Update {
                name,
                new_name,
                touch,
            } => {
                let index = position(ctx.state, &name, authorised).ok_or(StatusWord::NOT_FOUND)?;
                if let Some(new) = &new_name {
                    // Renaming onto any existing name, itself included, is refused.
                    ensure(
                        !ctx.state.credentials.iter().any(|c| &c.name == new),
                        StatusWord::OPERATION_BLOCKED,
                    )?;
                    ensure(!new.is_empty(), StatusWord::INCORRECT_DATA)?;
                    ensure(new.len() <= MAX_FIELD, StatusWord::NOT_ENOUGH_MEMORY)?;
                }
                let cred = &mut ctx.state.credentials[index];
                if let Some(new) = new_name {
                    cred.name = new;
                }
                if let Some(t) = touch {
                    cred.touch = t;
                }
                ctx.dirty = true;
                Ok(vec![])
            }
        }
    }

    /// One LIST chunk from `paging.next` on; stores where to carry on if it does not fit.
    fn list(&mut self, ctx: &Ctx<'_>, paging: Paging) -> Step {
        let mut out = Vec::new();
        let visible: Vec<&StoredCredential> = ctx
            .state
            .credentials
            .iter()
            .filter(|c| !c.pin_encrypted || paging.authorised)
            .collect();
        let mut index = paging.next;
        while let Some(cred) = visible.get(index) {
            let mut value = Vec::with_capacity(cred.name.len() + 2);
            value.push(cred.kind_alg);
            value.extend_from_slice(&cred.name);
            if paging.extended {
                let mut props = 0;
                if cred.touch {
                    props |= list_property::TOUCH;
                }
                if cred.pin_encrypted {
                    props |= list_property::PIN_ENCRYPTED;
                }
                value.push(props);
            }
            if out.len() + 2 + value.len() > CHUNK {
                self.paging = Some(Paging {
                    next: index,
                    ..paging
                });
                return Step::Answer(answer(StatusWord::more_data(0xFF), &out));
            }
            put_tlv(&mut out, tag::NAME_LIST, &value);
            index += 1;
        }
        Step::Answer(answer(StatusWord::OK, &out))
    }
}

fn select(ctx: &Ctx<'_>, data: &[u8]) -> AppResult {
    ensure(data == AID, StatusWord::NOT_FOUND)?;
    let mut out = Vec::with_capacity(24);
    put_tlv(&mut out, tag::VERSION, &VERSION);
    match &ctx.state.pin {
        Some(pin) => put_tlv(&mut out, tag::PIN_COUNTER, &[pin.retries]),
        None => {
            let mut salt = [0u8; 8];
            let _ = getrandom::fill(&mut salt);
            put_tlv(&mut out, tag::NAME, &salt);
        }
    }
    put_tlv(&mut out, tag::SERIAL, &ctx.state.serial.to_be_bytes());
    Ok(out)
}

fn parse_put(data: &[u8]) -> Result<StoredCredential, StatusWord> {
    let mut r = Reader::new(data);
    let name = r.expect(tag::NAME)?.to_vec();
    ensure(!name.is_empty(), StatusWord::INCORRECT_DATA)?;
    let key = r.expect(tag::KEY)?;
    ensure(key.len() >= 3, StatusWord::INCORRECT_DATA)?;
    let (kind_alg, digits, secret) = (key[0], key[1], &key[2..]);
    ensure(
        Algorithm::from_bits(kind_alg).is_some(),
        StatusWord::INCORRECT_DATA,
    )?;
    let kind = kind_alg & 0xF0;
    // Reverse HOTP, HMAC slots and password-safe entries are features this key does not have.
    ensure(kind == KIND_HOTP || kind == KIND_TOTP, StatusWord(0x6A81))?;
    // The property comes as tag and value without a length byte.
    let props = if r.peek_tag() == Some(tag::PROPERTY) {
        r.raw(2)?[1]
    } else {
        0
    };
    let mut counter = 0;
    // HOTP reads one more TLV: the initial counter if it is one, ignored otherwise.
    if kind == KIND_HOTP
        && !r.is_empty()
        && let (tag::INITIAL_COUNTER, &[a, b, c, d]) = r.tlv()?
    {
        counter = u32::from_be_bytes([a, b, c, d]);
    }
    match r.peek_tag() {
        None => {}
        Some(0x83..=0x85) => return Err(StatusWord(0x6A81)),
        Some(_) => return Err(StatusWord::INCORRECT_DATA),
    }
    Ok(StoredCredential {
        name,
        kind_alg,
        digits,
        secret: Zeroizing::new(secret.to_vec()),
        touch: props & put_property::TOUCH != 0,
        pin_encrypted: props & put_property::PIN_ENCRYPTED != 0,
        counter,
    })
}

fn put(ctx: &mut Ctx<'_>, cred: StoredCredential, authorised: bool) -> AppResult {
    ensure(
        ctx.state.credentials.len() < ctx.max_credentials,
        StatusWord::NOT_ENOUGH_MEMORY,
    )?;
    // Hidden PIN-protected credentials count too: names are unique across both spaces.
    ensure(
        !ctx.state.credentials.iter().any(|c| c.name == cred.name),
        StatusWord::OPERATION_BLOCKED,
    )?;
    ensure(
        cred.name.len() <= MAX_FIELD && cred.secret.len() <= MAX_FIELD,
        StatusWord::NOT_ENOUGH_MEMORY,
    )?;
    ensure(
        !cred.pin_encrypted || authorised,
        StatusWord::SECURITY_STATUS_NOT_SATISFIED,
    )?;
    ctx.state.credentials.push(cred);
    ctx.dirty = true;
    Ok(vec![])
}

fn position(state: &KeyState, name: &[u8], authorised: bool) -> Option<usize> {
    state
        .credentials
        .iter()
        .position(|c| c.name == name && (!c.pin_encrypted || authorised))
}

fn find<'s>(state: &'s KeyState, name: &[u8], authorised: bool) -> Option<&'s StoredCredential> {
    position(state, name, authorised).map(|i| &state.credentials[i])
}

fn calculate(ctx: &mut Ctx<'_>, name: &[u8], challenge: &[u8], authorised: bool) -> AppResult {
    let index = position(ctx.state, name, authorised).ok_or(StatusWord::NOT_FOUND)?;
    let cred = &mut ctx.state.credentials[index];
    let alg = Algorithm::from_bits(cred.kind_alg).ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    let message = if cred.kind_alg & 0xF0 == KIND_HOTP {
        // The counter moves on before the code is computed from its old value, so a crash
        // never hands out the same code twice.
        let current = cred.counter;
        cred.counter = current
            .checked_add(1)
            .ok_or(StatusWord::STATE_NOT_CHANGED)?;
        ctx.dirty = true;
        u64::from(current).to_be_bytes().to_vec()
    } else {
        challenge.to_vec()
    };
    // The shared computation (`oathkey-otp`): the daemon checks a new token with the same one.
    let value = oathkey_otp::truncated(alg, &cred.secret, &message);
    let mut out = Vec::with_capacity(7);
    out.extend_from_slice(&[tag::TRUNCATED, 5, cred.digits]);
    out.extend_from_slice(&value.to_be_bytes());
    Ok(out)
}

fn check_pin(record: &mut PinRecord, pin: &[u8]) -> Result<(), StatusWord> {
    ensure(record.retries > 0, StatusWord::VERIFICATION_FAILED)?;
    if record.matches(pin) {
        record.retries = PinRecord::RETRIES;
        Ok(())
    } else {
        record.retries -= 1;
        Err(StatusWord::VERIFICATION_FAILED)
    }
}
