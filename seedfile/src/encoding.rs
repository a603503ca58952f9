//! Text as editors save it: UTF-8 with or without a byte order mark, or UTF-16 with one, in
//! either byte order (Notepad's "Unicode", Excel's "Unicode text"). Every reader of files people
//! hand to oathkey (seed files, `provision`'s users file) decodes through here, so they all take
//! the same files and say the same thing about bytes that are no text: the line, the byte and
//! what to do.

use zeroize::Zeroizing;

use crate::validate::Problem;

/// What to do about a file that is not UTF-8.
const SAVE_AS_UTF8: &str = "save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")";

/// `bytes` without a leading UTF-8 byte order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Whether `bytes` start with a UTF-16 byte order mark (little or big endian).
pub fn is_utf16(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF")
}

/// The text of a file that starts with a UTF-16 byte order mark, as UTF-8 without the mark;
/// `None` when the file does not start with one. A file cut in the middle of a character, or
/// with half a surrogate pair, is a problem on its line.
pub fn utf16_text(bytes: &[u8]) -> Option<Result<Zeroizing<String>, Problem>> {
    let little = bytes.starts_with(b"\xFF\xFE");
    if !little && !bytes.starts_with(b"\xFE\xFF") {
        return None;
    }
    let body = &bytes[2..];
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    let mut text = Zeroizing::new(String::with_capacity(body.len() / 2 * 3 / 2));
    let mut line = 1;
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => {
                line += usize::from(c == '\n');
                text.push(c);
            }
            Err(e) => {
                return Some(Err(Problem::at(
                    line,
                    format!(
                        "the file is UTF-16 but has half a character (U+{:04X} alone); {SAVE_AS_UTF8}",
                        e.unpaired_surrogate()
                    ),
                )));
            }
        }
    }
    if body.len() % 2 == 1 {
        return Some(Err(Problem::at(
            line,
            "the file is UTF-16 but ends in the middle of a character (an odd number of bytes); it was cut short",
        )));
    }
    Some(Ok(text))
}

/// The problem for a byte that is not UTF-8 at `offset` of `bytes`: its line and its byte
/// column (1-based, counted from the start of the line), the byte, and what to do.
pub(crate) fn invalid_utf8(bytes: &[u8], offset: usize) -> Problem {
    let offset = offset.min(bytes.len());
    let line_start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = crate::read::line_at(bytes, line_start);
    not_utf8(line, offset - line_start + 1, bytes.get(offset).copied())
}

/// The problem for `byte`, not UTF-8, at byte `column` of `line`.
pub(crate) fn not_utf8(line: usize, column: usize, byte: Option<u8>) -> Problem {
    let byte = byte.map_or(String::new(), |b| format!(" (0x{b:02X})"));
    Problem::at(
        line,
        format!("byte {column} is not UTF-8{byte}; {SAVE_AS_UTF8}"),
    )
}

/// One line of [`text_lines`]: its 1-based number, and its text or why it is not UTF-8.
pub type Line = (usize, Result<String, Problem>);

/// The lines of a text file people wrote (a users file): decoded from UTF-8 or UTF-16 as
/// [`utf16_text`] says, with the file's byte order mark dropped and so is one starting any
/// later line (files joined with `cat`), line breaks (`\n` or `\r\n`) removed. Each line comes
/// with its 1-based number, or the problem of a line that is not UTF-8; a broken UTF-16 file is
/// one problem.
pub fn text_lines(bytes: &[u8]) -> Result<Vec<Line>, Problem> {
    let decoded = utf16_text(bytes).transpose()?;
    let bytes = match &decoded {
        Some(text) => text.as_bytes(),
        None => strip_bom(bytes),
    };
    Ok(bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(index, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let body = strip_bom(line);
            let text = std::str::from_utf8(body).map_err(|e| {
                let at = e.valid_up_to();
                not_utf8(
                    index + 1,
                    line.len() - body.len() + at + 1,
                    body.get(at).copied(),
                )
            });
            (index + 1, text.map(str::to_owned))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, little: bool) -> Vec<u8> {
        let mut out = if little {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for u in text.encode_utf16() {
            out.extend(if little {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            });
        }
        out
    }

    #[test]
    fn utf16_in_both_byte_orders_is_decoded() {
        for little in [true, false] {
            let bytes = utf16("a\r\nZoë 🔑\n", little);
            assert_eq!(
                utf16_text(&bytes).expect("UTF-16").expect("valid").as_str(),
                "a\r\nZoë 🔑\n"
            );
        }
        assert!(utf16_text(b"plain").is_none());
        assert!(utf16_text(b"\xEF\xBB\xBFplain").is_none());
    }

    #[test]
    fn broken_utf16_says_where() {
        let mut odd = utf16("a\nb\n", true);
        odd.push(0);
        assert_eq!(
            utf16_text(&odd).expect("UTF-16").expect_err("odd").line,
            Some(3)
        );
        let mut lone = utf16("a\n", true);
        lone.extend([0x00, 0xD8, b'b', 0]);
        assert_eq!(
            utf16_text(&lone)
                .expect("UTF-16")
                .expect_err("lone")
                .to_string(),
            "line 2: the file is UTF-16 but has half a character (U+D800 alone); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")"
        );
    }

    #[test]
    fn lines_drop_marks_and_breaks_and_name_bad_bytes() {
        let lines = text_lines(b"\xEF\xBB\xBFa\r\n\xEF\xBB\xBFb\nJos\xE9\n").expect("UTF-8");
        assert_eq!(lines[0], (1, Ok("a".into())));
        assert_eq!(lines[1], (2, Ok("b".into())));
        assert_eq!(
            lines[2].1.as_ref().expect_err("not UTF-8").to_string(),
            "line 3: byte 4 is not UTF-8 (0xE9); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")"
        );
        assert_eq!(lines[3], (4, Ok(String::new())));
        let lines = text_lines(&utf16("x\r\ny", false)).expect("UTF-16");
        assert_eq!(lines, [(1, Ok("x".into())), (2, Ok("y".into()))]);
    }

    #[test]
    fn invalid_utf8_counts_bytes_from_the_line_start() {
        let text = b"ab\ncd\xC3(\n";
        assert_eq!(
            invalid_utf8(text, 5).to_string(),
            "line 2: byte 3 is not UTF-8 (0xC3); save the file as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")"
        );
    }
}
