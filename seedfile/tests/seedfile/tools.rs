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
}
