//! Where Graph and the sign-in service are: [`Endpoints`].
//!
//! Precedence, highest first: the environment (`OATHKEY_GRAPH_URL`, `OATHKEY_LOGIN_URL`), then
//! the configuration file, then the built-in defaults (the global cloud). The environment wins
//! so a test harness or an admin can point any command at another server without editing the
//! configuration.
//!
//! The access token travels in every Graph request, so plain `http://` is refused unless the
//! host is a loopback address (the tests' mock servers); everything else must be `https://`.

use std::net::IpAddr;

use url::{Host, Url};

/// The environment variable that overrides the Graph base URL. A contract: scripts use it.
pub const GRAPH_URL_ENV: &str = "OATHKEY_GRAPH_URL";
/// The environment variable that overrides the sign-in base URL. A contract: scripts use it.
pub const LOGIN_URL_ENV: &str = "OATHKEY_LOGIN_URL";
/// Microsoft Graph in the global cloud (the hardware OATH API exists only there).
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";
/// The Microsoft identity platform in the global cloud.
pub const DEFAULT_LOGIN: &str = "https://login.microsoftonline.com";

/// Why an endpoint URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not a URL at all.
    #[error("{which} URL {value:?} is not a valid URL: {reason}")]
    Invalid {
        /// Which endpoint (graph or login).
        which: &'static str,
        /// The text given.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// `http://` to a host that is not loopback: the token would cross the network in clear.
    #[error(
        "{which} URL {value:?} uses plain http to a host that is not loopback; use https \
         (http is allowed only for 127.0.0.0/8, ::1 and localhost)"
    )]
    InsecureHttp {
        /// Which endpoint (graph or login).
        which: &'static str,
        /// The URL given.
        value: String,
    },
    /// A scheme other than http and https, or a URL with no host.
    #[error("{which} URL {value:?} must be an https URL with a host")]
    Unsupported {
        /// Which endpoint (graph or login).
        which: &'static str,
        /// The URL given.
        value: String,
    },
}

/// The two base URLs the crate talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Microsoft Graph's base (`/beta/...` is appended to it).
    pub graph: Url,
    /// The identity platform's base (`/{tenant}/oauth2/v2.0/...` is appended to it).
    pub login: Url,
}

impl Default for Endpoints {
    fn default() -> Self {
        // Both constants are valid https URLs; parse cannot fail on them.
        #[allow(clippy::unwrap_used)]
        Endpoints {
            graph: Url::parse(DEFAULT_GRAPH).unwrap(),
            login: Url::parse(DEFAULT_LOGIN).unwrap(),
        }
    }
}

impl Endpoints {
    /// Endpoints from explicit URLs (each checked by [`check_url`]).
    pub fn new(graph: &str, login: &str) -> Result<Self, EndpointError> {
        Ok(Endpoints {
            graph: check_url("graph", graph)?,
            login: check_url("login", login)?,
        })
    }

    /// Endpoints resolved with the documented precedence: `OATHKEY_GRAPH_URL` /
    /// `OATHKEY_LOGIN_URL` from the process environment, else `graph` / `login` from the
    /// configuration, else the defaults.
    pub fn resolve(graph: Option<&str>, login: Option<&str>) -> Result<Self, EndpointError> {
        Self::resolve_with(graph, login, |name| std::env::var(name).ok())
    }

    /// [`Endpoints::resolve`] with the environment given as a lookup function, so tests need
    /// not change the process environment (which is shared by every test thread).
    pub fn resolve_with(
        graph: Option<&str>,
        login: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EndpointError> {
        let pick = |var: &str, config: Option<&str>, default: &str| {
            env(var)
                .filter(|value| !value.trim().is_empty())
                .or_else(|| config.map(str::to_owned))
                .unwrap_or_else(|| default.to_owned())
        };
        Self::new(
            &pick(GRAPH_URL_ENV, graph, DEFAULT_GRAPH),
            &pick(LOGIN_URL_ENV, login, DEFAULT_LOGIN),
        )
    }

    /// `{graph}/{path}`, where `path` starts without a slash (`beta/...`).
    pub(crate) fn graph_url(&self, path: &str) -> String {
        join(&self.graph, path)
    }

    /// `{login}/{path}`.
    pub(crate) fn login_url(&self, path: &str) -> String {
        join(&self.login, path)
    }

    /// Whether `url` is on the Graph origin (scheme, host and port), so the access token may
    /// be sent to it. `@odata.nextLink` comes from the server's body; following a link to
    /// another host would hand that host the token.
    pub(crate) fn is_graph_origin(&self, url: &str) -> bool {
        Url::parse(url).is_ok_and(|u| u.origin() == self.graph.origin())
    }
}

fn join(base: &Url, path: &str) -> String {
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Parses `value` and applies the transport rule: https anywhere, http only to loopback.
pub fn check_url(which: &'static str, value: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(value.trim()).map_err(|e| EndpointError::Invalid {
        which,
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    let unsupported = || EndpointError::Unsupported {
        which,
        value: value.to_owned(),
    };
    let host = url.host().ok_or_else(unsupported)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(EndpointError::InsecureHttp {
            which,
            value: value.to_owned(),
        }),
        _ => Err(unsupported()),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        // Only the exact name: "localhost.example.com" resolves wherever its owner says.
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_global_cloud() {
        let e = Endpoints::resolve_with(None, None, |_| None).expect("defaults");
        assert_eq!(e.graph.as_str(), "https://graph.microsoft.com/");
        assert_eq!(e.login.as_str(), "https://login.microsoftonline.com/");
    }

    #[test]
    fn environment_wins_over_configuration() {
        let env = |name: &str| match name {
            GRAPH_URL_ENV => Some("http://127.0.0.1:9000".to_owned()),
            _ => None,
        };
        let e = Endpoints::resolve_with(
            Some("https://graph.example.com"),
            Some("https://login.example.com"),
            env,
        )
        .expect("resolved");
        assert_eq!(e.graph.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(e.login.as_str(), "https://login.example.com/");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:1",
            "http://127.3.2.1",
            "http://[::1]:8080",
            "http://localhost",
        ] {
            assert!(check_url("graph", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1",
            "http://graph.microsoft.com",
            "http://localhost.evil.test",
        ] {
            assert!(
                matches!(
                    check_url("graph", bad),
                    Err(EndpointError::InsecureHttp { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_url("login", "ftp://x"),
            Err(EndpointError::Unsupported { .. })
        ));
        assert!(matches!(
            check_url("login", "not a url"),
            Err(EndpointError::Invalid { .. })
        ));
    }

    #[test]
    fn next_links_must_stay_on_the_graph_origin() {
        let e = Endpoints::new("http://127.0.0.1:5000", "http://127.0.0.1:5001").expect("ok");
        assert!(e.is_graph_origin("http://127.0.0.1:5000/beta/x?$skiptoken=1"));
        assert!(!e.is_graph_origin("http://127.0.0.1:5001/beta/x"));
        assert!(!e.is_graph_origin("https://evil.test/beta/x"));
        assert_eq!(e.graph_url("beta/a"), "http://127.0.0.1:5000/beta/a");
    }
}
