//! The vpcd front against a stand-in for vpcd (a TCP listener speaking its framing), without
//! pcscd: control codes, APDUs, a held touch, removal, and reconnection when vpcd goes away.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use oathkey_emulator::card::{ATR, Card, CardProfile};
use oathkey_emulator::vpcd::{self, Control, NoEvents};
use oathkey_emulator::{Config, TouchPolicy};

fn send(s: &mut TcpStream, payload: &[u8]) {
    let mut frame = u16::try_from(payload.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(payload);
    s.write_all(&frame).expect("sent");
}

fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("length");
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut payload).expect("payload");
    payload
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (s, _) = listener.accept().expect("the card connects");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

#[test]
fn the_card_speaks_vpcd_framing_and_comes_back_after_vpcd_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut card = Card::new(
        Config {
            touch: TouchPolicy::Button,
            ..Config::default()
        },
        CardProfile::YubiKey,
    );
    card.set_access_code("pw");
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || vpcd::serve(&addr, card, &rx, &mut NoEvents));

    let mut s = accept(&listener);
    send(&mut s, &[4]);
    assert_eq!(recv(&mut s), ATR, "control 4: the ATR");
    send(&mut s, &[1]);
    send(
        &mut s,
        &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0, 0, 5, 0x27, 0x21, 1],
    );
    let select = recv(&mut s);
    assert_eq!(&select[select.len() - 2..], &[0x90, 0x00]);
    assert_eq!(
        recv_after(&mut s, &[0x00, 0xA1, 0x00, 0x00, 0x00]),
        vec![0x69, 0x82],
        "locked"
    );
    // A reset (control 2) and an unknown APDU class: still framed answers.
    send(&mut s, &[2]);
    assert_eq!(
        recv_after(&mut s, &[0x00, 0xA1, 0x00, 0x00, 0x00]),
        vec![0x6D, 0x00]
    );

    // vpcd goes away (pcscd restart): the card connects again by itself.
    drop(s);
    let mut s = accept(&listener);
    send(&mut s, &[4]);
    assert_eq!(recv(&mut s), ATR);

    // Removal closes the connection; insertion opens a new one.
    tx.send(Control::Remove).expect("control");
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).expect("closed"), 0, "the card left");
    tx.send(Control::Insert).expect("control");
    let mut s = accept(&listener);
    send(&mut s, &[4]);
    assert_eq!(recv(&mut s), ATR);

    tx.send(Control::Stop).expect("control");
    server.join().expect("joins").expect("served");
}

fn recv_after(s: &mut TcpStream, apdu: &[u8]) -> Vec<u8> {
    send(s, apdu);
    recv(s)
}

#[test]
fn a_touch_holds_the_answer_until_the_button() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut card = Card::new(
        Config {
            touch: TouchPolicy::Button,
            ..Config::default()
        },
        CardProfile::YubiKey,
    );
    card.power_on();
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || vpcd::serve(&addr, card, &rx, &mut NoEvents));
    let mut s = accept(&listener);
    send(&mut s, &[1]);
    send(
        &mut s,
        &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0, 0, 5, 0x27, 0x21, 1],
    );
    recv(&mut s);
    // PUT "p" with the touch property, then CALCULATE it.
    let mut put = vec![
        0x00, 0x01, 0x00, 0x00, 0x17, 0x71, 0x01, b'p', 0x73, 0x10, 0x21, 0x06,
    ];
    put.extend_from_slice(&[7; 14]);
    put.extend_from_slice(&[0x78, 0x02]);
    assert_eq!(recv_after(&mut s, &put), vec![0x90, 0x00]);
    let calc = [
        0x00, 0xA2, 0x00, 0x01, 0x0D, 0x71, 0x01, b'p', 0x74, 0x08, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    send(&mut s, &calc);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert!(s.read(&mut byte).is_err(), "nothing before the touch");
    tx.send(Control::Press).expect("press");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let answer = recv(&mut s);
    assert_eq!(&answer[..3], &[0x76, 0x05, 0x06]);
    assert_eq!(&answer[7..], &[0x90, 0x00]);
    tx.send(Control::Stop).expect("control");
    server.join().expect("joins").expect("served");
}
