//! Browser tests of disruptions and how the package heals: a dropped socket, throttling and
//! malformed frames, a device that lost the socket (405), a planned rotation that must give no
//! gap, and a 503 storm longer than the subscriptions' lifetime.

use super::*;

#[wasm_bindgen_test]
async fn dropped_socket_reconnects_with_a_gap_and_the_store_converges() {
    let Fx {
        _turn,
        base,
        session: _,
        log,
        ec,
    } = fixture().await;
    let sub = subscribe(&ec, class("fvTenant"), &log, true).await;
    let first_id = sub.subid();
    sim(base, "/_sim/drop-sockets", None).await;
    // A change while the client is away: it must show up through reconciliation.
    write_tenant(base, "wasm4", "while-away").await;
    until(8000, "a gap", || !log.gaps.borrow().is_empty()).await;
    until(8000, "resubscribed", || {
        !sub.subid().is_empty() && sub.subid() != first_id
    })
    .await;
    until(8000, "reconciled", || log.saw("uni/tn-wasm4", "created")).await;
    assert_eq!(log.gaps.borrow().len(), 1, "exactly one gap");
    assert_eq!(
        get(&log.gaps.borrow()[0], "reason").as_string().as_deref(),
        Some("reconnect")
    );
    assert!(log.states.borrow().iter().any(|s| s == "reconnecting"));
    until(5000, "live again", || {
        log.states.borrow().last().map(String::as_str) == Some("live")
    })
    .await;
    store_matches_truth(&sub, base, "fvTenant").await.unwrap();
    delete_tenant(base, "wasm4").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn throttling_backs_off_and_malformed_frames_are_reported() {
    let Fx {
        _turn,
        base,
        session: _,
        log,
        ec,
    } = fixture().await;
    sim(base, "/_sim/fail-503?n=2", None).await;
    // The subscribe meets two 503s and still succeeds after backing off.
    let sub = subscribe(&ec, class("fvTenant"), &log, false).await;
    assert!(!sub.subid().is_empty());
    sim(base, "/_sim/malformed?kind=garbage", None).await;
    until(5000, "a PROTOCOL error", || {
        log.errors
            .borrow()
            .iter()
            .any(|e| get(e, "code").as_string().as_deref() == Some("PROTOCOL"))
    })
    .await;
    write_tenant(base, "wasm6", "x").await;
    until(5000, "the stream goes on", || {
        log.saw("uni/tn-wasm6", "created")
    })
    .await;
    assert!(
        log.gaps.borrow().is_empty(),
        "a bad frame is not a disconnect"
    );
    delete_tenant(base, "wasm6").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn a_device_that_lost_the_socket_answers_405_and_everything_is_rebuilt() {
    let _turn = turn().await;
    let base = apic();
    delete_tenant(base, "wasm11").await;
    let session = login_at(base, "apic").await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let opts = obj(&[
        ("onEvent", log.cb(|l| &l.events)),
        ("onGap", log.cb(|l| &l.gaps)),
        ("store", JsValue::TRUE),
        ("refreshTimeout", JsValue::from(3)),
    ]);
    let sub = subscribe_raw(&ec, class("fvTenant"), Some(opts)).await;

    let first = sub.subid();
    let sockets_before = get(&sim_get(base, "/_sim/stats").await, "sockets_opened")
        .as_f64()
        .unwrap();
    // The device forgets the socket without closing it: no close event reaches the client.
    sim(base, "/_sim/drop-sockets?mode=forget", None).await;
    write_tenant(base, "wasm11", "unseen").await;
    until(10_000, "a gap", || !log.gaps.borrow().is_empty()).await;
    until(10_000, "a new subscription id", || {
        let id = sub.subid();
        !id.is_empty() && id != first
    })
    .await;
    until(8000, "the change made while lost, reconciled", || {
        log.saw("uni/tn-wasm11", "created")
    })
    .await;
    let reasons: Vec<String> = log
        .gaps
        .borrow()
        .iter()
        .filter_map(|g| get(g, "reason").as_string())
        .collect();
    // One interruption, one gap (its reason is what was noticed first: the refresh 400); the
    // resubscribe met the 405 and the socket was rebuilt within the same gap.
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0] == "expired" || reasons[0] == "socket-rebuilt",
        "{reasons:?}"
    );
    let opened = get(&sim_get(base, "/_sim/stats").await, "sockets_opened")
        .as_f64()
        .unwrap();
    assert!(opened > sockets_before, "a new socket was opened");
    store_matches_truth(&sub, base, "fvTenant").await.unwrap();
    sim(
        base,
        "/_sim/write?dn=uni/tn-wasm11",
        Some(r#"{"fvTenant":{"attributes":{"descr":"seen"}}}"#),
    )
    .await;
    until(5000, "pushes on the new socket", || {
        log.saw("uni/tn-wasm11", "modified")
    })
    .await;
    delete_tenant(base, "wasm11").await;
    ec.close();
}

fn lifetimes() -> &'static str {
    LIFETIMES.expect("DME_SIM_LIFETIMES_URL must name a dme-sim with --max-lifetime 30")
}

/// How many times each `descr` of `dn` was delivered, and whether any delivery of it had no
/// status (a snapshot delivered again).
fn deliveries_of(log: &Log, dn: &str) -> (std::collections::BTreeMap<String, u32>, bool) {
    let mut counts = std::collections::BTreeMap::new();
    let mut snapshot = false;
    for m in log.mos() {
        if get(&m, "dn").as_string().as_deref() != Some(dn) {
            continue;
        }
        let descr = get(&get(&m, "attributes"), "descr")
            .as_string()
            .unwrap_or_default();
        *counts.entry(descr).or_insert(0) += 1;
        snapshot |= get(&m, "status").as_string().unwrap_or_default().is_empty();
    }
    (counts, snapshot)
}

/// A planned session rotation under churn (sessions live 30 s on this simulator, so the package
/// rotates 11 to 15 s after its login; a change every 100 ms): no gap, every change delivered
/// exactly once with and without store mode, no snapshot delivered again, the store equal to
/// the device, and the retired session logged out. The token travels in `DevCookie` here: the
/// browser's cookie jar holds only the newest token, which would leave the old session to its
/// idle timeout.
#[wasm_bindgen_test]
async fn a_planned_rotation_under_churn_is_gapless_and_delivers_each_change_once() {
    let _turn = turn().await;
    let base = lifetimes();
    let session = login_with(base, "apic", &[("tokenTransport", s("devcookie"))]).await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    write_tenant(base, "rot", "v0").await;
    let stored = subscribe(&ec, class("fvTenant"), &log, true).await;
    let plain_log = Rc::new(Log::default());
    let _plain = subscribe(&ec, class("fvTenant"), &plain_log, false).await;
    let rotations = || get(&ec.stats().into(), "sessionRotations").as_f64();
    let (mut n, mut after) = (0, 0);
    while after < 20 {
        n += 1;
        write_tenant(base, "rot", &format!("v{n}")).await;
        sleep(100).await;
        if rotations() >= Some(1.0) {
            after += 1;
        }
        assert!(n < 300, "no rotation within 30 s");
    }
    sleep(1500).await;
    for (l, name) in [(&log, "store"), (&plain_log, "plain")] {
        let (counts, snapshot) = deliveries_of(l, "uni/tn-rot");
        for k in 1..=n {
            let c = counts.get(&format!("v{k}")).copied().unwrap_or(0);
            assert_eq!(c, 1, "{name}: v{k} delivered {c} times");
        }
        assert!(!snapshot, "{name}: a snapshot was delivered again");
        assert_eq!(l.gaps.borrow().len(), 0, "{name}: a gap at the rotation");
    }
    assert!(log.errors.borrow().is_empty(), "{:?}", log.errors.borrow());
    store_matches_truth(&stored, base, "fvTenant")
        .await
        .unwrap();
    let sessions = Array::from(&get(&sim_get(base, "/_sim/stats").await, "sessions")).length();
    assert_eq!(sessions, 1, "the retired session was logged out");
    ec.close();
    wait(session.logout()).await.unwrap();
    delete_tenant(base, "rot").await;
}

/// A 503 storm longer than the subscriptions' lifetime (every request answers 503 for 7 s; the
/// subscriptions live 3 s, requests time out after 3 s): each subscription gets its one
/// `expired` gap within its lifetime plus one request timeout of the storm's start, is no longer
/// active, and after the storm every store equals the device, changes made meanwhile included.
#[wasm_bindgen_test]
async fn a_503_storm_longer_than_the_lifetime_gives_each_subscription_its_gap() {
    let _turn = turn().await;
    let base = lifetimes();
    let session = login_with(base, "apic", &[("requestTimeoutMs", JsValue::from(3000))]).await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    write_tenant(base, "storm", "before").await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let o = obj(&[
            ("onEvent", log.cb(|l| &l.events)),
            ("onGap", log.cb(|l| &l.gaps)),
            ("store", JsValue::from(true)),
            ("refreshTimeout", JsValue::from(3)),
        ]);
        subs.push(subscribe_raw(&ec, class("fvTenant"), Some(o)).await);
    }
    let handles: Vec<f64> = subs.iter().map(|s| s.handle()).collect();
    let gapped = |h: f64| {
        log.gaps
            .borrow()
            .iter()
            .filter(|g| get(g, "subscription").as_f64() == Some(h))
            .count()
    };
    let started = js_sys::Date::now();
    sim(base, "/_sim/fail-503?ms=7000", None).await;
    until(6000, "a gap for every subscription", || {
        handles.iter().all(|h| gapped(*h) >= 1)
    })
    .await;
    let took = js_sys::Date::now() - started;
    assert!(took <= 6000.0, "the gaps came {took} ms into the storm");
    for s in &subs {
        assert_ne!(
            get(&s.info().into(), "state").as_string().as_deref(),
            Some("active")
        );
    }
    write_tenant(base, "storm", "during").await;
    write_tenant(base, "storm2", "new").await;
    sleep(7500 - took.min(7000.0) as u32).await;
    until(
        10_000,
        "every store equals the device after the storm",
        || {
            subs.iter()
                .all(|s| get(&s.info().into(), "state").as_string().as_deref() == Some("active"))
        },
    )
    .await;
    sleep(500).await;
    for (s, h) in subs.iter().zip(&handles) {
        store_matches_truth(s, base, "fvTenant").await.unwrap();
        assert_eq!(gapped(*h), 1, "one gap per subscription");
    }
    for g in log.gaps.borrow().iter() {
        assert_eq!(get(g, "reason").as_string().as_deref(), Some("expired"));
    }
    ec.close();
    wait(session.logout()).await.unwrap();
    delete_tenant(base, "storm").await;
    delete_tenant(base, "storm2").await;
}
