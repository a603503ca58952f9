//! oathkey-entra: the only code in oathkey that knows Microsoft Graph. It puts hardware OATH
//! tokens into Microsoft Entra ID (create, assign, activate, list, remove) and signs the admin
//! in to do so.
//!
//! The hardware OATH API is in Graph's beta: every path and body shape lives in [`mod@beta`],
//! so a change there is a change in one file. Everything is blocking: the callers (the CLI,
//! the desktop app's worker thread) do one thing at a time and wait for Graph anyway.
//!
//! # Layout
//! - [`mod@endpoints`]: [`Endpoints`], the Graph and sign-in base URLs, with
//!   `OATHKEY_GRAPH_URL` / `OATHKEY_LOGIN_URL` over configuration over defaults, and plain
//!   http refused except to loopback.
//! - [`mod@error`]: [`Error`], one variant per thing a caller handles differently, and
//!   [`GraphError`], Graph's error body with status, code, message and request-id.
//! - [`mod@secret`]: [`SecretKey`], [`VerificationCode`], [`AccessToken`] and the other secret
//!   strings: zeroized on drop, `[redacted]` when printed.
//! - [`mod@clock`]: [`Clock`], real or [`ManualClock`], so waits are testable.
//! - [`mod@retry`]: [`RetryPolicy`] for 429/503 with `Retry-After`.
//! - [`mod@limiter`]: [`ActivationLimiter`], 200 activations per rolling 5 minutes.
//! - [`mod@beta`]: [`GraphClient`], the beta hardware OATH API (create, bulk create, list,
//!   get, assign, activate, the one-call variants, unassign, delete) and its serde types
//!   ([`HardwareOathToken`], [`NewToken`]).
//! - [`mod@auth`]: [`Login`], sign-in by the device authorization grant (delegated) or by
//!   client credentials with a client secret or a certificate (application); refresh;
//!   [`TokenSet`].
//! - [`mod@cert`]: [`ClientCertificate`], the PS256 client assertion with `x5t#S256`.
//! - [`mod@cache`]: [`TokenCache`], the tokens on disk (0600, atomic, no symlinks), refreshed
//!   when expired, deleted by [`TokenCache::logout`].
//! - `http`: the one place that sends requests (`ureq`, rustls with ring) and applies retries.

pub mod auth;
pub mod beta;
pub mod cache;
pub mod cert;
pub mod clock;
pub mod endpoints;
pub mod error;
mod http;
pub mod limiter;
pub mod retry;
pub mod secret;

pub use auth::{DELEGATED_SCOPES, DeviceCode, GRAPH_DEFAULT_SCOPE, Login, TokenSet};
pub use beta::{GraphClient, HardwareOathToken, HashFunction, Identity, NewToken, TokenStatus};
pub use cache::TokenCache;
pub use cert::ClientCertificate;
pub use clock::{Clock, ManualClock, SystemClock};
pub use endpoints::{EndpointError, Endpoints, GRAPH_URL_ENV, LOGIN_URL_ENV};
pub use error::{AuthError, Error, GraphError, REQUIRED_PERMISSIONS};
pub use http::Http;
pub use limiter::{ACTIVATION_WINDOW, ACTIVATIONS_PER_WINDOW, ActivationLimiter};
pub use retry::RetryPolicy;
pub use secret::{
    AccessToken, ClientSecret, DeviceCodeSecret, RefreshToken, SecretKey, VerificationCode,
};
