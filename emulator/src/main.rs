//! `oathkey-emulator`: run a virtual key.
//!
//! - `serve --udp ADDR`: serve it over UDP (one datagram = one 64-byte report), for external
//!   tools and for daemons attached with `--udp-key`. Control lines on stdin: `press`,
//!   `unplug`, `replug`, `touch POLICY`, `stall MS`, `busy MS`, `quit`.
//! - `serve --vpcd HOST:PORT --profile yubikey|nk3`: be a smart card in vsmartcard's vpcd
//!   reader, so pcscd and every PC/SC application (yubikit, ykman, opensc-tool) see it.
//!   Control lines on stdin: `press`, `remove`, `insert`, `touch POLICY`, `quit`.
//! - `demo`: seed a TOTP token on an in-process virtual key through the driver and show the
//!   codes it computes next to an independent RFC 6238 computation.

use std::io::{BufRead, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use oathkey_device::{Algorithm, Key, NewCredential, OtpKind, TokenLabel, TouchWait};
use oathkey_emulator::udp::{self, Control};
use oathkey_emulator::vpcd;
use oathkey_emulator::{
    Card, CardProfile, Config, Faults, Profile, TouchPolicy, VirtualKey, VirtualKeyHandle,
};
use secrecy::SecretSlice;

#[derive(Parser, Debug)]
#[command(
    name = "oathkey-emulator",
    version,
    about = "The oathkey virtual OTP key"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct KeyArgs {
    /// Persist the key's state (credentials, PIN, settings) in this file.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Touch policy: approve, deny, after:MS or button (press with a `press` line on stdin).
    #[arg(long, default_value = "approve", value_parser = parse_touch)]
    touch: TouchPolicy,
    /// How long the key waits for a touch, in milliseconds.
    #[arg(long, default_value_t = 15_000, value_name = "MS")]
    touch_timeout: u64,
    /// Which key to model. HID: oathkey (with Mode / Key Press settings, the default) or
    /// nitrokey3. Smart card (--vpcd): yubikey (the default) or nk3.
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,
    /// Serial number of a new key, in hex (a stored state keeps its own).
    #[arg(long, value_parser = parse_hex_u32)]
    serial: Option<u32>,
    /// Time per outgoing report in microseconds (1000 models a full-speed USB endpoint).
    #[arg(long, default_value_t = 0, value_name = "US")]
    report_interval_us: u64,
}

impl KeyArgs {
    fn hid_profile(&self) -> Result<Profile> {
        match self.profile.as_deref() {
            None => Ok(Profile::Oathkey),
            Some(p) => parse_profile(p).map_err(anyhow::Error::msg),
        }
    }

    fn card_profile(&self) -> Result<CardProfile> {
        match self.profile.as_deref() {
            None => Ok(CardProfile::YubiKey),
            Some(p) => p.parse().map_err(anyhow::Error::msg),
        }
    }

    fn config(&self) -> Config {
        Config {
            // The HID profile; a card's profile is separate (`card_profile`).
            profile: self.hid_profile().unwrap_or_default(),
            touch: self.touch,
            touch_timeout: Duration::from_millis(self.touch_timeout),
            report_interval: Duration::from_micros(self.report_interval_us),
            serial: self.serial,
            ..Config::default()
        }
    }

    fn key(&self) -> Result<VirtualKey> {
        self.hid_profile()?;
        match &self.state {
            Some(path) => VirtualKey::open(self.config(), oathkey_emulator::StateFile::new(path))
                .with_context(|| format!("failed to open the key state {}", path.display())),
            None => Ok(VirtualKey::new(self.config())),
        }
    }

    fn card(&self) -> Result<Card> {
        let profile = self.card_profile()?;
        match &self.state {
            Some(path) => Card::open(
                self.config(),
                profile,
                oathkey_emulator::StateFile::new(path),
            )
            .with_context(|| format!("failed to open the key state {}", path.display())),
            None => Ok(Card::new(self.config(), profile)),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a virtual key over UDP, as a kernel HID device through uhid, or as a smart card
    /// in vsmartcard's vpcd reader.
    Serve {
        /// Address to listen on, such as 127.0.0.1:8111 (port 0 picks a free port).
        #[arg(
            long,
            value_name = "ADDR",
            required_unless_present_any = ["uhid", "vpcd"],
            conflicts_with_all = ["uhid", "vpcd"]
        )]
        udp: Option<String>,
        /// Register the key with the kernel through /dev/uhid (Linux; needs write access to
        /// /dev/uhid): it appears as /dev/hidrawN like a real key.
        #[arg(long, conflicts_with = "vpcd")]
        uhid: bool,
        /// Connect as a smart card to vsmartcard's vpcd at HOST:PORT (its first reader listens
        /// on 35963, the second on 35964); pcscd then shows the card in "Virtual PCD 00 00".
        #[arg(long, value_name = "HOST:PORT")]
        vpcd: Option<String>,
        /// Start the card's OATH app locked with this access code (tests; --vpcd with the
        /// yubikey profile only). The card stores the derived key, never the text.
        #[arg(long, value_name = "TEXT", requires = "vpcd")]
        access_code: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Seed a token on an in-process virtual key and show its codes.
    Demo {
        /// How many consecutive codes to show.
        #[arg(long, default_value_t = 3)]
        codes: u32,
    },
}

fn parse_touch(s: &str) -> Result<TouchPolicy, String> {
    s.parse()
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    match s {
        "oathkey" => Ok(Profile::Oathkey),
        "nitrokey3" | "nk3" => Ok(Profile::Nitrokey3),
        other => Err(format!("unknown profile {other:?}: oathkey or nitrokey3")),
    }
}

fn parse_hex_u32(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| e.to_string())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OATHKEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            vpcd: Some(addr),
            access_code,
            key,
            ..
        } => serve_vpcd(&addr, &key, access_code.as_deref()),
        Command::Serve {
            udp: Some(addr),
            key,
            ..
        } => serve(&addr, &key),
        Command::Serve { key, .. } => serve_uhid(&key),
        Command::Demo { codes } => demo(codes),
    }
}

fn serve(addr: &str, args: &KeyArgs) -> Result<()> {
    let key = args.key()?;
    let socket = UdpSocket::bind(addr).with_context(|| format!("failed to bind UDP {addr}"))?;
    let local = socket.local_addr()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_control(&tx));
    // Tools wait for this line to learn the port.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "listening on udp://{local} serial {:08X}",
        key.state().serial
    )?;
    out.flush()?;
    drop(out);
    udp::serve(&socket, key, &rx).context("UDP serving failed")
}

/// Prints the card's comings and goings on stdout, where tests wait for them.
struct PrintEvents;

impl vpcd::Events for PrintEvents {
    fn inserted(&mut self, addr: std::net::SocketAddr) {
        println!("card inserted into vpcd {addr}");
    }

    fn removed(&mut self) {
        println!("card removed");
    }

    fn touch_requested(&mut self) {
        println!("touch requested");
    }
}

fn serve_vpcd(addr: &str, args: &KeyArgs, access_code: Option<&str>) -> Result<()> {
    let mut card = args.card()?;
    if let Some(code) = access_code {
        if card.profile() != CardProfile::YubiKey {
            bail!("--access-code needs the yubikey profile (a Nitrokey 3 has a PIN instead)");
        }
        card.set_access_code(code);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_vpcd_control(&tx));
    let profile = match card.profile() {
        CardProfile::YubiKey => "yubikey",
        CardProfile::Nk3 => "nk3",
    };
    println!(
        "virtual card {profile} serial {:08X} for vpcd {addr}",
        card.state().serial
    );
    vpcd::serve(addr, card, &rx, &mut PrintEvents).context("vpcd serving failed")
}

/// Control lines for the card, the UDP front's words with `remove` / `insert` (or `unplug` /
/// `replug`) taking the card out of the reader and back.
fn read_vpcd_control(tx: &mpsc::Sender<vpcd::Control>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let words: Vec<&str> = line.split_whitespace().collect();
        let control = match words.as_slice() {
            ["press"] => vpcd::Control::Press,
            ["remove" | "unplug"] => vpcd::Control::Remove,
            ["insert" | "replug"] => vpcd::Control::Insert,
            ["quit" | "stop"] => vpcd::Control::Stop,
            ["touch", policy] => match policy.parse() {
                Ok(p) => vpcd::Control::Touch(p),
                Err(e) => {
                    eprintln!("oathkey-emulator: {e}");
                    continue;
                }
            },
            [] => continue,
            _ => {
                eprintln!("oathkey-emulator: unknown control line {line:?}");
                continue;
            }
        };
        if tx.send(control).is_err() {
            return;
        }
    }
}

#[cfg(target_os = "linux")]
fn serve_uhid(args: &KeyArgs) -> Result<()> {
    let key = args.key()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_control(&tx));
    let serial = key.state().serial;
    let mut out = std::io::stdout().lock();
    writeln!(out, "plugged in through uhid, serial {serial:08X}")?;
    out.flush()?;
    drop(out);
    oathkey_emulator::uhid::serve(key, &rx)
        .context("uhid serving failed (is the uhid module loaded, and /dev/uhid writable?)")
}

#[cfg(not(target_os = "linux"))]
fn serve_uhid(_args: &KeyArgs) -> Result<()> {
    bail!("uhid exists only on Linux")
}

/// Reads control lines from stdin until it closes; a closed stdin just ends control.
fn read_control(tx: &mpsc::Sender<Control>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let words: Vec<&str> = line.split_whitespace().collect();
        let ms = |w: Option<&&str>| {
            w.and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let control = match words.as_slice() {
            ["press"] => Control::Press,
            ["unplug"] => Control::Unplug,
            ["replug"] => Control::Replug,
            ["quit" | "stop"] => Control::Stop,
            ["touch", policy] => match policy.parse() {
                Ok(p) => Control::Touch(p),
                Err(e) => {
                    eprintln!("oathkey-emulator: {e}");
                    continue;
                }
            },
            ["stall", _] | ["busy", _] => {
                let Some(d) = ms(words.get(1)) else {
                    eprintln!("oathkey-emulator: expected milliseconds");
                    continue;
                };
                let until = Some(Instant::now() + d);
                Control::Faults(if words[0] == "stall" {
                    Faults {
                        stall_until: until,
                        ..Faults::default()
                    }
                } else {
                    Faults {
                        busy_until: until,
                        ..Faults::default()
                    }
                })
            }
            [] => continue,
            _ => {
                eprintln!("oathkey-emulator: unknown control line {line:?}");
                continue;
            }
        };
        if tx.send(control).is_err() {
            return;
        }
    }
}

fn demo(codes: u32) -> Result<()> {
    let handle = VirtualKeyHandle::new(Config::default());
    let mut key = Key::open(handle.connect()?).context("failed to open the virtual key")?;
    let app = key.app_info().clone();
    println!(
        "virtual key {} (secrets app {}.{}.{}, serial {})",
        key.device_info().path,
        app.version.0,
        app.version.1,
        app.version.2,
        app.serial_hex().unwrap_or_default()
    );

    let mut secret = vec![0u8; 20];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let label = TokenLabel::new("0000001", "demo.user@example.com", 30)?;
    key.put(
        &NewCredential {
            name: label.to_string(),
            kind: OtpKind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            secret: SecretSlice::from(secret.clone()),
            touch_required: false,
            pin_protected: false,
            initial_counter: 0,
        },
        None,
    )?;
    println!("seeded TOTP/SHA1/6 digits/30 s token {label}");

    let reference = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut mismatches = 0;
    for i in 0..u64::from(codes) {
        let t = now + i * 30;
        let from_key = key.totp(&label.to_string(), t, TouchWait::Never, None)?;
        let expected = reference.generate(t).to_string();
        let verdict = if from_key.code == expected {
            "ok"
        } else {
            "MISMATCH"
        };
        if from_key.code != expected {
            mismatches += 1;
        }
        println!(
            "  step {:>10}: key {}  reference {}  {verdict}",
            t / 30,
            from_key.code,
            expected
        );
    }
    if mismatches > 0 {
        bail!("{mismatches} codes differ from the RFC 6238 reference");
    }
    println!("all {codes} codes match the independent RFC 6238 computation (totp-rs)");
    Ok(())
}
