//! The one place that does HTTP: [`Http`] sends a [`Request`] with `ureq` (blocking, rustls
//! with the ring provider), retries 429/503 by the [`RetryPolicy`], and turns error statuses
//! into [`Error`]s.
//!
//! Logging: method, URL (paths hold ids and UPNs, never secrets), status and request-id at
//! debug level. Bodies and headers are never logged: they carry seeds, codes and tokens.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{Error, GraphError};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::secret::AccessToken;

/// The largest response body read (Graph pages are a few hundred KiB at most).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A request body.
pub(crate) enum Body {
    None,
    /// JSON, which may hold a seed or a code: wiped after sending.
    Json(Zeroizing<String>),
    /// `application/x-www-form-urlencoded`, which may hold a client secret or refresh token.
    Form(Zeroizing<String>),
}

/// One request.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub url: String,
    pub bearer: Option<&'a AccessToken>,
    pub body: Body,
    /// Values this request carries that must not come back in an error message, should the
    /// server echo them (a verification code in "code 123456 is invalid").
    pub secrets: Vec<&'a str>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'static str, url: String) -> Self {
        Request {
            method,
            url,
            bearer: None,
            body: Body::None,
            secrets: Vec::new(),
        }
    }

    pub fn bearer(mut self, token: &'a AccessToken) -> Self {
        self.bearer = Some(token);
        self.secrets.push(token.expose());
        self
    }

    pub fn json<T: serde::Serialize>(mut self, value: &T) -> Result<Self, Error> {
        let text = serde_json::to_string(value).map_err(|e| Error::Decode {
            what: "request body",
            reason: e.to_string(),
        })?;
        self.body = Body::Json(Zeroizing::new(text));
        Ok(self)
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        self.body = Body::Form(Zeroizing::new(ser.finish()));
        self
    }

    pub fn secret(mut self, value: &'a str) -> Self {
        self.secrets.push(value);
        self
    }

    /// `text` with every secret of this request replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(*s, "[redacted]");
        }
        out
    }
}

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

/// The HTTP client: an agent, a clock to wait on, and a retry policy.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

impl Http {
    /// A client with a 60 s timeout per request.
    pub fn new(clock: Arc<dyn Clock>, retry: RetryPolicy) -> Self {
        let agent = ureq::Agent::config_builder()
            // Error statuses are answers to parse, not transport failures.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("oathkey-entra/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http {
            agent,
            clock,
            retry,
        }
    }

    /// The clock this client waits on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sends, retrying 429/503; returns any other status as a response.
    pub(crate) fn send_raw(&self, req: &Request<'_>) -> Result<Response, Error> {
        let mut retries = 0;
        loop {
            let resp = self.once(req)?;
            if !RetryPolicy::retries_status(resp.status) {
                return Ok(resp);
            }
            if retries >= self.retry.max_retries {
                tracing::warn!(status = resp.status, retries, url = %req.url, "throttled; giving up");
                return Err(Error::Throttled {
                    status: resp.status,
                    retries,
                    retry_after: resp.retry_after,
                    request_id: resp.request_id,
                });
            }
            let wait = self.retry.wait(retries, resp.retry_after);
            tracing::info!(
                status = resp.status,
                wait_secs = wait.as_secs(),
                retry = retries + 1,
                url = %req.url,
                "throttled; waiting before retrying"
            );
            self.clock.sleep(wait);
            retries += 1;
        }
    }

    /// Sends, retrying 429/503; an error status becomes an [`Error`].
    pub(crate) fn send(&self, req: &Request<'_>) -> Result<Response, Error> {
        let resp = self.send_raw(req)?;
        if resp.status >= 400 {
            return Err(Error::from_status(error_of(req, &resp)));
        }
        Ok(resp)
    }

    fn once(&self, req: &Request<'_>) -> Result<Response, Error> {
        let mut builder = ureq::http::Request::builder()
            .method(req.method)
            .uri(req.url.as_str());
        if let Some(token) = req.bearer {
            // Zeroizing: the header value is built in a String first.
            let value = Zeroizing::new(format!("Bearer {}", token.expose()));
            builder = builder.header("Authorization", value.as_str());
        }
        builder = builder.header("Accept", "application/json");
        let transport = |e: &dyn std::fmt::Display| Error::Transport {
            url: req.url.clone(),
            reason: req.scrub(&e.to_string()),
        };
        let result = match &req.body {
            Body::None => {
                let r = builder.body(()).map_err(|e| transport(&e))?;
                self.agent.run(r)
            }
            Body::Json(text) | Body::Form(text) => {
                let kind = match req.body {
                    Body::Form(_) => "application/x-www-form-urlencoded",
                    _ => "application/json",
                };
                let r = builder
                    .header("Content-Type", kind)
                    .body(text.as_bytes())
                    .map_err(|e| transport(&e))?;
                self.agent.run(r)
            }
        };
        let mut resp = result.map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("request-id");
        let retry_after = parse_retry_after(header("retry-after").as_deref());
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| transport(&e))?;
        tracing::debug!(method = req.method, url = %req.url, status, request_id, "graph call");
        Ok(Response {
            status,
            body,
            request_id,
            retry_after,
        })
    }
}

/// The error a failed response describes, scrubbed of the request's secrets.
pub(crate) fn error_of(req: &Request<'_>, resp: &Response) -> GraphError {
    let mut e = GraphError::from_body(resp.status, &resp.body, resp.request_id.clone());
    e.message = req.scrub(&e.message);
    e
}
