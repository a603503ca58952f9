//! JSON-RPC 2.0 envelopes: one request, response or notification per line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;

/// A request id: a number or a string (JSON-RPC also allows null, for unidentifiable requests).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// Numeric id.
    Number(i64),
    /// String id.
    String(String),
    /// Null: only in answers to requests whose id could not be read.
    Null,
}

/// A request from a client. Without an id it is a notification and gets no answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The method.
    pub method: String,
    /// Parameters: an object (or absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Request id; absent for notifications. `"id": null` is a request (answered with a null
    /// id), as JSON-RPC 2.0 says, so a missing id and a null one are told apart.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_id"
    )]
    pub id: Option<Id>,
}

fn present_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    Id::deserialize(d).map(Some)
}

impl Request {
    /// A request with an id.
    pub fn new(id: i64, method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: Some(Id::Number(id)),
        }
    }
}

/// The error member of a failed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Stable numeric code ([`ErrorCode`]).
    pub code: i64,
    /// A message for people.
    pub message: String,
    /// Structured details; always carries `"name"`, the stable error name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with the given code and message; `data.name` carries the code's name.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: Some(serde_json::json!({ "name": code.name() })),
        }
    }

    /// The typed code, if it is one this version knows.
    pub fn kind(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind() {
            Some(kind) => write!(f, "{} ({kind})", self.message),
            None => write!(f, "{} (error {})", self.message, self.code),
        }
    }
}

impl std::error::Error for ErrorObject {}

/// A response: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The request's id.
    pub id: Id,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl Response {
    /// A success.
    pub fn ok(id: Id, result: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(id: Id, error: ErrorObject) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }

    /// The result, or the error.
    pub fn into_result(self) -> Result<Value, ErrorObject> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => Ok(v),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// A message from the daemon without an id: an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The event's method name.
    pub method: String,
    /// The event.
    pub params: Value,
}

/// Anything a client may read from the daemon.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Incoming {
    /// An answer to a request.
    Response(Response),
    /// An event.
    Notification(Notification),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_wire_form() {
        let r = Request::new(1, "hello", None);
        assert_eq!(
            serde_json::to_value(&r).expect("encodes"),
            json!({"jsonrpc": "2.0", "method": "hello", "id": 1})
        );
        let back: Request =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"x","id":"a"}"#).expect("decodes");
        assert_eq!(back.id, Some(Id::String("a".into())));
        let note: Request =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"x"}"#).expect("decodes");
        assert_eq!(note.id, None);
        let null: Request =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"x","id":null}"#).expect("decodes");
        assert_eq!(
            null.id,
            Some(Id::Null),
            "a null id is a request, not a notification"
        );
    }

    #[test]
    fn error_responses_carry_code_and_name() {
        let r = Response::err(
            Id::Number(3),
            ErrorObject::new(ErrorCode::TouchTimeout, "not touched"),
        );
        let v = serde_json::to_value(&r).expect("encodes");
        assert_eq!(v["error"]["code"], json!(-32004));
        assert_eq!(v["error"]["data"]["name"], json!("TouchTimeout"));
        assert!(v.get("result").is_none());
        let e = r.into_result().expect_err("an error");
        assert_eq!(e.kind(), Some(ErrorCode::TouchTimeout));
        assert_eq!(e.to_string(), "not touched (TouchTimeout)");
    }

    #[test]
    fn incoming_tells_responses_from_events() {
        let r: Incoming =
            serde_json::from_str(r#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#).expect("decodes");
        assert!(matches!(r, Incoming::Response(_)));
        let n: Incoming = serde_json::from_str(
            r#"{"jsonrpc":"2.0","method":"event","params":{"type":"key_removed","key":"k"}}"#,
        )
        .expect("decodes");
        assert!(matches!(n, Incoming::Notification(_)));
    }
}
