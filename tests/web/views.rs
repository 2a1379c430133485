//! Browser tests of the live views of store-mode subscriptions: identity, notification once per
//! batch, which subscriptions may have one, and a view equal to the truth after a recovery.

use super::*;

/// A snippet's value as a number.
fn num(v: JsValue) -> f64 {
    v.as_f64().expect("a number")
}

#[wasm_bindgen_test]
async fn a_view_keeps_its_identity_until_a_change_and_notifies_once_per_batch_after_it() {
    let Fx {
        _turn,
        base,
        session: _,
        log: _,
        ec,
    } = fixture().await;
    write_tenant(base, "view1", "one").await;
    // onEvent marks the delivery in progress and counts the batches.
    let probe = js(
        "return { batches: 0, inside: false, calls: 0, callsInside: 0, sawNew: true };",
        &JsValue::UNDEFINED,
        &JsValue::UNDEFINED,
    );
    let on_event = js(
        "return (mos) => { a.inside = true; a.batches++; a.inside = false; };",
        &probe,
        &JsValue::UNDEFINED,
    );
    let sub = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[
            ("store", JsValue::from(true)),
            ("onEvent", on_event),
        ])),
    )
    .await;
    let sv: JsValue = sub.into();
    // Unbound, as a framework takes them; the listener reads the view it is told about.
    let ok = js(
        "const { snapshot, onChange } = { snapshot: a.snapshot, onChange: a.onChange };
         const s1 = snapshot();
         b.first = s1;
         b.unsubscribe = onChange(() => {
           b.calls++;
           if (b.inside) b.callsInside++;
           if (snapshot() === b.first) b.sawNew = false;
         });
         const one = s1.get('uni/tn-view1');
         return s1 === snapshot() && s1.size === s1.list.length && one?.attributes.descr === 'one'
           && Object.isFrozen(s1) && Object.isFrozen(s1.list) && Object.isFrozen(one)
           && Object.isFrozen(one.attributes) && s1.gap === null && [...s1].length === s1.size;",
        &sv,
        &probe,
    );
    assert_eq!(ok.as_bool(), Some(true), "a stable, frozen first snapshot");
    let batches = || num(get(&probe, "batches"));
    let calls = || num(get(&probe, "calls"));

    // A change: a new snapshot; the changed object is new, the others are the same objects.
    write_tenant(base, "view1", "two").await;
    until(5000, "the change", || batches() >= 1.0 && calls() >= 1.0).await;
    sleep(200).await;
    let ok = js(
        "const s2 = a.snapshot();
         const s1 = b.first;
         const same = s2.list.filter((m) => m.dn !== 'uni/tn-view1').every((m) => s1.get(m.dn) === m);
         return s2 !== s1 && s2 === a.snapshot() && s2.get('uni/tn-view1').attributes.descr === 'two'
           && s1.get('uni/tn-view1').attributes.descr === 'one' && same && s2.size === s1.size;",
        &sv,
        &probe,
    );
    assert_eq!(
        ok.as_bool(),
        Some(true),
        "new snapshot, unchanged objects kept"
    );
    assert!(
        calls() >= 1.0 && calls() <= batches(),
        "at most once per batch: {} calls for {} batches",
        calls(),
        batches()
    );
    assert_eq!(
        num(get(&probe, "callsInside")),
        0.0,
        "never inside a delivery"
    );
    assert_eq!(get(&probe, "sawNew").as_bool(), Some(true));

    // Nothing changes: the same snapshot. Unsubscribed: no more calls.
    let before = js("return a.snapshot();", &sv, &JsValue::UNDEFINED);
    sleep(300).await;
    let after = js("return a.snapshot();", &sv, &JsValue::UNDEFINED);
    assert!(
        Object::is(&before, &after),
        "the same snapshot while nothing changes"
    );
    js("b.unsubscribe();", &JsValue::UNDEFINED, &probe);
    let stopped_at = calls();
    let seen = batches();
    write_tenant(base, "view1", "three").await;
    until(5000, "the third change", || batches() > seen).await;
    sleep(200).await;
    assert_eq!(calls(), stopped_at, "unsubscribe stops the listener");

    // The Svelte store contract: run at once, again after a change, until unsubscribed.
    let runs = js(
        "const runs = []; runs.stop = a.subscribe((s) => runs.push(s)); return runs;",
        &sv,
        &JsValue::UNDEFINED,
    );
    assert_eq!(Array::from(&runs).length(), 1, "run called at once");
    delete_tenant(base, "view1").await;
    until(5000, "the deletion in the view", || {
        js(
            "return a.length >= 2 && !a.at(-1).has('uni/tn-view1');",
            &runs,
            &JsValue::UNDEFINED,
        )
        .as_bool()
            == Some(true)
    })
    .await;
    js("a.stop();", &runs, &JsValue::UNDEFINED);
    ec.close();
}

#[wasm_bindgen_test]
async fn views_are_for_pushed_store_mode_subscriptions() {
    let Fx {
        _turn,
        session: _,
        log,
        ec,
        ..
    } = fixture().await;
    let plain = subscribe(&ec, class("fvBD"), &log, false).await;
    let pulled = subscribe_raw(
        &ec,
        class("fvCtx"),
        Some(obj(&[("store", JsValue::from(true))])),
    )
    .await;
    for sub in [plain, pulled] {
        let code = js(
            "try { a.snapshot; return 'no error'; } catch (e) { return e.code; }",
            &sub.into(),
            &JsValue::UNDEFINED,
        );
        assert_eq!(code.as_string().as_deref(), Some("INVALID_STATE"));
    }
    let r = ec.subscribe(
        class("fvAp").unchecked_into(),
        Some(opts(&[("view", JsValue::from(true))])),
    );
    assert_eq!(
        get(&r.err().expect("view without store"), "code")
            .as_string()
            .as_deref(),
        Some("INVALID_CONFIG")
    );
    ec.close();
}

#[wasm_bindgen_test]
async fn a_view_equals_the_truth_after_a_drop_and_recovery() {
    let Fx {
        _turn,
        base,
        session: _,
        log,
        ec,
    } = fixture().await;
    let sub = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[
            ("store", JsValue::from(true)),
            ("view", JsValue::from(true)),
            ("onReconciled", log.cb(|l| &l.events)),
        ])),
    )
    .await;
    // The same class pulled (no onEvent): its reconciliation is done when the differences are
    // queued, and onReconciled says so with their count.
    let pulled_log = Rc::new(Log::default());
    let _pulled = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[
            ("store", JsValue::from(true)),
            ("onReconciled", pulled_log.cb(|l| &l.events)),
        ])),
    )
    .await;
    let handle = sub.handle();
    let sv: JsValue = sub.into();
    let gaps = js(
        "const seen = []; a.onChange(() => seen.push(a.snapshot().gap)); return seen;",
        &sv,
        &JsValue::UNDEFINED,
    );
    sim(base, "/_sim/drop-sockets", None).await;
    write_tenant(base, "view2", "while-away").await;
    until(10000, "the reconciliation", || {
        !log.events.borrow().is_empty()
    })
    .await;
    let done = log.events.borrow()[0].clone();
    assert_eq!(num(get(&done, "subscription")), handle);
    assert!(
        num(get(&done, "differences")) >= 1.0,
        "the tenant written while away"
    );
    until(10000, "the pulled reconciliation", || {
        !pulled_log.events.borrow().is_empty()
    })
    .await;
    let pulled_done = pulled_log.events.borrow()[0].clone();
    assert!(
        num(get(&pulled_done, "differences")) >= 1.0,
        "queued differences"
    );
    sleep(100).await;
    let snap = js("return a.snapshot();", &sv, &JsValue::UNDEFINED);
    assert!(get(&snap, "gap").is_null(), "the gap is over");
    let seen: Vec<JsValue> = Array::from(&gaps).to_vec();
    assert!(
        seen.iter()
            .any(|g| g.as_string().as_deref() == Some("reconnect")),
        "the view showed the gap while it lasted"
    );
    objects_match_truth(&get(&snap, "list"), base, "fvTenant")
        .await
        .unwrap();
    delete_tenant(base, "view2").await;
    ec.close();
}
