//! Browser tests of a session's and a channel's life: a typed login failure, refreshes past the
//! lifetime, a session expired by the device, closing with a refresh waiting, closing leaving
//! nothing behind, and the session given up at the retry cap logged out.

use super::*;

#[wasm_bindgen_test]
async fn login_failure_is_typed() {
    let _turn = turn().await;
    let r = wait(
        Session::login(opts(&[
            ("url", s(apic())),
            ("user", s("admin")),
            ("password", s("wrong")),
        ]))
        .unwrap(),
    )
    .await;
    let err = r.expect_err("bad password is refused");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("AUTH_REJECTED")
    );
    assert_eq!(get(&err, "httpStatus").as_f64(), Some(401.0));
    assert_eq!(
        get(&err, "deviceText").as_string().as_deref(),
        Some("Username or password is incorrect - FAILED local authentication")
    );
}

#[wasm_bindgen_test]
async fn refreshes_keep_a_subscription_alive_past_its_lifetime() {
    let _turn = turn().await;
    // refresh-timeout=5 gives the subscription a 5 s lifetime; 12 s later pushes must still
    // arrive on the same subscription id.
    let base = apic();
    let session = login_at(base, "apic").await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let opts = obj(&[
        ("onEvent", log.cb(|l| &l.events)),
        ("refreshTimeout", JsValue::from(5)),
    ]);
    let sub = subscribe_raw(&ec, class("fvTenant"), Some(opts)).await;
    let id = sub.subid();
    sleep(12_000).await;
    write_tenant(base, "wasm3", "x").await;
    until(5000, "a push after 12 s", || {
        log.saw("uni/tn-wasm3", "created")
    })
    .await;
    assert_eq!(sub.subid(), id, "never had to resubscribe");
    let info = sub.info();
    let refreshes = get(&get(&info, "counters"), "refreshes").as_f64().unwrap();
    assert!(refreshes >= 2.0, "{refreshes} refreshes");
    assert!(log.gaps.borrow().is_empty());
    // A manual refresh resolves once the device confirmed it.
    wait(sub.refresh()).await.expect("manual refresh");
    let stats = ec.stats();
    assert!(
        get(&stats, "tokenRefreshes").as_f64().unwrap() >= 1.0,
        "aaaRefresh ran (refresh timeout 12 s)"
    );
    delete_tenant(base, "wasm3").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn expired_session_logs_in_again() {
    let Fx {
        _turn,
        base,
        session: _,
        log,
        ec,
    } = fixture().await;
    let sub = subscribe(&ec, class("fvTenant"), &log, true).await;
    let logins = get(&ec.stats(), "logins").as_f64().unwrap();
    sim(base, "/_sim/expire-session", None).await;
    until(10_000, "a gap", || !log.gaps.borrow().is_empty()).await;
    until(10_000, "a new login", || {
        get(&ec.stats(), "logins").as_f64().unwrap() > logins
    })
    .await;
    until(10_000, "resubscribed", || {
        sub.info().is_object() && get(&sub.info(), "state").as_string().as_deref() == Some("active")
    })
    .await;
    write_tenant(base, "wasm5", "after").await;
    until(5000, "pushes flow again", || {
        log.saw("uni/tn-wasm5", "created")
    })
    .await;
    store_matches_truth(&sub, base, "fvTenant").await.unwrap();
    delete_tenant(base, "wasm5").await;
    ec.close();
}

/// A `refresh()` still waiting when the session closes is answered, not left pending forever.
#[wasm_bindgen_test]
async fn a_refresh_waiting_when_the_session_closes_rejects() {
    let Fx {
        _turn,
        base: _,
        session,
        log: _,
        ec,
    } = fixture().await;
    let sub = subscribe_raw(&ec, class("fvTenant"), None).await;
    let pending: JsValue = sub.refresh().into();
    session.close();
    let later = js(
        "return new Promise(r => setTimeout(() => r('still pending'), 3000));",
        &JsValue::UNDEFINED,
        &JsValue::UNDEFINED,
    );
    let err = wait(Promise::race(&Array::of2(&pending, &later)))
        .await
        .expect_err("the refresh rejects");
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("REFRESH_REJECTED")
    );
    ec.close();
}

#[wasm_bindgen_test]
async fn closing_leaves_nothing_running() {
    let Fx {
        _turn,
        base,
        session,
        log,
        ec,
    } = fixture().await;
    let _sub = subscribe(&ec, class("fvTenant"), &log, false).await;
    let sessions = |st: &JsValue| Array::from(&get(st, "sessions")).length();
    let before_close = sessions(&sim_get(base, "/_sim/stats").await);
    ec.close();
    // The channel logged its session out, then released everything.
    until(5000, "the logout finished", || {
        let r = ec.resources();
        get(&r, "sockets").as_f64() == Some(0.0)
            && get(&r, "requests").as_f64() == Some(0.0)
            && get(&r, "timer").as_bool() == Some(false)
    })
    .await;
    assert_eq!(
        sessions(&sim_get(base, "/_sim/stats").await),
        before_close - 1,
        "the device session ended"
    );
    let before = log.events.borrow().len() + log.errors.borrow().len();
    write_tenant(base, "wasm9", "x").await;
    sleep(1500).await;
    assert_eq!(
        log.events.borrow().len() + log.errors.borrow().len(),
        before,
        "nothing fires after close"
    );
    assert!(ec
        .subscribe(class("fvTenant").unchecked_into(), None)
        .is_err());
    delete_tenant(base, "wasm9").await;
    wait(session.logout()).await.unwrap();
}

/// `maxReconnectAttempts` reached while the device still holds the session (its sockets are
/// refused, its REST answers): the channel fails, and the session it gives up is logged out at
/// the device, although the channel stops and aborts what it had in flight.
#[wasm_bindgen_test]
async fn the_session_given_up_at_the_retry_cap_is_logged_out() {
    let _turn = turn().await;
    let base = apic();
    let session = login_with(base, "apic", &[("maxReconnectAttempts", JsValue::from(1))]).await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let _sub = subscribe(&ec, class("fvTenant"), &log, false).await;
    let sessions =
        || async { Array::from(&get(&sim_get(base, "/_sim/stats").await, "sessions")).length() };
    let before = sessions().await;
    sim(base, "/_sim/refuse-sockets?n=100", None).await;
    sim(base, "/_sim/drop-sockets", None).await;
    until(15_000, "the channel failed at the retry cap", || {
        log.states.borrow().iter().any(|s| s == "failed")
    })
    .await;
    let mut waited = 0;
    while sessions().await != before - 1 {
        assert!(
            waited < 5_000,
            "the session given up is still at the device"
        );
        sleep(100).await;
        waited += 100;
    }
    sim(base, "/_sim/reset-faults", None).await;
    ec.close();
}
