//! JSON read strictly: an object that repeats a member is refused.
//!
//! serde_json keeps the last of repeated members, so `{"method":"hello","method":"tokens.delete"}`
//! runs `tokens.delete`, while anything that looked at the first `method` (a log line, a proxy
//! filtering by method, a person reading the request) saw `hello`. RFC 8259 leaves repeated
//! names undefined; a request that means two things is refused instead of guessed at.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text` as one JSON value, refusing repeated members in any object at any depth.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The seed that builds a [`Value`] strictly.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Not finite cannot come out of JSON text; null as serde_json's own Value does.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "member {name:?} appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Strict)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// Deserializes a [`Value`] strictly (for use inside derived types).
#[derive(Debug)]
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Strict.deserialize(d).map(StrictValue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        for text in [
            r#"{"method":"hello","method":"tokens.delete"}"#,
            r#"{"params":{"token":"a","token":"b"}}"#,
            r#"[{"a":1},{"b":[{"c":1,"c":1}]}]"#,
            // Members equal after unescaping are the same member.
            r#"{"id":1,"\u0069d":2}"#,
        ] {
            let err = from_str(text).expect_err(text).to_string();
            assert!(err.contains("appears twice"), "{text}: {err}");
        }
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"codes.get","params":{"token":"a@b.c","at":59}}"#,
            r#"[1, -2, 3.5, 1e300, "x\n", true, false, null, {}, []]"#,
            r#"{"a":{"a":{"a":1}}}"#,
            r#"18446744073709551615"#,
            r#"-9223372036854775808"#,
        ] {
            let strict = from_str(text).expect(text);
            let loose: Value = serde_json::from_str(text).expect(text);
            assert_eq!(strict, loose, "{text}");
        }
        assert_eq!(
            from_str(r#" {"k": [1]} "#).expect("spaces"),
            json!({"k": [1]})
        );
    }

    #[test]
    fn trailing_text_and_broken_json_are_errors() {
        assert!(from_str(r#"{"a":1} x"#).is_err());
        assert!(from_str(r#"{"a":1"#).is_err());
        assert!(from_str("").is_err());
    }
}
