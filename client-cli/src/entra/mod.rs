//! `oathkey entra`: Microsoft Entra ID through Microsoft Graph (`oathkey-entra`).
//!
//! # Layout
//! - this file: the settings (flags over `entra.toml`), sign-in and sign-out, a signed-in
//!   [`GraphClient`], and Graph errors as exit codes.
//! - `upload`: tokens from the ledger or a seed file into Entra, assigned, optionally activated
//!   with a code read from the key; the report.
//! - `status`: Entra's tokens beside the ledger's seeds, with advice.
//!
//! Tokens (access, refresh), client secrets and seeds are never printed or logged: they stay
//! in `oathkey-entra`'s redacting types, and the messages here name serials and users only.

mod status;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oathkey_entra::{
    AuthError, ClientCertificate, ClientSecret, Clock, DELEGATED_SCOPES, Endpoints, Error,
    GRAPH_DEFAULT_SCOPE, GraphClient, Http, Login, RetryPolicy, SystemClock, TokenCache,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::cli::{Cli, EntraApp, EntraCommand};
use crate::exit::{self, Failure};

/// The configuration file's name in `$XDG_CONFIG_HOME/oathkey/`.
const CONFIG_FILE: &str = "entra.toml";

/// `entra.toml`: every key optional; flags override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tenant: Option<String>,
    client_id: Option<String>,
    certificate: Option<PathBuf>,
    client_secret_file: Option<PathBuf>,
    graph_url: Option<String>,
    login_url: Option<String>,
}

/// How the app proves itself for unattended sign-in.
#[derive(Debug, Clone)]
enum AppCredential {
    /// Device authorization: an admin signs in in a browser.
    None,
    /// A PEM file with the certificate and its key.
    Certificate(PathBuf),
    /// A file whose first line is the client secret.
    SecretFile(PathBuf),
}

/// Everything a command needs to reach the tenant.
#[derive(Debug)]
struct Settings {
    tenant: String,
    client_id: String,
    credential: AppCredential,
    endpoints: Endpoints,
}

/// `$XDG_CONFIG_HOME/oathkey/entra.toml` (an absolute `XDG_CONFIG_HOME` only), else
/// `$HOME/.config/oathkey/entra.toml`.
fn config_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|base| base.join("oathkey").join(CONFIG_FILE))
}

fn read_config(path: Option<&Path>) -> Result<FileConfig, Failure> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(Failure::usage(format!("{}: {e}", path.display()))),
    }
}

impl Settings {
    fn resolve(app: &EntraApp) -> Result<Self, Failure> {
        let file = read_config(config_path().as_deref())?;
        let missing = |what: &str, key: &str| {
            Failure::usage(format!(
                "no {what}: give --{} or set `{key}` in {}",
                key.replace('_', "-"),
                config_path().map_or_else(|| CONFIG_FILE.into(), |p| p.display().to_string())
            ))
        };
        let tenant = app
            .tenant
            .clone()
            .or(file.tenant)
            .ok_or_else(|| missing("tenant", "tenant"))?;
        let client_id = app
            .client_id
            .clone()
            .or(file.client_id)
            .ok_or_else(|| missing("app registration", "client_id"))?;
        // A flag for one kind of credential overrides the file's credential of either kind.
        let credential = match (&app.certificate, &app.client_secret_file) {
            (Some(c), _) => AppCredential::Certificate(c.clone()),
            (None, Some(s)) => AppCredential::SecretFile(s.clone()),
            (None, None) => match (file.certificate, file.client_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(format!(
                        "{CONFIG_FILE} sets both certificate and client_secret_file; keep one"
                    )));
                }
                (Some(c), None) => AppCredential::Certificate(c),
                (None, Some(s)) => AppCredential::SecretFile(s),
                (None, None) => AppCredential::None,
            },
        };
        let endpoints = Endpoints::resolve(file.graph_url.as_deref(), file.login_url.as_deref())
            .map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Settings {
            tenant,
            client_id,
            credential,
            endpoints,
        })
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(SystemClock::default())
    }

    fn http(clock: Arc<dyn Clock>) -> Http {
        Http::new(clock, RetryPolicy::default())
    }

    fn login(&self, http: Http) -> Login {
        Login::new(self.endpoints.clone(), http, &self.tenant, &self.client_id)
    }

    fn scopes(&self) -> &'static str {
        match self.credential {
            AppCredential::None => DELEGATED_SCOPES,
            _ => GRAPH_DEFAULT_SCOPE,
        }
    }
}

fn cache() -> Result<TokenCache, Failure> {
    TokenCache::default_location().map_err(failure)
}

/// A Graph library error as a message and exit code: permission (6) for sign-in and rights,
/// not found (4), conflict (9), busy (7) when throttled, else 1.
pub fn failure(e: Error) -> Failure {
    let code = match &e {
        Error::Unauthorized(_) | Error::Forbidden(_) | Error::Auth(_) => exit::PERMISSION,
        Error::NotFound(_) => exit::NOT_FOUND,
        Error::Conflict(_) => exit::CONFLICT,
        Error::Throttled { .. } => exit::BUSY,
        Error::Endpoint(_) => exit::USAGE,
        _ => exit::FAILURE,
    };
    let mut message = e.to_string();
    if matches!(
        e,
        Error::Auth(AuthError::NotSignedIn | AuthError::NoRefreshToken) | Error::Unauthorized(_)
    ) {
        message.push_str("; run `oathkey entra login`");
    }
    Failure { code, message }
}

/// Signs in unattended with the app's credential.
fn sign_in_as_app(settings: &Settings, login: &Login) -> Result<oathkey_entra::TokenSet, Failure> {
    match &settings.credential {
        AppCredential::Certificate(path) => {
            let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the certificate {}: {e}",
                    path.display()
                ))
            })?);
            let cert =
                ClientCertificate::from_pem(&pem, &pem).map_err(|e| failure(Error::Auth(e)))?;
            login.client_certificate(&cert).map_err(failure)
        }
        AppCredential::SecretFile(path) => {
            let all = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the client secret from {}: {e}",
                    path.display()
                ))
            })?);
            let line = all.lines().next().unwrap_or_default().trim();
            if line.is_empty() {
                return Err(Failure::usage(format!(
                    "the client secret file {} is empty",
                    path.display()
                )));
            }
            login
                .client_credentials(&ClientSecret::new(line))
                .map_err(failure)
        }
        AppCredential::None => Err(Failure::usage("no app credential")),
    }
}

/// A Graph client with a valid access token: the cached one (refreshed if need be), or, for
/// an app with a certificate or secret configured, a fresh unattended sign-in.
fn graph(settings: &Settings) -> Result<GraphClient, Failure> {
    let clock = Settings::clock();
    let http = Settings::http(clock.clone());
    let login = settings.login(http.clone());
    let cache = cache()?;
    let token = match cache.access_token(&login, clock.as_ref(), settings.scopes()) {
        Ok(t) => t,
        Err(Error::Auth(AuthError::NotSignedIn | AuthError::NoRefreshToken))
            if !matches!(settings.credential, AppCredential::None) =>
        {
            let tokens = sign_in_as_app(settings, &login)?;
            cache
                .store(&settings.tenant, &settings.client_id, &tokens)
                .map_err(failure)?;
            tokens.access_token
        }
        Err(e) => return Err(failure(e)),
    };
    Ok(GraphClient::new(settings.endpoints.clone(), http, token))
}

fn login(app: &EntraApp) -> Result<(), Failure> {
    let settings = Settings::resolve(app)?;
    let clock = Settings::clock();
    let login = settings.login(Settings::http(clock));
    let tokens = match settings.credential {
        AppCredential::None => {
            let code = login.start_device_code(DELEGATED_SCOPES).map_err(failure)?;
            eprintln!("{}", code.message);
            eprintln!(
                "(Open {} and enter {}; waiting for the sign-in.)",
                code.verification_uri, code.user_code
            );
            login.poll_device_code(&code).map_err(failure)?
        }
        _ => sign_in_as_app(&settings, &login)?,
    };
    let cache = cache()?;
    cache
        .store(&settings.tenant, &settings.client_id, &tokens)
        .map_err(failure)?;
    eprintln!(
        "Signed in to {}; the sign-in is kept in {} (readable by you only).",
        settings.tenant,
        cache.path().display()
    );
    Ok(())
}

fn logout() -> Result<(), Failure> {
    let cache = cache()?;
    if cache.logout().map_err(failure)? {
        eprintln!("Signed out: deleted {}.", cache.path().display());
    } else {
        eprintln!("Not signed in (no {}).", cache.path().display());
    }
    Ok(())
}

/// Runs an `oathkey entra` command.
pub fn run(cli: &Cli, cmd: &EntraCommand) -> Result<(), Failure> {
    match cmd {
        EntraCommand::Login(app) => login(app),
        EntraCommand::Logout => logout(),
        EntraCommand::Upload(args) => {
            let settings = Settings::resolve(&args.app)?;
            upload::run(cli, &settings, args)
        }
        EntraCommand::Status(app) => {
            let settings = Settings::resolve(app)?;
            status::run(cli, &settings)
        }
    }
}
