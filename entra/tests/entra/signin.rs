//! Sign-in against the mock login endpoints, and the token cache.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use oathkey_entra::{
    AccessToken, AuthError, ClientCertificate, ClientSecret, DELEGATED_SCOPES, Error, RefreshToken,
    TokenCache, TokenSet,
};

use crate::Env;
use oathkey_testkit::mock;

#[test]
fn device_code_waits_while_pending_and_slows_down_when_told() {
    let env = Env::new();
    {
        let mut st = env.mock.state();
        st.pending_polls = 2;
        st.slow_down = true;
    }
    let login = env.login();
    let code = login
        .start_device_code(DELEGATED_SCOPES)
        .expect("device code");
    assert_eq!(code.user_code, "ABCD-EFGH");
    assert_eq!(code.interval, 5);
    assert!(code.message.contains("ABCD-EFGH"));
    let tokens = login.poll_device_code(&code).expect("signed in");
    assert_eq!(tokens.access_token.expose(), mock::GOOD_TOKEN);
    assert_eq!(
        tokens.refresh_token.as_ref().map(RefreshToken::expose),
        Some(mock::REFRESH_TOKEN)
    );
    assert_eq!(tokens.expires_at, 1_700_000_000 + 5 + 5 + 5 + 10 + 3599);
    // pending, pending, slow_down (interval 5 -> 10), success.
    let secs: Vec<u64> = env.clock.sleeps().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [5, 5, 5, 10]);

    let st = env.mock.state();
    let polls: Vec<_> = st
        .seen
        .iter()
        .filter(|s| s.path.ends_with("/token"))
        .collect();
    assert_eq!(polls.len(), 4);
    assert!(
        polls[0]
            .body
            .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code")
    );
    assert_eq!(
        st.seen[0].path,
        format!("/login/{}/oauth2/v2.0/devicecode", mock::TENANT)
    );
}

#[test]
fn device_code_declined_and_expired() {
    let env = Env::new();
    let login = env.login();
    let code = login
        .start_device_code(DELEGATED_SCOPES)
        .expect("device code");
    env.mock.state().poll_error = Some("authorization_declined");
    assert!(matches!(
        login.poll_device_code(&code),
        Err(Error::Auth(AuthError::Declined))
    ));
    env.mock.state().poll_error = Some("expired_token");
    assert!(matches!(
        login.poll_device_code(&code),
        Err(Error::Auth(AuthError::Expired))
    ));
    // The code's own lifetime ends the polling even if the server keeps saying "pending".
    {
        let mut st = env.mock.state();
        st.poll_error = None;
        st.pending_polls = u32::MAX;
    }
    assert!(matches!(
        login.poll_device_code(&code),
        Err(Error::Auth(AuthError::Expired))
    ));
}

#[test]
fn client_credentials_with_a_secret() {
    let env = Env::new();
    let login = env.login();
    let tokens = login
        .client_credentials(&ClientSecret::new(mock::CLIENT_SECRET))
        .expect("ok");
    assert_eq!(tokens.access_token.expose(), mock::GOOD_TOKEN);
    assert!(tokens.refresh_token.is_none());
    let body = env.mock.state().seen.last().expect("r").body.clone();
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(
        body.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        "{body}"
    );

    let err = login
        .client_credentials(&ClientSecret::new("wrong"))
        .expect_err("refused");
    let Error::Auth(AuthError::Refused(e)) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((e.status, e.code.as_deref()), (401, Some("invalid_client")));
}

fn tokens(access: &str, expires_at: u64) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: Some(RefreshToken::new(mock::REFRESH_TOKEN)),
        expires_at,
        scope: None,
    }
}

#[test]
fn the_cache_is_private_atomic_and_refreshes_when_expired() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tmp");
    let cache = TokenCache::new(dir.path().join("oathkey").join("entra-token.json"));
    let login = env.login();
    assert!(matches!(
        cache.access_token(&login, env.clock.as_ref(), DELEGATED_SCOPES),
        Err(Error::Auth(AuthError::NotSignedIn))
    ));
    cache
        .store(
            mock::TENANT,
            mock::CLIENT_ID,
            &tokens(mock::GOOD_TOKEN, 1_700_003_600),
        )
        .expect("store");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(cache.path().parent().expect("dir"))
            .expect("m")
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
    }
    let leftovers = std::fs::read_dir(cache.path().parent().expect("dir"))
        .expect("ls")
        .count();
    assert_eq!(leftovers, 1, "no temporary file left behind");
    let t = cache
        .access_token(&login, env.clock.as_ref(), DELEGATED_SCOPES)
        .expect("cached");
    assert_eq!(t.expose(), mock::GOOD_TOKEN);
    assert!(
        cache
            .load("other-tenant", mock::CLIENT_ID)
            .expect("load")
            .is_none()
    );

    // An hour later it has expired: refreshed with the refresh token and stored back.
    env.clock.advance(Duration::from_secs(3600));
    let t = cache
        .access_token(&login, env.clock.as_ref(), DELEGATED_SCOPES)
        .expect("refreshed");
    assert_eq!(t.expose(), mock::FRESH_TOKEN);
    let stored = cache
        .load(mock::TENANT, mock::CLIENT_ID)
        .expect("load")
        .expect("some");
    assert_eq!(stored.access_token.expose(), mock::FRESH_TOKEN);
    assert!(stored.expires_at > oathkey_entra::Clock::unix_time(env.clock.as_ref()));

    assert!(cache.logout().expect("logout"));
    assert!(!cache.path().exists());
    assert!(!cache.logout().expect("second logout"));
}

#[cfg(unix)]
#[test]
fn the_cache_refuses_a_symlink() {
    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("elsewhere.json");
    std::fs::write(&target, "{}").expect("write");
    let link = dir.path().join("entra-token.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let cache = TokenCache::new(&link);
    let err = cache
        .store(mock::TENANT, mock::CLIENT_ID, &tokens("x", 1))
        .expect_err("refused");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(cache.load(mock::TENANT, mock::CLIENT_ID).is_err());
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "{}",
        "target untouched"
    );
}

#[test]
fn the_cache_lives_in_the_users_cache_directory() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let p =
        TokenCache::default_path_with(env(&[("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/a")]));
    assert_eq!(
        p.expect("path"),
        PathBuf::from("/x/cache/oathkey/entra-token.json")
    );
    // A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
    let p = TokenCache::default_path_with(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/home/a")]));
    assert_eq!(
        p.expect("path"),
        PathBuf::from("/home/a/.cache/oathkey/entra-token.json")
    );
    assert!(TokenCache::default_path_with(env(&[])).is_err());
}

const APP_CERT: &str = include_str!("fixtures/app-cert.pem");
const APP_KEY: &str = include_str!("fixtures/app-key.pem");
const APP_KEY_PKCS1: &str = include_str!("fixtures/app-key-pkcs1.pem");
const OTHER_KEY: &str = include_str!("fixtures/other-key.pem");

#[test]
fn client_credentials_with_a_certificate() {
    let env = Env::new();
    let login = env.login();
    for key in [APP_KEY, APP_KEY_PKCS1] {
        let cert = ClientCertificate::from_pem(APP_CERT, key).expect("usable");
        assert_eq!(
            cert.thumbprint_sha256(),
            mock::CERT_THUMBPRINT,
            "same as OpenSSL's"
        );
        let tokens = login
            .client_certificate(&cert)
            .expect("signed in with the certificate");
        assert_eq!(tokens.access_token.expose(), mock::GOOD_TOKEN);
    }
    let st = env.mock.state();
    assert_eq!(st.assertions.len(), 2);
    let (_, first) = &st.assertions[0];
    let (_, second) = &st.assertions[1];
    assert_eq!(first["nbf"], 1_700_000_000u64);
    assert_ne!(first["jti"], second["jti"], "a fresh id per assertion");
    let body = &st.seen.last().expect("r").body;
    assert!(!body.contains("client_secret"), "{body}");
}

#[test]
fn a_certificate_with_the_wrong_key_is_refused() {
    let env = Env::new();
    let cert = ClientCertificate::from_pem(APP_CERT, OTHER_KEY).expect("parses");
    let err = env.login().client_certificate(&cert).expect_err("refused");
    let Error::Auth(AuthError::Refused(e)) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code.as_deref(), Some("invalid_client"));
    assert!(e.message.contains("AADSTS700027"), "{}", e.message);
    assert!(!format!("{cert:?}").contains("PRIVATE"));
}
