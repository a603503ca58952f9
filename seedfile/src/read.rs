//! Reading seed files: [`read`] any of the five formats into records and problems, and
//! [`detect`] which format some bytes are in.
//!
//! Readers never panic and never stop at the first problem: a row that cannot be read becomes
//! a [`Problem`] with its line, the rows around it are still read, and then the target's rules
//! ([`mod@crate::validate`]) are checked on what was read. So [`Parsed`] holds:
//! - every row that could be turned into a record, even one that breaks a target rule (the
//!   problem says so; a caller that writes it elsewhere decides whether to force);
//! - a problem for every row that could not be read (that row is not in `records`), every
//!   rule a row's text breaks (Base32 alphabet, padding, a wrong header) and every rule a
//!   record breaks.
//!
//! Every reader takes bytes, tolerates a UTF-8 byte order mark, CRLF line endings and blank
//! lines, and reports invalid UTF-8 as a problem with its line and byte. A file that starts
//! with a UTF-16 byte order mark (Excel's "Unicode text", Notepad's "Unicode") is decoded and
//! read, and has one problem more that says to save it as UTF-8 ([`UTF16`]): the targets'
//! documentation shows UTF-8 files, and rows appended to it would be UTF-8. A file that is
//! clearly of another format ([`content_of`]: PSKC read as CSV, JSON, otpauth URIs) is one
//! problem that says what it is, not a problem per line. A file read without a single token,
//! and without a row that could not be read, has a problem of kind [`crate::ProblemKind::NoTokens`]. Input over
//! [`MAX_INPUT`] is refused whole.
//!
//! [`detect`] goes by content alone; [`guess`] adds what the caller knows when the content
//! does not tell (the target the file is for, the file's name), so that a broken file meant
//! for Azure still gets its row-level problems rather than "unknown format".

use zeroize::Zeroizing;

use crate::encoding::{strip_bom, utf16_text};
use crate::format::Format;
use crate::record::{DEFAULT_PERIOD, Kind, TokenRecord};
use crate::validate::{Problem, Target, validate_numbered};
use crate::{azure, graph, otpauth, privacyidea, pskc};

/// Largest input a reader looks at (64 MiB): seed files are a few hundred bytes per token,
/// so anything larger is not a seed file, and refusing it bounds memory and time.
pub const MAX_INPUT: usize = 64 * 1024 * 1024;

/// What a reader found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The records read, each with the 1-based line it starts on.
    pub records: Vec<(usize, TokenRecord)>,
    /// Everything wrong with the file, in line order (problems without a line last).
    pub problems: Vec<Problem>,
}

impl Parsed {
    /// Whether the file was read without a single problem.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The records without their line numbers.
    pub fn into_records(self) -> Vec<TokenRecord> {
        self.records.into_iter().map(|(_, r)| r).collect()
    }
}

/// What a format reader returns before the target's rules are applied.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    /// Records read, with their lines.
    pub records: Vec<(usize, TokenRecord)>,
    /// Rows (or the whole file) that could not be read: the file does not parse.
    pub broken: Vec<Problem>,
    /// Rows that were read but whose text breaks the format's rules.
    pub warnings: Vec<Problem>,
}

/// Reads `bytes` as `format` and checks the records against the format's own target
/// ([`Format::target`]). Never panics, whatever the bytes.
pub fn read(format: Format, bytes: &[u8]) -> Parsed {
    read_as(format, bytes, format.target())
}

/// Like [`read`], but checks the records against `target`'s rules instead of the format's
/// own (for example a PSKC file that is meant for Azure).
pub fn read_as(format: Format, bytes: &[u8], target: Target) -> Parsed {
    let raw = parse(format, bytes);
    let no_tokens = raw.records.is_empty() && raw.broken.is_empty();
    let mut problems = raw.broken;
    problems.extend(raw.warnings);
    if no_tokens {
        problems.push(Problem::no_tokens());
    }
    problems.extend(validate_numbered(target, &raw.records));
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Parsed {
        records: raw.records,
        problems,
    }
}

/// The problems that make `bytes` unreadable as `format`: rows (or the whole file) that could
/// not be read, a missing or wrong header; not the target's rules on rows that were read, nor
/// rules on a read row's text. Appending to a file ([`crate::WriteMode::Append`]) refuses
/// exactly these, so a caller can tell before it does anything that an append will fail.
pub fn unreadable(format: Format, bytes: &[u8]) -> Vec<Problem> {
    parse(format, bytes).broken
}

/// Reads the format alone: no target rules.
pub(crate) fn parse(format: Format, bytes: &[u8]) -> Raw {
    if bytes.len() > MAX_INPUT {
        return Raw {
            broken: vec![Problem::new(
                None,
                None,
                format!(
                    "file too large ({} bytes; a seed file is at most {} MiB)",
                    bytes.len(),
                    MAX_INPUT / (1024 * 1024)
                ),
            )],
            ..Raw::default()
        };
    }
    // UTF-16 is read (so that its rows get their problems), and is a problem of its own,
    // among those that make the file unreadable: appending UTF-8 rows to it would mix encodings.
    let decoded = match utf16_text(bytes) {
        Some(Ok(text)) => Some(text),
        Some(Err(problem)) => {
            return Raw {
                broken: vec![problem],
                ..Raw::default()
            };
        }
        None => None,
    };
    let bytes = decoded
        .as_ref()
        .map_or_else(|| strip_bom(bytes), |text| text.as_bytes());
    if let Some(reason) = other_format(format, bytes) {
        return Raw {
            broken: vec![Problem::at(1, reason)],
            ..Raw::default()
        };
    }
    let mut raw = match format {
        Format::AzureCsv => azure::parse(bytes),
        Format::Otpauth => otpauth::parse(bytes),
        Format::Pskc => pskc::parse(bytes),
        Format::GraphJson => graph::parse(bytes),
        Format::PrivacyIdeaCsv => privacyidea::parse(bytes),
    };
    // A TOTP token has no counter and an HOTP token no period, but a file may give both (a
    // `counter=` on a totp URI, a PSKC TimeInterval on an HOTP key). The writers write only
    // the one the kind uses, so keeping the other made records change when written and read
    // again (found by fuzzing, seed_otpauth and seed_pskc); it is dropped here.
    for (_, r) in &mut raw.records {
        match r.kind {
            Kind::Totp => r.counter = 0,
            Kind::Hotp => r.period = DEFAULT_PERIOD,
        }
    }
    if decoded.is_some() {
        raw.broken.insert(0, Problem::at(1, UTF16));
    }
    raw
}

/// Why a UTF-16 file is a problem although its rows are read.
pub const UTF16: &str = "file is saved as UTF-16; its rows were read, but save it as UTF-8 to upload or append to it (in Excel: \"CSV UTF-8 (comma delimited)\")";

/// What a file clearly is, by its content: a seed file of a known format, or XML or JSON of
/// another kind. See [`content_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A seed file of this format.
    Seed(Format),
    /// XML (or HTML) that is no PSKC.
    Xml,
    /// JSON that is no Graph body.
    Json,
}

impl std::fmt::Display for Content {
    /// "a PSKC (XML) seed file", "an XML file", "a JSON file".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seed(format) => write!(f, "{} {} seed file", format.article(), format.title()),
            Self::Xml => f.write_str("an XML file"),
            Self::Json => f.write_str("a JSON file"),
        }
    }
}

/// What `bytes` clearly are, when the content says so beyond doubt: what [`detect`] finds,
/// except Graph JSON that does not parse as JSON (a broken file); otherwise markup, or JSON.
/// `None` for anything else (a users file, a damaged CSV).
pub fn content_of(bytes: &[u8]) -> Option<Content> {
    let decoded = match utf16_text(bytes) {
        Some(Ok(text)) => Some(text),
        Some(Err(_)) => return None,
        None => None,
    };
    let bytes = decoded
        .as_ref()
        .map_or_else(|| strip_bom(bytes), |text| text.as_bytes());
    let json = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
    match detect(bytes) {
        Some(Format::GraphJson) if !json() => None,
        Some(format) => Some(Content::Seed(format)),
        None if bytes.trim_ascii_start().starts_with(b"<") => Some(Content::Xml),
        None if json() => Some(Content::Json),
        None => None,
    }
}

/// Why `bytes`, to be read as `format`, are clearly something else ([`content_of`]): one
/// problem that says what the file is, instead of one per line that does not fit.
fn other_format(format: Format, bytes: &[u8]) -> Option<String> {
    // A file that bears its own format's mark is read as that format, whatever else it might
    // look like (a privacyIDEA serial `<KeyContainer`): its reader says what is wrong.
    if bears_mark(format, &head(bytes)) {
        return None;
    }
    let content = content_of(bytes)?;
    // XML read as PSKC and JSON read as Graph JSON: their readers say what is missing.
    match (content, format) {
        (Content::Xml, Format::Pskc) | (Content::Json, Format::GraphJson) => return None,
        (Content::Seed(found), _) if found == format => return None,
        _ => {}
    }
    let hint = match content {
        Content::Seed(other) => format!(": its format is {other}"),
        Content::Xml | Content::Json => String::new(),
    };
    Some(format!(
        "this is {content}, not {} {} file{hint}",
        format.article(),
        format.title()
    ))
}

/// Enough of a file to see past an XML prolog, comments or a long first line.
const LOOK: usize = 64 * 1024;

/// The start of a file as text (UTF-16 decoded, no byte order mark, invalid bytes replaced),
/// for telling formats apart. It may hold secrets, so it is zeroized when dropped.
fn head(bytes: &[u8]) -> Zeroizing<String> {
    let cut = &bytes[..bytes.len().min(2 * LOOK)];
    // A UTF-16 head cut in the middle of a character is this cut's doing, not the file's.
    let decoded = utf16_text(cut)
        .and_then(Result::ok)
        .or_else(|| utf16_text(&cut[..cut.len() & !1]).and_then(Result::ok));
    let text = decoded.as_ref().map_or(cut, |t| t.as_bytes());
    let text = strip_bom(&text[..text.len().min(LOOK)]);
    Zeroizing::new(String::from_utf8_lossy(text).into_owned())
}

/// The first line of `head` that is neither blank nor a `#` comment, trimmed.
fn first_line(head: &str) -> Option<&str> {
    head.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether `line` is a privacyIDEA row: a third field `totp` or `hotp`.
fn privacyidea_row(line: &str) -> bool {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    fields.len() >= 3
        && (fields[2].eq_ignore_ascii_case("totp") || fields[2].eq_ignore_ascii_case("hotp"))
}

/// Whether `line` is an Azure header, exactly or gone wrong (a column missing or added, `;`
/// or tabs between the names): still an Azure CSV, whose reader says what is wrong with it.
fn azure_header_line(line: &str) -> bool {
    if azure::is_header(line.split(',').map(|f| f.trim().trim_matches('"'))) {
        return true;
    }
    let names: Vec<String> = line
        .split([',', ';', '\t'])
        .map(|f| f.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    names.len() >= 2 && names[0] == "upn" && names[1].starts_with("serial")
}

/// Whether the start of a file bears `format`'s own mark: `<` and a `KeyContainer` (PSKC),
/// `{` (Graph JSON), an `otpauth://` first line, an Azure header first, a privacyIDEA first row.
fn bears_mark(format: Format, head: &str) -> bool {
    let trimmed = head.trim_start();
    let first = first_line(head);
    match format {
        Format::Pskc => trimmed.starts_with('<') && trimmed.contains("KeyContainer"),
        Format::GraphJson => trimmed.starts_with('{'),
        Format::Otpauth => first.is_some_and(|l| {
            l.get(..10)
                .is_some_and(|p| p.eq_ignore_ascii_case("otpauth://"))
        }),
        Format::AzureCsv => first.is_some_and(azure_header_line),
        Format::PrivacyIdeaCsv => first.is_some_and(privacyidea_row),
    }
}

/// Guesses the format from the content: `<` and a `KeyContainer` is PSKC, `{` is Graph JSON
/// (unless the file is no JSON and its first line is a privacyIDEA row whose serial starts
/// with `{`), an `otpauth://` first line is otpauth, the Azure header is Azure CSV, and a
/// first row whose third field is `totp` or `hotp` is privacyIDEA CSV; last, an Azure header
/// gone wrong is Azure CSV. UTF-16 is decoded first. `None` when nothing fits.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let head = head(bytes);
    // Markup without a KeyContainer is not PSKC, but it may still be a row of another format
    // (a privacyIDEA serial starting with `<`): it was `None` at once (found by fuzzing,
    // seed_privacyidea_csv).
    if bears_mark(Format::Pskc, &head) {
        return Some(Format::Pskc);
    }
    if bears_mark(Format::GraphJson, &head) {
        // Graph JSON, unless it is no JSON at all and reads as a privacyIDEA row whose serial
        // starts with `{`; broken JSON that is no such row still goes to the Graph reader, which
        // says where it breaks.
        let whole = utf16_text(bytes).and_then(Result::ok);
        let whole = whole.as_ref().map_or(bytes, |t| t.as_bytes());
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(strip_bom(whole)).is_ok();
        if json || !bears_mark(Format::PrivacyIdeaCsv, &head) {
            return Some(Format::GraphJson);
        }
    }
    let first = first_line(&head)?;
    if bears_mark(Format::Otpauth, &head) {
        return Some(Format::Otpauth);
    }
    if azure::is_header(first.split(',').map(|f| f.trim().trim_matches('"'))) {
        return Some(Format::AzureCsv);
    }
    if bears_mark(Format::PrivacyIdeaCsv, &head) {
        return Some(Format::PrivacyIdeaCsv);
    }
    bears_mark(Format::AzureCsv, &head).then_some(Format::AzureCsv)
}

/// The format of `bytes`: what [`detect`] finds, or else the format of the `target` the file
/// is meant for (Azure: Azure CSV, Graph: Graph JSON, privacyIDEA: privacyIDEA CSV), or else
/// the one its `file_name` suggests (`.csv`: Azure CSV, `.json`: Graph JSON, `.xml`: PSKC).
/// `None` when none of them tells. Reading a broken file in the guessed format gives its
/// problems line by line, where "unknown format" would give none.
pub fn guess(bytes: &[u8], file_name: Option<&str>, target: Option<Target>) -> Option<Format> {
    if let Some(format) = detect(bytes) {
        return Some(format);
    }
    match target {
        Some(Target::Azure) => return Some(Format::AzureCsv),
        Some(Target::Graph) => return Some(Format::GraphJson),
        Some(Target::PrivacyIdea) => return Some(Format::PrivacyIdeaCsv),
        Some(Target::Any) | None => {}
    }
    let extension = file_name?.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(Format::AzureCsv),
        "json" => Some(Format::GraphJson),
        "xml" => Some(Format::Pskc),
        _ => None,
    }
}

/// The 1-based line that byte `offset` of `bytes` is on.
pub(crate) fn line_at(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Counts lines incrementally for readers that walk forward through a file, so finding the
/// line of each of many positions stays linear.
#[derive(Debug)]
pub(crate) struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of `offset`; offsets must not go backwards (an earlier one is answered with
    /// the line last reached).
    pub(crate) fn line_of(&mut self, offset: usize) -> usize {
        let end = offset.min(self.bytes.len());
        if end > self.offset {
            self.line += self.bytes[self.offset..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = end;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect(
                b"\xEF\xBB\xBFUPN, Serial Number,secret key,time interval,manufacturer,model\r\n"
            ),
            Some(Format::AzureCsv)
        );
        assert_eq!(
            detect(b"# tokens\n\notpauth://totp/a:b?secret=JBSWY3DP\n"),
            Some(Format::Otpauth)
        );
        assert_eq!(
            detect(b"<?xml version=\"1.0\"?>\n<pskc:KeyContainer xmlns:pskc=\"x\"/>"),
            Some(Format::Pskc)
        );
        assert_eq!(detect(b"  {\"value\": []}"), Some(Format::GraphJson));
        assert_eq!(
            detect(b"0012345, 3132333435, TOTP, 6, 30\n"),
            Some(Format::PrivacyIdeaCsv)
        );
        assert_eq!(detect(b"<html></html>"), None);
        // A privacyIDEA serial starting with `{`: no JSON, a privacyIDEA row.
        assert_eq!(
            detect(b"{a}12345, 3132333435, TOTP, 6, 30\n"),
            Some(Format::PrivacyIdeaCsv)
        );
        // Broken JSON that is no such row is still Graph JSON, for its reader to explain.
        assert_eq!(detect(b"{\"value\": [\n"), Some(Format::GraphJson));
        assert_eq!(
            detect(b"<7>, 3132333435, totp, 6, 30\n"),
            Some(Format::PrivacyIdeaCsv)
        );
        assert_eq!(detect(b"hello, world"), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(&[0xff, 0xfe, 0x00, 0x41]), None);
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend(
            "otpauth://totp/a:b?secret=JBSWY3DP\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        assert_eq!(detect(&utf16), Some(Format::Otpauth));
    }

    #[test]
    fn line_counter_matches_line_at() {
        let text = b"a\nb\r\n\nccc\nd";
        let mut counter = LineCounter::new(text);
        for offset in 0..=text.len() {
            assert_eq!(counter.line_of(offset), line_at(text, offset), "{offset}");
        }
    }

    #[test]
    fn the_moving_factor_a_kind_does_not_use_is_dropped() {
        let text = b"otpauth://totp/a:b?secret=JBSWY3DP&counter=42\n\
                     otpauth://hotp/a:c?secret=JBSWY3DP&period=60&counter=3\n";
        let parsed = read(Format::Otpauth, text);
        let factors: Vec<_> = parsed
            .records
            .iter()
            .map(|(_, r)| (r.kind, r.counter, r.period))
            .collect();
        assert_eq!(factors, [(Kind::Totp, 0, 30), (Kind::Hotp, 3, 30)]);
    }

    #[test]
    fn too_large_is_one_problem() {
        let big = vec![b'a'; MAX_INPUT + 1];
        let parsed = read(Format::Otpauth, &big);
        assert!(parsed.records.is_empty());
        assert_eq!(parsed.problems.len(), 1);
        assert!(
            parsed.problems[0].reason.starts_with("file too large"),
            "{}",
            parsed.problems[0]
        );
    }
}
