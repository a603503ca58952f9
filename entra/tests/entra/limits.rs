//! The activation limiter: 200 per rolling 5 minutes, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use oathkey_entra::{ActivationLimiter, Clock, ManualClock, TokenStatus};

use crate::{Env, SEED_A, SEED_B, new_token};

#[test]
fn two_hundred_pass_then_the_next_waits_for_the_oldest_to_leave() {
    let clock = ManualClock::new(0);
    let mut limiter = ActivationLimiter::default();
    for _ in 0..200 {
        assert_eq!(limiter.acquire(&clock), Duration::ZERO);
    }
    assert_eq!(limiter.in_window(&clock), 200);
    clock.advance(Duration::from_secs(10));
    assert_eq!(limiter.acquire(&clock), Duration::from_secs(290));
    assert_eq!(clock.now(), Duration::from_secs(300));
}

#[test]
fn the_window_slides() {
    let clock = ManualClock::new(0);
    let mut limiter = ActivationLimiter::default();
    for _ in 0..100 {
        limiter.acquire(&clock);
    }
    clock.advance(Duration::from_secs(200));
    for _ in 0..100 {
        assert_eq!(limiter.acquire(&clock), Duration::ZERO);
    }
    // At 250 s all 200 are inside the window; the first 100 leave at 300 s.
    clock.advance(Duration::from_secs(50));
    assert_eq!(limiter.acquire(&clock), Duration::from_secs(50));
    for _ in 0..99 {
        assert_eq!(limiter.acquire(&clock), Duration::ZERO);
    }
    // Now the second hundred (from 200 s) fills the window until 500 s.
    assert_eq!(limiter.acquire(&clock), Duration::from_secs(200));
}

#[test]
fn the_client_waits_between_activations_beyond_the_limit() {
    let env = Env::new();
    let g = env
        .graph()
        .with_limiter(ActivationLimiter::new(1, Duration::from_secs(300)));
    let a = g
        .create_token(&new_token("L1", SEED_A, Some("u-ann")))
        .expect("c")
        .id
        .expect("id");
    let b = g
        .create_token(&new_token("L2", SEED_B, Some("u-ann")))
        .expect("c")
        .id
        .expect("id");
    g.activate("u-ann", &a, &env.code(SEED_A), None)
        .expect("first");
    assert!(env.clock.sleeps().is_empty());
    env.clock.advance(Duration::from_secs(100));
    g.activate("u-ann", &b, &env.code(SEED_B), None)
        .expect("second, after waiting");
    assert_eq!(env.clock.sleeps(), [Duration::from_secs(200)]);
    assert_eq!(
        g.get_token(&b).expect("get").status,
        Some(TokenStatus::Activated)
    );
    let _: Arc<ManualClock> = env.clock.clone();
}
