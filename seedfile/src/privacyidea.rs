//! privacyIDEA's OATH CSV import: one token per line, no header.
//!
//! ```text
//! 0012345, 3132333435363738393031323334353637383930, totp, 6, 30
//! 0012346, 3132333435363738393031323334353637383930, hotp, 8
//! ```
//!
//! Columns: serial, key in hex, type (`hotp` or `totp`), digits (6 or 8), time step (30 or 60).
//! Written exactly like this (`, ` separators; HOTP rows without the time step). Read like
//! privacyIDEA reads them: spaces around fields ignored, type case-insensitive and `hotp` when
//! absent, digits 6 and time step 30 when absent, quoted fields taken as CSV, lines starting
//! with `#` skipped. privacyIDEA itself splits at every `,` and does not unquote, so a serial
//! that would need quoting (a `,` or `"`) or that starts with `#` is a problem, and is never
//! written. Columns after the fifth (later privacyIDEA versions put the user there)
//! are ignored. The format has no hash column and no counter: SHA-256/512 and HOTP counters
//! other than 0 cannot be written, even with `force`.

use data_encoding::HEXLOWER_PERMISSIVE;
use zeroize::Zeroizing;

use crate::cells::formula_refusal;
use crate::read::Raw;
use crate::record::{Algorithm, DEFAULT_DIGITS, DEFAULT_PERIOD, Kind, Secret, TokenRecord};
use crate::text::csv_rows;
use crate::validate::{Problem, shown};

pub(crate) fn parse(bytes: &[u8]) -> Raw {
    let mut raw = Raw::default();
    for row in csv_rows(bytes, true) {
        raw.warnings.extend(row.bom);
        match row.fields {
            Some(Ok(fields)) => parse_row(row.line, fields, &mut raw),
            Some(Err(problem)) => raw.broken.push(problem),
            None => {}
        }
    }
    raw
}

fn parse_row(line: usize, mut fields: Vec<String>, raw: &mut Raw) {
    if fields.len() < 2 {
        raw.broken.push(Problem::at(
            line,
            format!(
                "expected serial, key, type, digits and time step; found {} field",
                fields.len()
            ),
        ));
        return;
    }
    let key = Zeroizing::new(std::mem::take(&mut fields[1]));
    let serial = std::mem::take(&mut fields[0]);
    let at = |reason: String| Problem::new(Some(line), Some(&serial), reason);
    let field = |i: usize| fields.get(i).map(String::as_str).filter(|f| !f.is_empty());

    let kind = match field(2).map(str::to_ascii_lowercase).as_deref() {
        Some("totp") => Kind::Totp,
        Some("hotp") | None => Kind::Hotp,
        Some(other) => {
            raw.broken
                .push(at(format!("type {} is not hotp or totp", shown(other))));
            return;
        }
    };
    let digits = match field(3).map(str::parse::<u8>) {
        None => DEFAULT_DIGITS,
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            let text = field(3).unwrap_or_default();
            raw.broken
                .push(at(format!("digits {} is not a number", shown(text))));
            return;
        }
    };
    let period = match field(4).map(str::parse::<u32>) {
        None => DEFAULT_PERIOD,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            let text = field(4).unwrap_or_default();
            raw.broken.push(at(format!(
                "time step {} is not a whole number of seconds",
                shown(text)
            )));
            return;
        }
    };
    let compact: Zeroizing<String> =
        Zeroizing::new(key.chars().filter(|c| !c.is_whitespace()).collect());
    let secret = match HEXLOWER_PERMISSIVE.decode(compact.as_bytes()) {
        Ok(bytes) if bytes.is_empty() => {
            raw.broken.push(at("secret key is empty".into()));
            return;
        }
        Ok(bytes) => Secret::new(bytes),
        Err(_) if compact.is_empty() => {
            raw.broken.push(at("secret key is empty".into()));
            return;
        }
        Err(_) => {
            raw.broken.push(at(
                "secret key is not hex (an even number of 0-9, a-f)".into()
            ));
            return;
        }
    };
    raw.records.push((
        line,
        TokenRecord {
            serial,
            user: String::new(),
            secret,
            kind,
            algorithm: Algorithm::Sha1,
            digits,
            period,
            counter: 0,
            manufacturer: String::new(),
            model: String::new(),
        },
    ));
}

/// Why privacyIDEA CSV cannot carry `serial`, if it cannot. privacyIDEA splits each line at
/// every `,`, skips lines starting with `#` and knows no quoting, so a serial with a `,` or a
/// `"`, or starting with `#`, would reach it as something else. The target rules report it and
/// the writer refuses it, so that what the reader takes (quoted fields included) is what the
/// writer can write.
pub(crate) fn serial_problem(serial: &str) -> Option<&'static str> {
    if serial.contains(',') {
        Some("serial number has a comma, which privacyIDEA CSV cannot carry")
    } else if serial.contains('"') {
        Some(
            "serial number has a '\"', which privacyIDEA CSV cannot carry (privacyIDEA does not read quoted fields)",
        )
    } else if serial.trim_start().starts_with('#') {
        Some("serial number starts with '#', which privacyIDEA takes for a comment line")
    } else {
        None
    }
}

/// Why `record` cannot be written as a privacyIDEA row at all, if it cannot.
fn unrepresentable(r: &TokenRecord) -> Option<String> {
    if r.algorithm != Algorithm::Sha1 {
        Some(format!(
            "privacyIDEA CSV has no hash column and cannot carry {}",
            r.algorithm
        ))
    } else if r.kind == Kind::Hotp && r.counter != 0 {
        Some(format!(
            "privacyIDEA CSV has no counter column and cannot carry counter {}",
            r.counter
        ))
    } else if let Some(reason) = serial_problem(&r.serial) {
        Some(reason.into())
    } else if let Some(reason) = formula_refusal("privacyIDEA CSV", "serial number", &r.serial) {
        Some(reason)
    } else if r.serial.contains(['\n', '\r']) {
        Some("privacyIDEA CSV cannot carry a serial with a line break".into())
    } else {
        None
    }
}

pub(crate) fn render(records: &[TokenRecord], out: &mut String) -> Result<(), Problem> {
    for r in records {
        if let Some(reason) = unrepresentable(r) {
            return Err(Problem::new(None, Some(&r.serial), reason));
        }
        // The reader trims what the csv crate trims (ASCII whitespace, which leaves out the
        // vertical tab); trimming more here (`str::trim` takes U+000B, U+0085, U+3000 ...)
        // changed a serial between writing and reading back.
        out.push_str(r.serial.trim_matches(|c: char| c.is_ascii_whitespace()));
        out.push_str(", ");
        out.push_str(&r.secret.hex());
        match r.kind {
            Kind::Totp => {
                out.push_str(&format!(", totp, {}, {}\n", r.digits, r.period));
            }
            Kind::Hotp => out.push_str(&format!(", hotp, {}\n", r.digits)),
        }
    }
    Ok(())
}
