//! The UDP front: one datagram is one 64-byte report, without a report-ID byte; each answer
//! goes to the address that sent the request. External FIDO tooling (python-fido2 with a small
//! UDP connection class, say) drives the virtual key this way.
//!
//! The spelling `oathkey-emulator serve --udp 127.0.0.1:PORT` is a contract with such tools.
//!
//! This is the device side only. The host side, the `Transport` that `oathkeyd --udp-key`
//! attaches with, is `oathkey_device::udp::UdpTransport`, beside the other host transports.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use oathkey_device::ctaphid::wire::{REPORT_SIZE, Report};
use tracing::{debug, info, warn};

use crate::config::TouchPolicy;
use crate::device::{Origin, VirtualKey};
use crate::faults::Faults;

/// Most peers remembered for routing answers; the oldest is forgotten beyond that.
const MAX_PEERS: usize = 256;
/// Longest sleep between looks at the control channel.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Commands for a running server (from the binary's stdin, or from tests).
#[derive(Debug, Clone)]
pub enum Control {
    /// Press the button.
    Press,
    /// Change the touch policy.
    Touch(TouchPolicy),
    /// Unplug: stop answering and forget channels.
    Unplug,
    /// Plug back in.
    Replug,
    /// Arm faults (instants are computed by the caller).
    Faults(Faults),
    /// Stop serving.
    Stop,
}

/// Serves `key` on `socket` until a [`Control::Stop`] arrives or the socket fails.
pub fn serve(
    socket: &UdpSocket,
    mut key: VirtualKey,
    control: &Receiver<Control>,
) -> std::io::Result<()> {
    info!(addr = %socket.local_addr()?, "virtual key serving over UDP");
    let mut origins: HashMap<SocketAddr, Origin> = HashMap::new();
    let mut next_origin: Origin = 0;
    let mut plugged = true;
    let mut buf = [0u8; 2048];
    let mut routes: HashMap<Origin, SocketAddr> = HashMap::new();
    loop {
        loop {
            match control.try_recv() {
                Ok(Control::Press) => {
                    let waited = key.press(Instant::now());
                    debug!(waited, "button pressed");
                }
                Ok(Control::Touch(policy)) => key.set_touch_policy(policy),
                Ok(Control::Unplug) => {
                    plugged = false;
                    key.power_cycle();
                }
                Ok(Control::Replug) => plugged = true,
                Ok(Control::Faults(f)) => *key.faults_mut() = f,
                Ok(Control::Stop) => return Ok(()),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        key.poll(now);
        while let Some((origin, report)) = key.take_output(now) {
            if let Some(addr) = routes.get(&origin) {
                socket.send_to(&report, addr)?;
            }
        }
        let wait = key
            .next_wakeup()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_POLL)
            .clamp(Duration::from_millis(1), IDLE_POLL);
        socket.set_read_timeout(Some(wait))?;
        let (n, addr) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // A peer that went away makes some systems report ECONNREFUSED on the next read.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        if n != REPORT_SIZE {
            warn!(len = n, %addr, "ignored a datagram that is not one 64-byte report");
            continue;
        }
        if !plugged {
            continue;
        }
        if !origins.contains_key(&addr) && origins.len() >= MAX_PEERS {
            // Many short-lived peers (one port per test client): start the table afresh.
            origins.clear();
            routes.clear();
        }
        let origin = *origins.entry(addr).or_insert_with(|| {
            next_origin += 1;
            next_origin
        });
        routes.insert(origin, addr);
        let mut report: Report = [0; REPORT_SIZE];
        report.copy_from_slice(&buf[..REPORT_SIZE]);
        key.receive(&report, origin, Instant::now());
    }
}
