//! The JSON-RPC frontend's translation layer: a method name and JSON params in, the service
//! core's typed call, JSON out. No logic of its own beyond parsing.

use oathkey_protocol::ErrorCode;
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Request, Response};
use oathkey_protocol::types::{KeyParams, method};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::service::{Service, ServiceError};

/// Decodes params; absent params read as `{}`.
fn params<T: DeserializeOwned>(p: Option<Value>) -> Result<T, ServiceError> {
    let value = match p {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        // Named members only: serde would otherwise fill a struct from an array by position,
        // so `["alice"]` would quietly become the first member (a key id), not the token.
        Some(_) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidParams,
                "invalid params: params must be an object with named members",
            ));
        }
    };
    serde_json::from_value(value)
        .map_err(|e| ServiceError::new(ErrorCode::InvalidParams, format!("invalid params: {e}")))
}

/// Methods that take no params accept none, `null`, `{}` or `[]`.
fn no_params(p: &Option<Value>) -> Result<(), ServiceError> {
    match p {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(ServiceError::new(
            ErrorCode::InvalidParams,
            "this method takes no params",
        )),
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, ServiceError> {
    serde_json::to_value(v).map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))
}

/// What a frontend's connection does for the methods that concern the connection itself.
pub trait Session: Send + Sync {
    /// `events.subscribe`: start sending this connection `event` notifications.
    fn subscribe(&self);
}

/// A caller with no connection of its own (in-process callers, tests): subscribing does
/// nothing.
#[derive(Debug)]
pub struct NoSession;

impl Session for NoSession {
    fn subscribe(&self) {}
}

/// Runs one method for `caller`, outside any connection.
pub async fn call(
    service: &Service,
    caller: &Caller,
    name: &str,
    p: Option<Value>,
) -> Result<Value, ServiceError> {
    call_in(service, caller, &NoSession, name, p).await
}

/// Runs one method for `caller` on its connection's `session`.
pub async fn call_in(
    service: &Service,
    caller: &Caller,
    session: &dyn Session,
    name: &str,
    p: Option<Value>,
) -> Result<Value, ServiceError> {
    let key = |p: Option<Value>| params::<KeyParams>(p).map(|k| k.key);
    match name {
        method::HELLO => {
            no_params(&p)?;
            to_value(service.hello(caller))
        }
        method::KEYS_LIST => {
            no_params(&p)?;
            to_value(service.keys(caller))
        }
        method::KEYS_INFO => to_value(service.key_info(caller, key(p)?.as_deref())?),
        method::KEYS_WINK => to_value(service.wink(caller, key(p)?.as_deref()).await?),
        method::KEYS_GET_CONFIG => to_value(service.get_config(caller, key(p)?.as_deref())?),
        method::KEYS_SET_CONFIG => to_value(service.set_config(caller, params(p)?).await?),
        method::KEYS_CLAIM => to_value(service.claim(caller, key(p)?.as_deref())?),
        method::KEYS_RELEASE => to_value(service.release(caller, key(p)?.as_deref())?),
        method::TOKENS_LIST => to_value(service.tokens(caller, key(p)?.as_deref()).await?),
        method::TOKENS_CREATE => to_value(service.create_token(caller, params(p)?).await?),
        method::TOKENS_DELETE => to_value(service.delete_token(caller, params(p)?).await?),
        method::CODES_GET => to_value(service.code(caller, params(p)?).await?),
        method::CODES_ALL => to_value(service.codes(caller, params(p)?).await?),
        method::SEEDS_LIST => to_value(service.seeds_list(caller, params(p)?)?),
        method::SEEDS_EXPORT => to_value(service.seeds_export(caller, params(p)?)?),
        method::SEEDS_MARK_EXPORTED => {
            to_value(service.seeds_mark_exported(caller, params(p)?).await?)
        }
        method::SEEDS_PURGE => to_value(service.seeds_purge(caller, params(p)?).await?),
        method::VIRTUAL_UNPLUG => to_value(service.virtual_unplug(caller, key(p)?.as_deref())?),
        method::VIRTUAL_PLUG => to_value(service.virtual_plug(caller, key(p)?.as_deref()).await?),
        method::EVENTS_SUBSCRIBE => {
            no_params(&p)?;
            session.subscribe();
            Ok(Value::Null)
        }
        method::VIRTUAL_PRESS => to_value(service.virtual_press(caller, key(p)?.as_deref())?),
        other => Err(ServiceError::new(
            ErrorCode::MethodNotFound,
            format!("no method {other:?}; see docs/protocol.md"),
        )),
    }
}

/// A parsed line: what the connection should do with it.
#[derive(Debug)]
pub enum Parsed {
    /// One request.
    Single(Request),
    /// A batch of requests (JSON-RPC 2.0 batch).
    Batch(Vec<Result<Request, Box<Response>>>),
    /// Nothing to run; answer with this error.
    Invalid(Box<Response>),
}

fn invalid(id: Id, code: ErrorCode, message: &str) -> Box<Response> {
    Box::new(Response::err(id, ErrorObject::new(code, message)))
}

/// Checks one JSON value is a JSON-RPC 2.0 request.
fn request(value: Value) -> Result<Request, Box<Response>> {
    let id = match value.get("id") {
        Some(Value::Number(n)) => n.as_i64().map(Id::Number).unwrap_or(Id::Null),
        Some(Value::String(s)) => Id::String(s.clone()),
        _ => Id::Null,
    };
    if !value.is_object() {
        return Err(invalid(
            Id::Null,
            ErrorCode::InvalidRequest,
            "a request must be a JSON object",
        ));
    }
    if value.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid(
            id,
            ErrorCode::InvalidRequest,
            "\"jsonrpc\" must be \"2.0\"",
        ));
    }
    match value.get("id") {
        None | Some(Value::Number(_)) | Some(Value::String(_)) | Some(Value::Null) => {}
        Some(_) => {
            return Err(invalid(
                Id::Null,
                ErrorCode::InvalidRequest,
                "\"id\" must be a number or a string",
            ));
        }
    }
    if let Some(Value::Number(n)) = value.get("id")
        && n.as_i64().is_none()
    {
        return Err(invalid(
            Id::Null,
            ErrorCode::InvalidRequest,
            "numeric ids must be integers",
        ));
    }
    serde_json::from_value::<Request>(value).map_err(|e| {
        invalid(
            id,
            ErrorCode::InvalidRequest,
            &format!("invalid request: {e}"),
        )
    })
}

/// Parses one line.
pub fn parse(line: &str) -> Parsed {
    // Strictly: a request that repeats a member (two `method`s, two `token`s) means two
    // things at once and is refused, not read by its last member.
    let value: Value = match crate::strict_json::from_str(line) {
        Ok(v) => v,
        Err(e) if e.is_data() => {
            return Parsed::Invalid(invalid(
                Id::Null,
                ErrorCode::InvalidRequest,
                &format!("invalid request: {e}"),
            ));
        }
        Err(e) => {
            return Parsed::Invalid(invalid(
                Id::Null,
                ErrorCode::ParseError,
                &format!("not JSON: {e}"),
            ));
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => {
            Parsed::Invalid(invalid(Id::Null, ErrorCode::InvalidRequest, "empty batch"))
        }
        Value::Array(items) => Parsed::Batch(items.into_iter().map(request).collect()),
        other => match request(other) {
            Ok(r) => Parsed::Single(r),
            Err(resp) => Parsed::Invalid(resp),
        },
    }
}

/// Runs a request outside any connection; `None` for notifications (requests without an id
/// get no answer).
pub async fn respond(service: &Service, caller: &Caller, req: Request) -> Option<Response> {
    respond_in(service, caller, &NoSession, req).await
}

/// Runs a request on a connection's `session`; `None` for notifications.
pub async fn respond_in(
    service: &Service,
    caller: &Caller,
    session: &dyn Session,
    req: Request,
) -> Option<Response> {
    let result = call_in(service, caller, session, &req.method, req.params).await;
    let id = req.id?;
    Some(match result {
        Ok(v) => Response::ok(id, v),
        Err(e) => Response::err(id, e.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_code(p: Parsed) -> i64 {
        match p {
            Parsed::Invalid(r) => r.error.expect("an error").code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_lines_get_the_json_rpc_errors() {
        assert_eq!(error_code(parse("{not json")), -32700);
        assert_eq!(error_code(parse("42")), -32600);
        assert_eq!(error_code(parse("[]")), -32600);
        assert_eq!(error_code(parse(r#"{"method":"hello","id":1}"#)), -32600);
        assert_eq!(error_code(parse(r#"{"jsonrpc":"2.0","id":1}"#)), -32600);
        assert_eq!(
            error_code(parse(r#"{"jsonrpc":"2.0","method":"x","id":{"a":1}}"#)),
            -32600
        );
        assert_eq!(
            error_code(parse(r#"{"jsonrpc":"2.0","method":"x","id":1.5}"#)),
            -32600
        );
        // A repeated member is refused, wherever it is: the request would mean two things.
        assert_eq!(
            error_code(parse(
                r#"{"jsonrpc":"2.0","id":1,"method":"hello","method":"tokens.delete","params":{"token":"a"}}"#
            )),
            -32600
        );
        assert_eq!(
            error_code(parse(
                r#"{"jsonrpc":"2.0","id":1,"method":"codes.get","params":{"token":"a","token":"b"}}"#
            )),
            -32600
        );
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","method":"hello","id":7}"#),
            Parsed::Single(_)
        ));
        match parse(r#"[{"jsonrpc":"2.0","method":"hello","id":1}, 5]"#) {
            Parsed::Batch(items) => {
                assert!(items[0].is_ok());
                assert!(items[1].is_err());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn param_rules() {
        assert!(no_params(&None).is_ok());
        assert!(no_params(&Some(json!({}))).is_ok());
        assert_eq!(
            no_params(&Some(json!({"a": 1}))).map_err(|e| e.code),
            Err(ErrorCode::InvalidParams)
        );
        let e = params::<KeyParams>(Some(json!({"key": 5}))).expect_err("wrong type");
        assert_eq!(e.code, ErrorCode::InvalidParams);
        let e = params::<KeyParams>(Some(json!({"kee": "x"}))).expect_err("unknown field");
        assert!(e.message.contains("kee"), "{}", e.message);
    }
}
