//! The rules each target enforces on uploaded tokens, checked before anything leaves the machine.
//!
//! Sources: the targets' public documentation (summarised in docs/seeding.md). Every rule yields a [`Problem`] whose
//! reason is one fixed sentence (tests pin them), so that a refused write or a `seedfile check`
//! tells the same thing the target would, with the row it concerns. Rules on the *text* of a
//! file (Base32 alphabet, `=` padding, header) belong to the readers, which see the text; the
//! rules here see only records.
//!
//! | rule | Azure | Graph | privacyIDEA | Any |
//! | --- | --- | --- | --- | --- |
//! | serial non-empty | yes | yes | yes; no `,` or `"`, no `#` first | no |
//! | serial not in scientific notation (`1.23457E+06`, a spreadsheet's doing) | yes | yes | yes | yes |
//! | secret non-empty | yes | yes | yes | yes |
//! | secret at least 80 bits (16 Base32 characters) | yes | yes | yes | yes |
//! | secret at most 128 Base32 characters | yes | yes | no | no |
//! | kind | TOTP | TOTP | TOTP, HOTP from counter 0 | any |
//! | hash | SHA-1 | SHA-1, SHA-256 | SHA-1 | any |
//! | digits | 6 | 6 | 6, 8 | 6 to 8 |
//! | TOTP period | 30, 60 | 30, 60 | 30, 60 | > 0 |
//! | upn: the UPN rule (`upn::upn_problem`), no guests | yes | no | no | no |
//! | manufacturer, model non-empty | no | yes | no | no |
//! | serials unique | yes | yes | yes | no |
//! | at most 5 tokens per user | yes | no | no | no |
//! | no cell starting with `=`, `+`, `-`, `@`, tab or carriage return (CSV injection) | yes | no | yes (serial) | no |
//! | no control or invisible characters (format characters, spaces other than U+0020) in serial, user, manufacturer, model | yes | yes | serial only (the rest is not carried) | yes |

use std::collections::HashMap;
use std::fmt;

use crate::cells::{formula_problem, hidden_char_problem};
use crate::record::{Algorithm, Kind, TokenRecord};
use crate::upn::{is_guest, upn_problem};

/// Longest Base32 secret Azure and Graph accept.
pub const MAX_BASE32_SECRET: usize = 128;

/// Most hardware OATH tokens Azure lets one user have.
pub const MAX_TOKENS_PER_USER: usize = 5;

/// Shortest secret accepted, in bytes (80 bits, 16 Base32 characters). RFC 4226 (section 4,
/// R6) requires 128 bits and recommends 160, which is what oathkey generates; a secret under
/// 80 bits is far more likely a typing or copying mistake than a key. The targets'
/// documentation names no minimum (Azure's own sample secret is 128 bits), so this is
/// oathkey's sanity rule, the same for every target.
pub const MIN_SECRET_BYTES: usize = 10;

/// Why a file without a single token is a problem: the upload would do nothing.
const NO_TOKENS: &str = "no tokens: the file has no rows";

/// What kind of problem it is, where a program acts on the kind rather than the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProblemKind {
    /// Something wrong with a row, a value or the file's bytes.
    #[default]
    Content,
    /// The file holds no token at all (fine for a file about to be appended to).
    NoTokens,
}

/// Whose rules to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Azure / Entra ID CSV upload.
    Azure,
    /// Microsoft Graph `hardwareOathDevices`.
    Graph,
    /// privacyIDEA OATH CSV import.
    PrivacyIdea,
    /// No particular importer: basic sanity only (otpauth URIs, PSKC).
    Any,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Azure => "Azure",
            Self::Graph => "Graph",
            Self::PrivacyIdea => "privacyIDEA",
            Self::Any => "any",
        }
    }
}

/// One thing wrong with a file or a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file (the header is line 1 for CSV); `None` without a file.
    pub line: Option<usize>,
    /// The token it concerns, when known.
    pub serial: Option<String>,
    /// What is wrong, as one sentence without a final period.
    pub reason: String,
    /// What kind of problem it is.
    pub kind: ProblemKind,
}

impl Problem {
    /// A problem with a line and a serial, either of which may be unknown or empty.
    pub(crate) fn new(
        line: Option<usize>,
        serial: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            line,
            serial: serial.filter(|s| !s.is_empty()).map(str::to_owned),
            reason: reason.into(),
            kind: ProblemKind::Content,
        }
    }

    /// The file holds no token.
    pub(crate) fn no_tokens() -> Self {
        Self {
            kind: ProblemKind::NoTokens,
            ..Self::new(None, None, NO_TOKENS)
        }
    }

    /// A problem about a whole line or the whole file.
    pub(crate) fn at(line: usize, reason: impl Into<String>) -> Self {
        Self::new(Some(line), None, reason)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.line, &self.serial) {
            (Some(line), Some(serial)) => {
                write!(f, "line {line} (serial {}): ", printable(serial))?
            }
            (Some(line), None) => write!(f, "line {line}: ")?,
            (None, Some(serial)) => write!(f, "serial {}: ", printable(serial))?,
            (None, None) => {}
        }
        f.write_str(&self.reason)
    }
}

/// `text` with control characters escaped, so a message stays on one line.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value quoted for a message: escaped, and cut at 64 characters so a huge field cannot
/// flood the output.
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{:?}...", cut)
    } else {
        format!("{text:?}")
    }
}

/// Checks records against a target's rules. Problems carry the serial but no line; see
/// [`validate_numbered`] for records read from a file.
pub fn validate(target: Target, records: &[TokenRecord]) -> Vec<Problem> {
    let items: Vec<_> = records.iter().map(|r| (None, r)).collect();
    check(target, &items)
}

/// Like [`validate`], for records with their line numbers (as [`crate::Parsed`] holds them):
/// problems carry the line.
pub fn validate_numbered(target: Target, records: &[(usize, TokenRecord)]) -> Vec<Problem> {
    let items: Vec<_> = records.iter().map(|(line, r)| (Some(*line), r)).collect();
    check(target, &items)
}

/// The rules for records that may have lines. Duplicates and the per-user limit are judged
/// in order, so the problem lands on the later row.
pub(crate) fn check(target: Target, items: &[(Option<usize>, &TokenRecord)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut first_seen: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (index, (line, record)) in items.iter().enumerate() {
        let mut report = |reason: String| {
            problems.push(Problem::new(*line, Some(&record.serial), reason));
        };
        for reason in record_rules(target, record) {
            report(reason);
        }
        if target == Target::Any {
            continue;
        }
        if !record.serial.is_empty() {
            match first_seen.get(record.serial.as_str()) {
                Some((_, Some(first_line))) => {
                    report(format!(
                        "duplicate serial number (first on line {first_line})"
                    ));
                }
                Some((first_index, None)) => {
                    report(format!(
                        "duplicate serial number (first in record {})",
                        first_index + 1
                    ));
                }
                None => {
                    first_seen.insert(&record.serial, (index, *line));
                }
            }
        }
        if target == Target::Azure {
            let count = per_user.entry(record.user.to_lowercase()).or_insert(0);
            *count += 1;
            if *count > MAX_TOKENS_PER_USER {
                report(format!(
                    "user {} has more than {MAX_TOKENS_PER_USER} tokens; Azure allows {MAX_TOKENS_PER_USER} per user",
                    shown(&record.user)
                ));
            }
        }
    }
    problems
}

/// The rules that look at one record alone, in a fixed order.
fn record_rules(target: Target, r: &TokenRecord) -> Vec<String> {
    let mut out = Vec::new();
    let name = target.name();
    if target != Target::Any && r.serial.is_empty() {
        out.push("serial number is empty".into());
    }
    let mut user_hidden = false;
    let fields = [
        ("serial number", &r.serial),
        ("user", &r.user),
        ("manufacturer", &r.manufacturer),
        ("model", &r.model),
    ];
    // privacyIDEA's CSV carries the serial alone: what it does not carry cannot trouble it.
    let carried = if target == Target::PrivacyIdea { 1 } else { 4 };
    for (field, text) in &fields[..carried] {
        if let Some(reason) = hidden_char_problem(field, text) {
            user_hidden |= *field == "user";
            out.push(reason);
        }
    }
    if let Some(reason) = scientific_serial(&r.serial) {
        out.push(reason);
    }
    let bytes = r.secret.expose().len();
    if bytes == 0 {
        out.push("secret key is empty".into());
    } else if bytes < MIN_SECRET_BYTES {
        out.push(format!(
            "secret key is too short: {} bits; at least {} bits ({} Base32 characters) are needed, and RFC 4226 asks for 128",
            bytes * 8,
            MIN_SECRET_BYTES * 8,
            MIN_SECRET_BYTES * 8 / 5
        ));
    }
    match target {
        Target::Azure | Target::Graph => {
            // Said in bytes and in the characters they take without padding: a text with
            // leftover characters (206 for 128 bytes) decodes to the same bytes, and its own
            // length is the readers' to report (`base32_text_problem`).
            let len = r.secret.base32_len();
            if len > MAX_BASE32_SECRET {
                out.push(format!(
                    "secret key is {bytes} bytes ({len} Base32 characters); {name} accepts at most {MAX_BASE32_SECRET} characters ({} bytes)",
                    MAX_BASE32_SECRET * 5 / 8
                ));
            }
            if r.kind == Kind::Hotp {
                out.push(format!(
                    "HOTP is not supported; {name} takes TOTP tokens only"
                ));
            }
            match (target, r.algorithm) {
                (_, Algorithm::Sha1) | (Target::Graph, Algorithm::Sha256) => {}
                (Target::Azure, alg) => out.push(format!(
                    "hash {alg} is not supported; Azure CSV takes SHA-1 only (SHA-256 needs the Graph API)"
                )),
                (_, alg) => out.push(format!(
                    "hash {alg} is not supported; Graph takes SHA-1 or SHA-256"
                )),
            }
            if r.kind == Kind::Totp {
                period_30_or_60(r, &mut out);
            }
            if r.digits != 6 {
                out.push(format!(
                    "{}-digit codes are not supported; {name} takes 6 digits only",
                    r.digits
                ));
            }
            // A user with an invisible character is not a UPN either; one problem says it.
            if target == Target::Azure {
                let upn = upn_problem(&r.user)
                    .or_else(|| {
                        is_guest(&r.user).then(|| {
                            format!(
                                "upn {} is a guest account; Azure does not give OATH tokens to guests",
                                shown(&r.user)
                            )
                        })
                    })
                    .filter(|_| !user_hidden);
                let user_said = user_hidden || upn.is_some();
                out.extend(upn);
                let cells = [
                    ("user", &r.user),
                    ("serial number", &r.serial),
                    ("manufacturer", &r.manufacturer),
                    ("model", &r.model),
                ];
                formula_cells(&cells, user_said, &mut out);
            } else {
                if r.manufacturer.trim().is_empty() {
                    out.push("manufacturer is empty; Graph requires it".into());
                }
                if r.model.trim().is_empty() {
                    out.push("model is empty; Graph requires it".into());
                }
            }
        }
        Target::PrivacyIdea => {
            if let Some(reason) = crate::privacyidea::serial_problem(&r.serial) {
                out.push(reason.into());
            }
            // The serial is the only free text privacyIDEA's CSV carries.
            formula_cells(&[("serial number", &r.serial)], false, &mut out);
            if r.algorithm != Algorithm::Sha1 {
                out.push(format!(
                    "hash {} is not supported; privacyIDEA CSV has no hash column (SHA-1 only)",
                    r.algorithm
                ));
            }
            if r.digits != 6 && r.digits != 8 {
                out.push(format!(
                    "{}-digit codes are not supported; privacyIDEA takes 6 or 8 digits",
                    r.digits
                ));
            }
            match r.kind {
                Kind::Totp => period_30_or_60(r, &mut out),
                Kind::Hotp if r.counter != 0 => out.push(format!(
                    "HOTP counter {} cannot be carried; privacyIDEA CSV starts every token at 0",
                    r.counter
                )),
                Kind::Hotp => {}
            }
        }
        Target::Any => {
            if !(6..=8).contains(&r.digits) {
                out.push(format!(
                    "{}-digit codes are not supported; use 6 to 8 digits",
                    r.digits
                ));
            }
            if r.kind == Kind::Totp && r.period == 0 {
                out.push("time interval must be more than 0 seconds".into());
            }
        }
    }
    out
}

/// The formula problems of the cells a CSV target's file carries, `(field, value)`, skipping a
/// cell whose invisible character was reported (a tab first is both), and the user when
/// `user_said` (its problem was already reported).
fn formula_cells(cells: &[(&str, &String)], user_said: bool, out: &mut Vec<String>) {
    for (field, text) in cells {
        if (*field == "user" && user_said) || hidden_char_problem(field, text).is_some() {
            continue;
        }
        out.extend(formula_problem(field, text));
    }
}

/// Why `serial` looks like a number a spreadsheet showed in scientific notation and saved that
/// way (`1.23457E+06`): the digits it stood for are lost, so the serial matches no token.
fn scientific_serial(serial: &str) -> Option<String> {
    let (mantissa, exponent) = serial.trim().split_once(['e', 'E'])?;
    let exponent = exponent.strip_prefix(['+', '-'])?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once(['.', ',']) {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    (mantissa_ok && digits(exponent)).then(|| {
        format!(
            "serial number {} is in scientific notation (a spreadsheet turned it into a number); its digits are lost: take the serial from the original file or the key",
            shown(serial)
        )
    })
}

fn period_30_or_60(r: &TokenRecord, out: &mut Vec<String>) {
    if r.period != 30 && r.period != 60 {
        out.push(format!(
            "time interval {} is not supported; use 30 or 60 seconds",
            r.period
        ));
    }
}
