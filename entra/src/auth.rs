//! Sign-in with the Microsoft identity platform (OAuth 2.0, v2.0 endpoints): [`Login`].
//!
//! Two modes, as Microsoft documents them for a tool without a web page of its own:
//! - delegated, the device authorization grant: [`Login::start_device_code`] asks for a user
//!   code, the admin enters it in a browser and signs in there, and
//!   [`Login::poll_device_code`] waits at the interval the server gives (longer after
//!   `slow_down`) until the tokens come, the admin declines, or the code expires;
//! - application, the client credentials grant (scope `https://graph.microsoft.com/.default`)
//!   for unattended runs with application permissions, proven by a client secret
//!   ([`Login::client_credentials`]) or, as Microsoft recommends, by a certificate
//!   ([`Login::client_certificate`]: a JWT assertion signed with its key, see
//!   [`ClientCertificate`]).
//!
//! Tokens come back as a [`TokenSet`]; [`Login::refresh`] renews one with its refresh token.
//! None of them is ever logged.

use serde::{Deserialize, Serialize};

use crate::cert::{ClientCertificate, JWT_BEARER};
use crate::endpoints::Endpoints;
use crate::error::{AuthError, Error};
use crate::http::{Http, Request, Response, error_of};
use crate::secret::{AccessToken, ClientSecret, DeviceCodeSecret, RefreshToken};

/// The scope for client credentials: the app's granted Graph application permissions.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The delegated scopes the hardware OATH calls need, plus `offline_access` for a refresh
/// token (so the admin signs in once per session, not once per hour).
pub const DELEGATED_SCOPES: &str = "https://graph.microsoft.com/Policy.ReadWrite.AuthenticationMethod \
     https://graph.microsoft.com/UserAuthenticationMethod.ReadWrite.All offline_access";
/// The device-code grant type (RFC 8628).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Tokens this close to expiry count as expired, so a call does not start with a token that
/// dies in flight.
const EXPIRY_MARGIN_SECS: u64 = 120;

/// Tokens from a sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    /// The bearer token for Graph.
    pub access_token: AccessToken,
    /// Present for delegated sign-ins with `offline_access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The scopes granted, as the server listed them.
    #[serde(default)]
    pub scope: Option<String>,
}

impl TokenSet {
    /// Whether the access token is expired (or about to be) at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        now.saturating_add(EXPIRY_MARGIN_SECS) >= self.expires_at
    }
}

/// What the admin must do to finish a device-code sign-in, and the code to poll with.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    /// The short code the admin types in the browser (not a secret on its own).
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The server's own sentence telling the admin what to do.
    pub message: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
    device_code: DeviceCodeSecret,
}

#[derive(Deserialize)]
struct DeviceCodeBody {
    user_code: String,
    device_code: DeviceCodeSecret,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: AccessToken,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
}

/// A tenant's sign-in service for one app registration.
#[derive(Debug, Clone)]
pub struct Login {
    endpoints: Endpoints,
    http: Http,
    tenant: String,
    client_id: String,
}

impl Login {
    /// Sign-in for `client_id` (the app registration) in `tenant` (id or domain).
    pub fn new(endpoints: Endpoints, http: Http, tenant: &str, client_id: &str) -> Self {
        Login {
            endpoints,
            http,
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The app registration's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn url(&self, what: &str) -> String {
        let tenant: String = url::form_urlencoded::byte_serialize(self.tenant.as_bytes()).collect();
        self.endpoints
            .login_url(&format!("{tenant}/oauth2/v2.0/{what}"))
    }

    /// Starts a device-code sign-in for `scopes` (space-separated; [`DELEGATED_SCOPES`]).
    pub fn start_device_code(&self, scopes: &str) -> Result<DeviceCode, Error> {
        let req = Request::new("POST", self.url("devicecode"))
            .form(&[("client_id", &self.client_id), ("scope", scopes)]);
        let resp = self.http.send_raw(&req)?;
        if resp.status != 200 {
            return Err(AuthError::Refused(error_of(&req, &resp)).into());
        }
        let body: DeviceCodeBody = decode("device code", &resp)?;
        Ok(DeviceCode {
            message: body.message.unwrap_or_else(|| {
                format!(
                    "Open {} and enter the code {}",
                    body.verification_uri, body.user_code
                )
            }),
            user_code: body.user_code,
            verification_uri: body.verification_uri,
            expires_in: body.expires_in,
            interval: body.interval.unwrap_or(5).max(1),
            device_code: body.device_code,
        })
    }

    /// Polls until the admin finishes (tokens), declines, or the code expires.
    pub fn poll_device_code(&self, code: &DeviceCode) -> Result<TokenSet, Error> {
        let clock = self.http.clock();
        let start = clock.now();
        let mut interval = code.interval;
        loop {
            clock.sleep(std::time::Duration::from_secs(interval));
            if clock.now().saturating_sub(start).as_secs() > code.expires_in {
                return Err(AuthError::Expired.into());
            }
            let req = Request::new("POST", self.url("token"))
                .form(&[
                    ("grant_type", DEVICE_CODE_GRANT),
                    ("client_id", &self.client_id),
                    ("device_code", code.device_code.expose()),
                ])
                .secret(code.device_code.expose());
            let resp = self.http.send_raw(&req)?;
            if resp.status == 200 {
                return self.tokens(&resp);
            }
            let err = error_of(&req, &resp);
            match err.code.as_deref() {
                Some("authorization_pending") => {}
                // RFC 8628 section 3.5: add 5 seconds to the interval from now on.
                Some("slow_down") => interval += 5,
                Some("authorization_declined" | "access_denied") => {
                    return Err(AuthError::Declined.into());
                }
                Some("expired_token") => return Err(AuthError::Expired.into()),
                _ => return Err(AuthError::Refused(err).into()),
            }
        }
    }

    /// Client credentials with a client secret: an app-only token for Graph.
    pub fn client_credentials(&self, secret: &ClientSecret) -> Result<TokenSet, Error> {
        let req = Request::new("POST", self.url("token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", secret.expose()),
                ("scope", GRAPH_DEFAULT_SCOPE),
            ])
            .secret(secret.expose());
        self.token_request(&req)
    }

    /// Client credentials with a certificate: an app-only token for Graph, the app proven by
    /// a fresh assertion whose audience is the token endpoint it is sent to.
    pub fn client_certificate(&self, certificate: &ClientCertificate) -> Result<TokenSet, Error> {
        let url = self.url("token");
        let now = self.http.clock().unix_time();
        let assertion = certificate.assertion(&url, &self.client_id, now)?;
        let req = Request::new("POST", url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
                ("scope", GRAPH_DEFAULT_SCOPE),
            ])
            .secret(assertion.as_str());
        self.token_request(&req)
    }

    /// A new token set from a refresh token (which may itself be replaced).
    pub fn refresh(&self, refresh: &RefreshToken, scopes: &str) -> Result<TokenSet, Error> {
        let req = Request::new("POST", self.url("token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("refresh_token", refresh.expose()),
                ("scope", scopes),
            ])
            .secret(refresh.expose());
        let mut tokens = self.token_request(&req)?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh.clone());
        }
        Ok(tokens)
    }

    fn token_request(&self, req: &Request<'_>) -> Result<TokenSet, Error> {
        let resp = self.http.send_raw(req)?;
        if resp.status != 200 {
            return Err(AuthError::Refused(error_of(req, &resp)).into());
        }
        self.tokens(&resp)
    }

    fn tokens(&self, resp: &Response) -> Result<TokenSet, Error> {
        let body: TokenBody = decode("token", resp)?;
        tracing::info!(tenant = %self.tenant, expires_in = body.expires_in, "signed in");
        Ok(TokenSet {
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_at: self
                .http
                .clock()
                .unix_time()
                .saturating_add(body.expires_in),
            scope: body.scope,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, resp: &Response) -> Result<T, Error> {
    // Position and category only: serde_json's message can quote a value ("invalid type:
    // string ..."), and these bodies hold tokens.
    serde_json::from_str(&resp.body).map_err(|e| Error::Decode {
        what,
        reason: format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}
