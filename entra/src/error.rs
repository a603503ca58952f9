//! [`Error`]: what went wrong talking to Graph or the sign-in service, typed so a caller can
//! tell "sign in again" from "ask for the permission" from "that user does not exist".
//!
//! Graph's error body is `{"error":{"code","message","innerError":{"request-id","date",...}}}`;
//! [`GraphError`] keeps the status, code, message and request-id (what Microsoft support asks
//! for). Messages never hold a secret: the request that failed may have carried a seed or a
//! verification code, and the client scrubs those from anything the server echoes back before
//! the error is built (see `http::Request::scrub`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::endpoints::EndpointError;

/// The permissions the hardware OATH API needs (Microsoft's permission tables), named in the
/// 403 error so the admin knows what to grant.
pub const REQUIRED_PERMISSIONS: &str = "Policy.ReadWrite.AuthenticationMethod (create, list, \
     delete tokens; role Authentication Policy Administrator) and \
     UserAuthenticationMethod.ReadWrite.All (assign, activate; role Authentication \
     Administrator, or Privileged Authentication Administrator for admin users)";

/// One error response from Graph or the sign-in service, as parsed from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The HTTP status.
    pub status: u16,
    /// Graph's `error.code` (for example `Request_ResourceNotFound`), or the OAuth `error`.
    pub code: Option<String>,
    /// Graph's `error.message` or the OAuth `error_description`, scrubbed of secrets.
    pub message: String,
    /// `innerError.request-id` (or the `request-id` header): quote it to Microsoft support.
    pub request_id: Option<String>,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

impl GraphError {
    /// Parses an error body; a body that is not Graph's shape (a proxy's HTML page, an OAuth
    /// error) still gives an error with what could be read.
    pub fn from_body(status: u16, body: &str, header_request_id: Option<String>) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: serde_json::Value,
            error_description: Option<String>,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: Option<String>,
            message: Option<String>,
            #[serde(rename = "innerError", alias = "innererror")]
            inner: Option<InnerError>,
        }
        #[derive(Deserialize)]
        struct InnerError {
            #[serde(rename = "request-id")]
            request_id: Option<String>,
        }
        let mut out = GraphError {
            status,
            code: None,
            message: String::new(),
            request_id: header_request_id,
        };
        match serde_json::from_str::<Envelope>(body) {
            Ok(Envelope {
                error: serde_json::Value::String(code),
                error_description,
            }) => {
                // OAuth 2.0 (RFC 6749 section 5.2): {"error":"invalid_grant","error_description"}.
                out.code = Some(code);
                out.message = error_description.unwrap_or_default();
            }
            Ok(Envelope { error, .. }) => {
                if let Ok(inner) = serde_json::from_value::<Inner>(error) {
                    out.code = inner.code;
                    out.message = inner.message.unwrap_or_default();
                    if let Some(id) = inner.inner.and_then(|i| i.request_id) {
                        out.request_id = Some(id);
                    }
                }
            }
            Err(_) => {
                // Not JSON: keep a short, printable prefix so the admin sees something.
                out.message = body.chars().filter(|c| !c.is_control()).take(200).collect();
            }
        }
        out
    }
}

/// Everything this crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint URL was refused.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// 401: not signed in, or the access token expired or was revoked. Sign in again.
    #[error("not signed in or the sign-in expired ({0}); sign in again")]
    Unauthorized(GraphError),
    /// 403: signed in, but without the permission or role this call needs.
    #[error("permission denied ({0}); the app and the admin need {REQUIRED_PERMISSIONS}")]
    Forbidden(GraphError),
    /// 404: the user or the token does not exist (or is not visible to this sign-in).
    #[error("not found ({0})")]
    NotFound(GraphError),
    /// 409: a token with this serial number exists, or the object changed meanwhile.
    #[error("conflict, for example a duplicate serial number ({0})")]
    Conflict(GraphError),
    /// 400: Graph refused the request, for example a wrong or late verification code, a bad
    /// secret, or a user who already has five OATH tokens.
    #[error("refused by Graph ({0})")]
    BadRequest(GraphError),
    /// 429 or 503 after every retry the policy allows.
    #[error(
        "throttled: HTTP {status} after {retries} retries{}; try again later",
        request_id.as_ref().map(|id| format!(" (request-id {id})")).unwrap_or_default()
    )]
    Throttled {
        /// 429 or 503.
        status: u16,
        /// How many retries were made.
        retries: u32,
        /// The last `Retry-After` the server sent.
        retry_after: Option<Duration>,
        /// The last response's request-id.
        request_id: Option<String>,
    },
    /// Any other error status.
    #[error("Graph error ({0})")]
    Graph(GraphError),
    /// A success status with a body that did not parse as documented (the beta changed?).
    #[error("unexpected response from {what}: {reason}")]
    Decode {
        /// Which call.
        what: &'static str,
        /// Why it did not parse.
        reason: String,
    },
    /// The connection failed: DNS, TCP, TLS, timeout.
    #[error("cannot reach {url}: {reason}")]
    Transport {
        /// The URL (never holds a secret: secrets go in bodies and headers).
        url: String,
        /// The transport's reason.
        reason: String,
    },
    /// Sign-in failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The token cache could not be read or written.
    #[error("token cache {path}: {reason}")]
    Cache {
        /// The cache file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The error for an error status (other than 429/503 retries, handled by the caller).
    pub(crate) fn from_status(e: GraphError) -> Self {
        match e.status {
            400 => Error::BadRequest(e),
            401 => Error::Unauthorized(e),
            403 => Error::Forbidden(e),
            404 => Error::NotFound(e),
            409 => Error::Conflict(e),
            _ => Error::Graph(e),
        }
    }

    /// The Graph error inside, when there is one.
    pub fn graph_error(&self) -> Option<&GraphError> {
        match self {
            Error::Unauthorized(e)
            | Error::Forbidden(e)
            | Error::NotFound(e)
            | Error::Conflict(e)
            | Error::BadRequest(e)
            | Error::Graph(e) => Some(e),
            _ => None,
        }
    }
}

/// Sign-in failures that are not plain HTTP errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The user said no on the sign-in page.
    #[error("the sign-in was declined")]
    Declined,
    /// The device code expired before the user finished signing in.
    #[error("the sign-in code expired before the sign-in was finished; start again")]
    Expired,
    /// The identity platform refused (`invalid_client`, `invalid_grant`, ...).
    #[error("sign-in refused: {0}")]
    Refused(GraphError),
    /// No refresh token is cached, and the access token expired.
    #[error("the cached sign-in expired and cannot be refreshed; sign in again")]
    NoRefreshToken,
    /// Nothing is cached.
    #[error("not signed in")]
    NotSignedIn,
    /// The client certificate or its key cannot be used.
    #[error("client certificate: {0}")]
    Certificate(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_error_bodies() {
        let body = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist","innerError":{"date":"2025-01-01T00:00:00","request-id":"rid-1","client-request-id":"c"}}}"#;
        let e = GraphError::from_body(404, body, Some("header-rid".into()));
        assert_eq!(e.code.as_deref(), Some("Request_ResourceNotFound"));
        assert_eq!(e.request_id.as_deref(), Some("rid-1"));
        assert!(matches!(Error::from_status(e), Error::NotFound(_)));
    }

    #[test]
    fn parses_oauth_errors_and_garbage() {
        let e = GraphError::from_body(
            400,
            r#"{"error":"invalid_grant","error_description":"AADSTS70000"}"#,
            None,
        );
        assert_eq!(e.code.as_deref(), Some("invalid_grant"));
        assert_eq!(e.message, "AADSTS70000");
        let e = GraphError::from_body(502, "<html>\nbad gateway</html>", Some("r".into()));
        assert_eq!(e.message, "<html>bad gateway</html>");
        assert!(matches!(Error::from_status(e), Error::Graph(_)));
    }

    #[test]
    fn forbidden_names_the_permissions() {
        let e = Error::from_status(GraphError::from_body(403, "{}", None));
        let text = e.to_string();
        assert!(
            text.contains("Policy.ReadWrite.AuthenticationMethod"),
            "{text}"
        );
        assert!(
            text.contains("UserAuthenticationMethod.ReadWrite.All"),
            "{text}"
        );
    }
}
