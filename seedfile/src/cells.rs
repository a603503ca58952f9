//! Rules on the text of one field that hold in every format: no character a person cannot see.
//!
//! A value with an invisible character looks right and matches nothing: a byte order mark that
//! Notepad put before the first UPN of a users file, a zero-width space pasted from a web page,
//! a no-break space from a spreadsheet. The targets take such characters as part of the value
//! (a UPN with a byte order mark is no user they know), so they are problems wherever they are.

use unicode_general_category::{GeneralCategory, get_general_category};

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
