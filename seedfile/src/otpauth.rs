//! `otpauth://` key URIs (the Google Authenticator key URI format), one per line, and QR codes
//! of them.
//!
//! ```text
//! otpauth://totp/oathkey:alice@contoso.com?secret=JBSWY3DPEHPK3PXP&issuer=oathkey&algorithm=SHA1&digits=6&period=30&serial=0012345
//! ```
//!
//! The label is `ISSUER:ACCOUNT` with the user as the account. The key URI format has no
//! place for a token serial, so this crate adds a `serial` parameter (authenticator apps ignore
//! parameters they do not know); when reading, the serial comes from `serial`, or else from the
//! issuer (the convention of the key's own labels, `serial:account`). [`otpauth_uri`] takes
//! the issuer as an argument; files written by [`crate::render`] use the record's
//! manufacturer as the issuer, and reading takes the issuer back as the manufacturer.
//! The model is not carried.
//!
//! Label and parameter values are percent-encoded (everything but `A-Z a-z 0-9 - . _ ~ @`).
//! Reading is tolerant: parameter names in any case, `algorithm`, `digits`, `period` and
//! `counter` default to SHA1, 6, 30 and 0, the colon may be encoded, blank lines and `#`
//! comment lines are skipped.

use qrcodegen::{QrCode, QrCodeEcc};
use zeroize::Zeroizing;

use crate::encoding::not_utf8;
use crate::read::Raw;
use crate::record::{
    Algorithm, AlgorithmNames, DEFAULT_DIGITS, DEFAULT_PERIOD, Kind, Secret, TokenRecord,
};
use crate::text::BOM_STARTS_LINE;
use crate::validate::{Problem, shown};

/// The key URI for `record`, with `issuer` (if given and not empty) as the label's prefix and
/// the `issuer` parameter, and the record's serial (if not empty) as the `serial` parameter.
pub fn otpauth_uri(record: &TokenRecord, issuer: Option<&str>) -> Zeroizing<String> {
    let issuer = issuer.filter(|i| !i.is_empty());
    let mut uri = Zeroizing::new(String::with_capacity(
        160 + record.secret.base32_len() + 3 * (record.user.len() + record.serial.len()),
    ));
    uri.push_str(match record.kind {
        Kind::Totp => "otpauth://totp/",
        Kind::Hotp => "otpauth://hotp/",
    });
    if let Some(issuer) = issuer {
        encode_into(&mut uri, issuer);
        uri.push(':');
    } else if record.user.contains(':') {
        // Readers take an encoded colon for the issuer separator when the label has no plain
        // one, so an account with a colon and no issuer read back as issuer and account (found
        // by fuzzing, seed_otpauth). An empty issuer keeps the label unambiguous.
        uri.push(':');
    }
    encode_into(&mut uri, &record.user);
    uri.push_str("?secret=");
    uri.push_str(&record.secret.base32());
    if let Some(issuer) = issuer {
        uri.push_str("&issuer=");
        encode_into(&mut uri, issuer);
    }
    uri.push_str("&algorithm=");
    uri.push_str(record.algorithm.otpauth_name());
    uri.push_str(&format!("&digits={}", record.digits));
    match record.kind {
        Kind::Totp => uri.push_str(&format!("&period={}", record.period)),
        Kind::Hotp => uri.push_str(&format!("&counter={}", record.counter)),
    }
    if !record.serial.is_empty() {
        uri.push_str("&serial=");
        encode_into(&mut uri, &record.serial);
    }
    uri
}

fn encode_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Undoes percent-encoding; a `%` not followed by two hex digits stays as it is.
fn decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(hi)), Some(Some(lo))) = (
                bytes.get(i + 1).map(|&b| hex(b)),
                bytes.get(i + 2).map(|&b| hex(b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Splits the label at the issuer separator: a literal `:` (this crate encodes any colon in
/// the issuer or account), or else an encoded `%3A` as some generators write it.
fn split_label(label: &str) -> Option<(&str, &str)> {
    if let Some(at) = label.find(':') {
        return Some((&label[..at], &label[at + 1..]));
    }
    let at = label.to_ascii_uppercase().find("%3A")?;
    Some((&label[..at], &label[at + 3..]))
}

pub(crate) fn parse(bytes: &[u8]) -> Raw {
    let mut raw = Raw::default();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                let at = e.valid_up_to();
                raw.broken
                    .push(not_utf8(number, at + 1, line.get(at).copied()));
                continue;
            }
        };
        let mut text = text.trim();
        // Another file's byte order mark, left by joining files: see `BOM_STARTS_LINE`.
        if let Some(rest) = text.strip_prefix('\u{feff}') {
            raw.warnings.push(Problem::at(number, BOM_STARTS_LINE));
            text = rest.trim();
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match parse_uri(text) {
            Ok(record) => raw.records.push((number, record)),
            Err((serial, reason)) => {
                raw.broken
                    .push(Problem::new(Some(number), serial.as_deref(), reason));
            }
        }
    }
    raw
}

/// One URI as a record, or the serial (if it got that far) and why not.
fn parse_uri(text: &str) -> Result<TokenRecord, (Option<String>, String)> {
    let fail = |reason: String| (None, reason);
    let rest = text
        .get(..10)
        .filter(|scheme| scheme.eq_ignore_ascii_case("otpauth://"))
        .map(|_| &text[10..])
        .ok_or_else(|| fail("not an otpauth:// URI".into()))?;
    let (kind, rest) = rest
        .split_once('/')
        .ok_or_else(|| fail("otpauth URI has no type (otpauth://totp/...)".into()))?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "totp" => Kind::Totp,
        "hotp" => Kind::Hotp,
        _ => return Err(fail(format!("type {} is not totp or hotp", shown(kind)))),
    };
    let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bad_encoding = || fail("percent-encoded text is not valid UTF-8".into());
    let (label_issuer, account) = match split_label(label) {
        Some((issuer, account)) => (decode(issuer).map_err(|_| bad_encoding())?, account),
        None => (String::new(), label),
    };
    let user = decode(account)
        .map_err(|_| bad_encoding())?
        .trim()
        .to_owned();

    let mut secret_text: Option<Zeroizing<String>> = None;
    let (mut issuer, mut algorithm, mut digits, mut period, mut counter, mut serial) =
        (None, None, None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Zeroizing::new(decode(value).map_err(|_| bad_encoding())?);
        let slot = match key.to_ascii_lowercase().as_str() {
            "secret" => {
                secret_text.get_or_insert(value);
                continue;
            }
            "issuer" => &mut issuer,
            "algorithm" => &mut algorithm,
            "digits" => &mut digits,
            "period" => &mut period,
            "counter" => &mut counter,
            "serial" => &mut serial,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.as_str().to_owned());
    }

    let manufacturer = issuer.unwrap_or(label_issuer);
    // An empty `serial=` is no serial: it falls back to the issuer as a missing one does (kept
    // empty, it was left out when written and read back as the issuer; found by fuzzing,
    // seed_otpauth).
    let serial = serial
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| manufacturer.clone());
    let fail = |reason: String| (Some(serial.clone()), reason);
    let secret_text = secret_text.ok_or_else(|| fail("secret parameter is missing".into()))?;
    let secret = Secret::from_base32(&secret_text).map_err(fail)?;
    let algorithm = match algorithm {
        None => Algorithm::Sha1,
        Some(text) => Algorithm::parse_loose(&text).ok_or_else(|| {
            fail(format!(
                "algorithm {} is not SHA1, SHA256 or SHA512",
                shown(&text)
            ))
        })?,
    };
    let number = |text: Option<String>, name: &str| -> Result<Option<u64>, _> {
        text.map(|t| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| fail(format!("{name} {} is not a number", shown(&t))))
        })
        .transpose()
    };
    let digits = number(digits, "digits")?.unwrap_or(u64::from(DEFAULT_DIGITS));
    let period = number(period, "period")?.unwrap_or(u64::from(DEFAULT_PERIOD));
    let counter = number(counter, "counter")?.unwrap_or(0);
    let digits = u8::try_from(digits).map_err(|_| fail(format!("digits {digits} is too large")))?;
    let period =
        u32::try_from(period).map_err(|_| fail(format!("period {period} is too large")))?;
    Ok(TokenRecord {
        serial,
        user,
        secret,
        kind,
        algorithm,
        digits,
        period,
        counter,
        manufacturer,
        model: String::new(),
    })
}

pub(crate) fn render(records: &[TokenRecord], out: &mut String) -> Result<(), Problem> {
    for r in records {
        out.push_str(&otpauth_uri(r, Some(&r.manufacturer)));
        out.push('\n');
    }
    Ok(())
}

/// Pixels per QR module in [`qr_png`]'s image.
const QR_SCALE: usize = 8;
/// Quiet zone around the code, in modules (the standard asks for 4).
const QR_BORDER: usize = 4;

/// A PNG image (8-bit grayscale, black on white, 8 pixels per module, 4-module quiet zone)
/// of a QR code for `text`, with medium error correction. Fails when the text does not fit
/// in a QR code. The image shows the text to anyone who sees it: for an otpauth URI it is the
/// secret.
pub fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| format!("text does not fit in a QR code: {e}"))?;
    let modules = usize::try_from(qr.size()).map_err(|_| "QR code has no size".to_string())?;
    let side = (modules + 2 * QR_BORDER) * QR_SCALE;
    let mut pixels = vec![0xFFu8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            // Sizes are at most 177, so the casts back to i32 cannot truncate.
            if qr.get_module(x as i32, y as i32) {
                for dy in 0..QR_SCALE {
                    let row = (QR_BORDER + y) * QR_SCALE + dy;
                    let start = row * side + (QR_BORDER + x) * QR_SCALE;
                    pixels[start..start + QR_SCALE].fill(0);
                }
            }
        }
    }
    let side = u32::try_from(side).map_err(|_| "QR image too large".to_string())?;
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    writer
        .finish()
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TokenRecord {
        let mut r = TokenRecord::totp(
            "0012345",
            "alice smith@contoso.com",
            Secret::new(b"12345678901234567890".to_vec()),
        );
        r.manufacturer = "Contoso: IT".into();
        r
    }

    #[test]
    fn uri_is_percent_encoded() {
        let uri = otpauth_uri(&record(), Some("Contoso: IT"));
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Contoso%3A%20IT:alice%20smith@contoso.com?\
             secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Contoso%3A%20IT\
             &algorithm=SHA1&digits=6&period=30&serial=0012345"
        );
        let back = parse_uri(&uri).expect("parses");
        assert_eq!(back.manufacturer, "Contoso: IT");
        assert_eq!(back.user, "alice smith@contoso.com");
        assert_eq!(back.serial, "0012345");
    }

    #[test]
    fn no_issuer_means_a_bare_label() {
        let mut r = record();
        r.serial.clear();
        r.kind = Kind::Hotp;
        r.counter = 7;
        let uri = otpauth_uri(&r, None);
        assert_eq!(
            uri.as_str(),
            "otpauth://hotp/alice%20smith@contoso.com?\
             secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&counter=7"
        );
    }

    #[test]
    fn an_account_with_a_colon_and_no_issuer_reads_back() {
        let mut r = record();
        r.user = "odd:user@contoso.com".into();
        r.serial.clear();
        let uri = otpauth_uri(&r, None);
        assert!(
            uri.starts_with("otpauth://totp/:odd%3Auser@"),
            "{}",
            uri.as_str()
        );
        let back = parse_uri(&uri).expect("parses");
        assert_eq!(
            (
                back.user.as_str(),
                back.serial.as_str(),
                back.manufacturer.as_str()
            ),
            ("odd:user@contoso.com", "", "")
        );
    }

    #[test]
    fn foreign_uris_take_the_serial_from_the_issuer() {
        let r = parse_uri("OTPAUTH://TOTP/0099%3Abob@x.org?SECRET=jbswy3dpehpk3pxp&Digits=8")
            .expect("parses");
        assert_eq!(r.serial, "0099");
        assert_eq!(r.user, "bob@x.org");
        assert_eq!(r.digits, 8);
        assert_eq!(r.period, 30);
        assert_eq!(r.algorithm, Algorithm::Sha1);
        let r = parse_uri("otpauth://totp/Example:alice?secret=JBSWY3DP&issuer=Ex%20ample")
            .expect("parses");
        assert_eq!(
            (r.serial.as_str(), r.manufacturer.as_str()),
            ("Ex ample", "Ex ample")
        );
        let empty =
            parse_uri("otpauth://totp/0099:bob@x.org?secret=JBSWY3DP&serial=").expect("parses");
        assert_eq!(empty.serial, "0099", "an empty serial is no serial");
    }

    #[test]
    fn bad_uris_say_why() {
        for (uri, reason) in [
            ("http://x", "not an otpauth:// URI"),
            (
                "otpauth://totp",
                "otpauth URI has no type (otpauth://totp/...)",
            ),
            (
                "otpauth://motp/a?secret=JBSWY3DP",
                "type \"motp\" is not totp or hotp",
            ),
            ("otpauth://totp/a?issuer=x", "secret parameter is missing"),
            ("otpauth://totp/a?secret=JBSW1", "secret key is not Base32"),
            (
                "otpauth://totp/a?secret=JBSWY3DP&digits=six",
                "digits \"six\" is not a number",
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DP&algorithm=MD5",
                "algorithm \"MD5\" is not SHA1, SHA256 or SHA512",
            ),
            (
                "otpauth://totp/%FF?secret=JBSWY3DP",
                "percent-encoded text is not valid UTF-8",
            ),
        ] {
            assert_eq!(parse_uri(uri).expect_err(uri).1, reason, "{uri}");
        }
    }

    #[test]
    fn qr_png_is_a_png() {
        let png_bytes = qr_png("otpauth://totp/a?secret=JBSWY3DP").expect("encodes");
        assert!(png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(qr_png(&"x".repeat(5000)).is_err());
    }
}
