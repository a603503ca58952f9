//! Short ISO 7816 APDUs as YKOATH cards take them over CCID, and one exchange with response
//! chaining.
//!
//! Differences from the Nitrokey 3 dialect over CTAPHID ([`crate::oath`]): the status word
//! comes **last** (`data | SW1 SW2`); a command without data carries an `Le` of `00` (as
//! yubikit sends it: `00 A1 00 00 00`), one with data none; only short APDUs (the longest
//! YKOATH request, a PUT of a 64-byte name and a 128-byte key, fits in 255 bytes). Long answers
//! come in chunks ending in `61 xx`, each fetched with the app's SEND REMAINING instruction
//! (`A5` for OATH, ISO's GET RESPONSE `C0` for the management app); `6C xx` asks for the same
//! command again with `Le = xx`.

use zeroize::Zeroizing;

use crate::apdu::{Command, StatusWord};
use crate::error::Error;
use crate::ykoath::channel::CardLink;

/// More rounds of chaining than any card needs (a full YubiKey LIST is a few chunks).
const MAX_CHAINED: usize = 64;

/// Encodes a short APDU: `00 INS P1 P2`, then `Lc data` when there is data, or `Le` when there
/// is none or `le` is given.
pub fn encode(command: &Command, le: Option<u8>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let len = u8::try_from(command.data.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "a command of {} data bytes does not fit a short APDU",
            command.data.len()
        ))
    })?;
    let mut out = Zeroizing::new(Vec::with_capacity(6 + command.data.len()));
    out.extend_from_slice(&[0x00, command.ins, command.p1, command.p2]);
    if len > 0 {
        out.push(len);
        out.extend_from_slice(&command.data);
        if let Some(le) = le {
            out.push(le);
        }
    } else {
        // Le 00: "up to 256 bytes", what yubikit sends for commands without data.
        out.push(le.unwrap_or(0));
    }
    Ok(out)
}

/// Splits a response APDU into its data and status word (which comes last).
pub fn split_response(response: &[u8]) -> Result<(&[u8], StatusWord), Error> {
    match response {
        [data @ .., sw1, sw2] => Ok((data, StatusWord(u16::from_be_bytes([*sw1, *sw2])))),
        _ => Err(Error::Protocol(format!(
            "the card answered {} bytes, less than a status word",
            response.len()
        ))),
    }
}

/// The outcome of one command: the status word and all the data, chunks joined.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The final status word (`90 00` on success).
    pub sw: StatusWord,
    /// The data of every chunk (may hold codes or HMACs: wiped on drop, not printed).
    pub data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("sw", &self.sw)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl Reply {
    /// Whether the card said `90 00`.
    pub fn ok(&self) -> bool {
        self.sw == StatusWord::OK
    }
}

/// Sends `command` and collects the whole answer: repeats it once with the `Le` a `6C xx`
/// names, and fetches chained chunks with `send_remaining` while the card says `61 xx`.
pub fn exchange(
    link: &mut dyn CardLink,
    command: &Command,
    send_remaining: u8,
) -> Result<Reply, Error> {
    let mut response = Zeroizing::new(link.transmit(&encode(command, None)?)?);
    let (_, sw) = split_response(&response)?;
    if sw.0 >> 8 == 0x6C {
        // Wrong Le: the card tells the right one; the command had no effect yet.
        let le = (sw.0 & 0xFF) as u8;
        response = Zeroizing::new(link.transmit(&encode(command, Some(le))?)?);
    }
    let (data, mut sw) = split_response(&response)?;
    let mut collected = Zeroizing::new(data.to_vec());
    let more = Command::new(send_remaining, 0, 0, Vec::new());
    let mut rounds = 0;
    while sw.is_more_data() {
        rounds += 1;
        if rounds > MAX_CHAINED {
            return Err(Error::Protocol(
                "the card kept answering 'more data'".into(),
            ));
        }
        let next = Zeroizing::new(link.transmit(&encode(&more, None)?)?);
        let (data, next_sw) = split_response(&next)?;
        collected.extend_from_slice(data);
        sw = next_sw;
    }
    Ok(Reply {
        sw,
        data: collected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Script(Vec<(Vec<u8>, Vec<u8>)>);

    impl CardLink for Script {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Error> {
            assert!(!self.0.is_empty(), "unexpected APDU {apdu:02X?}");
            let (want, answer) = self.0.remove(0);
            assert_eq!(apdu, &want[..]);
            Ok(answer)
        }
    }

    #[test]
    fn encodings_match_what_yubikit_sends() {
        let list = Command::new(0xA1, 0, 0, vec![]);
        assert_eq!(
            &encode(&list, None).expect("short")[..],
            &[0, 0xA1, 0, 0, 0]
        );
        let select = Command::new(0xA4, 4, 0, vec![0xA0, 0, 0, 5, 0x27, 0x21, 1]);
        assert_eq!(
            &encode(&select, None).expect("short")[..],
            &[0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 5, 0x27, 0x21, 1]
        );
        assert_eq!(
            &encode(&select, Some(0x10)).expect("short")[..],
            &[0, 0xA4, 4, 0, 7, 0xA0, 0, 0, 5, 0x27, 0x21, 1, 0x10]
        );
        assert!(matches!(
            encode(&Command::new(1, 0, 0, vec![0; 256]), None),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn chained_chunks_are_joined_with_send_remaining() {
        let mut card = Script(vec![
            (vec![0, 0xA1, 0, 0, 0], vec![1, 2, 0x61, 0x02]),
            (vec![0, 0xA5, 0, 0, 0], vec![3, 4, 0x61, 0x01]),
            (vec![0, 0xA5, 0, 0, 0], vec![5, 0x90, 0x00]),
        ]);
        let reply = exchange(&mut card, &Command::new(0xA1, 0, 0, vec![]), 0xA5).expect("ok");
        assert!(reply.ok());
        assert_eq!(&reply.data[..], &[1, 2, 3, 4, 5]);
        assert!(card.0.is_empty());
    }

    #[test]
    fn wrong_le_is_retried_with_the_length_the_card_names() {
        let mut card = Script(vec![
            (vec![0, 0x1D, 0, 0, 0], vec![0x6C, 0x03]),
            (vec![0, 0x1D, 0, 0, 0x03], vec![9, 8, 7, 0x90, 0x00]),
        ]);
        let reply = exchange(&mut card, &Command::new(0x1D, 0, 0, vec![]), 0xC0).expect("ok");
        assert_eq!(&reply.data[..], &[9, 8, 7]);
    }

    #[test]
    fn short_answers_and_endless_chains_are_protocol_errors() {
        let mut card = Script(vec![(vec![0, 0xA1, 0, 0, 0], vec![0x90])]);
        assert!(matches!(
            exchange(&mut card, &Command::new(0xA1, 0, 0, vec![]), 0xA5),
            Err(Error::Protocol(_))
        ));
        let mut endless = Script(
            std::iter::once((vec![0, 0xA1, 0, 0, 0], vec![0x61, 0]))
                .chain((0..MAX_CHAINED).map(|_| (vec![0, 0xA5, 0, 0, 0], vec![0x61, 0])))
                .collect(),
        );
        assert!(matches!(
            exchange(&mut endless, &Command::new(0xA1, 0, 0, vec![]), 0xA5),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn refusals_are_returned_not_raised_and_debug_hides_data() {
        let mut card = Script(vec![(vec![0, 2, 0, 0, 3, 0x71, 1, b'x'], vec![0x69, 0x84])]);
        let reply = exchange(&mut card, &Command::new(2, 0, 0, vec![0x71, 1, b'x']), 0xA5)
            .expect("a refusal is an answer");
        assert_eq!(reply.sw, StatusWord::REFERENCE_NOT_USABLE);
        assert!(!reply.ok());
        let secret = Reply {
            sw: StatusWord::OK,
            data: Zeroizing::new(vec![0x42; 4]),
        };
        assert!(!format!("{secret:?}").contains("66"));
    }
}
