//! ISO 7816 command APDUs, status words and the simple TLV encoding the OATH app uses.
//!
//! The secrets app carries short APDUs inside CTAPHID vendor messages. Requests are BER-TLV
//! (lengths of 128 and more take the long form `81 xx`); the app builds its answers with one raw
//! length byte, so answers are parsed that way.

use std::fmt;

/// A command APDU: `CLA INS P1 P2 [Lc data]`, no Le.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Instruction byte.
    pub ins: u8,
    /// First parameter.
    pub p1: u8,
    /// Second parameter.
    pub p2: u8,
    /// Command data (may hold secrets: never printed by `Debug`).
    pub data: Vec<u8>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The data of PUT and PIN commands is secret; only its size is useful in a log.
        f.debug_struct("Command")
            .field("ins", &format_args!("{:#04x}", self.ins))
            .field("p1", &format_args!("{:#04x}", self.p1))
            .field("p2", &format_args!("{:#04x}", self.p2))
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

impl Command {
    /// A command with the given instruction, parameters and data.
    pub fn new(ins: u8, p1: u8, p2: u8, data: Vec<u8>) -> Self {
        Self { ins, p1, p2, data }
    }

    /// Encodes the APDU: short form for up to 255 data bytes, extended form above.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(7 + self.data.len()));
        out.extend_from_slice(&[0x00, self.ins, self.p1, self.p2]);
        match self.data.len() {
            0 => {}
            n @ 1..=255 => out.push(n as u8),
            n => {
                // Extended length: 00 then two bytes. Longer data cannot be sent at all; the
                // CTAPHID message limit (7609 bytes) is far below 65535.
                out.push(0);
                out.extend_from_slice(&(n.min(0xFFFF) as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&self.data);
        out
    }
}

/// An ISO 7816 status word (`SW1 SW2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `90 00`: success.
    pub const OK: Self = Self(0x9000);
    /// `63 00`: verification failed (wrong PIN).
    pub const VERIFICATION_FAILED: Self = Self(0x6300);
    /// `65 00`: the key could not change its persistent state (the secrets app answers it when
    /// an HOTP counter cannot move on, at its last value).
    pub const STATE_NOT_CHANGED: Self = Self(0x6500);
    /// `65 81`: memory failure.
    pub const MEMORY_FAILURE: Self = Self(0x6581);
    /// `67 00`: wrong length.
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `69 82`: security status not satisfied (touch missing or timed out, PIN not verified).
    pub const SECURITY_STATUS_NOT_SATISFIED: Self = Self(0x6982);
    /// `69 83`: authentication method blocked, or the object already exists.
    pub const OPERATION_BLOCKED: Self = Self(0x6983);
    /// `69 84`: reference data not usable (also used for "not found").
    pub const REFERENCE_NOT_USABLE: Self = Self(0x6984);
    /// `69 85`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6A 80`: incorrect data in the command.
    pub const INCORRECT_DATA: Self = Self(0x6A80);
    /// `6A 82`: not found.
    pub const NOT_FOUND: Self = Self(0x6A82);
    /// `6A 84`: not enough memory.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// `6A 86`: incorrect P1 or P2.
    pub const INCORRECT_P1P2: Self = Self(0x6A86);
    /// `6D 00`: instruction not supported.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// `6E 00`: class not supported.
    pub const CLASS_NOT_SUPPORTED: Self = Self(0x6E00);
    /// `6F 00`: unspecified error.
    pub const UNKNOWN: Self = Self(0x6F00);

    /// `61 xx`: more data waiting; fetch it with SEND REMAINING.
    pub fn more_data(remaining: usize) -> Self {
        Self(0x6100 | remaining.min(0xFF) as u16)
    }

    /// Whether this is `61 xx`.
    pub fn is_more_data(self) -> bool {
        self.0 & 0xFF00 == 0x6100
    }

    /// The two bytes as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// A short name for logs and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::OK => "success",
            Self::VERIFICATION_FAILED => "verification failed",
            Self::STATE_NOT_CHANGED => "state not changed",
            Self::MEMORY_FAILURE => "memory failure",
            Self::WRONG_LENGTH => "wrong length",
            Self::SECURITY_STATUS_NOT_SATISFIED => "security status not satisfied",
            Self::OPERATION_BLOCKED => "operation blocked",
            Self::REFERENCE_NOT_USABLE => "reference data not usable",
            Self::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
            Self::INCORRECT_DATA => "incorrect data",
            Self::NOT_FOUND => "not found",
            Self::NOT_ENOUGH_MEMORY => "not enough memory",
            Self::INCORRECT_P1P2 => "incorrect P1/P2",
            Self::INS_NOT_SUPPORTED => "instruction not supported",
            Self::CLASS_NOT_SUPPORTED => "class not supported",
            s if s.is_more_data() => "more data available",
            _ => "unknown status",
        }
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.name())
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02X} {:02X} ({})",
            self.0 >> 8,
            self.0 & 0xFF,
            self.name()
        )
    }
}

/// Appends one request TLV. The app parses requests as BER-TLV, so lengths from 128 on take
/// the long form `81 xx`; values over 255 bytes are never needed and are refused.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), TlvError> {
    let len = u8::try_from(value.len()).map_err(|_| TlvError::TooLong {
        tag,
        len: value.len(),
    })?;
    out.push(tag);
    if len >= 0x80 {
        out.push(0x81);
    }
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

/// A TLV problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// A value is longer than one length byte can say.
    #[error("TLV value for tag {tag:#04x} is {len} bytes; at most 255 fit")]
    TooLong {
        /// The tag.
        tag: u8,
        /// The value's length.
        len: usize,
    },
    /// The data ends inside a TLV.
    #[error("TLV data truncated at offset {0}")]
    Truncated(usize),
}

/// Iterates over the TLVs of an answer (one raw length byte each); yields an error (once)
/// where the data is truncated.
pub fn tlvs(data: &[u8]) -> Tlvs<'_> {
    Tlvs {
        data,
        pos: 0,
        failed: false,
    }
}

/// Iterator returned by [`tlvs`].
#[derive(Debug)]
pub struct Tlvs<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<(u8, &'a [u8]), TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let (Some(&tag), Some(&len)) = (self.data.get(start), self.data.get(start + 1)) else {
            self.failed = true;
            return Some(Err(TlvError::Truncated(start)));
        };
        let end = start + 2 + usize::from(len);
        match self.data.get(start + 2..end) {
            Some(value) => {
                self.pos = end;
                Some(Ok((tag, value)))
            }
            None => {
                self.failed = true;
                Some(Err(TlvError::Truncated(start)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_extended_encodings() {
        let cmd = Command::new(0xA2, 0x00, 0x01, vec![0x71, 0x01, b'a']);
        assert_eq!(
            &cmd.to_bytes()[..],
            &[0x00, 0xA2, 0x00, 0x01, 0x03, 0x71, 0x01, b'a']
        );
        assert_eq!(
            &Command::new(0xA1, 0, 0, vec![]).to_bytes()[..],
            &[0x00, 0xA1, 0, 0]
        );
        let long = Command::new(0x01, 0, 0, vec![7; 300]).to_bytes();
        assert_eq!(&long[..7], &[0x00, 0x01, 0, 0, 0x00, 0x01, 0x2C]);
        assert_eq!(long.len(), 307);
    }

    #[test]
    fn debug_hides_command_data() {
        let cmd = Command::new(0xB2, 0, 0, b"\x80\x041234".to_vec());
        let shown = format!("{cmd:?}");
        assert!(
            !shown.contains("1234") && !shown.contains("49, 50"),
            "{shown}"
        );
        assert!(shown.contains("data_len: 6"), "{shown}");
    }

    #[test]
    fn tlv_iteration_and_truncation() {
        let mut buf = Vec::new();
        push_tlv(&mut buf, 0x71, b"name").expect("short");
        push_tlv(&mut buf, 0x74, &[0; 8]).expect("short");
        let mut long = Vec::new();
        push_tlv(&mut long, 0x73, &[1; 130]).expect("fits");
        assert_eq!(&long[..3], &[0x73, 0x81, 130]);
        let items: Vec<_> = tlvs(&buf).collect::<Result<_, _>>().expect("valid");
        assert_eq!(items, vec![(0x71, &b"name"[..]), (0x74, &[0u8; 8][..])]);

        buf.extend_from_slice(&[0x75, 9, 1]);
        let results: Vec<_> = tlvs(&buf).collect();
        assert_eq!(results.len(), 3);
        assert_eq!(results[2], Err(TlvError::Truncated(16)));
    }

    #[test]
    fn tlv_refuses_long_values() {
        let mut buf = Vec::new();
        assert_eq!(
            push_tlv(&mut buf, 0x73, &[0; 256]),
            Err(TlvError::TooLong {
                tag: 0x73,
                len: 256
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn status_word_more_data() {
        let sw = StatusWord::more_data(300);
        assert_eq!(sw, StatusWord(0x61FF));
        assert!(sw.is_more_data());
        assert!(!StatusWord::OK.is_more_data());
        assert_eq!(StatusWord::NOT_FOUND.to_string(), "6A 82 (not found)");
    }
}
