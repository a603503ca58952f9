//! Azure / Entra ID "OATH tokens" upload CSV.
//!
//! ```text
//! upn,serial number,secret key,time interval,manufacturer,model
//! alice@contoso.com,0012345,JBSWY3DPEHPK3PXP,30,oathkey,virtual key
//! ```
//!
//! The header is required, exactly these six columns in this order, in lower case and without
//! spaces around the names, as Azure's documentation gives it. A header that differs only in
//! letter case or spaces is still recognised (its rows are read) but is a problem that names
//! the exact header, since the upload is documented to require it exactly. Fields separated
//! by `;` or tabs (a spreadsheet's regional setting) and a trailing `,` (an empty seventh
//! column) get reasons of their own. There is no column for the
//! token type, the hash or the code length: every row is TOTP, SHA-1, 6 digits, so reading
//! yields those and writing refuses anything else (even with `force`: the file would
//! describe a different token). The serial is text and is never parsed as a number, so
//! leading zeros survive; fields are quoted only when they contain `,`, `"` or line breaks. A
//! cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or carriage return
//! first) is never written, forced or not: see `cells`.
//! Written with `\n` line endings and no byte order mark.

use crate::cells::formula_refusal;
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

/// The text of 1-based `line` of `bytes`, without its line break.
fn line_text(bytes: &[u8], line: usize) -> String {
    let text = bytes
        .split(|&b| b == b'\n')
        .nth(line.saturating_sub(1))
        .unwrap_or_default();
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    String::from_utf8_lossy(text).into_owned()
}

/// The separator a row was written with instead of `,`, when splitting its only field by it
/// gives the six columns (or the header): a spreadsheet saved with a regional list separator.
fn other_separator(fields: &[String]) -> Option<char> {
    let [only] = fields else { return None };
    [';', '\t'].into_iter().find(|&sep| {
        let parts: Vec<&str> = only.split(sep).collect();
        parts.len() == 6 || (parts.len() == 7 && parts[6].trim().is_empty())
    })
}

fn separator_name(sep: char) -> &'static str {
    if sep == '\t' { "tabs" } else { "';'" }
}

/// Whether the row ends in an empty field that a trailing `,` made.
fn trailing_comma(fields: &[String]) -> bool {
    fields.len() == 7 && fields[6].is_empty()
}

pub(crate) fn parse(bytes: &[u8]) -> Raw {
    let mut raw = Raw::default();
    let mut first = true;
    for row in csv_rows(bytes, false) {
        let line = row.line;
        raw.warnings.extend(row.bom);
        let Some(row) = row.fields else { continue };
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
                let text = line_text(bytes, line);
                if text != AZURE_HEADER {
                    raw.warnings.push(Problem::at(
                        line,
                        format!(
                            "header is {:?}, not exactly `{AZURE_HEADER}`; Azure requires this header exactly (lower case, no spaces around the names)",
                            text.chars().take(200).collect::<String>()
                        ),
                    ));
                }
                continue;
            }
            let looks_like_data = fields.len() == 6 && fields[0].contains('@');
            let what = if looks_like_data {
                "missing header row".to_string()
            } else if let Some(sep) = other_separator(&fields) {
                format!(
                    "wrong header: the fields are separated by {}, not ','",
                    separator_name(sep)
                )
            } else if trailing_comma(&fields) && is_header(fields[..6].iter().map(String::as_str)) {
                "wrong header: a trailing ',' adds an empty seventh column".to_string()
            } else {
                "wrong header".to_string()
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
    let why = if let Some(sep) = other_separator(&fields) {
        format!(
            ": the fields are separated by {}; Azure's CSV needs ',' (save as \"CSV UTF-8 (comma delimited)\")",
            separator_name(sep)
        )
    } else if trailing_comma(&fields) {
        ": a trailing ',' adds an empty seventh field".to_string()
    } else {
        String::new()
    };
    let Ok([upn, serial, secret_text, interval, manufacturer, model]) =
        <[String; 6]>::try_from(fields)
    else {
        raw.broken.push(Problem::at(
            line,
            format!("expected 6 fields ({AZURE_HEADER}), found {n}{why}"),
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
        [
            ("user", &record.user),
            ("serial number", &record.serial),
            ("manufacturer", &record.manufacturer),
            ("model", &record.model),
        ]
        .into_iter()
        .find_map(|(field, text)| formula_refusal("Azure CSV", field, text))
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
