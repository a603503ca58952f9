//! CTAPHID wire format: byte values and the packet layout (FIDO CTAP 2.1, section 11.2).
//!
//! Both sides of the protocol use these definitions: the host-side framing in this crate and the
//! virtual key's device side. Only facts of the wire live here; the behaviour of each side (what
//! to do with a packet) is written separately by each side.

/// Size of one HID report on the FIDO interface, without a report-ID byte.
pub const REPORT_SIZE: usize = 64;

/// One HID report as it travels on the FIDO interface.
pub type Report = [u8; REPORT_SIZE];

/// Payload bytes carried by an initialisation packet (64 - CID - CMD - BCNT).
pub const INIT_DATA: usize = REPORT_SIZE - 7;
/// Payload bytes carried by a continuation packet (64 - CID - SEQ).
pub const CONT_DATA: usize = REPORT_SIZE - 5;
/// Continuation sequence numbers run 0..=0x7F, so a message has at most 129 packets.
pub const MAX_SEQ: usize = 0x80;
/// The largest message CTAPHID can carry: 57 + 128 * 59 = 7609 bytes.
pub const MAX_MESSAGE: usize = INIT_DATA + MAX_SEQ * CONT_DATA;

/// The broadcast channel, valid only for INIT.
pub const BROADCAST_CID: u32 = 0xFFFF_FFFF;
/// Channel 0 is reserved and never allocated.
pub const RESERVED_CID: u32 = 0;

/// Bit 7 of the fifth byte marks an initialisation packet.
pub const TYPE_INIT: u8 = 0x80;

/// CTAPHID command numbers (without the `TYPE_INIT` bit).
pub mod cmd {
    /// Echo the payload.
    pub const PING: u8 = 0x01;
    /// U2F APDU.
    pub const MSG: u8 = 0x03;
    /// Lock the device to one channel for up to 10 s.
    pub const LOCK: u8 = 0x04;
    /// Allocate a channel or resynchronise one.
    pub const INIT: u8 = 0x06;
    /// Make the device blink.
    pub const WINK: u8 = 0x08;
    /// CTAP2 CBOR message.
    pub const CBOR: u8 = 0x10;
    /// Cancel the request in progress on this channel.
    pub const CANCEL: u8 = 0x11;
    /// Device is still working or waits for user presence.
    pub const KEEPALIVE: u8 = 0x3B;
    /// Error response; one byte of error code.
    pub const ERROR: u8 = 0x3F;
    /// First vendor-specific command.
    pub const VENDOR_FIRST: u8 = 0x40;
    /// Last vendor-specific command.
    pub const VENDOR_LAST: u8 = 0x7F;
    /// Legacy Trussed admin command: firmware version (4 bytes).
    pub const VENDOR_VERSION: u8 = 0x61;
    /// Legacy Trussed admin command: device UUID (16 bytes).
    pub const VENDOR_UUID: u8 = 0x62;
    /// Nitrokey 3 OATH secrets app.
    pub const VENDOR_SECRETS: u8 = 0x70;
    /// Nitrokey 3 admin app (status, configuration).
    pub const VENDOR_ADMIN: u8 = 0x72;
}

/// CTAPHID ERROR codes.
pub mod err {
    /// The command is not known.
    pub const INVALID_CMD: u8 = 0x01;
    /// A parameter is invalid.
    pub const INVALID_PAR: u8 = 0x02;
    /// The length (BCNT) is invalid.
    pub const INVALID_LEN: u8 = 0x03;
    /// A continuation packet carried the wrong sequence number.
    pub const INVALID_SEQ: u8 = 0x04;
    /// The device gave up waiting for the rest of a message.
    pub const MSG_TIMEOUT: u8 = 0x05;
    /// The device is busy with a transaction on another channel.
    pub const CHANNEL_BUSY: u8 = 0x06;
    /// A LOCK is required for this command.
    pub const LOCK_REQUIRED: u8 = 0x0A;
    /// The channel is not allocated or not valid for this command.
    pub const INVALID_CHANNEL: u8 = 0x0B;
    /// Unspecified error.
    pub const OTHER: u8 = 0x7F;
}

/// KEEPALIVE status byte values.
pub mod keepalive {
    /// The device is processing the request.
    pub const PROCESSING: u8 = 1;
    /// The device waits for the user to touch it.
    pub const UP_NEEDED: u8 = 2;
}

/// Capability flags in the INIT response.
pub mod capability {
    /// The device implements WINK.
    pub const WINK: u8 = 0x01;
    /// The device implements CBOR (CTAP2).
    pub const CBOR: u8 = 0x04;
    /// The device does NOT implement MSG (U2F).
    pub const NMSG: u8 = 0x08;
}

/// The CTAPHID protocol version reported in INIT responses.
pub const PROTOCOL_VERSION: u8 = 2;

/// A packet as seen on the wire, decoded but not validated against any session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// The first packet of a message.
    Init {
        /// Channel identifier.
        cid: u32,
        /// Command without the `TYPE_INIT` bit.
        cmd: u8,
        /// Total length of the message payload.
        bcnt: u16,
        /// The 57 data bytes of this packet (including padding).
        data: &'a [u8],
    },
    /// A follow-up packet of a message.
    Cont {
        /// Channel identifier.
        cid: u32,
        /// Sequence number, 0..=0x7F.
        seq: u8,
        /// The 59 data bytes of this packet (including padding).
        data: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// Decodes one report. Every 64-byte report decodes; validity is a question of state.
    pub fn parse(report: &'a Report) -> Self {
        let cid = u32::from_be_bytes([report[0], report[1], report[2], report[3]]);
        if report[4] & TYPE_INIT != 0 {
            Packet::Init {
                cid,
                cmd: report[4] & !TYPE_INIT,
                bcnt: u16::from_be_bytes([report[5], report[6]]),
                data: &report[7..],
            }
        } else {
            Packet::Cont {
                cid,
                seq: report[4],
                data: &report[5..],
            }
        }
    }

    /// The channel the packet belongs to.
    pub fn cid(&self) -> u32 {
        match *self {
            Packet::Init { cid, .. } | Packet::Cont { cid, .. } => cid,
        }
    }
}

/// Splits a message into the reports that carry it, zero-padded to 64 bytes.
///
/// # Panics
/// Never for payloads up to [`MAX_MESSAGE`]; callers check the length first and a longer
/// payload is a programming error that is reported as [`FrameError::TooLong`].
pub fn fragment(cid: u32, cmd: u8, payload: &[u8]) -> Result<Vec<Report>, FrameError> {
    if payload.len() > MAX_MESSAGE {
        return Err(FrameError::TooLong(payload.len()));
    }
    let bcnt = u16::try_from(payload.len()).map_err(|_| FrameError::TooLong(payload.len()))?;
    let mut reports = Vec::with_capacity(1 + payload.len().saturating_sub(INIT_DATA) / CONT_DATA);
    let mut first = [0u8; REPORT_SIZE];
    first[..4].copy_from_slice(&cid.to_be_bytes());
    first[4] = TYPE_INIT | cmd;
    first[5..7].copy_from_slice(&bcnt.to_be_bytes());
    let head = payload.len().min(INIT_DATA);
    first[7..7 + head].copy_from_slice(&payload[..head]);
    reports.push(first);
    for (seq, chunk) in payload[head..].chunks(CONT_DATA).enumerate() {
        let mut report = [0u8; REPORT_SIZE];
        report[..4].copy_from_slice(&cid.to_be_bytes());
        // The length check above bounds seq to 0..=127.
        report[4] = seq as u8;
        report[5..5 + chunk.len()].copy_from_slice(chunk);
        reports.push(report);
    }
    Ok(reports)
}

/// A message that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload is larger than CTAPHID can carry.
    #[error("message of {0} bytes exceeds the CTAPHID maximum of {MAX_MESSAGE} bytes")]
    TooLong(usize),
}

/// The number of reports a message of `len` bytes takes.
pub fn packets_for(len: usize) -> usize {
    1 + len.saturating_sub(INIT_DATA).div_ceil(CONT_DATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_message_is_7609() {
        assert_eq!(MAX_MESSAGE, 7609);
    }

    #[test]
    fn fragment_short_message_is_one_padded_packet() {
        let reports = fragment(0x0102_0304, cmd::PING, b"hi").expect("fits");
        assert_eq!(reports.len(), 1);
        assert_eq!(&reports[0][..9], &[1, 2, 3, 4, 0x81, 0, 2, b'h', b'i']);
        assert!(reports[0][9..].iter().all(|&b| b == 0));
    }

    #[test]
    fn fragment_max_message_uses_all_sequence_numbers() {
        let payload: Vec<u8> = (0..MAX_MESSAGE).map(|i| i as u8).collect();
        let reports = fragment(7, cmd::PING, &payload).expect("fits");
        assert_eq!(reports.len(), 129);
        assert_eq!(reports.len(), packets_for(MAX_MESSAGE));
        assert_eq!(reports[128][4], 127);
        let mut rebuilt = Vec::new();
        for r in &reports {
            match Packet::parse(r) {
                Packet::Init { bcnt, data, .. } => {
                    assert_eq!(bcnt as usize, MAX_MESSAGE);
                    rebuilt.extend_from_slice(data);
                }
                Packet::Cont { data, .. } => rebuilt.extend_from_slice(data),
            }
        }
        rebuilt.truncate(MAX_MESSAGE);
        assert_eq!(rebuilt, payload);
    }

    #[test]
    fn fragment_refuses_oversized_message() {
        let payload = vec![0u8; MAX_MESSAGE + 1];
        assert_eq!(
            fragment(7, cmd::PING, &payload),
            Err(FrameError::TooLong(MAX_MESSAGE + 1))
        );
    }

    #[test]
    fn packets_for_boundaries() {
        assert_eq!(packets_for(0), 1);
        assert_eq!(packets_for(57), 1);
        assert_eq!(packets_for(58), 2);
        assert_eq!(packets_for(57 + 59), 2);
        assert_eq!(packets_for(57 + 60), 3);
    }
}
