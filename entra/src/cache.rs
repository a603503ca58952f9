//! [`TokenCache`]: the signed-in admin's tokens on disk, so one sign-in serves a session.
//!
//! The file is the user's own (`$XDG_CACHE_HOME/oathkey/entra-token.json`, else
//! `~/.cache/oathkey/entra-token.json`), in a directory created 0700. It is written 0600 and
//! atomically: a temporary file in the same directory (created 0600), fsynced, renamed over
//! the old one, then the directory fsynced; a crash leaves the old tokens or the new ones. A
//! cache path that is a symlink is refused, for reading and writing: a link planted there
//! could send the tokens to a file others read, or feed us someone else's.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::{Login, TokenSet};
use crate::clock::Clock;
use crate::error::{AuthError, Error};
use crate::secret::AccessToken;

/// The file name inside the cache directory.
pub const CACHE_FILE: &str = "entra-token.json";

/// What the file holds: the tokens and whom they are for.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    tenant: String,
    client_id: String,
    tokens: TokenSet,
}

/// The token cache file.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
}

impl TokenCache {
    /// A cache at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenCache { path: path.into() }
    }

    /// The cache at its default place, from the process environment.
    pub fn default_location() -> Result<Self, Error> {
        Self::default_path_with(|name| std::env::var_os(name)).map(Self::new)
    }

    /// `$XDG_CACHE_HOME/oathkey/entra-token.json` (an absolute `XDG_CACHE_HOME` only, as the
    /// XDG spec says), else `$HOME/.cache/oathkey/entra-token.json`.
    pub fn default_path_with(
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<PathBuf, Error> {
        let base = env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .ok_or_else(|| Error::Cache {
                path: "~/.cache".into(),
                reason: "neither XDG_CACHE_HOME nor HOME is set".into(),
            })?;
        Ok(base.join("oathkey").join(CACHE_FILE))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::Cache {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn refuse_symlink(&self) -> Result<bool, Error> {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => Err(self.err("is a symlink; refusing it")),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The cached tokens for `tenant` and `client_id`, if any (tokens for another tenant or
    /// app count as none).
    pub fn load(&self, tenant: &str, client_id: &str) -> Result<Option<TokenSet>, Error> {
        if !self.refuse_symlink()? {
            return Ok(None);
        }
        let text = Zeroizing::new(fs::read_to_string(&self.path).map_err(|e| self.err(e))?);
        let cached: Cached = serde_json::from_str(&text).map_err(|e| {
            self.err(format!(
                "unreadable (line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        Ok((cached.tenant == tenant && cached.client_id == client_id).then_some(cached.tokens))
    }

    /// Writes the tokens (0600, atomically).
    pub fn store(&self, tenant: &str, client_id: &str, tokens: &TokenSet) -> Result<(), Error> {
        self.refuse_symlink()?;
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.err("has no directory"))?;
        create_private_dir(dir).map_err(|e| self.err(e))?;
        let cached = Cached {
            tenant: tenant.into(),
            client_id: client_id.into(),
            tokens: tokens.clone(),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&cached).map_err(|e| self.err(e))?);
        // tempfile creates its files 0600 (O_EXCL) on Unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".entra-token.")
            .tempfile_in(dir)
            .map_err(|e| self.err(e))?;
        tmp.write_all(text.as_bytes()).map_err(|e| self.err(e))?;
        tmp.as_file().sync_all().map_err(|e| self.err(e))?;
        tmp.persist(&self.path).map_err(|e| self.err(e.error))?;
        if let Ok(d) = fs::File::open(dir) {
            // The rename is durable once the directory is; a failure here loses nothing.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Deletes the cache (sign out). Returns whether there was one.
    pub fn logout(&self) -> Result<bool, Error> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// A valid access token: the cached one, or a refreshed one (stored back), or
    /// [`AuthError::NotSignedIn`] / [`AuthError::NoRefreshToken`].
    pub fn access_token(
        &self,
        login: &Login,
        clock: &dyn Clock,
        scopes: &str,
    ) -> Result<AccessToken, Error> {
        let tokens = self
            .load(login.tenant(), login.client_id())?
            .ok_or(AuthError::NotSignedIn)?;
        if !tokens.is_expired(clock.unix_time()) {
            return Ok(tokens.access_token);
        }
        let refresh = tokens.refresh_token.ok_or(AuthError::NoRefreshToken)?;
        tracing::info!("access token expired; refreshing");
        let fresh = login.refresh(&refresh, scopes)?;
        self.store(login.tenant(), login.client_id(), &fresh)?;
        Ok(fresh.access_token)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}
