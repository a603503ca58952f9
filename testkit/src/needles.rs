//! The forms a secret can take in text (Base32, hex, Base64, Rust's `Debug` of bytes, at every
//! byte alignment, in either letter case), to prove that a log, a message or an answer holds it
//! in none of them. Every 16-character window of every form is searched, not just whole forms,
//! so a truncated or embedded secret is found too (16 Base32 characters are 80 bits, 16 hex
//! digits 64: none turns up by chance).

use std::collections::{BTreeMap, HashMap};

use data_encoding::{BASE32_NOPAD, BASE64_NOPAD, BASE64URL_NOPAD, Encoding, HEXLOWER, HEXUPPER};

/// Length of the windows that are searched.
const WINDOW: usize = 16;

/// The searchable forms of one secret.
#[derive(Debug, Clone)]
pub struct Needles {
    label: String,
    forms: Vec<(String, String)>,
}

/// Every alignment of `bytes` within a `group`-byte encoding unit, encoded, in both cases.
fn aligned(
    form: &str,
    enc: &Encoding,
    group: usize,
    bytes: &[u8],
    out: &mut Vec<(String, String)>,
) {
    for skip in 0..group.min(bytes.len()) {
        let rest = &bytes[skip..];
        let whole = rest.len() - rest.len() % group;
        if whole == 0 {
            continue;
        }
        let text = enc.encode(&rest[..whole]);
        out.push((
            format!("{form} (from byte {skip})"),
            text.to_ascii_lowercase(),
        ));
        out.push((format!("{form} (from byte {skip})"), text));
    }
}

/// Rust's `Debug` of the bytes: `[49, 50, ...]`, `{:02x?}` and `{:#04x?}`-like lists.
fn debug_lists(bytes: &[u8], out: &mut Vec<(String, String)>) {
    let dec: Vec<String> = bytes.iter().map(u8::to_string).collect();
    out.push(("Debug bytes".into(), dec.join(", ")));
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("Debug hex bytes".into(), hex.join(", ")));
    let hex0x: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    out.push(("Debug 0x bytes".into(), hex0x.join(", ")));
}

impl Needles {
    /// A token secret (raw bytes, at least 10 of them).
    pub fn secret(label: &str, bytes: &[u8]) -> Self {
        assert!(
            bytes.len() >= 10,
            "too short to search for without false alarms"
        );
        let mut forms = Vec::new();
        aligned("Base32", &BASE32_NOPAD, 5, bytes, &mut forms);
        aligned("Base64", &BASE64_NOPAD, 3, bytes, &mut forms);
        aligned("Base64url", &BASE64URL_NOPAD, 3, bytes, &mut forms);
        forms.push(("hex".into(), HEXLOWER.encode(bytes)));
        forms.push(("HEX".into(), HEXUPPER.encode(bytes)));
        debug_lists(bytes, &mut forms);
        Self {
            label: label.to_string(),
            forms,
        }
    }

    /// A Base32 secret as the API carries it.
    pub fn base32(label: &str, text: &str) -> Self {
        let bytes = BASE32_NOPAD
            .decode(text.trim_end_matches('=').to_ascii_uppercase().as_bytes())
            .expect("Base32");
        Self::secret(label, &bytes)
    }

    /// A PIN or password (at least 16 characters, so that it is searched as it is): the text
    /// itself, and its bytes in every encoding.
    pub fn text(label: &str, text: &str) -> Self {
        assert!(
            text.len() >= WINDOW,
            "use a PIN of at least {WINDOW} characters"
        );
        let mut needles = Self::secret(label, text.as_bytes());
        needles.forms.push(("text".into(), text.to_string()));
        needles
    }

    /// The secret's label.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Every window of every form of `secrets`, by window length (forms shorter than a window are
/// searched whole), each with the secret and form it belongs to.
fn index(secrets: &[Needles]) -> BTreeMap<usize, HashMap<Vec<u8>, (String, String)>> {
    let mut by_len: BTreeMap<usize, HashMap<Vec<u8>, (String, String)>> = BTreeMap::new();
    for s in secrets {
        for (form, text) in &s.forms {
            let bytes = text.as_bytes();
            let width = WINDOW.min(bytes.len());
            for w in bytes.windows(width) {
                by_len
                    .entry(width)
                    .or_default()
                    .entry(w.to_vec())
                    .or_insert_with(|| (s.label.clone(), form.clone()));
            }
        }
    }
    by_len
}

/// The first window of a secret in `text`, with some context.
fn search(
    index: &BTreeMap<usize, HashMap<Vec<u8>, (String, String)>>,
    text: &str,
) -> Option<String> {
    let bytes = text.as_bytes();
    for (&width, needles) in index {
        if bytes.len() < width {
            continue;
        }
        for (at, w) in bytes.windows(width).enumerate() {
            if let Some((label, form)) = needles.get(w) {
                let from = at.saturating_sub(80);
                let to = (at + width + 80).min(bytes.len());
                return Some(format!(
                    "{label} as {form}: {:?} in …{}…",
                    String::from_utf8_lossy(w),
                    String::from_utf8_lossy(&bytes[from..to])
                ));
            }
        }
    }
    None
}

/// Where in `haystack` one of `secrets` shows, if one does: checked as written and with spaces
/// and dashes removed (a secret printed in groups).
pub fn find(secrets: &[Needles], haystack: &str) -> Option<String> {
    let index = index(secrets);
    if let Some(found) = search(&index, haystack) {
        return Some(found);
    }
    let compact: String = haystack
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    search(&index, &compact).map(|f| format!("{f} (groups joined)"))
}

/// Asserts that no secret shows in `haystack` (described by `what`).
#[track_caller]
pub fn assert_no_secret(secrets: &[Needles], what: &str, haystack: &str) {
    if let Some(found) = find(secrets, haystack) {
        panic!("a secret leaked into {what}: {found}");
    }
}

/// Asserts that the secret does show in `haystack`: the search itself works.
#[track_caller]
pub fn assert_found(secret: &Needles, what: &str, haystack: &str) {
    assert!(
        find(std::slice::from_ref(secret), haystack).is_some(),
        "{} should be in {what}, but the search did not find it",
        secret.label
    );
}
