//! The uhid front (Linux): the virtual key becomes a real kernel HID device (`/dev/hidrawN`),
//! so the daemon's hidapi path (sysfs enumeration, 65-byte writes, 64-byte reads) is exercised
//! end to end. Unplugging destroys the device; replugging creates it again.
//!
//! The event layout is the kernel's `struct uhid_event` (include/uapi/linux/uhid.h), packed:
//! a u32 type, then the request. It is written out by hand here, in safe code.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oathkey_device::ctaphid::wire::{REPORT_SIZE, Report};
use oathkey_device::model::{VIRTUAL_PID, VIRTUAL_PRODUCT, VIRTUAL_VID};
use tracing::{debug, info, warn};

use crate::device::VirtualKey;
use crate::udp::Control;

// Event types (enum uhid_event_type).
const UHID_DESTROY: u32 = 1;
const UHID_OUTPUT: u32 = 6;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_GET_REPORT: u32 = 9;
const UHID_GET_REPORT_REPLY: u32 = 10;
const UHID_SET_REPORT: u32 = 13;
const UHID_SET_REPORT_REPLY: u32 = 14;

/// Size of `struct uhid_event`: the type and the largest member, `uhid_create2_req`.
const EVENT_SIZE: usize = 4 + 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + 4096;
/// `BUS_USB`: the device looks like a USB key to hidapi and udev.
const BUS_USB: u16 = 0x03;

/// The FIDO HID report descriptor: usage page 0xF1D0, usage 1, one 64-byte input report and one
/// 64-byte output report, no report IDs (CTAP 2.1, section 11.2.8.1).
pub const FIDO_REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xD0, 0xF1, // Usage Page (FIDO Alliance)
    0x09, 0x01, // Usage (CTAPHID)
    0xA1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Input Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Var, Abs)
    0x09, 0x21, //   Usage (Output Report Data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x91, 0x02, //   Output (Data, Var, Abs)
    0xC0, // End Collection
];

fn put_str(buf: &mut [u8], at: usize, len: usize, s: &str) {
    let bytes = s.as_bytes();
    let n = bytes.len().min(len - 1);
    buf[at..at + n].copy_from_slice(&bytes[..n]);
}

/// A `UHID_CREATE2` event for the virtual key with this serial.
pub fn create_event(serial: &str) -> Vec<u8> {
    let mut ev = vec![0u8; EVENT_SIZE];
    ev[0..4].copy_from_slice(&UHID_CREATE2.to_le_bytes());
    let mut at = 4;
    put_str(&mut ev, at, 128, VIRTUAL_PRODUCT);
    at += 128;
    put_str(&mut ev, at, 64, "oathkey-emulator/uhid");
    at += 64;
    put_str(&mut ev, at, 64, serial);
    at += 64;
    ev[at..at + 2].copy_from_slice(&(FIDO_REPORT_DESCRIPTOR.len() as u16).to_le_bytes());
    at += 2;
    ev[at..at + 2].copy_from_slice(&BUS_USB.to_le_bytes());
    at += 2;
    ev[at..at + 4].copy_from_slice(&u32::from(VIRTUAL_VID).to_le_bytes());
    at += 4;
    ev[at..at + 4].copy_from_slice(&u32::from(VIRTUAL_PID).to_le_bytes());
    at += 4;
    ev[at..at + 4].copy_from_slice(&0x0100u32.to_le_bytes()); // version
    at += 4;
    at += 4; // country
    ev[at..at + FIDO_REPORT_DESCRIPTOR.len()].copy_from_slice(&FIDO_REPORT_DESCRIPTOR);
    ev
}

/// A `UHID_INPUT2` event carrying one report to the host.
pub fn input_event(report: &Report) -> Vec<u8> {
    let mut ev = vec![0u8; EVENT_SIZE];
    ev[0..4].copy_from_slice(&UHID_INPUT2.to_le_bytes());
    ev[4..6].copy_from_slice(&(REPORT_SIZE as u16).to_le_bytes());
    ev[6..6 + REPORT_SIZE].copy_from_slice(report);
    ev
}

fn simple_event(kind: u32) -> Vec<u8> {
    let mut ev = vec![0u8; EVENT_SIZE];
    ev[0..4].copy_from_slice(&kind.to_le_bytes());
    ev
}

/// What a `UHID_OUTPUT` event carries: the report the host wrote, without its report-ID byte.
pub fn parse_output(ev: &[u8]) -> Option<Report> {
    // struct uhid_output_req { u8 data[4096]; u16 size; u8 rtype; }
    let size_at = 4 + 4096;
    let size = usize::from(u16::from_le_bytes([
        *ev.get(size_at)?,
        *ev.get(size_at + 1)?,
    ]));
    let data = ev.get(4..4 + size.min(4096))?;
    // hidapi writes the report ID first (0 for no IDs): 65 bytes for a 64-byte report.
    let data = match data {
        [0, rest @ ..] if rest.len() == REPORT_SIZE => rest,
        exact if exact.len() == REPORT_SIZE => exact,
        _ => return None,
    };
    let mut report = [0u8; REPORT_SIZE];
    report.copy_from_slice(data);
    Some(report)
}

/// A virtual key registered with the kernel through `/dev/uhid`.
struct Device {
    file: File,
    serial: String,
    created: bool,
}

impl Device {
    fn open(serial: &str) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/uhid")?;
        let mut dev = Self {
            file,
            serial: serial.to_string(),
            created: false,
        };
        dev.create()?;
        Ok(dev)
    }

    fn create(&mut self) -> std::io::Result<()> {
        self.file.write_all(&create_event(&self.serial))?;
        self.created = true;
        info!(serial = %self.serial, "virtual key plugged in (uhid)");
        Ok(())
    }

    fn destroy(&mut self) -> std::io::Result<()> {
        if self.created {
            self.file.write_all(&simple_event(UHID_DESTROY))?;
            self.created = false;
            info!(serial = %self.serial, "virtual key unplugged (uhid)");
        }
        Ok(())
    }
}

/// Serves `key` as a kernel HID device until a [`Control::Stop`] arrives.
pub fn serve(mut key: VirtualKey, control: &Receiver<Control>) -> std::io::Result<()> {
    let serial = format!("{:08X}", key.state().serial);
    let mut dev = Device::open(&serial)?;
    let mut buf = vec![0u8; EVENT_SIZE];
    loop {
        loop {
            match control.try_recv() {
                Ok(Control::Press) => {
                    key.press(Instant::now());
                }
                Ok(Control::Touch(p)) => key.set_touch_policy(p),
                Ok(Control::Unplug) => {
                    dev.destroy()?;
                    key.power_cycle();
                }
                Ok(Control::Replug) => {
                    if !dev.created {
                        dev.create()?;
                    }
                }
                Ok(Control::Faults(f)) => *key.faults_mut() = f,
                Ok(Control::Stop) => {
                    dev.destroy()?;
                    return Ok(());
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        key.poll(now);
        while let Some((_, report)) = key.take_output(now) {
            if dev.created {
                dev.file.write_all(&input_event(&report))?;
            }
        }
        let wait = key
            .next_wakeup()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        let ready = {
            let mut fds = [PollFd::new(dev.file.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(wait.as_millis()).unwrap_or(50);
            poll(&mut fds, PollTimeout::from(ms)).map_err(std::io::Error::from)?
        };
        if ready == 0 {
            continue;
        }
        let n = dev.file.read(&mut buf)?;
        if n < 4 {
            continue;
        }
        match u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) {
            UHID_OUTPUT => match parse_output(&buf[..n]) {
                Some(report) if dev.created => key.receive(&report, 0, Instant::now()),
                Some(_) => {}
                None => warn!("ignored an output report that is not 64 bytes"),
            },
            UHID_GET_REPORT => {
                // No feature reports: answer with an error so the kernel does not wait.
                let mut reply = simple_event(UHID_GET_REPORT_REPLY);
                reply[4..8].copy_from_slice(&buf[4..8]); // id
                reply[8..10].copy_from_slice(&5u16.to_le_bytes()); // err = EIO
                dev.file.write_all(&reply)?;
            }
            UHID_SET_REPORT => {
                let mut reply = simple_event(UHID_SET_REPORT_REPLY);
                reply[4..8].copy_from_slice(&buf[4..8]);
                reply[8..10].copy_from_slice(&5u16.to_le_bytes());
                dev.file.write_all(&reply)?;
            }
            other => debug!(event = other, "uhid event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_event_layout() {
        let ev = create_event("0A0B0C0D");
        assert_eq!(ev.len(), 4376);
        assert_eq!(&ev[0..4], &11u32.to_le_bytes());
        assert!(ev[4..].starts_with(b"oathkey virtual key\0"));
        assert!(ev[4 + 128 + 64..].starts_with(b"0A0B0C0D\0"));
        let rd_size_at = 4 + 128 + 64 + 64;
        assert_eq!(u16::from_le_bytes([ev[rd_size_at], ev[rd_size_at + 1]]), 34);
        assert_eq!(
            u16::from_le_bytes([ev[rd_size_at + 2], ev[rd_size_at + 3]]),
            3,
            "BUS_USB"
        );
        assert_eq!(
            u32::from_le_bytes(ev[rd_size_at + 4..rd_size_at + 8].try_into().expect("4")),
            0x1209
        );
        assert_eq!(
            u32::from_le_bytes(ev[rd_size_at + 8..rd_size_at + 12].try_into().expect("4")),
            0x0001
        );
        assert_eq!(&ev[rd_size_at + 20..rd_size_at + 23], &[0x06, 0xD0, 0xF1]);
    }

    #[test]
    fn output_reports_lose_their_report_id() {
        let mut ev = vec![0u8; EVENT_SIZE];
        ev[0..4].copy_from_slice(&6u32.to_le_bytes());
        ev[5] = 0xAB; // data[1]: the first report byte after the report ID
        ev[4 + 4096..4 + 4098].copy_from_slice(&65u16.to_le_bytes());
        let report = parse_output(&ev).expect("a report");
        assert_eq!(report[0], 0xAB);
        ev[4 + 4096..4 + 4098].copy_from_slice(&10u16.to_le_bytes());
        assert!(parse_output(&ev).is_none());
    }

    #[test]
    fn input_event_carries_the_report() {
        let mut report = [0u8; 64];
        report[0] = 0xFF;
        report[63] = 0x01;
        let ev = input_event(&report);
        assert_eq!(&ev[0..4], &12u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([ev[4], ev[5]]), 64);
        assert_eq!((ev[6], ev[69]), (0xFF, 0x01));
    }
}
