//! The UDP transport: the host side of the virtual key's UDP front
//! (`oathkey-emulator serve --udp ADDR`), next to the hidapi transport. This is how
//! `oathkeyd --udp-key ADDR` attaches a virtual key that runs in another process.
//!
//! One datagram is one 64-byte report, without a report-ID byte; the key answers to the address
//! that sent the request, so one connected socket is one host. The device side (the server) is
//! the emulator crate's `udp` module.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::ctaphid::wire::{REPORT_SIZE, Report};
use crate::model::{VIRTUAL_PID, VIRTUAL_PRODUCT, VIRTUAL_VID};
use crate::transport::{DeviceInfo, Transport, TransportError};

/// A [`Transport`] to a virtual key served by `oathkey-emulator serve --udp`.
pub struct UdpTransport {
    socket: UdpSocket,
    info: DeviceInfo,
}

impl std::fmt::Debug for UdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTransport")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl UdpTransport {
    /// A transport to the virtual key at `addr`.
    pub fn connect(addr: &str) -> std::io::Result<Self> {
        let target: SocketAddr = addr.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
        })?;
        let local: SocketAddr = if target.is_ipv6() {
            "[::]:0".parse()
        } else {
            "0.0.0.0:0".parse()
        }
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
        let socket = UdpSocket::bind(local)?;
        socket.connect(target)?;
        let info = DeviceInfo {
            path: format!("udp://{target}"),
            vendor_id: VIRTUAL_VID,
            product_id: VIRTUAL_PID,
            product: Some(VIRTUAL_PRODUCT.into()),
            manufacturer: Some("oathkey".into()),
            serial: None,
        };
        Ok(Self { socket, info })
    }
}

fn udp_error(e: std::io::Error) -> TransportError {
    // Nothing listens any more: the emulator process is gone, like an unplugged key.
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        TransportError::Disconnected
    } else {
        TransportError::Io(e.to_string())
    }
}

impl Transport for UdpTransport {
    fn write(&mut self, report: &Report) -> Result<(), TransportError> {
        self.socket.send(report).map(drop).map_err(udp_error)
    }

    fn read(&mut self, timeout: Duration) -> Result<Option<Report>, TransportError> {
        let mut buf = [0u8; 2048];
        let result = if timeout.is_zero() {
            self.socket.set_nonblocking(true).map_err(udp_error)?;
            let r = self.socket.recv(&mut buf);
            self.socket.set_nonblocking(false).map_err(udp_error)?;
            r
        } else {
            self.socket
                .set_read_timeout(Some(timeout))
                .map_err(udp_error)?;
            self.socket.recv(&mut buf)
        };
        match result {
            Ok(REPORT_SIZE) => {
                let mut report = [0u8; REPORT_SIZE];
                report.copy_from_slice(&buf[..REPORT_SIZE]);
                Ok(Some(report))
            }
            Ok(n) => Err(TransportError::Io(format!(
                "datagram of {n} bytes is not a report"
            ))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(udp_error(e)),
        }
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer standing in for the key's server: a plain socket.
    fn peer() -> (UdpSocket, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr").to_string();
        (socket, addr)
    }

    #[test]
    fn a_report_is_one_datagram_each_way() {
        let (server, addr) = peer();
        let mut t = UdpTransport::connect(&addr).expect("connects");
        assert_eq!(t.info().path, format!("udp://{addr}"));
        assert_eq!(
            (t.info().vendor_id, t.info().product_id),
            (VIRTUAL_VID, VIRTUAL_PID)
        );
        assert_eq!(t.info().product.as_deref(), Some(VIRTUAL_PRODUCT));

        let mut report = [0u8; REPORT_SIZE];
        report[0] = 0xFF;
        report[63] = 0x42;
        t.write(&report).expect("sent");
        let mut buf = [0u8; 2048];
        let (n, from) = server.recv_from(&mut buf).expect("received");
        assert_eq!(&buf[..n], &report[..], "no report-ID byte, nothing added");

        let mut answer = [0u8; REPORT_SIZE];
        answer[1] = 7;
        server.send_to(&answer, from).expect("answered");
        assert_eq!(t.read(Duration::from_secs(5)).expect("read"), Some(answer));
    }

    #[test]
    fn nothing_waiting_is_none_and_a_short_datagram_an_error() {
        let (server, addr) = peer();
        let mut t = UdpTransport::connect(&addr).expect("connects");
        assert_eq!(t.read(Duration::ZERO).expect("read"), None);
        assert_eq!(t.read(Duration::from_millis(20)).expect("read"), None);

        t.write(&[0u8; REPORT_SIZE]).expect("sent");
        let mut buf = [0u8; 2048];
        let (_, from) = server.recv_from(&mut buf).expect("received");
        server.send_to(&[1u8; 10], from).expect("answered");
        assert_eq!(
            t.read(Duration::from_secs(5)),
            Err(TransportError::Io(
                "datagram of 10 bytes is not a report".into()
            ))
        );
    }

    #[test]
    fn an_address_that_is_not_one_is_refused() {
        let err = UdpTransport::connect("not an address").expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not an address"), "{err}");
    }
}
