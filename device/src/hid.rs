//! The hidapi transport: real keys through the operating system's HID layer.
//!
//! Built with hidapi's `linux-native-basic-udev` backend on Linux (pure Rust: sysfs for
//! enumeration, hidraw for I/O, no libudev and no C), which also reports the HID usage page
//! needed to find the FIDO interface among a key's interfaces.

use std::ffi::CString;
use std::time::Duration;

use hidapi::{HidApi, HidDevice};
use tracing::debug;

use crate::ctaphid::wire::{REPORT_SIZE, Report};
use crate::model::{FIDO_USAGE, FIDO_USAGE_PAGE, Model};
use crate::transport::{DeviceInfo, Transport, TransportError};

/// A FIDO HID interface found by [`enumerate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Enumeration data.
    pub info: DeviceInfo,
    /// The supported model, or `None` for FIDO keys we do not talk OATH to.
    pub model: Option<Model>,
}

/// Lists every FIDO interface (usage page 0xF1D0, usage 1) the HID layer sees.
pub fn enumerate(api: &mut HidApi) -> Result<Vec<Found>, TransportError> {
    api.refresh_devices()
        .map_err(|e| TransportError::Io(format!("HID enumeration: {e}")))?;
    Ok(api
        .device_list()
        .filter(|d| d.usage_page() == FIDO_USAGE_PAGE && d.usage() == FIDO_USAGE)
        .map(|d| {
            let info = DeviceInfo {
                path: d.path().to_string_lossy().into_owned(),
                vendor_id: d.vendor_id(),
                product_id: d.product_id(),
                product: d.product_string().map(str::to_owned),
                manufacturer: d.manufacturer_string().map(str::to_owned),
                serial: d.serial_number().map(str::to_owned),
            };
            let model = Model::identify(&info);
            Found { info, model }
        })
        .collect())
}

/// A transport over one hidraw device.
pub struct HidTransport {
    device: HidDevice,
    info: DeviceInfo,
}

impl std::fmt::Debug for HidTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HidTransport")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl HidTransport {
    /// Opens the device `info` describes.
    pub fn open(api: &HidApi, info: &DeviceInfo) -> Result<Self, TransportError> {
        let path = CString::new(info.path.clone())
            .map_err(|_| TransportError::Io(format!("device path {:?} has a NUL", info.path)))?;
        let device = api.open_path(&path).map_err(|e| TransportError::Open {
            path: info.path.clone(),
            reason: open_reason(&info.path, &e.to_string()),
        })?;
        debug!(path = %info.path, "opened HID device");
        Ok(Self {
            device,
            info: info.clone(),
        })
    }

    fn classify(&self, what: &str, e: hidapi::HidError) -> TransportError {
        // A vanished node means an unplug; hidraw reports it as ENODEV, EIO or POLLHUP, which
        // hidapi flattens into text, so ask the filesystem rather than parse messages. The
        // reader is woken before the kernel removes the node (seen in the QEMU HIL guest), so
        // give the node a moment to go before calling the failure an I/O error.
        if self.info.path.starts_with('/') && node_vanishes(&self.info.path) {
            TransportError::Disconnected
        } else {
            TransportError::Io(format!("{what} {}: {e}", self.info.path))
        }
    }
}

/// True when `path` is gone, or goes within a quarter of a second.
fn node_vanishes(path: &str) -> bool {
    let path = std::path::Path::new(path);
    for _ in 0..25 {
        if !path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !path.exists()
}

/// Says why an open failed in the words an administrator needs.
fn open_reason(path: &str, raw: &str) -> String {
    let denied = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .err()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied {
        format!(
            "permission denied ({raw}); the udev rules in packaging/ give the oathkey group \
             access to supported keys"
        )
    } else {
        raw.to_string()
    }
}

impl Transport for HidTransport {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        // hidapi wants the report ID first; the FIDO interface uses none, so it is 0.
        let mut buf = [0u8; REPORT_SIZE + 1];
        buf[1..].copy_from_slice(report);
        match self.device.write(&buf) {
            Ok(n) if n >= REPORT_SIZE => Ok(()),
            Ok(n) => Err(TransportError::Io(format!(
                "short HID write: {n} of {} bytes",
                buf.len()
            ))),
            Err(e) => Err(self.classify("write to", e)),
        }
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let mut buf = [0u8; REPORT_SIZE];
        // Zero means "only what is already there" (a non-blocking read in hidapi).
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        match self.device.read_timeout(&mut buf, ms) {
            Ok(0) => Ok(None),
            // Reports shorter than 64 bytes are zero-padded, as the FIDO spec pads them.
            Ok(_) => Ok(Some(buf)),
            Err(e) => Err(self.classify("read from", e)),
        }
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }
}
