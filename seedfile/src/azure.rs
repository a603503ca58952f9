//! Azure / Entra ID "OATH tokens" upload CSV.
//!
//! ```text
//! upn,serial number,secret key,time interval,manufacturer,model
//! alice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,virtual key
//! ```
//!
//! The header is required, exactly these six columns in this order; it is written exactly
//! and read case-insensitively with surrounding spaces ignored. There is no column for the
//! token type, the hash or the code length: every row is TOTP, SHA-1, 6 digits, so reading
//! yields those and writing refuses anything else (even with `force`: the file would
//! describe a different token). The serial is text and is never parsed as a number, so
//! leading zeros survive; fields are quoted only when they contain `,`, `"` or line breaks.
//! Written with `\n` line endings and no byte order mark.

use crate::read::Raw;
use crate::record::{Algorithm, DEFAULT_DIGITS, Kind, Secret, TokenRecord};
use crate::text::{base32_text_problem, csv_rows, push_csv_field};
use crate::validate::{Problem, shown};

/// The header row, as written.
pub const AZURE_HEADER: &str = "upn,serial number,secret key,time interval,manufacturer,model";

/// Whether `fields` are the header's columns, ignoring case and surrounding spaces.
pub(crate) fn is_header<'a>(fields: impl Iterator<Item = &'a str>) -> bool {
    let fields: Vec<&str> = fields.collect();
    let expected: Vec<&str> = AZURE_HEADER.split(',').collect();
    fields.len() == expected.len()
        && fields
            .iter()
            .zip(&expected)
            .all(|(f, e)| f.trim().eq_ignore_ascii_case(e))
}

pub(crate) fn parse(bytes: &[u8]) -> Raw {
    let mut raw = Raw::default();
    let mut first = true;
    for (line, row) in csv_rows(bytes, false) {
        let fields = match row {
            Ok(fields) => fields,
            Err(problem) => {
                raw.broken.push(problem);
                first = false;
                continue;
            }
        };
        if std::mem::take(&mut first) {
            if is_header(fields.iter().map(String::as_str)) {
                continue;
            }
            let looks_like_data = fields.len() == 6 && fields[0].contains('@');
            let what = if looks_like_data {
                "missing header row"
            } else {
                "wrong header"
            };
            raw.broken.push(Problem::at(
                line,
                format!("{what}; the first line must be `{AZURE_HEADER}`"),
            ));
            if !looks_like_data {
                continue;
            }
        }
        parse_row(line, fields, &mut raw);
    }
    if first {
        raw.broken.push(Problem::at(
            1,
            format!("file is empty; the header row `{AZURE_HEADER}` is missing"),
        ));
    }
    raw
}

fn parse_row(line: usize, fields: Vec<String>, raw: &mut Raw) {
    let n = fields.len();
    let Ok([upn, serial, secret_text, interval, manufacturer, model]) =
        <[String; 6]>::try_from(fields)
    else {
        raw.broken.push(Problem::at(
            line,
            format!("expected 6 fields ({AZURE_HEADER}), found {n}"),
        ));
        return;
    };
    let secret_text = zeroize::Zeroizing::new(secret_text);
    let at = |reason: String| Problem::new(Some(line), Some(&serial), reason);
    let secret = match Secret::from_base32(&secret_text) {
        Ok(secret) => secret,
        Err(reason) => {
            raw.broken.push(at(reason));
            return;
        }
    };
    if let Some(reason) = base32_text_problem(&secret_text, &secret, "Azure") {
        raw.warnings.push(at(reason));
    }
    let Ok(period) = interval.parse::<u32>() else {
        raw.broken.push(at(format!(
            "time interval {} is not a whole number of seconds",
            shown(&interval)
        )));
        return;
    };
    raw.records.push((
        line,
        TokenRecord {
            serial,
            user: upn,
            secret,
            kind: Kind::Totp,
            algorithm: Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period,
            counter: 0,
            manufacturer,
            model,
        },
    ));
}

/// Why `record` cannot be written as an Azure row at all, if it cannot.
fn unrepresentable(record: &TokenRecord) -> Option<String> {
    if record.kind == Kind::Hotp {
        Some("Azure CSV cannot carry HOTP tokens".into())
    } else if record.algorithm != Algorithm::Sha1 {
        Some(format!(
            "Azure CSV has no hash column and cannot carry {}",
            record.algorithm
        ))
    } else if record.digits != DEFAULT_DIGITS {
        Some(format!(
            "Azure CSV has no digits column and cannot carry {}-digit codes",
            record.digits
        ))
    } else {
        None
    }
}

/// Writes the rows, after the header when `header` is set.
pub(crate) fn render(
    records: &[TokenRecord],
    header: bool,
    out: &mut String,
) -> Result<(), Problem> {
    if header {
        out.push_str(AZURE_HEADER);
        out.push('\n');
    }
    for r in records {
        if let Some(reason) = unrepresentable(r) {
            return Err(Problem::new(None, Some(&r.serial), reason));
        }
        push_csv_field(out, &r.user);
        out.push(',');
        push_csv_field(out, &r.serial);
        out.push(',');
        out.push_str(&r.secret.base32());
        out.push(',');
        out.push_str(&r.period.to_string());
        out.push(',');
        push_csv_field(out, &r.manufacturer);
        out.push(',');
        push_csv_field(out, &r.model);
        out.push('\n');
    }
    Ok(())
}
