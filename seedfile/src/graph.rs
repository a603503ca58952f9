//! The Microsoft Graph (beta) bulk body for `hardwareOathDevices`.
//!
//! ```json
//! {
//!   "@context": "#$delta",
//!   "value": [
//!     {
//!       "serialNumber": "0012345",
//!       "manufacturer": "oathkey",
//!       "model": "virtual key",
//!       "secretKey": "JBSWY3DPEHPK3PXP",
//!       "timeIntervalInSeconds": 30,
//!       "hashFunction": "hmacsha1",
//!       "displayName": "alice@contoso.com"
//!     }
//!   ]
//! }
//! ```
//!
//! Assigning a token to a user (`assignTo: {"id": ...}`) takes the user's directory object id,
//! which a seed record does not have. So the UPN goes into `displayName`, where an admin (or a
//! later step that looks the id up) can see whom the token is for, and reading takes the user
//! from `displayName`. There is no digits field (codes are 6 digits) and no HOTP: such records
//! cannot be written, even with `force`. `hashFunction` is always written. Reading ignores
//! fields it does not know (`assignTo`, `id`), and wants `serialNumber` as a string, since a
//! JSON number would lose leading zeros.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::encoding::invalid_utf8;
use crate::read::{LineCounter, Raw};
use crate::record::{Algorithm, AlgorithmNames, DEFAULT_DIGITS, Kind, Secret, TokenRecord};
use crate::text::base32_text_problem;
use crate::validate::{Problem, shown};

#[derive(serde::Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
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
    let body: Body<'_> = match serde_json::from_str(text) {
        Ok(body) => body,
        Err(e) => {
            // serde_json's messages can quote values; say what is wrong in our own words.
            let reason = match e.classify() {
                serde_json::error::Category::Eof => "JSON is truncated",
                serde_json::error::Category::Data => {
                    "the body must be an object with a \"value\" array"
                }
                _ => "not valid JSON",
            };
            raw.broken.push(Problem::at(e.line().max(1), reason));
            return raw;
        }
    };
    let Some(entries) = body.value else {
        raw.broken.push(Problem::at(
            1,
            "no \"value\" array; the body must be {\"@context\": \"#$delta\", \"value\": [...]}",
        ));
        return raw;
    };
    let mut lines = LineCounter::new(bytes);
    for entry in entries {
        let offset = (entry.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let line = lines.line_of(offset);
        match parse_entry(entry, line, &mut raw.warnings) {
            Ok(record) => raw.records.push((line, record)),
            Err((serial, reason)) => {
                raw.broken
                    .push(Problem::new(Some(line), serial.as_deref(), reason));
            }
        }
    }
    raw
}

fn parse_entry(
    entry: &RawValue,
    line: usize,
    warnings: &mut Vec<Problem>,
) -> Result<TokenRecord, (Option<String>, String)> {
    let mut map: Map<String, Value> = serde_json::from_str(entry.get())
        .map_err(|_| (None, "entry is not a JSON object".to_string()))?;
    let serial = match map.remove("serialNumber") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err((
                None,
                "serialNumber must be a string (a number loses leading zeros)".into(),
            ));
        }
        None => return Err((None, "serialNumber is missing".into())),
    };
    let fail = |reason: String| (Some(serial.clone()), reason);
    let mut text = |name: &str| -> Result<Option<String>, (Option<String>, String)> {
        match map.remove(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Null) | None => Ok(None),
            Some(_) => Err(fail(format!("{name} must be a string"))),
        }
    };
    let secret_text =
        Zeroizing::new(text("secretKey")?.ok_or_else(|| fail("secretKey is missing".into()))?);
    let manufacturer = text("manufacturer")?.unwrap_or_default();
    let model = text("model")?.unwrap_or_default();
    let user = text("displayName")?.unwrap_or_default();
    let algorithm = match text("hashFunction")? {
        None => Algorithm::Sha1,
        Some(h) => Algorithm::parse_loose(&h).ok_or_else(|| {
            fail(format!(
                "hashFunction {} is not hmacsha1 or hmacsha256",
                shown(&h)
            ))
        })?,
    };
    let period = match map.remove("timeIntervalInSeconds") {
        Some(Value::Number(n)) => {
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    fail("timeIntervalInSeconds must be a whole number of seconds".into())
                })?
        }
        Some(_) => {
            return Err(fail(
                "timeIntervalInSeconds must be a whole number of seconds".into(),
            ));
        }
        None => return Err(fail("timeIntervalInSeconds is missing".into())),
    };
    let secret = Secret::from_base32(&secret_text).map_err(fail)?;
    if let Some(reason) = base32_text_problem(&secret_text, &secret, "Graph") {
        warnings.push(Problem::new(Some(line), Some(&serial), reason));
    }
    Ok(TokenRecord {
        serial,
        user,
        secret,
        kind: Kind::Totp,
        algorithm,
        digits: DEFAULT_DIGITS,
        period,
        counter: 0,
        manufacturer,
        model,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    serial_number: &'a str,
    manufacturer: &'a str,
    model: &'a str,
    secret_key: &'a str,
    time_interval_in_seconds: u32,
    hash_function: &'static str,
    display_name: &'a str,
}

#[derive(Serialize)]
struct OutBody<'a> {
    #[serde(rename = "@context")]
    context: &'static str,
    value: Vec<Entry<'a>>,
}

pub(crate) fn render(records: &[TokenRecord], out: &mut String) -> Result<(), Problem> {
    let secrets: Vec<Zeroizing<String>> = records.iter().map(|r| r.secret.base32()).collect();
    let mut value = Vec::with_capacity(records.len());
    for (r, secret) in records.iter().zip(&secrets) {
        let refuse = |reason: String| Err(Problem::new(None, Some(&r.serial), reason));
        let hash_function = match r.algorithm {
            _ if r.kind == Kind::Hotp => return refuse("Graph cannot carry HOTP tokens".into()),
            _ if r.digits != DEFAULT_DIGITS => {
                return refuse(format!(
                    "Graph has no digits field and cannot carry {}-digit codes",
                    r.digits
                ));
            }
            Algorithm::Sha1 => "hmacsha1",
            Algorithm::Sha256 => "hmacsha256",
            Algorithm::Sha512 => return refuse("Graph cannot carry SHA-512".into()),
        };
        value.push(Entry {
            serial_number: &r.serial,
            manufacturer: &r.manufacturer,
            model: &r.model,
            secret_key: secret,
            time_interval_in_seconds: r.period,
            hash_function,
            display_name: &r.user,
        });
    }
    let body = OutBody {
        context: "#$delta",
        value,
    };
    // Sized up front so the buffer holding secrets is not reallocated (leaving copies behind).
    let estimate = 64 + records.len() * 320 + secrets.iter().map(|s| s.len()).sum::<usize>();
    let mut buffer = Zeroizing::new(Vec::with_capacity(estimate));
    serde_json::to_writer_pretty(&mut *buffer, &body)
        .map_err(|e| Problem::new(None, None, format!("JSON encoding failed: {e}")))?;
    let json = std::str::from_utf8(&buffer)
        .map_err(|_| Problem::new(None, None, "JSON encoding produced invalid UTF-8"))?;
    out.push_str(json);
    out.push('\n');
    Ok(())
}
