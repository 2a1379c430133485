//! Unit tests of the engine's small pure helpers. Scenario tests with a fake device live in
//! `tests/engine.rs` and `tests/engine_props.rs`.

use super::*;

#[test]
fn reconcile_synthesizes_created_modified_deleted() {
    let mut store = Store::new();
    let a = Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("descr", "1");
    let b = Mo::new("fvTenant", "uni/tn-b", Status::Snapshot);
    assert!(reconcile(&mut store, &[a.clone(), b.clone()], true).is_empty());
    let a2 = Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("descr", "2");
    let c = Mo::new("fvTenant", "uni/tn-c", Status::Snapshot);
    let out = reconcile(&mut store, &[a2, c], false);
    let got: Vec<(&str, Status)> = out.iter().map(|m| (m.dn.as_str(), m.status)).collect();
    assert_eq!(
        got,
        vec![
            ("uni/tn-a", Status::Modified),
            ("uni/tn-c", Status::Created),
            ("uni/tn-b", Status::Deleted)
        ]
    );
    assert_eq!(store.len(), 2);
    assert_eq!(store.get("uni/tn-a").unwrap().get("descr"), Some("2"));
}

/// Runtime objects answer `modTs:"never"` in queries but carry a timestamp in pushes: an object
/// whose only difference after a gap is bookkeeping (`modTs`, `childAction`, `rn`) did not change.
#[test]
fn reconcile_ignores_bookkeeping_only_differences() {
    let mut store = Store::new();
    let held = Mo::new("ethpmPhysIf", "sys/phys-[eth1/1]/phys", Status::Snapshot)
        .with("operSt", "up")
        .with("modTs", "2026-11-23T01:00:00.000+00:00")
        .with("childAction", "");
    reconcile(&mut store, &[held], true);
    let snap = Mo::new("ethpmPhysIf", "sys/phys-[eth1/1]/phys", Status::Snapshot)
        .with("operSt", "up")
        .with("modTs", "never")
        .with("rn", "phys")
        .with("childAction", "");
    assert!(reconcile(&mut store, std::slice::from_ref(&snap), false).is_empty());
    let changed = snap.with("operSt", "down");
    assert_eq!(reconcile(&mut store, &[changed], false).len(), 1);
}

#[test]
fn frame_dedup_keeps_order_and_distinct_objects() {
    let a = Mo::new("fvTenant", "uni/tn-a", Status::Modified).with("descr", "1");
    let b = Mo::new("fvTenant", "uni/tn-a", Status::Modified).with("descr", "2");
    assert_eq!(
        dedup_frame(vec![a.clone(), a.clone(), b.clone()]),
        vec![a.clone(), b.clone()]
    );
    let many: Vec<Mo> = (0..40)
        .map(|i| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    assert_eq!(dedup_frame(many), vec![a, b]);
}

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
