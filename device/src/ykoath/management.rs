//! The YubiKey Management application over CCID: who the key is (serial, form factor,
//! firmware) and which USB applications are enabled, the real-key meaning of the admin tool's
//! "Mode: Keyboard / U2F".
//!
//! Byte values checked against yubikey-manager's `yubikit/management.py` (tags, capability
//! bits, READ CONFIG `1D` with the page in P1, WRITE CONFIG `1C` with a length-prefixed TLV
//! list) and `yubikit/core/smartcard/__init__.py` (the AID; chained answers use ISO's GET
//! RESPONSE `C0`, not OATH's `A5`).
//!
//! Writing: only the USB-enabled bitmask is sent, computed from a fresh read in the same
//! transaction (read-modify-write), so the other applications' bits stay as they are. oathkey
//! sends no reboot tag: the key keeps running (other applications' sessions are not cut) and
//! the change takes effect when it is next plugged in, as with the Nitrokey 3's Mode fields.
//! ykman reboots the key at once instead; a key whose configuration is protected by a lock
//! code is not written.

use crate::apdu::{Command, StatusWord, tlvs};
use crate::error::Error;

/// The Management application's identifier.
pub const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

/// ISO 7816 GET RESPONSE, the management app's way to fetch chained chunks.
pub const GET_RESPONSE: u8 = 0xC0;

/// Instruction bytes.
pub mod ins {
    /// SELECT.
    pub const SELECT: u8 = 0xA4;
    /// Read one page of the device information (P1 = page).
    pub const READ_CONFIG: u8 = 0x1D;
    /// Write device configuration.
    pub const WRITE_CONFIG: u8 = 0x1C;
}

/// Device-information tags.
pub mod tag {
    /// USB capabilities the key has (2 bytes).
    pub const USB_SUPPORTED: u8 = 0x01;
    /// Serial number (4 bytes; absent when hidden).
    pub const SERIAL: u8 = 0x02;
    /// USB capabilities enabled (2 bytes; YubiKey 5 and later).
    pub const USB_ENABLED: u8 = 0x03;
    /// Form factor (low nibble) and FIPS/Sky flags.
    pub const FORM_FACTOR: u8 = 0x04;
    /// Firmware version (3 bytes).
    pub const VERSION: u8 = 0x05;
    /// The configuration is protected by a lock code (`01`).
    pub const CONFIG_LOCK: u8 = 0x0A;
    /// In WRITE CONFIG: reboot after writing (empty value).
    pub const REBOOT: u8 = 0x0C;
    /// More pages follow (`01`).
    pub const MORE_DATA: u8 = 0x10;
}

/// Capability bits of the USB-enabled and USB-supported masks.
pub mod capability {
    /// Yubico OTP: the keyboard interface (types an OTP on a touch). Mode: Keyboard.
    pub const OTP: u16 = 0x0001;
    /// FIDO U2F. Mode: U2F.
    pub const U2F: u16 = 0x0002;
    /// OpenPGP.
    pub const OPENPGP: u16 = 0x0008;
    /// PIV.
    pub const PIV: u16 = 0x0010;
    /// OATH (this driver's own application).
    pub const OATH: u16 = 0x0020;
    /// YubiHSM Auth.
    pub const HSMAUTH: u16 = 0x0100;
    /// FIDO2.
    pub const FIDO2: u16 = 0x0200;
}

/// SELECT of the management app.
pub fn select_command() -> Command {
    Command::new(ins::SELECT, 0x04, 0x00, AID.to_vec())
}

/// Parses SELECT's answer: the firmware version as text, such as `5.4.3` (some firmware adds
/// words around it; the YubiKey Edge repeats `90 00`, which is cut off).
pub fn parse_select(data: &[u8]) -> Option<(u8, u8, u8)> {
    let data = data.strip_suffix(&[0x90, 0x00]).unwrap_or(data);
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut parts = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse::<u8>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// READ CONFIG of one page.
pub fn read_config_command(page: u8) -> Command {
    Command::new(ins::READ_CONFIG, page, 0x00, Vec::new())
}

/// What the management app tells about the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The management app's version (the firmware version).
    pub version: Option<(u8, u8, u8)>,
    /// Serial number, as printed on the key (decimal).
    pub serial: Option<u32>,
    /// USB capabilities the key has.
    pub usb_supported: u16,
    /// USB capabilities enabled (absent before YubiKey 5, and wrong on YubiKey 4).
    pub usb_enabled: Option<u16>,
    /// Form factor code (low nibble of tag 04).
    pub form_factor: u8,
    /// The configuration is protected by a lock code.
    pub config_locked: bool,
}

impl DeviceInfo {
    /// Adds one READ CONFIG page (`len | TLVs`); returns whether more pages follow.
    pub fn add_page(&mut self, page: &[u8]) -> Result<bool, Error> {
        let (&len, body) = page
            .split_first()
            .ok_or_else(|| Error::Protocol("empty READ CONFIG answer".into()))?;
        if usize::from(len) != body.len() {
            return Err(Error::Protocol(format!(
                "READ CONFIG answer says {len} bytes but has {}",
                body.len()
            )));
        }
        let mut more = false;
        for item in tlvs(body) {
            let (t, v) = item.map_err(|e| Error::Protocol(format!("READ CONFIG: {e}")))?;
            match t {
                tag::USB_SUPPORTED => self.usb_supported = be_int(v) as u16,
                tag::SERIAL => self.serial = Some(be_int(v) as u32).filter(|s| *s != 0),
                tag::USB_ENABLED => self.usb_enabled = Some(be_int(v) as u16),
                tag::FORM_FACTOR => self.form_factor = (be_int(v) & 0x0F) as u8,
                tag::VERSION => {
                    if let [a, b, c] = v {
                        self.version = Some((*a, *b, *c));
                    }
                }
                tag::CONFIG_LOCK => self.config_locked = v == [1],
                tag::MORE_DATA => more = v == [1],
                _ => {}
            }
        }
        Ok(more)
    }

    /// The enabled mask, when the key reports one that can be trusted and written: YubiKey 5
    /// and later (yubikit ignores the tag on YubiKey 4, and WRITE CONFIG needs 5.0.0).
    pub fn writable_usb_enabled(&self) -> Option<u16> {
        self.usb_enabled
            .filter(|_| self.version.is_some_and(|v| v >= (5, 0, 0)))
    }

    /// The form factor's name, as yubikit names them.
    pub fn form_factor_name(&self) -> Option<&'static str> {
        Some(match self.form_factor {
            0x01 => "Keychain (USB-A)",
            0x02 => "Nano (USB-A)",
            0x03 => "Keychain (USB-C)",
            0x04 => "Nano (USB-C)",
            0x05 => "Keychain (USB-C, Lightning)",
            0x06 => "Bio (USB-A)",
            0x07 => "Bio (USB-C)",
            _ => return None,
        })
    }
}

/// WRITE CONFIG of the USB-enabled mask alone, without reboot: `1C 00 00`, data
/// `len | 03 02 mask`.
pub fn write_usb_enabled_command(mask: u16) -> Command {
    let [hi, lo] = mask.to_be_bytes();
    Command::new(
        ins::WRITE_CONFIG,
        0x00,
        0x00,
        vec![4, tag::USB_ENABLED, 2, hi, lo],
    )
}

/// Whether SELECT's status word means "no management app here" (any card that is not a
/// YubiKey).
pub fn absent(sw: StatusWord) -> bool {
    matches!(sw.0, 0x6A82 | 0x6999 | 0x6D00 | 0x6B00 | 0x6A86)
}

fn be_int(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_parses() {
        assert_eq!(parse_select(b"5.4.3"), Some((5, 4, 3)));
        assert_eq!(parse_select(b"Firmware version 4.3.7"), Some((4, 3, 7)));
        assert_eq!(parse_select(b"5.2.4\x90\x00"), Some((5, 2, 4)));
        assert_eq!(parse_select(b"5.4"), None);
        assert_eq!(parse_select(&[0xFF]), None);
    }

    #[test]
    fn config_pages_parse_and_join() {
        let mut info = DeviceInfo::default();
        // Supported 023B, serial 12345678, enabled 023B, USB-C keychain, 5.4.3, more data.
        let body = [
            0x01, 0x02, 0x02, 0x3B, 0x02, 0x04, 0x00, 0xBC, 0x61, 0x4E, 0x03, 0x02, 0x02, 0x3B,
            0x04, 0x01, 0x03, 0x05, 0x03, 0x05, 0x04, 0x03, 0x10, 0x01, 0x01,
        ];
        let mut page0 = vec![body.len() as u8];
        page0.extend(body);
        assert!(info.add_page(&page0).expect("valid"), "more pages follow");
        assert!(!info.add_page(&[3, 0x0A, 1, 1]).expect("valid"));
        assert_eq!(info.usb_supported, 0x023B);
        assert_eq!(info.serial, Some(12_345_678));
        assert_eq!(info.usb_enabled, Some(0x023B));
        assert_eq!(info.version, Some((5, 4, 3)));
        assert_eq!(info.form_factor_name(), Some("Keychain (USB-C)"));
        assert!(info.config_locked);
        assert_eq!(info.writable_usb_enabled(), Some(0x023B));
        page0[0] += 1;
        assert!(matches!(info.add_page(&page0), Err(Error::Protocol(_))));
        assert!(matches!(info.add_page(&[]), Err(Error::Protocol(_))));

        let yk4 = DeviceInfo {
            version: Some((4, 3, 7)),
            usb_enabled: Some(0x3F),
            ..DeviceInfo::default()
        };
        assert_eq!(yk4.writable_usb_enabled(), None);
    }

    #[test]
    fn write_sends_only_the_usb_mask_without_reboot() {
        let cmd = write_usb_enabled_command(0x023A);
        assert_eq!((cmd.ins, cmd.p1, cmd.p2), (0x1C, 0, 0));
        assert_eq!(cmd.data, vec![4, 0x03, 2, 0x02, 0x3A]);
        assert!(!cmd.data.contains(&tag::REBOOT));
        assert_eq!(read_config_command(1).p1, 1);
        assert_eq!(select_command().data, AID.to_vec());
        assert!(absent(StatusWord(0x6A82)));
        assert!(!absent(StatusWord::OK));
    }
}
