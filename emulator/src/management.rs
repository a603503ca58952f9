//! The YubiKey Management application as the YubiKey-like card answers it: the device
//! configuration, whose USB applications bitmask is the real-key meaning of the admin tool's
//! "Mode" (OTP = the keyboard interface, U2F).
//!
//! Facts from Yubico's `yubikit/management.py` (yubikey-manager 5.9.2): the AID, SELECT answering
//! the firmware version as text, READ CONFIG (`1D`, P1 = page) answering a length byte and
//! TLVs, WRITE CONFIG (`1C`) taking a length byte and TLVs, the tags (01 USB supported,
//! 02 serial, 03 USB enabled, 04 form factor, 05 version, 06 auto-eject timeout, 07
//! challenge-response timeout, 08 device flags, 0A config lock, 0B unlock, 0C reboot) and the
//! capability bits (OTP 0x01, U2F 0x02, OpenPGP 0x08, PIV 0x10, OATH 0x20, FIDO2 0x200).

use oathkey_device::apdu::StatusWord;

use crate::apdu::{Apdu, Reader, put_tlv};
use crate::state::KeyState;
use crate::ykoath;

/// The Management application's AID.
pub const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

/// Capability bits of the USB applications.
pub mod capability {
    /// Yubico OTP: the keyboard interface.
    pub const OTP: u16 = 0x0001;
    /// FIDO U2F.
    pub const U2F: u16 = 0x0002;
    /// OpenPGP.
    pub const OPENPGP: u16 = 0x0008;
    /// PIV.
    pub const PIV: u16 = 0x0010;
    /// OATH.
    pub const OATH: u16 = 0x0020;
    /// FIDO2.
    pub const FIDO2: u16 = 0x0200;
}

/// The USB applications a YubiKey 5 (no NFC, no YubiHSM Auth) has.
pub const USB_SUPPORTED: u16 = capability::OTP
    | capability::U2F
    | capability::OPENPGP
    | capability::PIV
    | capability::OATH
    | capability::FIDO2;

/// Form factor: USB-A keychain.
pub const FORM_FACTOR: u8 = 0x01;

const INS_WRITE_CONFIG: u8 = 0x1C;
const INS_READ_CONFIG: u8 = 0x1D;

mod tag {
    pub const USB_SUPPORTED: u8 = 0x01;
    pub const SERIAL: u8 = 0x02;
    pub const USB_ENABLED: u8 = 0x03;
    pub const FORM_FACTOR: u8 = 0x04;
    pub const VERSION: u8 = 0x05;
    pub const AUTO_EJECT_TIMEOUT: u8 = 0x06;
    pub const CHALRESP_TIMEOUT: u8 = 0x07;
    pub const DEVICE_FLAGS: u8 = 0x08;
    pub const CONFIG_LOCK: u8 = 0x0A;
    pub const REBOOT: u8 = 0x0C;
}

/// The USB applications enabled now: OTP and U2F are the Mode settings the HID key's admin
/// app shows too, the rest is the card's own.
pub fn usb_enabled(state: &KeyState) -> u16 {
    let mut mask = state.card.usb_enabled_other & !(capability::OTP | capability::U2F);
    if state.settings.keyboard {
        mask |= capability::OTP;
    }
    if state.settings.u2f {
        mask |= capability::U2F;
    }
    mask
}

/// SELECT's answer: the firmware version as text, as a YubiKey 5 answers it.
pub fn select() -> Vec<u8> {
    let [a, b, c] = ykoath::VERSION;
    format!("{a}.{b}.{c}").into_bytes()
}

/// What a Management command came to.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// Answer data, or the status word of a failure.
    pub result: Result<Vec<u8>, StatusWord>,
    /// The host asked the key to reboot once the answer is out (the card leaves and comes
    /// back, as a YubiKey re-enumerates).
    pub reboot: bool,
}

/// Handles one command (not SELECT).
pub fn handle(state: &mut KeyState, apdu: &Apdu, dirty: &mut bool) -> Answer {
    match apdu.ins {
        INS_READ_CONFIG => Answer {
            result: Ok(read_config(state, apdu.p1)),
            reboot: false,
        },
        INS_WRITE_CONFIG => match write_config(state, &apdu.data, dirty) {
            Ok(reboot) => Answer {
                result: Ok(vec![]),
                reboot,
            },
            Err(sw) => Answer {
                result: Err(sw),
                reboot: false,
            },
        },
        _ => Answer {
            result: Err(StatusWord::INS_NOT_SUPPORTED),
            reboot: false,
        },
    }
}

fn read_config(state: &KeyState, page: u8) -> Vec<u8> {
    let mut tlvs = Vec::with_capacity(48);
    if page == 0 {
        put_tlv(&mut tlvs, tag::USB_SUPPORTED, &USB_SUPPORTED.to_be_bytes());
        put_tlv(&mut tlvs, tag::SERIAL, &state.serial.to_be_bytes());
        put_tlv(
            &mut tlvs,
            tag::USB_ENABLED,
            &usb_enabled(state).to_be_bytes(),
        );
        put_tlv(&mut tlvs, tag::FORM_FACTOR, &[FORM_FACTOR]);
        put_tlv(&mut tlvs, tag::VERSION, &ykoath::VERSION);
        put_tlv(&mut tlvs, tag::AUTO_EJECT_TIMEOUT, &[0, 0]);
        put_tlv(&mut tlvs, tag::CHALRESP_TIMEOUT, &[15]);
        put_tlv(&mut tlvs, tag::DEVICE_FLAGS, &[0]);
        put_tlv(&mut tlvs, tag::CONFIG_LOCK, &[0]);
    }
    let mut out = Vec::with_capacity(1 + tlvs.len());
    // The configuration is well under 255 bytes.
    out.push(tlvs.len() as u8);
    out.extend_from_slice(&tlvs);
    out
}

/// Applies a configuration; returns whether the host asked for a reboot.
fn write_config(state: &mut KeyState, data: &[u8], dirty: &mut bool) -> Result<bool, StatusWord> {
    let bad = StatusWord::INCORRECT_DATA;
    let (&len, body) = data.split_first().ok_or(bad)?;
    if usize::from(len) != body.len() {
        return Err(bad);
    }
    let mut reboot = false;
    let mut enabled = None;
    let mut r = Reader::new(body);
    while !r.is_empty() {
        match r.tlv()? {
            (tag::REBOOT, []) => reboot = true,
            (tag::USB_ENABLED, &[hi, lo]) => enabled = Some(u16::from_be_bytes([hi, lo])),
            // Timeouts and flags: accepted, and not modelled (READ CONFIG keeps its values).
            (tag::AUTO_EJECT_TIMEOUT | tag::CHALRESP_TIMEOUT | tag::DEVICE_FLAGS, _) => {}
            // Lock codes, NFC and everything else: this card has none of it.
            _ => return Err(bad),
        }
    }
    if let Some(mask) = enabled {
        // Only supported applications, and never none at all (the key would be unreachable).
        if mask & !USB_SUPPORTED != 0 || mask == 0 {
            return Err(bad);
        }
        state.settings.keyboard = mask & capability::OTP != 0;
        state.settings.u2f = mask & capability::U2F != 0;
        state.card.usb_enabled_other = mask & !(capability::OTP | capability::U2F);
        *dirty = true;
    }
    Ok(reboot)
}
