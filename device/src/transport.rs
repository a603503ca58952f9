//! The one seam between the protocol code and the operating system: a transport moves single
//! 64-byte HID reports. Everything above it (CTAPHID framing, the apps) is written once.

use std::time::Duration;

use crate::ctaphid::wire::Report;

/// What a transport knows about the device behind it, from enumeration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Where the device was found: a hidraw path, or a name for a virtual key.
    pub path: String,
    /// USB vendor ID.
    pub vendor_id: u16,
    /// USB product ID.
    pub product_id: u16,
    /// USB product string, if the device reports one.
    pub product: Option<String>,
    /// USB manufacturer string, if the device reports one.
    pub manufacturer: Option<String>,
    /// USB serial number string, if the device reports one.
    pub serial: Option<String>,
}

/// A transport failure below the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The device is gone (unplugged, or its node vanished).
    #[error("the key was removed")]
    Disconnected,
    /// The operating system refused to open the device (permissions, busy).
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The device path.
        path: String,
        /// What the operating system said.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("HID I/O failed: {0}")]
    Io(String),
}

/// Moves 64-byte reports to and from one device.
///
/// Implementations: [`crate::hid::HidTransport`] for real keys, [`crate::udp::UdpTransport`] for
/// a virtual key in another process, and the virtual key's in-process transport in the emulator
/// crate. Reports travel without a report-ID byte; a transport that
/// needs one (hidapi writes) adds it itself.
pub trait Transport: Send {
    /// Sends one report to the device.
    fn write(&mut self, report: &Report) -> Result<(), TransportError>;

    /// Waits up to `timeout` for one report from the device; `Ok(None)` when none came.
    /// A zero timeout returns a report only if one is already waiting.
    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError>;

    /// Describes the device.
    fn info(&self) -> &DeviceInfo;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        (**self).write(report)
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        (**self).read(timeout)
    }

    fn info(&self) -> &DeviceInfo {
        (**self).info()
    }
}
