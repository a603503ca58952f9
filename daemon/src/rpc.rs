//! The JSON-RPC frontend's translation layer: a method name and JSON params in, the service
//! core's typed call, JSON out. No logic of its own beyond parsing. Each method is dispatched
//! through its entry in [`oathkey_protocol::methods`], so the params it decodes and the result
//! it encodes are the types every client uses for that name.

use std::any::TypeId;

use oathkey_protocol::ErrorCode;
use oathkey_protocol::jsonrpc::{ErrorObject, Id, Request, Response};
use oathkey_protocol::methods::{self as m, Method, NoParams};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::service::{Service, ServiceError};

/// Decodes the params of method `M`. Absent params read as `{}`; a method that takes none
/// accepts none, `null`, `{}` or `[]`.
fn params<M: Method>(p: Option<Value>) -> Result<M::Params, ServiceError> {
    let takes_none = TypeId::of::<M::Params>() == TypeId::of::<NoParams>();
    let value = match p {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(v @ Value::Array(_)) if takes_none => v,
        // Named members only: serde would otherwise fill a struct from an array by position,
        // so `["alice"]` would quietly become the first member (a key id), not the token.
        Some(_) => {
            return Err(ServiceError::new(
                ErrorCode::InvalidParams,
                if takes_none {
                    "this method takes no params"
                } else {
                    "invalid params: params must be an object with named members"
                },
            ));
        }
    };
    serde_json::from_value(value).map_err(|e| {
        ServiceError::new(
            ErrorCode::InvalidParams,
            if takes_none {
                "this method takes no params".to_string()
            } else {
                format!("invalid params: {e}")
            },
        )
    })
}

/// Runs method `M`: its params decoded as its params type, `f`'s result encoded as its result
/// type.
async fn run<M: Method, F>(
    p: Option<Value>,
    f: impl FnOnce(M::Params) -> F,
) -> Result<Value, ServiceError>
where
    F: Future<Output = Result<M::Result, ServiceError>>,
{
    let result = f(params::<M>(p)?).await?;
    serde_json::to_value(result)
        .map_err(|e| ServiceError::new(ErrorCode::InternalError, e.to_string()))
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
    match name {
        m::Hello::NAME => {
            run::<m::Hello, _>(p, |NoParams| async { Ok(service.hello(caller)) }).await
        }
        m::KeysList::NAME => {
            run::<m::KeysList, _>(p, |NoParams| async { Ok(service.keys(caller)) }).await
        }
        m::KeysInfo::NAME => {
            run::<m::KeysInfo, _>(
                p,
                |k| async move { service.key_info(caller, k.key.as_deref()) },
            )
            .await
        }
        m::KeysWink::NAME => {
            run::<m::KeysWink, _>(p, |k| async move {
                service.wink(caller, k.key.as_deref()).await
            })
            .await
        }
        m::KeysGetConfig::NAME => {
            run::<m::KeysGetConfig, _>(p, |k| async move {
                service.get_config(caller, k.key.as_deref())
            })
            .await
        }
        m::KeysSetConfig::NAME => {
            run::<m::KeysSetConfig, _>(p, |c| service.set_config(caller, c)).await
        }
        m::KeysClaim::NAME => {
            run::<m::KeysClaim, _>(
                p,
                |k| async move { service.claim(caller, k.key.as_deref()) },
            )
            .await
        }
        m::KeysRelease::NAME => {
            run::<m::KeysRelease, _>(
                p,
                |k| async move { service.release(caller, k.key.as_deref()) },
            )
            .await
        }
        m::TokensList::NAME => {
            run::<m::TokensList, _>(p, |k| async move {
                service.tokens(caller, k.key.as_deref()).await
            })
            .await
        }
        m::TokensCreate::NAME => {
            run::<m::TokensCreate, _>(p, |c| service.create_token(caller, c)).await
        }
        m::TokensDelete::NAME => {
            run::<m::TokensDelete, _>(p, |t| service.delete_token(caller, t)).await
        }
        m::TokensRename::NAME => {
            run::<m::TokensRename, _>(p, |r| service.rename_token(caller, r)).await
        }
        m::KeysUnlock::NAME => run::<m::KeysUnlock, _>(p, |u| service.unlock(caller, u)).await,
        m::KeysSetAccessCode::NAME => {
            run::<m::KeysSetAccessCode, _>(p, |a| service.set_access_code(caller, a)).await
        }
        m::CodesGet::NAME => run::<m::CodesGet, _>(p, |c| service.code(caller, c)).await,
        m::CodesAll::NAME => run::<m::CodesAll, _>(p, |c| service.codes(caller, c)).await,
        m::EventsSubscribe::NAME => {
            run::<m::EventsSubscribe, _>(p, |NoParams| async {
                session.subscribe();
                Ok(())
            })
            .await
        }
        m::SeedsList::NAME => {
            run::<m::SeedsList, _>(p, |s| async move { service.seeds_list(caller, s) }).await
        }
        m::SeedsExport::NAME => {
            run::<m::SeedsExport, _>(p, |s| async move { service.seeds_export(caller, s) }).await
        }
        m::SeedsMarkExported::NAME => {
            run::<m::SeedsMarkExported, _>(p, |s| service.seeds_mark_exported(caller, s)).await
        }
        m::SeedsPurge::NAME => run::<m::SeedsPurge, _>(p, |s| service.seeds_purge(caller, s)).await,
        m::VirtualUnplug::NAME => {
            run::<m::VirtualUnplug, _>(p, |k| async move {
                service.virtual_unplug(caller, k.key.as_deref())
            })
            .await
        }
        m::VirtualPlug::NAME => {
            run::<m::VirtualPlug, _>(p, |k| async move {
                service.virtual_plug(caller, k.key.as_deref()).await
            })
            .await
        }
        m::VirtualPress::NAME => {
            run::<m::VirtualPress, _>(p, |k| async move {
                service.virtual_press(caller, k.key.as_deref())
            })
            .await
        }
        other => Err(ServiceError::new(
            ErrorCode::MethodNotFound,
            format!("no method {other:?}; see docs/protocol.md"),
        )),
    }
}

/// Whether a parsed line only concerns the connection and answers at once (`hello`,
/// `events.subscribe`): the connection runs it before reading its next line, so that a
/// subscription sent before a read is in force when the read starts (a client may send both
/// in one write), where other requests run side by side.
pub fn is_immediate(parsed: &Parsed) -> bool {
    let immediate =
        |r: &Request| matches!(r.method.as_str(), m::Hello::NAME | m::EventsSubscribe::NAME);
    match parsed {
        Parsed::Single(r) => immediate(r),
        Parsed::Batch(items) => items.iter().all(|i| i.as_ref().is_ok_and(immediate)),
        Parsed::Invalid(_) => true,
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
        // A method that takes none: absent, null, {} or [].
        for none in [None, Some(json!(null)), Some(json!({})), Some(json!([]))] {
            assert!(params::<m::Hello>(none).is_ok());
        }
        for some in [json!({"a": 1}), json!([1]), json!("x")] {
            let e = params::<m::Hello>(Some(some)).expect_err("params where none are taken");
            assert_eq!(e.code, ErrorCode::InvalidParams);
            assert_eq!(e.message, "this method takes no params");
        }
        let e = params::<m::KeysInfo>(Some(json!({"key": 5}))).expect_err("wrong type");
        assert_eq!(e.code, ErrorCode::InvalidParams);
        let e = params::<m::KeysInfo>(Some(json!({"kee": "x"}))).expect_err("unknown field");
        assert!(e.message.contains("kee"), "{}", e.message);
        // Params of a method that takes some are named, never by position.
        let e = params::<m::KeysInfo>(Some(json!([]))).expect_err("an array");
        assert!(e.message.contains("named members"), "{}", e.message);
        assert!(params::<m::KeysInfo>(None).is_ok(), "absent: all optional");
    }
}
