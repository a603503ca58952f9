//! Which keys this crate talks to, recognised by USB vendor and product ID.
//!
//! Vendor command 0x70 means "OATH secrets app" only on keys known to implement it; on other
//! FIDO keys the same number may mean something else, so unknown keys are never sent it.

use crate::transport::DeviceInfo;

/// HID usage page of the FIDO interface.
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;
/// HID usage of the FIDO interface (CTAPHID).
pub const FIDO_USAGE: u16 = 0x01;

/// Nitrokey's USB vendor ID.
pub const NITROKEY_VID: u16 = 0x20A0;
/// Nitrokey 3 product ID.
pub const NITROKEY_3_PID: u16 = 0x42B2;
/// The virtual key's vendor ID: pid.codes, the open-source vendor ID.
pub const VIRTUAL_VID: u16 = 0x1209;
/// The virtual key's product ID: pid.codes' test PID, meant for exactly this kind of device.
pub const VIRTUAL_PID: u16 = 0x0001;
/// The virtual key's product string; required as well, since the test PID is shared.
pub const VIRTUAL_PRODUCT: &str = "oathkey virtual key";

/// A supported key model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// Nitrokey 3 (any variant), firmware with the secrets app.
    Nitrokey3,
    /// oathkey's virtual key (the emulator), over uhid, UDP or in-process.
    VirtualKey,
}

impl Model {
    /// Recognises a supported key from its enumeration data.
    pub fn identify(info: &DeviceInfo) -> Option<Self> {
        match (info.vendor_id, info.product_id) {
            (NITROKEY_VID, NITROKEY_3_PID) => Some(Model::Nitrokey3),
            (VIRTUAL_VID, VIRTUAL_PID) if info.product.as_deref() == Some(VIRTUAL_PRODUCT) => {
                Some(Model::VirtualKey)
            }
            _ => None,
        }
    }

    /// A human name.
    pub fn name(self) -> &'static str {
        match self {
            Model::Nitrokey3 => "Nitrokey 3",
            Model::VirtualKey => "oathkey virtual key",
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(vid: u16, pid: u16, product: Option<&str>) -> DeviceInfo {
        DeviceInfo {
            path: "/dev/hidraw0".into(),
            vendor_id: vid,
            product_id: pid,
            product: product.map(Into::into),
            manufacturer: None,
            serial: None,
        }
    }

    #[test]
    fn recognises_supported_keys_only() {
        assert_eq!(
            Model::identify(&info(0x20A0, 0x42B2, None)),
            Some(Model::Nitrokey3)
        );
        assert_eq!(
            Model::identify(&info(0x1209, 0x0001, Some(VIRTUAL_PRODUCT))),
            Some(Model::VirtualKey)
        );
        // Another device on the shared test PID is not ours.
        assert_eq!(
            Model::identify(&info(0x1209, 0x0001, Some("some dev board"))),
            None
        );
        // A YubiKey (Yubico 1050:0407) is a FIDO key, but 0x70 means nothing known there.
        assert_eq!(
            Model::identify(&info(0x1050, 0x0407, Some("YubiKey"))),
            None
        );
    }
}
