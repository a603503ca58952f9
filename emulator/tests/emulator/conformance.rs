//! RFC 4226 and RFC 6238 test vectors computed by the virtual key through the driver, checked
//! in the same test against the RFC tables and two independent implementations: totp-rs and
//! oathtool (OATH Toolkit).

use std::process::Command;

use oathkey_device::{Algorithm, Key, NewCredential, OtpKind, TouchWait};
use oathkey_emulator::{Config, VirtualKeyHandle, VirtualTransport};
use secrecy::SecretSlice;

const TIMES: [u64; 6] = [
    59,
    1_111_111_109,
    1_111_111_111,
    1_234_567_890,
    2_000_000_000,
    20_000_000_000,
];

/// RFC 6238 appendix B: 8-digit codes at TIMES for SHA-1, SHA-256, SHA-512.
const RFC6238: [(Algorithm, [&str; 6]); 3] = [
    (
        Algorithm::Sha1,
        [
            "94287082", "07081804", "14050471", "89005924", "69279037", "65353130",
        ],
    ),
    (
        Algorithm::Sha256,
        [
            "46119246", "68084774", "67062674", "91819424", "90698825", "77737706",
        ],
    ),
    (
        Algorithm::Sha512,
        [
            "90693936", "25091201", "99943326", "93441116", "38618901", "47863826",
        ],
    ),
];

/// The RFC's seeds: "1234567890" repeated to the hash's output size.
fn rfc_seed(alg: Algorithm) -> Vec<u8> {
    let len = match alg {
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
        Algorithm::Sha512 => 64,
    };
    b"1234567890".iter().copied().cycle().take(len).collect()
}

fn open() -> Key<VirtualTransport> {
    let handle = VirtualKeyHandle::new(Config::default());
    Key::open(handle.connect().expect("plugged")).expect("opens")
}

fn put(
    key: &mut Key<VirtualTransport>,
    name: &str,
    kind: OtpKind,
    alg: Algorithm,
    digits: u8,
    seed: &[u8],
) {
    key.put(
        &NewCredential {
            name: name.into(),
            kind,
            algorithm: alg,
            digits,
            secret: SecretSlice::from(seed.to_vec()),
            touch_required: false,
            pin_protected: false,
            initial_counter: 0,
        },
        None,
    )
    .expect("registers");
}

fn totp_rs(alg: Algorithm, digits: u8, period: u64, seed: &[u8], t: u64) -> String {
    let algorithm = match alg {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(seed.to_vec())
        .build_noncompliant()
        .generate(t)
        .to_string()
}

fn oathtool(args: &[String]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("oathtool is needed for the interop check ({e}); scripts/setup installs it")
        });
    assert!(
        out.status.success(),
        "oathtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn oathtool_totp(alg: Algorithm, digits: u8, period: u64, seed: &[u8], t: u64) -> String {
    oathtool(&[
        format!("--totp={}", alg.wire_name()),
        format!("--digits={digits}"),
        format!("--time-step-size={period}s"),
        format!("--now=@{t}"),
        data_encoding::HEXLOWER.encode(seed),
    ])
}

#[test]
fn rfc6238_vectors_8_digits_period_30() {
    let mut key = open();
    for (alg, expected) in RFC6238 {
        let name = format!("rfc6238:{alg}");
        let seed = rfc_seed(alg);
        put(&mut key, &name, OtpKind::Totp, alg, 8, &seed);
        for (t, want) in TIMES.iter().zip(expected) {
            let got = key
                .totp(&name, *t, TouchWait::Never, None)
                .expect("computes")
                .code;
            assert_eq!(got, want, "virtual key vs RFC 6238, {alg} at {t}");
            assert_eq!(
                totp_rs(alg, 8, 30, &seed, *t),
                want,
                "totp-rs, {alg} at {t}"
            );
            assert_eq!(
                oathtool_totp(alg, 8, 30, &seed, *t),
                want,
                "oathtool, {alg} at {t}"
            );
        }
    }
}

#[test]
fn six_digits_and_period_60_match_independent_implementations() {
    let mut key = open();
    for (alg, _) in RFC6238 {
        let seed = rfc_seed(alg);
        for (digits, period) in [(6u8, 30u64), (6, 60), (8, 60)] {
            // The period lives in the label; the key itself never sees it.
            let name = if period == 30 {
                format!("S{digits}:{alg}")
            } else {
                format!("{period}/S{digits}:{alg}")
            };
            put(&mut key, &name, OtpKind::Totp, alg, digits, &seed);
            for t in TIMES {
                let got = key
                    .totp(&name, t, TouchWait::Never, None)
                    .expect("computes")
                    .code;
                assert_eq!(got.len(), usize::from(digits));
                let independent = totp_rs(alg, digits, period, &seed, t);
                assert_eq!(got, independent, "vs totp-rs: {name} at {t}");
                assert_eq!(
                    oathtool_totp(alg, digits, period, &seed, t),
                    independent,
                    "oathtool agrees"
                );
            }
        }
    }
}

#[test]
fn rfc4226_hotp_vectors() {
    const RFC4226: [&str; 10] = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    let mut key = open();
    let seed = rfc_seed(Algorithm::Sha1);
    put(
        &mut key,
        "rfc4226:hotp",
        OtpKind::Hotp,
        Algorithm::Sha1,
        6,
        &seed,
    );
    for (counter, want) in RFC4226.iter().enumerate() {
        let got = key
            .calculate("rfc4226:hotp", 0, TouchWait::Never, None)
            .expect("computes")
            .code;
        assert_eq!(&got, want, "virtual key, counter {counter}");
        let tool = oathtool(&[
            "--hotp".into(),
            format!("--counter={counter}"),
            data_encoding::HEXLOWER.encode(&seed),
        ]);
        assert_eq!(&tool, want, "oathtool, counter {counter}");
    }
}

#[test]
fn short_secrets_are_padded_and_long_ones_work() {
    // Common 80-bit seeds, and a 100-byte SHA-256 seed longer than the block size (HMAC hashes
    // it first): the key must agree with the reference computations.
    let mut key = open();
    let short: Vec<u8> = (1..=10).collect();
    let long: Vec<u8> = (0..100).map(|i| (i * 3) as u8).collect();
    put(
        &mut key,
        "short:seed",
        OtpKind::Totp,
        Algorithm::Sha1,
        6,
        &short,
    );
    put(
        &mut key,
        "long:seed",
        OtpKind::Totp,
        Algorithm::Sha256,
        6,
        &long,
    );
    for t in TIMES {
        let got = key
            .totp("short:seed", t, TouchWait::Never, None)
            .expect("computes")
            .code;
        assert_eq!(got, totp_rs(Algorithm::Sha1, 6, 30, &short, t));
        assert_eq!(got, oathtool_totp(Algorithm::Sha1, 6, 30, &short, t));
        let got = key
            .totp("long:seed", t, TouchWait::Never, None)
            .expect("computes")
            .code;
        assert_eq!(got, totp_rs(Algorithm::Sha256, 6, 30, &long, t));
        assert_eq!(got, oathtool_totp(Algorithm::Sha256, 6, 30, &long, t));
    }
}
