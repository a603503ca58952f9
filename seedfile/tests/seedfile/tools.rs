//! check_code and qr_png through the public API.

use oathkey_seedfile::{Format, Kind, check_code, otpauth_uri, qr_png, read, render};

use crate::common::totp;

#[test]
fn rfc_6238_sha1_vector_and_window() {
    let r = totp("1", "a@b.cd", b"12345678901234567890");
    assert_eq!(check_code(&r, "287082", 59, 0), Some(0));
    assert_eq!(check_code(&r, "287082", 59 + 30, 1), Some(-1));
    assert_eq!(check_code(&r, "287082", 59 - 30, 1), Some(1));
    assert_eq!(check_code(&r, "287082", 59 + 60, 1), None, "two steps late");
    assert_eq!(
        check_code(&r, "969429", 59, 1),
        None,
        "two steps early (step 3)"
    );
    assert_eq!(check_code(&r, "000000", 59, 1), None);
}

#[test]
fn codes_check_against_records_read_from_files() {
    // The seed survives a trip through every format that can carry it.
    for format in Format::ALL {
        let r = totp("0012345", "alice@contoso.com", b"12345678901234567890");
        let text = render(format, &[r], false).expect("renders");
        let back = &read(format, text.as_bytes()).records[0].1;
        assert_eq!(check_code(back, "287082", 59, 0), Some(0), "{format}");
    }
    let mut hotp = totp("1", "a@b.cd", b"12345678901234567890");
    hotp.kind = Kind::Hotp;
    assert_eq!(check_code(&hotp, "755224", 0, 0), Some(0));
    assert_eq!(check_code(&hotp, "359152", 0, 2), Some(2));
    assert_eq!(check_code(&hotp, "359152", 0, 1), None);
}

#[test]
fn qr_png_decodes_to_a_plausible_image() {
    let r = totp("0012345", "alice@contoso.com", b"12345678901234567890");
    let uri = otpauth_uri(&r, Some("oathkey"));
    let png_bytes = qr_png(&uri).expect("encodes");
    assert!(png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
    let mut reader = decoder.read_info().expect("valid PNG");
    let (width, height) = {
        let info = reader.info();
        (info.width, info.height)
    };
    assert_eq!(width, height);
    // Version 5..10 codes (37..57 modules) plus the quiet zone, 8 px per module.
    assert!((45 * 8..=65 * 8).contains(&width), "{width}");
    assert_eq!(width % 8, 0);
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("frame");
    let pixels = &pixels[..frame.buffer_size()];
    // White quiet zone, black finder pattern corner just inside it.
    assert_eq!(pixels[0], 0xFF);
    let w = width as usize;
    assert_eq!(pixels[(4 * 8) * w + 4 * 8], 0x00);
    let dark = pixels.iter().filter(|&&p| p == 0).count();
    assert!(
        dark > pixels.len() / 10 && dark < pixels.len() / 2,
        "{dark}"
    );
    assert_eq!(decode_qr(&png_bytes), uri.as_str());
}

/// The text of the one QR code in an 8-bit grayscale PNG, read by an independent decoder.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("valid PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("frame");
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * frame.line_size + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("decodes").1
}

#[test]
fn qr_codes_decode_to_their_otpauth_uris() {
    // From a short URI to the longest a 512-bit SHA-512 HOTP secret and escaped text make.
    let mut long = totp("0200", "erin o'neil@contoso.com", &[0x33; 64]);
    long.kind = Kind::Hotp;
    long.counter = 42;
    long.digits = 8;
    long.algorithm = oathkey_seedfile::Algorithm::Sha512;
    for (r, issuer) in [
        (
            totp("1", "a@b.cd", b"12345678901234567890"),
            Some("oathkey"),
        ),
        (long, Some("Contoso, Ltd.: IT & <Ops>")),
    ] {
        let uri = otpauth_uri(&r, issuer);
        let decoded = decode_qr(&qr_png(&uri).expect("encodes"));
        assert_eq!(decoded, uri.as_str());
        let back = read(Format::Otpauth, decoded.as_bytes());
        assert!(back.is_clean(), "{:?}", back.problems);
        assert_eq!(back.records[0].1.secret.expose(), r.secret.expose());
    }
}
