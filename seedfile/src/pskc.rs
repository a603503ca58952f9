//! PSKC 1.0 (RFC 6030) key containers with plain secrets.
//!
//! One `KeyPackage` per token: `DeviceInfo` (`Manufacturer`, `SerialNo`, `Model`) and a `Key`
//! whose `Id` is the serial, whose `Algorithm` is `urn:ietf:params:xml:ns:keyprov:pskc:totp` or
//! `...:hotp`, with `Issuer` (the manufacturer), `AlgorithmParameters/ResponseFormat`
//! (`Length` = digits, `Encoding="DECIMAL"`), `Data/Secret/PlainValue` (Base64),
//! `Data/Counter` (HOTP) or `Data/TimeInterval` (TOTP), and `UserId` (the UPN).
//!
//! RFC 6030 has no element for the HMAC hash of a TOTP/HOTP key. This crate follows the
//! convention several importers use (privacyIDEA among them): `AlgorithmParameters/Suite`
//! holding `HMAC-SHA1`, `HMAC-SHA256` or `HMAC-SHA512`; always written, and SHA-1 when absent.
//!
//! Reading matches elements by local name, so any namespace prefix works (`pskc:KeyPackage`),
//! ignores whitespace and elements it does not know, takes the serial from `SerialNo` or else
//! the key's `Id`, the user from `Key/UserId` or else `DeviceInfo/UserId`, and the
//! manufacturer from `Manufacturer` or else `Issuer`. Encrypted values (`EncryptedValue`) are
//! refused: this crate holds no key-transport keys. Empty text fields are left out when
//! writing; a record with an empty serial gets the `Id` `key-N`, which reads back as its serial.
//!
//! Memory is bounded: each `KeyPackage` is turned into a record as soon as it closes, only
//! PSKC elements are kept, and nesting and element counts are limited.

use data_encoding::{BASE64, Encoding};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use zeroize::Zeroizing;

use crate::cells::code_point;
use crate::encoding::invalid_utf8;
use crate::read::{LineCounter, Raw, line_at};
use crate::record::{
    Algorithm, AlgorithmNames, DEFAULT_DIGITS, DEFAULT_PERIOD, Kind, Secret, TokenRecord,
};
use crate::validate::{Problem, shown};

/// The PSKC namespace.
pub const PSKC_NAMESPACE: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// Deepest element nesting read; real containers nest six deep.
const MAX_DEPTH: usize = 32;
/// Most elements read from one document.
const MAX_ELEMENTS: usize = 2_000_000;

/// The elements a token is read from; everything else is skipped unseen.
const KEPT: &[&str] = &[
    "KeyContainer",
    "KeyPackage",
    "DeviceInfo",
    "Manufacturer",
    "SerialNo",
    "Model",
    "UserId",
    "Key",
    "Issuer",
    "AlgorithmParameters",
    "Suite",
    "ResponseFormat",
    "Data",
    "Secret",
    "PlainValue",
    "EncryptedValue",
    "Counter",
    "TimeInterval",
];

/// A kept element: just enough of a DOM to read one key package.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: Zeroizing<String>,
    children: Vec<Element>,
    line: usize,
    kept: bool,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |el, name| el.child(name))
    }

    fn text_of(&self, names: &[&str]) -> Option<&str> {
        self.path(names).map(|e| e.text.trim())
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn element(start: &BytesStart<'_>, line: usize) -> Result<Element, String> {
    let name = start.local_name().as_ref().to_owned();
    let kept = KEPT.contains(&name.as_str());
    let mut attrs = Vec::new();
    // Every element's attributes are read, kept or not: a character reference to a character
    // XML 1.0 does not allow makes the whole document not well-formed, wherever it is.
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("XML attribute is not well-formed: {e}"))?;
        let key = attr.key.local_name().as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("XML attribute is not well-formed: {e}"))?;
        if let Some(c) = value.chars().find(|&c| !xml_char(c)) {
            return Err(format!(
                "XML attribute {} has {}, which XML 1.0 does not allow",
                shown_name(&key),
                code_point(c)
            ));
        }
        if kept {
            attrs.push((key, value.into_owned()));
        }
    }
    Ok(Element {
        name,
        attrs,
        text: Zeroizing::new(String::new()),
        children: Vec::new(),
        line,
        kept,
    })
}

pub(crate) fn parse(bytes: &[u8]) -> Raw {
    let mut raw = Raw::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            raw.broken.push(invalid_utf8(bytes, e.valid_up_to()));
            return raw;
        }
    };
    // A character outside XML 1.0's `Char` production makes the document not well-formed
    // (a fatal error in XML terms), wherever it is: such a file was read, and its record could
    // then not be written back (found by fuzzing, seed_pskc). quick-xml does not check this.
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !xml_char(c)) {
        raw.broken.push(Problem::at(
            line_at(bytes, at),
            format!(
                "character {} is not allowed in XML 1.0; the file is damaged or is not XML",
                code_point(c)
            ),
        ));
        return raw;
    }
    if let Err(problem) = walk(text, &mut raw) {
        raw.broken.push(problem);
    }
    raw
}

/// Reads the document, turning each key package into a record as it closes. Stops at the
/// first XML error, keeping the tokens read before it.
fn walk(text: &str, raw: &mut Raw) -> Result<(), Problem> {
    let mut reader = Reader::from_str(text);
    let mut lines = LineCounter::new(text.as_bytes());
    let mut stack: Vec<Element> = Vec::new();
    let mut seen_root = false;
    let mut elements = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            Problem::at(
                line_at(text.as_bytes(), at),
                format!("XML is not well-formed: {e}"),
            )
        })?;
        let line = lines.line_of(offset);
        let (start, empty) = match event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::End(_) => {
                close(&mut stack, raw);
                continue;
            }
            Event::Text(t) => {
                push_text(&mut stack, &t.xml10_content());
                continue;
            }
            Event::CData(t) => {
                push_text(&mut stack, &t.xml10_content());
                continue;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) if !xml_char(c) => {
                        let name: String = r.chars().take(64).collect();
                        return Err(Problem::at(
                            line,
                            format!(
                                "character reference &{name}; is {}, which XML 1.0 does not allow",
                                code_point(c)
                            ),
                        ));
                    }
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| {
                            let name: String = r.chars().take(64).collect();
                            Problem::at(line, format!("unknown XML entity &{name};"))
                        })?
                        .to_owned(),
                    Err(e) => return Err(Problem::at(line, format!("bad XML reference: {e}"))),
                };
                push_text(&mut stack, &resolved);
                continue;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
        };
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(Problem::at(line, "too many XML elements for a seed file"));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(Problem::at(line, "XML is nested too deeply"));
        }
        let el = element(&start, line).map_err(|reason| Problem::at(line, reason))?;
        if !std::mem::replace(&mut seen_root, true) {
            if el.name != "KeyContainer" {
                return Err(Problem::at(
                    line,
                    format!(
                        "not a PSKC document (the root element is <{}>, not <KeyContainer>)",
                        el.name
                    ),
                ));
            }
            match el.attr("Version") {
                Some("1.0") => {}
                Some(v) => raw.warnings.push(Problem::at(
                    line,
                    format!("KeyContainer Version is {}; importers expect 1.0", shown(v)),
                )),
                None => raw.warnings.push(Problem::at(
                    line,
                    "KeyContainer has no Version; importers expect 1.0",
                )),
            }
        }
        stack.push(el);
        if empty {
            close(&mut stack, raw);
        }
    }
    if let Some(open) = stack.last() {
        return Err(Problem::at(
            open.line,
            format!("XML is truncated: <{}> is never closed", open.name),
        ));
    }
    if !seen_root {
        return Err(Problem::at(1, "not a PSKC document (no XML elements)"));
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut().filter(|e| e.kept) {
        top.text.push_str(text);
    }
}

/// Closes the innermost element: a key package becomes a record, a kept element joins its
/// parent, anything else is dropped.
fn close(stack: &mut Vec<Element>, raw: &mut Raw) {
    let Some(el) = stack.pop() else { return };
    if el.name == "KeyPackage" {
        match key_package(&el) {
            Ok(record) => raw.records.push((el.line, record)),
            Err((serial, reason)) => {
                raw.broken
                    .push(Problem::new(Some(el.line), serial.as_deref(), reason));
            }
        }
        return;
    }
    if let Some(parent) = stack.last_mut().filter(|p| p.kept && el.kept) {
        parent.children.push(el);
    }
}

/// Base64 as found in PSKC files: line breaks and other whitespace anywhere, padding optional,
/// stray bits at the end ignored.
fn base64_lenient() -> Option<Encoding> {
    let mut spec = BASE64.specification();
    spec.padding = None;
    spec.check_trailing_bits = false;
    spec.encoding().ok()
}

fn key_package(kp: &Element) -> Result<TokenRecord, (Option<String>, String)> {
    let key = kp
        .child("Key")
        .ok_or_else(|| (None, "KeyPackage has no Key".to_string()))?;
    let nonempty = |t: Option<&str>| t.filter(|t| !t.is_empty()).map(str::to_owned);
    let serial = nonempty(kp.text_of(&["DeviceInfo", "SerialNo"]))
        .or_else(|| nonempty(key.attr("Id").map(str::trim)))
        .unwrap_or_default();
    let fail = |reason: String| (Some(serial.clone()), reason);

    let algorithm_uri = key.attr("Algorithm").unwrap_or_default();
    let kind = match algorithm_uri
        .rsplit([':', '#', '/'])
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("totp") => Kind::Totp,
        Some("hotp") => Kind::Hotp,
        _ => {
            return Err(fail(format!(
                "key algorithm {} is not PSKC HOTP or TOTP",
                shown(algorithm_uri)
            )));
        }
    };
    let algorithm = match key.text_of(&["AlgorithmParameters", "Suite"]) {
        None | Some("") => Algorithm::Sha1,
        Some(suite) => Algorithm::parse_loose(suite).ok_or_else(|| {
            fail(format!(
                "Suite {} is not HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512",
                shown(suite)
            ))
        })?,
    };
    let response = key.path(&["AlgorithmParameters", "ResponseFormat"]);
    if let Some(encoding) = response.and_then(|r| r.attr("Encoding"))
        && !encoding.trim().eq_ignore_ascii_case("DECIMAL")
    {
        return Err(fail(format!(
            "response encoding {} is not supported (DECIMAL only)",
            shown(encoding)
        )));
    }
    let digits = match response.and_then(|r| r.attr("Length")) {
        None => DEFAULT_DIGITS,
        Some(len) => len
            .trim()
            .parse::<u8>()
            .map_err(|_| fail(format!("response Length {} is not a number", shown(len))))?,
    };

    let secret_el = key
        .path(&["Data", "Secret"])
        .ok_or_else(|| fail("key has no Data/Secret".into()))?;
    if secret_el.child("EncryptedValue").is_some() {
        return Err(fail("encrypted PSKC is not supported".into()));
    }
    let plain = secret_el
        .child("PlainValue")
        .ok_or_else(|| fail("key has no Secret/PlainValue".into()))?;
    let compact: Zeroizing<String> = Zeroizing::new(
        plain
            .text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .collect(),
    );
    if compact.is_empty() {
        return Err(fail("secret key is empty".into()));
    }
    let bytes = base64_lenient()
        .and_then(|b64| b64.decode(compact.as_bytes()).ok())
        .ok_or_else(|| fail("secret key is not Base64".into()))?;
    let secret = Secret::new(bytes);

    let number = |names: &[&str], what: &str| -> Result<Option<u64>, (Option<String>, String)> {
        key.text_of(names)
            .map(|t| {
                t.parse::<u64>()
                    .map_err(|_| fail(format!("{what} {} is not a number", shown(t))))
            })
            .transpose()
    };
    let counter = number(&["Data", "Counter", "PlainValue"], "Counter")?.unwrap_or(0);
    let period = match number(&["Data", "TimeInterval", "PlainValue"], "TimeInterval")? {
        None => DEFAULT_PERIOD,
        Some(p) => u32::try_from(p).map_err(|_| fail(format!("TimeInterval {p} is too large")))?,
    };

    let user = nonempty(key.text_of(&["UserId"]))
        .or_else(|| nonempty(kp.text_of(&["DeviceInfo", "UserId"])))
        .unwrap_or_default();
    let manufacturer = nonempty(kp.text_of(&["DeviceInfo", "Manufacturer"]))
        .or_else(|| nonempty(key.text_of(&["Issuer"])))
        .unwrap_or_default();
    let model = nonempty(kp.text_of(&["DeviceInfo", "Model"])).unwrap_or_default();
    Ok(TokenRecord {
        serial,
        user,
        secret,
        kind,
        algorithm,
        digits,
        period,
        counter,
        manufacturer,
        model,
    })
}

/// Whether XML 1.0 allows `c`: its `Char` production is tab, the line breaks and everything
/// from U+0020 up but the surrogates (which a Rust `char` never is), U+FFFE and U+FFFF. The
/// reader refuses and the writer never writes anything else, so what one takes the other gives.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// An attribute name for a message, cut short so that a huge one cannot flood it.
fn shown_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Whether XML 1.0 can carry `text`.
fn xml_safe(text: &str) -> bool {
    text.chars().all(xml_char)
}

/// Escapes `text` for XML: `&` and `<` always, `>` too (for `]]>`), quotes in attribute
/// values, and line breaks and tabs as references so they survive whitespace normalization.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// `<name>text</name>` on its own line, or nothing when `text` is empty.
fn text_element(out: &mut String, indent: &str, name: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, text, false);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

pub(crate) fn render(records: &[TokenRecord], out: &mut String) -> Result<(), Problem> {
    for r in records {
        for (field, text) in [
            ("serial", &r.serial),
            ("user", &r.user),
            ("manufacturer", &r.manufacturer),
            ("model", &r.model),
        ] {
            if !xml_safe(text) {
                return Err(Problem::new(
                    None,
                    Some(&r.serial),
                    format!("PSKC (XML 1.0) cannot carry the control characters in the {field}"),
                ));
            }
        }
    }
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<KeyContainer Version=\"1.0\" xmlns=\"");
    out.push_str(PSKC_NAMESPACE);
    out.push_str("\">\n");
    for (index, r) in records.iter().enumerate() {
        out.push_str("  <KeyPackage>\n");
        if !(r.manufacturer.is_empty() && r.serial.is_empty() && r.model.is_empty()) {
            out.push_str("    <DeviceInfo>\n");
            text_element(out, "      ", "Manufacturer", &r.manufacturer);
            text_element(out, "      ", "SerialNo", &r.serial);
            text_element(out, "      ", "Model", &r.model);
            out.push_str("    </DeviceInfo>\n");
        }
        out.push_str("    <Key Id=\"");
        if r.serial.is_empty() {
            out.push_str(&format!("key-{}", index + 1));
        } else {
            escape_into(out, &r.serial, true);
        }
        out.push_str("\" Algorithm=\"");
        out.push_str(PSKC_NAMESPACE);
        out.push_str(match r.kind {
            Kind::Totp => ":totp\">\n",
            Kind::Hotp => ":hotp\">\n",
        });
        text_element(out, "      ", "Issuer", &r.manufacturer);
        out.push_str("      <AlgorithmParameters>\n");
        out.push_str("        <Suite>");
        out.push_str(match r.algorithm {
            Algorithm::Sha1 => "HMAC-SHA1",
            Algorithm::Sha256 => "HMAC-SHA256",
            Algorithm::Sha512 => "HMAC-SHA512",
        });
        out.push_str("</Suite>\n");
        out.push_str(&format!(
            "        <ResponseFormat Length=\"{}\" Encoding=\"DECIMAL\"/>\n",
            r.digits
        ));
        out.push_str("      </AlgorithmParameters>\n");
        out.push_str("      <Data>\n");
        out.push_str("        <Secret>\n          <PlainValue>");
        BASE64.encode_append(r.secret.expose(), out);
        out.push_str("</PlainValue>\n        </Secret>\n");
        match r.kind {
            Kind::Hotp => out.push_str(&format!(
                "        <Counter>\n          <PlainValue>{}</PlainValue>\n        </Counter>\n",
                r.counter
            )),
            Kind::Totp => out.push_str(&format!(
                "        <TimeInterval>\n          <PlainValue>{}</PlainValue>\n        </TimeInterval>\n",
                r.period
            )),
        }
        out.push_str("      </Data>\n");
        text_element(out, "      ", "UserId", &r.user);
        out.push_str("    </Key>\n");
        out.push_str("  </KeyPackage>\n");
    }
    out.push_str("</KeyContainer>\n");
    Ok(())
}
