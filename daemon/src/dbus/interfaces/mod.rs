//! The two interfaces: `org.oathkey.Manager1` (one object) and `org.oathkey.Key1` (one object
//! per key). Every method calls the service core, which does the authorization; polkit is
//! asked in addition for the verbs it has actions for.

//!
//! # Layout
//! - this file: object paths and the conversions between the service's types and D-Bus values;
//! - [`manager`]: the `org.oathkey.Manager1` interface;
//! - [`key`]: the `org.oathkey.Key1` interface, one object per key.

mod key;
mod manager;

use std::collections::HashMap;

use oathkey_protocol::types::{Code, Settings, TokenInfo};
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant as OwnedValue, Variant as Value};

use super::error::DbusError;

pub use key::{KeyObject, KeyObjectSignals};
pub use manager::{Manager, ManagerSignals};

/// Where the manager lives.
pub const MANAGER_PATH: &str = "/org/oathkey/Daemon1/Manager";
/// Where key objects live.
pub const KEYS_PATH: &str = "/org/oathkey/Daemon1/Keys";

/// The object path of a key: stable while it stays plugged in.
pub fn key_path(id: &str) -> OwnedObjectPath {
    let element: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // Key ids are hex digits and '-': always a valid path element once mapped.
    OwnedObjectPath::try_from(format!("{KEYS_PATH}/{element}"))
        .unwrap_or_else(|_| OwnedObjectPath::from(ObjectPath::from_static_str_unchecked(KEYS_PATH)))
}

type Dict = HashMap<String, OwnedValue>;

pub(super) fn value<'a>(v: impl Into<Value<'a>>) -> OwnedValue {
    // Plain values (strings, numbers, booleans) always convert.
    v.into()
        .try_into()
        .unwrap_or_else(|_| OwnedValue::from(0u8))
}

pub(super) fn token_dict(t: &TokenInfo) -> Dict {
    let mut d = Dict::new();
    d.insert("key".into(), value(t.key.as_str()));
    d.insert("name".into(), value(t.name.as_str()));
    d.insert("serial".into(), value(t.serial.clone().unwrap_or_default()));
    d.insert("account".into(), value(t.account.as_str()));
    d.insert("period".into(), value(t.period));
    d.insert("kind".into(), value(enum_name(&t.kind)));
    if let Some(a) = t.algorithm {
        d.insert("algorithm".into(), value(enum_name(&a)));
    }
    if let Some(touch) = t.touch {
        d.insert("touch".into(), value(touch));
    }
    d
}

pub(super) fn code_dict(c: &Code) -> Dict {
    let mut d = token_dict(&c.token);
    d.insert("code".into(), value(c.code.as_str()));
    d.insert("digits".into(), value(c.digits));
    if let (Some(from), Some(until)) = (c.valid_from, c.valid_until) {
        d.insert("valid_from".into(), value(from));
        d.insert("valid_until".into(), value(until));
    }
    d
}

pub(super) fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn settings_dict(s: &Settings) -> HashMap<String, bool> {
    let mut d = HashMap::new();
    for (name, v) in [
        ("keyboard", s.keyboard),
        ("u2f", s.u2f),
        ("key_press", s.key_press),
    ] {
        if let Some(v) = v {
            d.insert(name.to_string(), v);
        }
    }
    d
}

pub(super) fn dict_str(
    d: &HashMap<String, OwnedValue>,
    k: &str,
) -> Result<Option<String>, DbusError> {
    d.get(k)
        .map(|v| {
            String::try_from(
                v.try_clone()
                    .map_err(|e| DbusError::InvalidParams(e.to_string()))?,
            )
            .map_err(|_| DbusError::InvalidParams(format!("{k} must be a string")))
        })
        .transpose()
}

pub(super) fn dict_u32(d: &HashMap<String, OwnedValue>, k: &str) -> Result<Option<u32>, DbusError> {
    let Some(v) = d.get(k) else { return Ok(None) };
    match &**v {
        Value::U32(n) => Ok(Some(*n)),
        Value::U8(n) => Ok(Some(u32::from(*n))),
        Value::U16(n) => Ok(Some(u32::from(*n))),
        Value::I32(n) if *n >= 0 => Ok(Some(*n as u32)),
        Value::U64(n) => u32::try_from(*n)
            .map(Some)
            .map_err(|_| DbusError::InvalidParams(format!("{k} is too large"))),
        Value::I64(n) if *n >= 0 => u32::try_from(*n)
            .map(Some)
            .map_err(|_| DbusError::InvalidParams(format!("{k} is too large"))),
        _ => Err(DbusError::InvalidParams(format!("{k} must be a number"))),
    }
}

pub(super) fn dict_bool(
    d: &HashMap<String, OwnedValue>,
    k: &str,
) -> Result<Option<bool>, DbusError> {
    match d.get(k).map(|v| &**v) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(DbusError::InvalidParams(format!("{k} must be a boolean"))),
    }
}

pub(super) fn parse_enum<T: serde::de::DeserializeOwned>(
    k: &str,
    s: Option<String>,
) -> Result<Option<T>, DbusError> {
    s.map(|s| {
        serde_json::from_value(serde_json::Value::String(s.clone()))
            .map_err(|_| DbusError::InvalidParams(format!("{k}: unknown value {s:?}")))
    })
    .transpose()
}
