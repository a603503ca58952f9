//! The device side of the APDU layer: parsing command APDUs and BER-TLV request data, as the
//! secrets app does, and writing answers (status word first, raw one-byte TLV lengths).

use oathkey_device::apdu::StatusWord;

/// A parsed command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data.
    pub data: Vec<u8>,
}

impl Drop for Apdu {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

/// Parses an APDU; `None` when the bytes are no APDU at all (the key then answers with a
/// CTAPHID INVALID_LEN error, not a status word).
pub fn parse(bytes: &[u8]) -> Option<Apdu> {
    let [cla, ins, p1, p2, body @ ..] = bytes else {
        return None;
    };
    let data: &[u8] = match body {
        [] | [_] => &[],
        [0, hi, lo, rest @ ..] if rest.len() == usize::from(u16::from_be_bytes([*hi, *lo])) => rest,
        [0, hi, lo, rest @ ..] if rest.len() == usize::from(u16::from_be_bytes([*hi, *lo])) + 2 => {
            // Extended Lc, data and a two-byte Le.
            &rest[..rest.len() - 2]
        }
        [lc, rest @ ..] if *lc != 0 && usize::from(*lc) == rest.len() => rest,
        [lc, rest @ ..] if *lc != 0 && usize::from(*lc) + 1 == rest.len() => {
            &rest[..usize::from(*lc)]
        }
        _ => return None,
    };
    if *cla == 0xFF {
        return None;
    }
    Some(Apdu {
        cla: *cla,
        ins: *ins,
        p1: *p1,
        p2: *p2,
        data: data.to_vec(),
    })
}

/// The class checks of ISO 7816-4, in the order the app runs them; only CLA 00 passes.
pub fn check_class(cla: u8) -> Result<(), StatusWord> {
    if cla & 0x10 != 0 {
        return Err(StatusWord(0x6884)); // command chaining not supported
    }
    if cla != 0 && (cla & 0x0C != 0 || cla >= 0x20) {
        return Err(StatusWord(0x6882)); // secure messaging not supported
    }
    if cla & 0x03 != 0 {
        return Err(StatusWord::CLASS_NOT_SUPPORTED); // logical channels
    }
    Ok(())
}

/// Reads BER-TLV request data: one-byte tags; lengths `00..7F`, `81 xx` or `82 xx xx`.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over request data.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether all data has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next tag without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads one TLV; `6A 80` when it is malformed or truncated.
    pub fn tlv(&mut self) -> Result<(u8, &'a [u8]), StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        let (&tag, rest) = self.data.split_first().ok_or(bad)?;
        let (len, rest) = match rest {
            [n @ 0..=0x7F, rest @ ..] => (usize::from(*n), rest),
            [0x81, n, rest @ ..] => (usize::from(*n), rest),
            [0x82, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return Err(bad),
        };
        if rest.len() < len {
            return Err(bad);
        }
        let (value, rest) = rest.split_at(len);
        self.data = rest;
        Ok((tag, value))
    }

    /// Reads one TLV that must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], StatusWord> {
        match self.tlv()? {
            (t, v) if t == tag => Ok(v),
            _ => Err(StatusWord::INCORRECT_DATA),
        }
    }

    /// Reads raw bytes without a TLV header (PUT's `78 pp`).
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], StatusWord> {
        if self.data.len() < n {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
}

/// Appends an answer TLV with one raw length byte (values are at most 255 bytes by design).
pub fn put_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.push(value.len().min(255) as u8);
    out.extend_from_slice(&value[..value.len().min(255)]);
}

/// An answer: status word first, then data (data only on success or more-data).
pub fn answer(sw: StatusWord, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + data.len());
    out.extend_from_slice(&sw.to_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_case_the_hosts_send() {
        let a = parse(&[0, 0xA1, 0, 0]).expect("case 1");
        assert!(a.data.is_empty());
        let a = parse(&[0, 0xA1, 0, 0, 1, 1]).expect("case 3");
        assert_eq!(a.data, vec![1]);
        let a = parse(&[0, 0xA1, 0, 0, 1, 1, 0]).expect("case 4");
        assert_eq!(a.data, vec![1]);
        let mut ext = vec![0, 1, 0, 0, 0, 1, 0];
        ext.extend(std::iter::repeat_n(7, 256));
        assert_eq!(parse(&ext).expect("extended").data.len(), 256);
    }

    #[test]
    fn rejects_what_is_no_apdu() {
        assert_eq!(parse(&[0, 0xA1, 0]), None);
        assert_eq!(parse(&[0, 0xA1, 0, 0, 5, 1]), None);
        assert_eq!(parse(&[0xFF, 0xA1, 0, 0]), None);
    }

    #[test]
    fn class_checks_follow_iso_order() {
        assert_eq!(check_class(0x00), Ok(()));
        assert_eq!(check_class(0x10), Err(StatusWord(0x6884)));
        assert_eq!(check_class(0x80), Err(StatusWord(0x6882)));
        assert_eq!(check_class(0x04), Err(StatusWord(0x6882)));
        assert_eq!(check_class(0x01), Err(StatusWord(0x6E00)));
    }

    #[test]
    fn ber_lengths() {
        let mut data = vec![0x71, 0x81, 0x80];
        data.extend([1; 0x80]);
        data.extend([0x74, 0x02, 9, 9]);
        let mut r = Reader::new(&data);
        assert_eq!(r.expect(0x71).expect("long form").len(), 128);
        assert_eq!(r.tlv(), Ok((0x74, &[9, 9][..])));
        assert!(r.is_empty());
        assert_eq!(
            Reader::new(&[0x71, 0x80]).tlv(),
            Err(StatusWord::INCORRECT_DATA)
        );
        assert_eq!(
            Reader::new(&[0x71, 0x83, 0, 0, 1]).tlv(),
            Err(StatusWord::INCORRECT_DATA)
        );
        assert_eq!(
            Reader::new(&[0x71, 5, 1]).tlv(),
            Err(StatusWord::INCORRECT_DATA)
        );
    }
}
