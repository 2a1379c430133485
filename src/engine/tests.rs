//! Unit tests of the engine's small internal rules. Scenario tests with a fake device live in
//! `tests/engine/` and `tests/engine_props.rs`.

use super::*;

#[test]
fn backoff_stays_within_full_jitter_bounds() {
    let cfg = Config::apic(
        BaseUrl::parse("https://apic1").unwrap(),
        Auth::password("u", "p"),
    );
    let mut e = Engine::new(cfg, 0);
    for n in 1..20u32 {
        for _ in 0..50 {
            let d = e.backoff(n);
            let ceiling = (1000u64 << (n - 1).min(40)).min(60_000);
            assert!(d <= ceiling, "attempt {n}: {d} > {ceiling}");
        }
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let cfg = Config::apic(
        BaseUrl::parse("https://apic1").unwrap(),
        Auth::Token {
            token: "SECRET-TOKEN".into(),
            url_token: Some("SECRET-URL".into()),
            user: None,
        },
    );
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("SECRET"));
    let mut e = Engine::new(cfg, 0);
    while let Some(a) = e.poll_action() {
        let d = format!("{a:?}");
        assert!(!d.contains("SECRET"), "{d}");
    }
    let cfg = Config::apic(
        BaseUrl::parse("https://apic1").unwrap(),
        Auth::password("u", "SECRETPW"),
    );
    let mut e = Engine::new(cfg, 0);
    let a = e.poll_action().unwrap();
    assert!(!format!("{a:?}").contains("SECRETPW"));
}

/// The table lists no timer twice (a timer listed twice would fire twice per input).
#[test]
fn the_timer_table_lists_no_timer_twice() {
    let mut seen = std::collections::HashSet::new();
    for t in Timer::ALL {
        assert!(seen.insert(t), "{t:?} twice");
    }
}

/// "Degraded" is decided in one place: each reason is cleared only by what answers it.
#[test]
fn degraded_reasons_clear_only_by_their_own_signal() {
    use health::{Health, Signal};
    let mut h = Health::new(0);
    h.signal(Signal::NoAnswer);
    assert_eq!(h.degraded(), Some(DegradedReason::RequestFailures));
    h.signal(Signal::ThrottleOver);
    assert_eq!(h.degraded(), Some(DegradedReason::RequestFailures));
    h.signal(Signal::Throttled);
    h.signal(Signal::NoAnswer);
    h.signal(Signal::Answered);
    assert_eq!(h.degraded(), Some(DegradedReason::Throttled));
    h.signal(Signal::ThrottleOver);
    assert_eq!(h.degraded(), None);
    h.signal(Signal::Verifying);
    h.signal(Signal::Answered);
    assert_eq!(h.degraded(), None);
    h.offline = true;
    assert_eq!(h.degraded(), Some(DegradedReason::Offline));
}
