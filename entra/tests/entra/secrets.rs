//! No seed, verification code, access or refresh token, device code or client secret appears
//! in any error message, Debug output or log line, across failures that carry them.

use oathkey_entra::{ClientSecret, DELEGATED_SCOPES, RefreshToken, TokenCache, VerificationCode};

use crate::{Env, SEED_A, SEED_B, new_token};
use oathkey_testkit::mock;

#[test]
fn secrets_never_reach_errors_debug_output_or_logs() {
    let env = Env::new();
    let right = env.code(SEED_A);
    let wrong_text = if right.expose() == "482913" {
        "482914"
    } else {
        "482913"
    };
    let mut seen: Vec<String> = Vec::new();

    {
        let g = env.graph();
        let token = new_token("S001", SEED_A, Some("u-ann"));
        seen.push(format!("{token:?} {g:?}"));
        let id = g.create_token(&token).expect("create").id.expect("id");
        // A duplicate (409), a wrong code the mock echoes back (400), throttling given up on.
        let mut errors = vec![
            g.create_token(&new_token("S001", SEED_B, None))
                .expect_err("dup"),
            g.activate("u-ann", &id, &VerificationCode::new(wrong_text), None)
                .expect_err("code"),
        ];
        g.activate("u-ann", &id, &right, None).expect("activate");
        env.mock
            .state()
            .throttle
            .extend(std::iter::repeat_n((429, Some("1")), 6));
        errors.push(
            g.create_token(&new_token("S002", SEED_B, None))
                .expect_err("throttled"),
        );
        errors.push(
            env.graph_with(mock::EXPIRED_TOKEN)
                .list_tokens()
                .expect_err("401"),
        );

        let login = env.login();
        errors.push(
            login
                .client_credentials(&ClientSecret::new("nope-secret-xyz"))
                .expect_err("cc"),
        );
        let ok = login
            .client_credentials(&ClientSecret::new(mock::CLIENT_SECRET))
            .expect("cc");
        seen.push(format!("{ok:?} {login:?}"));
        let cert = oathkey_entra::ClientCertificate::from_pem(
            include_str!("fixtures/app-cert.pem"),
            include_str!("fixtures/app-key.pem"),
        )
        .expect("cert");
        let signed_in = login.client_certificate(&cert).expect("cert sign-in");
        seen.push(format!("{cert:?} {signed_in:?}"));
        let wrong = oathkey_entra::ClientCertificate::from_pem(
            include_str!("fixtures/app-cert.pem"),
            include_str!("fixtures/other-key.pem"),
        )
        .expect("cert");
        errors.push(login.client_certificate(&wrong).expect_err("wrong key"));
        let code = login
            .start_device_code(DELEGATED_SCOPES)
            .expect("device code");
        seen.push(format!("{code:?}"));
        let tokens = login.poll_device_code(&code).expect("poll");
        seen.push(format!("{tokens:?}"));
        errors.push(
            login
                .refresh(
                    &RefreshToken::new("not-the-refresh-token"),
                    DELEGATED_SCOPES,
                )
                .expect_err("rt"),
        );
        let fresh = login
            .refresh(&RefreshToken::new(mock::REFRESH_TOKEN), DELEGATED_SCOPES)
            .expect("rt");
        seen.push(format!("{fresh:?}"));

        let dir = tempfile::tempdir().expect("tmp");
        let cache = TokenCache::new(dir.path().join("t.json"));
        cache
            .store(mock::TENANT, mock::CLIENT_ID, &tokens)
            .expect("store");
        let t = cache
            .access_token(&login, env.clock.as_ref(), DELEGATED_SCOPES)
            .expect("cached");
        seen.push(format!("{t:?} {t} {cache:?}"));

        for e in &errors {
            seen.push(format!("{e}"));
            seen.push(format!("{e:?}"));
        }
        assert_eq!(errors.len(), 7);
    }

    // Every test's log lines so far, not only this one's: all go to one capture.
    let log_text = crate::captured_logs();
    assert!(
        log_text.contains("graph call"),
        "the capture works: {log_text}"
    );
    assert!(log_text.contains("throttled"), "retries are logged");
    seen.push(log_text);
    let everything = seen.join("\n");
    assert!(
        everything.contains("[redacted]"),
        "the echoed code was scrubbed"
    );
    for secret in [
        SEED_A,
        SEED_B,
        right.expose(),
        wrong_text,
        mock::GOOD_TOKEN,
        mock::EXPIRED_TOKEN,
        mock::FRESH_TOKEN,
        mock::REFRESH_TOKEN,
        mock::DEVICE_CODE,
        mock::CLIENT_SECRET,
        "nope-secret-xyz",
        "not-the-refresh-token",
        // A line from the middle of each private key.
        include_str!("fixtures/app-key.pem")
            .lines()
            .nth(5)
            .expect("key line"),
        include_str!("fixtures/other-key.pem")
            .lines()
            .nth(5)
            .expect("key line"),
    ] {
        assert!(
            !everything.contains(secret),
            "{secret:?} leaked into:\n{everything}"
        );
    }
}
