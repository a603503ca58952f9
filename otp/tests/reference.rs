//! The published test vectors and the Base32 cases people hit, against the public API.

use oathkey_otp::{Algorithm, Base32Error, ParamError, decode_base32, hotp, totp, truncated};

/// RFC 6238 appendix B uses a key as long as each hash's output, the ASCII digits repeated.
fn rfc6238_seed(alg: Algorithm) -> Vec<u8> {
    b"1234567890"
        .iter()
        .copied()
        .cycle()
        .take(alg.mac_len())
        .collect()
}

#[test]
fn rfc4226_appendix_d_hotp_values() {
    // Counter, truncated value (hex), 6-digit HOTP.
    let table: [(u64, u32, &str); 10] = [
        (0, 0x4c93cf18, "755224"),
        (1, 0x41397eea, "287082"),
        (2, 0x082fef30, "359152"),
        (3, 0x66ef7655, "969429"),
        (4, 0x61c5938a, "338314"),
        (5, 0x33c083d4, "254676"),
        (6, 0x7256c032, "287922"),
        (7, 0x04e5b397, "162583"),
        (8, 0x2823443f, "399871"),
        (9, 0x2679dc69, "520489"),
    ];
    let secret = b"12345678901234567890";
    for (counter, value, code) in table {
        assert_eq!(
            truncated(Algorithm::Sha1, secret, &counter.to_be_bytes()),
            value,
            "count {counter}"
        );
        assert_eq!(
            hotp(Algorithm::Sha1, secret, counter, 6).as_deref(),
            Ok(code),
            "count {counter}"
        );
    }
}

#[test]
fn rfc6238_appendix_b_totp_values_for_every_hash() {
    // Time, then the 8-digit codes for SHA-1, SHA-256 and SHA-512 (period 30).
    let table: [(u64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1_111_111_109, ["07081804", "68084774", "25091201"]),
        (1_111_111_111, ["14050471", "67062674", "99943326"]),
        (1_234_567_890, ["89005924", "91819424", "93441116"]),
        (2_000_000_000, ["69279037", "90698825", "38618901"]),
        (20_000_000_000, ["65353130", "77737706", "47863826"]),
    ];
    for (time, codes) in table {
        for (alg, code) in Algorithm::ALL.into_iter().zip(codes) {
            assert_eq!(
                totp(alg, &rfc6238_seed(alg), 30, 8, time).as_deref(),
                Ok(code),
                "{alg} at {time}"
            );
        }
    }
    // Six digits are the last six of eight.
    assert_eq!(
        totp(Algorithm::Sha1, &rfc6238_seed(Algorithm::Sha1), 30, 6, 59).as_deref(),
        Ok("287082")
    );
}

#[test]
fn totp_is_hotp_of_the_time_step() {
    let secret = rfc6238_seed(Algorithm::Sha1);
    for (period, time) in [
        (30, 59),
        (60, 1_111_111_109),
        (1, 7),
        (86_400, 2_000_000_000),
    ] {
        assert_eq!(
            totp(Algorithm::Sha1, &secret, period, 6, time),
            hotp(Algorithm::Sha1, &secret, time / period, 6),
            "period {period}"
        );
    }
    // The last second of a step and the first of the next differ.
    assert_ne!(
        totp(Algorithm::Sha1, &secret, 30, 8, 59),
        totp(Algorithm::Sha1, &secret, 30, 8, 60)
    );
}

#[test]
fn an_80_bit_secret_gives_codes() {
    // 10-byte hardware seeds are common; totp-rs's `build()` refuses them, the computation does
    // not. Values from Python's hmac module.
    let secret = decode_base32("JBSWY3DPEHPK3PXP").expect("Base32");
    assert_eq!(secret.len(), 10);
    assert_eq!(
        totp(Algorithm::Sha1, &secret, 30, 6, 59).as_deref(),
        Ok("996554")
    );
    assert_eq!(
        totp(Algorithm::Sha256, &secret, 30, 8, 1_111_111_109).as_deref(),
        Ok("03650964")
    );
    assert_eq!(
        totp(Algorithm::Sha512, &secret, 60, 8, 59).as_deref(),
        Ok("46582788")
    );
}

#[test]
fn parameters_no_code_exists_for_are_refused() {
    let secret = rfc6238_seed(Algorithm::Sha1);
    assert_eq!(
        totp(Algorithm::Sha1, &secret, 0, 6, 59),
        Err(ParamError::ZeroPeriod)
    );
    for digits in [0, 11, 255] {
        assert_eq!(
            totp(Algorithm::Sha1, &secret, 30, digits, 59),
            Err(ParamError::Digits(digits))
        );
    }
    // Ten digits are the whole 31-bit value.
    assert_eq!(
        hotp(Algorithm::Sha1, &secret, 0, 10).as_deref(),
        Ok("1284755224")
    );
}

#[test]
fn base32_is_taken_as_people_write_it() {
    let hello = b"Hello!\xde\xad\xbe\xef";
    for text in [
        "JBSWY3DPEHPK3PXP",
        "jbswy3dpehpk3pxp",
        "jbsw y3dp-ehpk 3pxp====",
        "JBSW\tY3DP\tEHPK\t3PXP",
        "JBSW-Y3DP-EHPK-3PXP",
        "JBSWY3DPEHPK3PXP\n",
        "JBSWY3DPEHPK3PXP = = \n",
    ] {
        assert_eq!(
            decode_base32(text).as_deref().map(Vec::as_slice),
            Ok(&hello[..]),
            "{text:?}"
        );
    }
    // Padding as an encoder writes it for one byte.
    assert_eq!(
        decode_base32("ME======").as_deref().map(Vec::as_slice),
        Ok(&b"a"[..])
    );
}

#[test]
fn bits_after_the_last_whole_byte_are_dropped() {
    // 26 characters carry 130 bits: 16 bytes and 2 bits that belong to no byte.
    let s = decode_base32("2234567abcdef2234567abcdef").expect("valid");
    assert_eq!(s.len(), 16);
    // 206 characters: 128 bytes and 6 stray bits (the daemon once called this "not Base32").
    let long: String = "JBSWY3DPEHPK3PXP".repeat(13).chars().take(206).collect();
    let bytes = decode_base32(&long).expect("valid");
    assert_eq!(bytes.len(), 128);
    // The 205 characters that hold those bytes decode to the same bytes.
    assert_eq!(decode_base32(&long[..205]).expect("valid"), bytes);
    assert_eq!(&bytes[..10], b"Hello!\xde\xad\xbe\xef");
    // Two characters are the least that hold a byte.
    assert_eq!(
        decode_base32("AB").as_deref().map(Vec::as_slice),
        Ok(&[0u8][..])
    );
    assert_eq!(
        decode_base32("77").as_deref().map(Vec::as_slice),
        Ok(&[0xFFu8][..])
    );
}

#[test]
fn base32_refusals_are_typed_and_never_quote_the_text() {
    for (text, why) in [
        ("", Base32Error::Empty),
        ("====", Base32Error::Empty),
        ("   ", Base32Error::Empty),
        (" - ", Base32Error::Empty),
        ("A", Base32Error::NoWholeByte),
        ("a===", Base32Error::NoWholeByte),
        ("JBSWY3DP1", Base32Error::NotBase32),
        ("JBSWY3DP0", Base32Error::NotBase32),
        ("JBSWY3DP8", Base32Error::NotBase32),
        ("JBSW=Y3DP", Base32Error::NotBase32),
        ("JBSWY3DPé", Base32Error::NotBase32),
        ("JBSWY3DP\u{200B}", Base32Error::NotBase32),
        ("\nJBSWY3DP", Base32Error::NotBase32),
    ] {
        let err = decode_base32(text).expect_err(text);
        assert_eq!(err, why, "{text:?}");
        assert!(!err.to_string().contains("JBSW"), "{err}");
    }
    assert_eq!(
        Base32Error::NotBase32.to_string(),
        "secret key is not Base32"
    );
    assert_eq!(Base32Error::Empty.to_string(), "secret key is empty");
    assert_eq!(
        Base32Error::NoWholeByte.to_string(),
        "secret key is too short (one Base32 character holds no whole byte)"
    );
}
