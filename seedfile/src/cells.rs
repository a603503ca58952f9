//! Rules on the text of one field: no character a person cannot see (every format), and no
//! formula in a CSV cell.
//!
//! A value with an invisible character looks right and matches nothing: a byte order mark that
//! Notepad put before the first UPN of a users file, a zero-width space pasted from a web page,
//! a no-break space from a spreadsheet. The targets take such characters as part of the value
//! (a UPN with a byte order mark is no user they know), so they are problems wherever they are.
//!
//! Spreadsheet programs run a cell that starts with `=`, `+`, `-` or `@`, or with a tab or a
//! carriage return (OWASP's list for CSV injection), as a formula, and admins open seed files in
//! Excel. The usual defence, a leading `'`, would change the value the importer receives (Azure
//! matches UPNs and serials exactly), so such cells are refused instead: a problem for the CSV
//! targets, and never written to a CSV file, forced or not.

use unicode_general_category::{GeneralCategory, get_general_category};

use crate::validate::shown;

/// The character that makes spreadsheet programs run `text` as a formula, if it starts with
/// one (after plain spaces, which they skip).
fn formula_start(text: &str) -> Option<char> {
    let first = text.trim_start_matches(' ').chars().next()?;
    matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r').then_some(first)
}

fn char_name(c: char) -> String {
    match c {
        '\t' => "a tab".into(),
        '\r' => "a carriage return".into(),
        c => format!("'{c}'"),
    }
}

/// Why `text`, the value of `field`, is a problem in a CSV file: it would run as a formula.
pub(crate) fn formula_problem(field: &str, text: &str) -> Option<String> {
    let c = formula_start(text)?;
    Some(format!(
        "{field} {} starts with {}, which spreadsheet programs run as a formula (CSV injection); change it",
        shown(text),
        char_name(c)
    ))
}

/// Why a CSV writer (`format`, "Azure CSV") does not write `text` as the value of `field`.
pub(crate) fn formula_refusal(format: &str, field: &str, text: &str) -> Option<String> {
    let c = formula_start(text)?;
    Some(format!(
        "{format} cannot carry a {field} starting with {}: spreadsheet programs would run it as a formula (CSV injection), and the importer needs the exact value, so no leading ' can make it safe; change it",
        char_name(c)
    ))
}

/// Whether `c` is invisible or a control character: Unicode's control (Cc) and format (Cf)
/// characters, the line and paragraph separators, and every space separator but the plain
/// space (U+0020).
fn is_hidden(c: char) -> bool {
    match get_general_category(c) {
        GeneralCategory::Control
        | GeneralCategory::Format
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => true,
        GeneralCategory::SpaceSeparator => c != ' ',
        _ => false,
    }
}

/// `c` as `U+0002`.
pub(crate) fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// A name people may recognise for the invisible characters met in practice.
fn name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{FEFF}' => "byte order mark",
        '\u{200B}' => "zero width space",
        '\u{200C}' => "zero width non-joiner",
        '\u{200D}' => "zero width joiner",
        '\u{2060}' => "word joiner",
        '\u{00A0}' => "no-break space",
        '\u{202F}' => "narrow no-break space",
        '\u{2000}'..='\u{200A}' | '\u{205F}' | '\u{3000}' => "a space of another width",
        '\u{00AD}' => "soft hyphen",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' => {
            "bidirectional text control"
        }
        '\u{2028}' => "line separator",
        '\u{2029}' => "paragraph separator",
        _ => return None,
    })
}

/// Why `text`, the value of `field` ("user", "serial number"...), is a problem because of a
/// character nobody can see, naming the first such character.
pub(crate) fn hidden_char_problem(field: &str, text: &str) -> Option<String> {
    let c = text.chars().find(|&c| is_hidden(c))?;
    Some(if c.is_control() {
        format!("{field} has a control character {}", code_point(c))
    } else if let Some(name) = name(c) {
        format!(
            "{field} has an invisible character {} ({name})",
            code_point(c)
        )
    } else {
        format!("{field} has an invisible character {}", code_point(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_found_after_spaces_only() {
        for (text, start) in [
            ("=1+1", Some('=')),
            ("  +1", Some('+')),
            ("-x", Some('-')),
            ("@SUM(A1)", Some('@')),
            ("\t=1", Some('\t')),
            ("\r1", Some('\r')),
            ("a=1", None),
            ("0012345", None),
            ("", None),
            ("\u{a0}=1", None),
        ] {
            assert_eq!(formula_start(text), start, "{text:?}");
        }
        assert_eq!(
            formula_refusal("Azure CSV", "model", "\t=1").as_deref(),
            Some(
                "Azure CSV cannot carry a model starting with a tab: spreadsheet programs would run it as a formula (CSV injection), and the importer needs the exact value, so no leading ' can make it safe; change it"
            )
        );
    }

    #[test]
    fn hidden_characters_are_found_and_named() {
        assert_eq!(hidden_char_problem("user", "alice@contoso.com"), None);
        assert_eq!(hidden_char_problem("user", "Zoë Ünal 🔑"), None);
        assert_eq!(
            hidden_char_problem("user", "a\tb"),
            Some("user has a control character U+0009".into())
        );
        assert_eq!(
            hidden_char_problem("model", "a\u{2029}"),
            Some("model has an invisible character U+2029 (paragraph separator)".into())
        );
        assert_eq!(
            hidden_char_problem("model", "a\u{3000}b"),
            Some("model has an invisible character U+3000 (a space of another width)".into())
        );
    }
}
