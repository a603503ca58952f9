//! The vpcd front: the virtual card as the TCP client of vsmartcard's vpcd reader driver, so
//! that it appears to pcscd (and every PC/SC application) as a card in the reader
//! "Virtual PCD 00 00".
//!
//! The wire (vsmartcard `virtualsmartcard/src/vpcd/vpcd.c`): vpcd listens (port 35963 for its
//! first reader, 35964 for its second, on all interfaces); the card connects. Every message in
//! both directions is a 2-byte big-endian length and the payload. A 1-byte payload from vpcd is
//! a control code: 0 power off, 1 power on, 2 reset, 4 "send your ATR" (the only one answered;
//! pcscd's presence polling sends it every few hundred milliseconds). Any longer payload is a
//! command APDU, answered with one response APDU. vpcd sends nothing else while an answer is
//! outstanding, so a touch wait simply holds the answer back.
//!
//! Removing the card is closing the connection; inserting it is connecting again. When vpcd
//! closes the connection (pcscd stopped or restarted) the card powers off and keeps trying to
//! connect.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use zeroize::{Zeroize, Zeroizing};

use crate::card::{Card, Reply};
use crate::config::TouchPolicy;

/// vpcd's port for its first reader.
pub const DEFAULT_PORT: u16 = 35963;

/// Control codes vpcd sends as 1-byte payloads.
pub mod ctrl {
    /// Power the card off.
    pub const OFF: u8 = 0;
    /// Power the card on.
    pub const ON: u8 = 1;
    /// Warm reset.
    pub const RESET: u8 = 2;
    /// Send the ATR.
    pub const ATR: u8 = 4;
}

/// Longest pause between looks at the control channel.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Pause between connection attempts while vpcd is not listening.
const RETRY: Duration = Duration::from_millis(200);
/// How long the card stays away on a Management reboot, long enough for pcscd's presence
/// polling to see it leave.
const REBOOT_AWAY: Duration = Duration::from_millis(800);

/// Commands for a running card (from the binary's stdin, or from tests).
#[derive(Debug, Clone)]
pub enum Control {
    /// Press the button.
    Press,
    /// Change the touch policy (`button` holds a touch wait until [`Control::Press`]).
    Touch(TouchPolicy),
    /// Take the card out of the reader: close the connection.
    Remove,
    /// Put it back: connect again.
    Insert,
    /// Stop serving.
    Stop,
}

/// Something that tells the outside what the card does (the binary prints it on stdout).
pub trait Events {
    /// The card is in the reader (connected to vpcd).
    fn inserted(&mut self, addr: SocketAddr);
    /// The card left the reader (removed, rebooted, or vpcd went away).
    fn removed(&mut self);
    /// An APDU waits for a touch (tests press the button when they see this).
    fn touch_requested(&mut self) {}
}

/// No one listens.
#[derive(Debug, Default)]
pub struct NoEvents;

impl Events for NoEvents {
    fn inserted(&mut self, _addr: SocketAddr) {}
    fn removed(&mut self) {}
}

/// A connection to vpcd with its partly received message (APDUs may carry secrets: the
/// buffer is wiped, spare capacity included, when dropped).
struct Link {
    stream: TcpStream,
    buf: Zeroizing<Vec<u8>>,
}

impl Link {
    fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = u16::try_from(payload.len())
            .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "answer over 65535 bytes"))?;
        let mut frame = Vec::with_capacity(2 + payload.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    /// The next complete message, if one is buffered.
    fn next_message(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        let [hi, lo, ..] = self.buf[..] else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if self.buf.len() < 2 + len {
            return None;
        }
        let message = Zeroizing::new(self.buf[2..2 + len].to_vec());
        self.buf.drain(..2 + len);
        Some(message)
    }
}

/// Serves `card` to vpcd at `addr` until a [`Control::Stop`] arrives; connection failures
/// are retried, never fatal (the card waits for pcscd to come back).
pub fn serve(
    addr: &str,
    mut card: Card,
    control: &Receiver<Control>,
    events: &mut dyn Events,
) -> std::io::Result<()> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no address for vpcd"))?;
    info!(%target, profile = ?card.profile(), "virtual card for vpcd");
    let mut link: Option<Link> = None;
    let mut inserted = true;
    let mut away_until: Option<Instant> = None;
    let mut last_attempt: Option<Instant> = None;
    loop {
        // Controls first, so that a press or a removal reaches a card in a touch wait.
        loop {
            match control.try_recv() {
                Ok(Control::Press) => {
                    if let Some(answer) = card.press(Instant::now()) {
                        send_or_drop(&mut link, &mut card, &answer, events);
                    } else {
                        debug!("button pressed with nothing waiting for it");
                    }
                }
                Ok(Control::Touch(policy)) => card.set_touch_policy(policy),
                Ok(Control::Remove) => {
                    inserted = false;
                    disconnect(&mut link, &mut card, events);
                }
                Ok(Control::Insert) => inserted = true,
                Ok(Control::Stop) => return Ok(()),
                Err(TryRecvError::Empty) => break,
                // No controller (stdin closed): keep serving.
                Err(TryRecvError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        if let Some(answer) = card.poll(now) {
            send_or_drop(&mut link, &mut card, &answer, events);
        }
        if away_until.is_some_and(|t| now >= t) {
            away_until = None;
        }
        if link.is_none() && inserted && away_until.is_none() {
            if last_attempt.is_none_or(|t| now.duration_since(t) >= RETRY) {
                last_attempt = Some(now);
                match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        info!(%target, "card inserted into vpcd's reader");
                        events.inserted(target);
                        link = Some(Link {
                            stream,
                            buf: Zeroizing::new(Vec::new()),
                        });
                    }
                    Err(e) => debug!(%target, "vpcd not reachable yet: {e}"),
                }
            }
            if link.is_none() {
                std::thread::sleep(IDLE_POLL);
                continue;
            }
        }
        let Some(l) = link.as_mut() else {
            std::thread::sleep(IDLE_POLL);
            continue;
        };
        let wait = card
            .next_wakeup()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_POLL)
            .clamp(Duration::from_millis(1), IDLE_POLL);
        l.stream.set_read_timeout(Some(wait))?;
        let mut chunk = Zeroizing::new([0u8; 4096]);
        match l.stream.read(chunk.as_mut()) {
            Ok(0) => {
                info!("vpcd closed the connection (pcscd stopped?); reconnecting");
                disconnect(&mut link, &mut card, events);
                continue;
            }
            Ok(n) => {
                l.buf.extend_from_slice(&chunk[..n]);
                chunk.zeroize();
                // vpcd writes a message's 2-byte length and its body separately, with Nagle's
                // algorithm on: the body waits for our ACK of the length, which Linux delays
                // by 40 ms. Acknowledge at once (the flag does not stick: set it per read).
                #[cfg(target_os = "linux")]
                if let Err(e) = socket2::SockRef::from(&l.stream).set_tcp_quickack(true) {
                    debug!("TCP_QUICKACK: {e}");
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!("vpcd connection failed: {e}; reconnecting");
                disconnect(&mut link, &mut card, events);
                continue;
            }
        }
        while let Some(message) = link.as_mut().and_then(Link::next_message) {
            match handle(&mut card, &message, Instant::now()) {
                Some(answer) => send_or_drop(&mut link, &mut card, &answer, events),
                None if card.waiting_for_touch() => events.touch_requested(),
                None => {}
            }
            if card.take_reboot() {
                info!("card reboots (Management WRITE CONFIG)");
                disconnect(&mut link, &mut card, events);
                away_until = Some(Instant::now() + REBOOT_AWAY);
                break;
            }
        }
    }
}

/// One message from vpcd: what to send back, if anything.
pub fn handle(card: &mut Card, message: &[u8], now: Instant) -> Option<Vec<u8>> {
    match message {
        [ctrl::OFF] => {
            card.power_off();
            None
        }
        [ctrl::ON] => {
            card.power_on();
            None
        }
        [ctrl::RESET] => {
            card.reset();
            None
        }
        [ctrl::ATR] => Some(card.atr().to_vec()),
        [other] => {
            warn!(code = other, "unknown vpcd control code ignored");
            None
        }
        [] => None,
        apdu => match card.transmit(apdu, now) {
            Reply::Answer(answer) => Some(answer),
            Reply::Waiting => None,
        },
    }
}

fn send_or_drop(link: &mut Option<Link>, card: &mut Card, answer: &[u8], events: &mut dyn Events) {
    if let Some(l) = link.as_mut()
        && let Err(e) = l.send(answer)
    {
        warn!("could not answer vpcd: {e}; reconnecting");
        disconnect(link, card, events);
    }
}

fn disconnect(link: &mut Option<Link>, card: &mut Card, events: &mut dyn Events) {
    card.power_off();
    if let Some(l) = link.take() {
        let _ = l.stream.shutdown(std::net::Shutdown::Both);
        events.removed();
    }
}
