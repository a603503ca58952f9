//! The hardware OATH operations against the mock: shapes, statuses and typed errors.

use std::time::Duration;

use oathkey_entra::{Error, HashFunction, TokenStatus, VerificationCode};
use serde_json::Value;

use crate::{Env, SEED_A, SEED_B, new_token};
use oathkey_testkit::mock;

const DEVICES: &str = "/beta/directory/authenticationMethodDevices/hardwareOathDevices";

fn last_body(env: &Env) -> Value {
    let st = env.mock.state();
    serde_json::from_str(&st.seen.last().expect("a request").body).expect("json body")
}

#[test]
fn create_answers_201_with_the_id_and_no_secret() {
    let env = Env::new();
    let mut t = new_token("0001", SEED_A, Some("u-ann"));
    t.hash_function = Some(HashFunction::Hmacsha1);
    let created = env.graph().create_token(&t).expect("created");
    assert_eq!(created.id.as_deref(), Some("dev-0001"));
    assert_eq!(created.status, Some(TokenStatus::Assigned));
    assert_eq!(created.serial_number.as_deref(), Some("0001"));
    assert!(created.secret_key.is_none(), "Graph never returns the seed");

    let st = env.mock.state();
    let seen = st.seen.last().expect("request");
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", DEVICES)
    );
    let body: Value = serde_json::from_str(&seen.body).expect("json");
    assert_eq!(body["secretKey"], SEED_A);
    assert_eq!(body["assignTo"]["id"], "u-ann");
    assert_eq!(body["timeIntervalInSeconds"], 30);
    assert_eq!(body["hashFunction"], "hmacsha1");
}

#[test]
fn bulk_create_patches_the_collection_as_a_delta() {
    let env = Env::new();
    let tokens = [
        new_token("1001", SEED_A, None),
        new_token("1002", SEED_B, Some("u-bob")),
    ];
    let created = env.graph().create_tokens(&tokens).expect("bulk");
    assert_eq!(created.len(), 2);
    let body = last_body(&env);
    assert_eq!(env.mock.state().seen.last().expect("r").method, "PATCH");
    assert_eq!(body["@context"], "#$delta");
    assert_eq!(body["value"][0]["@contentId"], "1");
    assert_eq!(body["value"][1]["@contentId"], "2");
    assert_eq!(body["value"][1]["assignTo"]["id"], "u-bob");
    let all = env.graph().list_tokens().expect("list");
    assert_eq!(all.len(), 2);
}

#[test]
fn list_follows_next_links_page_by_page() {
    let env = Env::new();
    let g = env.graph();
    for i in 0..5 {
        g.create_token(&new_token(&format!("20{i:02}"), SEED_A, None))
            .expect("create");
    }
    env.mock.state().page_size = 2;
    let all = g.list_tokens().expect("list");
    let mut serials: Vec<_> = all.iter().filter_map(|t| t.serial_number.clone()).collect();
    serials.sort();
    assert_eq!(serials, ["2000", "2001", "2002", "2003", "2004"]);
    let gets = env
        .mock
        .state()
        .seen
        .iter()
        .filter(|s| s.method == "GET")
        .count();
    assert_eq!(gets, 3, "three pages of two");
}

#[test]
fn a_next_link_to_another_host_is_refused() {
    let env = Env::new();
    let g = env.graph();
    for i in 0..2 {
        g.create_token(&new_token(&format!("30{i:02}"), SEED_A, None))
            .expect("create");
    }
    {
        let mut st = env.mock.state();
        st.page_size = 1;
        st.foreign_next_link = true;
    }
    let err = g.list_tokens().expect_err("refused");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("evil.example"), "{err}");
}

#[test]
fn assign_then_activate_with_the_code_of_the_key() {
    let env = Env::new();
    let g = env.graph();
    let t = g
        .create_token(&new_token("4001", SEED_A, None))
        .expect("create");
    let id = t.id.expect("id");
    assert_eq!(t.status, Some(TokenStatus::Available));
    g.assign("ann@contoso.com", &id).expect("assign by UPN");
    assert_eq!(last_body(&env), serde_json::json!({"device": {"id": id}}));
    assert_eq!(
        g.get_token(&id).expect("get").status,
        Some(TokenStatus::Assigned)
    );

    g.activate("ann@contoso.com", &id, &env.code(SEED_A), Some("Ann's key"))
        .expect("activate");
    let body = last_body(&env);
    assert_eq!(body["displayName"], "Ann's key");
    assert_eq!(body["verificationCode"].as_str().map(str::len), Some(6));
    let seen = env.mock.state().seen.last().expect("r").path.clone();
    assert_eq!(
        seen,
        format!("/beta/users/ann@contoso.com/authentication/hardwareOathMethods/{id}/activate")
    );
    let after = g.get_token(&id).expect("get");
    assert_eq!(after.status, Some(TokenStatus::Activated));
    assert_eq!(
        after.assigned_to.and_then(|a| a.id).as_deref(),
        Some("u-ann")
    );
}

#[test]
fn a_wrong_code_is_refused_with_400_and_the_token_marked_failed() {
    let env = Env::new();
    let g = env.graph();
    let id = g
        .create_token(&new_token("5001", SEED_A, Some("u-ann")))
        .expect("c")
        .id
        .expect("id");
    let right = env.code(SEED_A);
    let wrong = VerificationCode::new(if right.expose() == "123456" {
        "654321"
    } else {
        "123456"
    });
    let err = g
        .activate("u-ann", &id, &wrong, None)
        .expect_err("wrong code");
    let Error::BadRequest(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status, 400);
    assert_eq!(e.code.as_deref(), Some("BadRequest"));
    assert_eq!(e.request_id.as_deref(), Some("inner-request-id-7"));
    assert_eq!(
        g.get_token(&id).expect("get").status,
        Some(TokenStatus::FailedActivation)
    );
}

#[test]
fn the_activation_window_is_one_step_either_side() {
    let env = Env::new();
    let g = env.graph();
    let id = g
        .create_token(&new_token("5101", SEED_A, Some("u-ann")))
        .expect("c")
        .id
        .expect("id");
    let secret = data_encoding::BASE32_NOPAD
        .decode(SEED_A.as_bytes())
        .expect("b32");
    let now = env.mock.state().totp_time;
    let stale = VerificationCode::new(mock::reference_code(&secret, 30, false, now - 90));
    let current = VerificationCode::new(mock::reference_code(&secret, 30, false, now));
    assert_ne!(
        stale.expose(),
        current.expose(),
        "test seeds give different codes"
    );
    assert!(matches!(
        g.activate("u-ann", &id, &stale, None),
        Err(Error::BadRequest(_))
    ));
    let late = VerificationCode::new(mock::reference_code(&secret, 30, false, now - 30));
    g.activate("u-ann", &id, &late, None)
        .expect("previous step still accepted");
}

#[test]
fn an_unknown_user_is_404() {
    let env = Env::new();
    let g = env.graph();
    let id = g
        .create_token(&new_token("6001", SEED_A, None))
        .expect("c")
        .id
        .expect("id");
    let err = g.assign("nobody@contoso.com", &id).expect_err("no user");
    let Error::NotFound(e) = &err else {
        panic!("{err:?}")
    };
    assert!(e.message.contains("nobody@contoso.com"), "{}", e.message);
    let err = g
        .create_token(&new_token("6002", SEED_A, Some("u-ghost")))
        .expect_err("no user");
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(matches!(g.get_token("dev-9999"), Err(Error::NotFound(_))));
}

#[test]
fn a_duplicate_serial_is_a_conflict() {
    let env = Env::new();
    let g = env.graph();
    g.create_token(&new_token("7001", SEED_A, None))
        .expect("first");
    let err = g
        .create_token(&new_token("7001", SEED_B, None))
        .expect_err("duplicate");
    let Error::Conflict(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status, 409);
    assert!(err.to_string().contains("7001"), "{err}");
}

#[test]
fn a_user_has_at_most_five_tokens() {
    let env = Env::new();
    let g = env.graph();
    for i in 0..5 {
        g.create_token(&new_token(&format!("80{i:02}"), SEED_A, Some("u-bob")))
            .expect("five");
    }
    let err = g
        .create_token(&new_token("8099", SEED_A, Some("u-bob")))
        .expect_err("sixth");
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    let spare = g
        .create_token(&new_token("8100", SEED_A, None))
        .expect("c")
        .id
        .expect("id");
    assert!(matches!(
        g.assign("u-bob", &spare),
        Err(Error::BadRequest(_))
    ));
    assert_eq!(g.user_methods("bob@contoso.com").expect("methods").len(), 5);
}

#[test]
fn assign_and_activate_in_one_call_by_id_and_by_serial() {
    let env = Env::new();
    let g = env.graph();
    let a = g
        .create_token(&new_token("9001", SEED_A, None))
        .expect("c")
        .id
        .expect("id");
    g.assign_and_activate("u-ann", &a, &env.code(SEED_A), None)
        .expect("by id");
    let body = last_body(&env);
    assert_eq!(body["device"]["id"], a.as_str());
    assert!(
        env.mock
            .state()
            .seen
            .last()
            .expect("r")
            .path
            .ends_with("/assignAndActivate")
    );
    assert_eq!(
        g.get_token(&a).expect("get").status,
        Some(TokenStatus::Activated)
    );

    let b = g
        .create_token(&new_token("9002", SEED_B, None))
        .expect("c")
        .id
        .expect("id");
    g.assign_and_activate_by_serial("u-bob", "9002", &env.code(SEED_B), Some("Bob"))
        .expect("by serial");
    let body = last_body(&env);
    assert_eq!(body["serialNumber"], "9002");
    assert_eq!(body["displayName"], "Bob");
    assert_eq!(
        g.get_token(&b).expect("get").status,
        Some(TokenStatus::Activated)
    );
}

#[test]
fn unassign_before_delete() {
    let env = Env::new();
    let g = env.graph();
    let id = g
        .create_token(&new_token("9101", SEED_A, Some("u-ann")))
        .expect("c")
        .id
        .expect("id");
    assert!(
        matches!(g.delete_token(&id), Err(Error::BadRequest(_))),
        "assigned: refused"
    );
    g.unassign("u-ann", &id).expect("unassign");
    assert_eq!(
        g.get_token(&id).expect("get").status,
        Some(TokenStatus::Available)
    );
    g.delete_token(&id).expect("delete");
    assert!(matches!(g.get_token(&id), Err(Error::NotFound(_))));
    let seen = env
        .mock
        .state()
        .seen
        .iter()
        .filter(|s| s.method == "DELETE")
        .count();
    assert_eq!(seen, 3);
}

#[test]
fn an_expired_token_is_401_and_a_missing_permission_403() {
    let env = Env::new();
    let err = env
        .graph_with(mock::EXPIRED_TOKEN)
        .list_tokens()
        .expect_err("expired");
    let Error::Unauthorized(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code.as_deref(), Some("InvalidAuthenticationToken"));
    assert!(err.to_string().contains("sign in again"), "{err}");

    env.mock.state().forbidden = true;
    let err = env.graph().list_tokens().expect_err("forbidden");
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Policy.ReadWrite.AuthenticationMethod"),
        "{text}"
    );
    assert!(
        text.contains("UserAuthenticationMethod.ReadWrite.All"),
        "{text}"
    );
}

#[test]
fn throttling_honours_retry_after_then_succeeds() {
    let env = Env::new();
    env.mock
        .state()
        .throttle
        .extend([(429, Some("7")), (503, None), (429, Some("100000"))]);
    let all = env.graph().list_tokens().expect("retried to success");
    assert!(all.is_empty());
    // 7 s as told, 4 s back-off (no Retry-After on the second retry), the huge one capped.
    assert_eq!(
        env.clock.sleeps(),
        [
            Duration::from_secs(7),
            Duration::from_secs(4),
            Duration::from_secs(120)
        ]
    );
    assert_eq!(env.mock.state().seen.len(), 4);
}

#[test]
fn throttling_gives_up_after_the_retry_cap() {
    let env = Env::new();
    env.mock
        .state()
        .throttle
        .extend(std::iter::repeat_n((429, Some("1")), 10));
    let err = env
        .graph()
        .create_token(&new_token("9201", SEED_A, None))
        .expect_err("throttled");
    let Error::Throttled {
        status,
        retries,
        retry_after,
        request_id,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*status, *retries), (429, 5));
    assert_eq!(*retry_after, Some(Duration::from_secs(1)));
    assert_eq!(request_id.as_deref(), Some("mock-request-id-42"));
    assert_eq!(env.mock.state().seen.len(), 6, "one try and five retries");
    assert!(env.mock.state().devices.is_empty(), "nothing created");
}
