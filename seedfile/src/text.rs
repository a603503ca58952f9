//! Helpers the line-oriented formats share: reading CSV rows with their line numbers, and
//! writing CSV fields straight into zeroizing output.

use csv::{ByteRecord, ReaderBuilder, Trim};

use crate::encoding::not_utf8;
use crate::read::LineCounter;
use crate::record::Secret;
use crate::validate::{MAX_BASE32_SECRET, Problem};

/// Why a byte order mark starting a line after the first is a problem. Joining files
/// (`cat a.csv b.csv`) leaves the second file's mark there; readers drop it from the value, but
/// the target would read it as part of the line's first field.
pub(crate) const BOM_STARTS_LINE: &str = "the line starts with a byte order mark (U+FEFF), as joined files leave it; the target reads it as part of the line: remove it";

/// One CSV row read by [`csv_rows`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// The 1-based line the row starts on.
    pub line: usize,
    /// The fields, trimmed of surrounding spaces, or why they cannot be read; `None` for a
    /// line that held nothing but a byte order mark.
    pub fields: Option<Result<Vec<String>, Problem>>,
    /// A byte order mark started the row ([`BOM_STARTS_LINE`]).
    pub bom: Option<Problem>,
}

/// The CSV rows of `bytes` with their lines. Rows with invalid UTF-8 come back as a problem
/// that says where; blank rows are skipped.
pub(crate) fn csv_rows(bytes: &[u8], comments: bool) -> impl Iterator<Item = Row> + '_ {
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .comment(comments.then_some(b'#'))
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    let mut lines = LineCounter::new(bytes);
    let mut done = false;
    std::iter::from_fn(move || {
        loop {
            if done {
                return None;
            }
            match reader.read_byte_record(&mut record) {
                Ok(false) => {
                    done = true;
                    return None;
                }
                Ok(true) => {}
                Err(e) => {
                    // Reading from a slice has no I/O errors; stop rather than loop on one.
                    done = true;
                    let line = e.position().map_or(1, |p| p.line() as usize);
                    return Some(Row {
                        line,
                        fields: Some(Err(Problem::at(line, "unreadable CSV"))),
                        bom: None,
                    });
                }
            }
            if record.iter().all(<[u8]>::is_empty) {
                continue;
            }
            // The csv crate's position is where the previous record ended; the record starts
            // after the line breaks (and comment lines) that follow.
            let mut start = record
                .position()
                .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
            loop {
                match bytes.get(start) {
                    Some(b'\r' | b'\n') => start += 1,
                    Some(b'#') if comments && (start == 0 || bytes[start - 1] == b'\n') => {
                        start = bytes[start..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(bytes.len(), |i| start + i + 1);
                    }
                    _ => break,
                }
            }
            let line = lines.line_of(start);
            let mut fields: Result<Vec<String>, _> = record
                .iter()
                .map(|f| std::str::from_utf8(f).map(str::to_owned))
                .collect();
            // A byte order mark starting a row is another file's mark left by joining files,
            // not part of the first field: kept, it made an invisible character part of a
            // serial, which the file's BOM stripping removed when written first in a file
            // (found by fuzzing, seed_privacyidea_csv). The value goes without it, and the
            // line gets a problem, since the target would keep it.
            let mut bom = None;
            if let Ok([first, ..]) = fields.as_deref_mut()
                && let Some(rest) = first.strip_prefix('\u{feff}')
            {
                *first = rest.trim_start().to_owned();
                bom = Some(Problem::at(line, BOM_STARTS_LINE));
                if fields
                    .as_deref()
                    .is_ok_and(|f| f.iter().all(String::is_empty))
                {
                    return Some(Row {
                        line,
                        fields: None,
                        bom,
                    });
                }
            }
            // The first byte that is no UTF-8 is in this record: a field's bytes are the
            // record's, less quotes and spaces, which are no part of any multi-byte character.
            let fields = fields.map_err(|_| {
                let offset = std::str::from_utf8(&bytes[start..])
                    .err()
                    .map_or(start, |e| start + e.valid_up_to());
                let before = &bytes[start..offset];
                let breaks = before.iter().filter(|&&b| b == b'\n').count();
                let line_start = before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(start, |i| start + i + 1);
                not_utf8(
                    line + breaks,
                    offset - line_start + 1,
                    bytes.get(offset).copied(),
                )
            });
            return Some(Row {
                line,
                fields: Some(fields),
                bom,
            });
        }
    })
}

/// What Azure and Graph (`target`) object to in the text of a secret that decoded to
/// `secret`: padding, separators, or more characters than allowed where the decoded key alone
/// would not show it (leftover characters past the last whole byte).
pub(crate) fn base32_text_problem(text: &str, secret: &Secret, target: &str) -> Option<String> {
    let text = text.trim();
    if text.contains('=') {
        Some(format!(
            "secret key has '=' padding; {target} does not accept it"
        ))
    } else if text.contains([' ', '\t', '-']) {
        Some(format!(
            "secret key has spaces or '-'; {target} takes only A-Z and 2-7"
        ))
    } else if text.len() > MAX_BASE32_SECRET && secret.base32_len() <= MAX_BASE32_SECRET {
        Some(format!(
            "secret key is {} characters; {target} accepts at most {MAX_BASE32_SECRET}",
            text.len()
        ))
    } else {
        None
    }
}

/// Appends `field` to `out` as one CSV field, quoted only when it has to be.
pub(crate) fn push_csv_field(out: &mut String, field: &str) {
    let needs_quotes = field.contains([',', '"', '\n', '\r'])
        || field.starts_with(char::is_whitespace)
        || field.ends_with(char::is_whitespace);
    if needs_quotes {
        out.push('"');
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows as (line, fields), for rows that have fields and no byte order mark.
    fn plain(rows: impl Iterator<Item = Row>) -> Vec<(usize, Result<Vec<String>, Problem>)> {
        rows.map(|row| {
            assert_eq!(row.bom, None);
            (row.line, row.fields.expect("fields"))
        })
        .collect()
    }

    #[test]
    fn a_bom_starting_a_row_is_no_part_of_it() {
        let text = b"a,b\n\xEF\xBB\xBF c,d\n\xEF\xBB\xBF";
        let rows: Vec<_> = csv_rows(text, false).collect();
        assert_eq!(rows.len(), 3);
        let c_d = vec!["c".to_string(), "d".to_string()];
        assert_eq!(rows[1].fields, Some(Ok(c_d)));
        assert_eq!(rows[1].bom, Some(Problem::at(2, BOM_STARTS_LINE)));
        assert_eq!(
            rows[2],
            Row {
                line: 3,
                fields: None,
                bom: Some(Problem::at(3, BOM_STARTS_LINE))
            },
            "a lone BOM has no fields, and is a problem"
        );
    }

    #[test]
    fn rows_have_lines_and_skip_blanks() {
        let text = b"a,b\r\n\r\n\"c,d\",e\n  \n\"multi\nline\",f\ng,\xff\n";
        let rows = plain(csv_rows(text, false));
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], (1, Ok(vec!["a".into(), "b".into()])));
        assert_eq!(rows[1], (3, Ok(vec!["c,d".into(), "e".into()])));
        assert_eq!(rows[2], (5, Ok(vec!["multi\nline".into(), "f".into()])));
        assert_eq!(rows[3].0, 7);
        assert_eq!(
            rows[3].1.as_ref().expect_err("invalid UTF-8").to_string(),
            "line 7: byte 3 is not UTF-8 (0xFF); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")"
        );
    }

    #[test]
    fn comment_lines_are_skipped_and_counted() {
        let text = b"# one\n\n# two\nx,y\n#three\nz\n";
        assert_eq!(
            plain(csv_rows(text, true)),
            vec![
                (4, Ok(vec!["x".into(), "y".into()])),
                (6, Ok(vec!["z".into()]))
            ]
        );
    }

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        for f in ["0012345", "a,b", "say \"hi\"", " x"] {
            push_csv_field(&mut out, f);
            out.push('|');
        }
        assert_eq!(out, "0012345|\"a,b\"|\"say \"\"hi\"\"\"|\" x\"|");
    }
}
