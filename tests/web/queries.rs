//! Browser tests of `Session`'s queries and writes against dme-sim: paging a large class,
//! lookups, nested children, commits watched by a store-mode subscription (APIC and NX-OS), and
//! every refusal typed, with nothing sent.

use std::collections::BTreeSet;

use dme_events::Pages;

use super::*;

fn code(err: &JsValue) -> String {
    get(err, "code").as_string().unwrap_or_default()
}

fn call_opts<T: JsCast>(pairs: &[(&str, JsValue)]) -> Option<T> {
    Some(opts(pairs))
}

/// `{ className, dn, attributes }` as `session.commit` takes it.
fn change(class: &str, dn: &str, attrs: &[(&str, &str)]) -> Object {
    let a = Object::new();
    for (k, v) in attrs {
        Reflect::set(&a, &s(k), &s(v)).unwrap();
    }
    obj(&[
        ("className", s(class)),
        ("dn", s(dn)),
        ("attributes", a.into()),
    ])
}

fn dns(mos: &JsValue) -> Vec<String> {
    Array::from(mos)
        .iter()
        .map(|m| get(&m, "dn").as_string().unwrap())
        .collect()
}

#[wasm_bindgen_test]
async fn pages_lookups_and_nested_children() {
    let _turn = turn().await;
    let base = apic();
    // 1,050 VRFs under one tenant, in one write through the simulator.
    let kids: Vec<String> = (0..1050)
        .map(|i| format!(r#"{{"fvCtx":{{"attributes":{{"name":"p{i:04}"}}}}}}"#))
        .collect();
    let body = format!(
        r#"{{"fvTenant":{{"attributes":{{"name":"paging"}},"children":[{}]}}}}"#,
        kids.join(",")
    );
    sim(base, "/_sim/write?dn=uni/tn-paging", Some(&body)).await;
    let session = login_at(base, "apic").await;

    // Paging: every object exactly once, the last page at totalCount.
    let q: JsValue = ClassQuery::new("fvCtx".into(), None).unwrap().into();
    let pages: Pages = session
        .pages(
            q.unchecked_into(),
            opts(&[("pageSize", JsValue::from(100))]),
        )
        .unwrap();
    let mut seen = Vec::new();
    let mut total = 0;
    let mut n = 0;
    loop {
        let r = wait(pages.next()).await.expect("a page");
        if get(&r, "done").as_bool() == Some(true) {
            break;
        }
        let page = get(&r, "value");
        assert_eq!(get(&page, "page").as_f64(), Some(n as f64));
        total = get(&page, "totalCount").as_f64().unwrap() as usize;
        let got = dns(&get(&page, "mos"));
        assert!(got.len() <= 100);
        seen.extend(got);
        n += 1;
        assert!(n < 100, "paging never ends");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert!(total >= 1050, "totalCount {total}");
    assert_eq!(seen.len(), total, "as many objects as totalCount");
    assert_eq!(unique.len(), seen.len(), "each object exactly once");
    assert_eq!(n, total.div_ceil(100));

    // Lookups.
    let t = wait(session.lookup_by_dn("uni/tn-paging".into(), None))
        .await
        .unwrap();
    assert_eq!(
        get(&t, "className").as_string().as_deref(),
        Some("fvTenant")
    );
    let none = wait(session.lookup_by_dn("uni/tn-does-not-exist".into(), None))
        .await
        .unwrap();
    assert!(none.is_null(), "an empty answer is null");
    let under =
        wait(session.lookup_by_class("fvCtx".into(), Some(opts(&[("under", s("uni/tn-paging"))]))))
            .await
            .unwrap();
    assert_eq!(Array::from(&under).length(), 1050);
    let filtered = wait(session.lookup_by_class(
        "fvCtx".into(),
        Some(opts(&[("filter", s(r#"eq(fvCtx.name,"p0042")"#))])),
    ))
    .await
    .unwrap();
    assert_eq!(dns(&filtered), vec!["uni/tn-paging/ctx-p0042".to_string()]);

    // Nested children, through `query` with a DnQuery.
    let dq = DnQuery::new(
        "uni/tn-paging".into(),
        Some(opts(&[
            ("rspSubtree", s("children")),
            ("rspSubtreeClass", s("fvCtx")),
        ])),
    )
    .unwrap();
    let a = wait(session.query(JsValue::from(dq).unchecked_into(), None))
        .await
        .unwrap();
    assert_eq!(get(&a, "totalCount").as_f64(), Some(1.0));
    let tenant = Array::from(&get(&a, "mos")).get(0);
    assert_eq!(Array::from(&get(&tenant, "children")).length(), 1050);

    let gone = wait(session.delete("uni/tn-paging".into(), None))
        .await
        .unwrap();
    assert_eq!(get(&gone, "totalCount").as_f64(), Some(0.0));
    let none = wait(session.lookup_by_dn("uni/tn-paging".into(), None))
        .await
        .unwrap();
    assert!(none.is_null(), "deleted");
    wait(session.logout()).await.unwrap();
}

#[wasm_bindgen_test]
async fn commits_arrive_through_a_store_subscription() {
    let fx = fixture().await;
    let sub = subscribe(&fx.ec, class("fvTenant"), &fx.log, true).await;
    let dn = "uni/tn-committed";
    let one = change("fvTenant", dn, &[("descr", "one")]);
    let a = wait(fx.session.commit(one.unchecked_into(), None))
        .await
        .expect("created");
    assert_eq!(get(&a, "totalCount").as_f64(), Some(0.0));
    assert_eq!(Array::from(&get(&a, "mos")).length(), 0);
    until(5000, "the created push", || fx.log.saw(dn, "created")).await;

    let two = change("fvTenant", dn, &[("descr", "two")]);
    Reflect::set(&two, &s("status"), &s("modified")).unwrap();
    let both = Array::of1(&two);
    let answers = wait(fx.session.commit(both.unchecked_into(), None))
        .await
        .expect("modified");
    assert_eq!(Array::from(&answers).length(), 1, "one answer per change");
    until(5000, "the modified push", || {
        fx.log.mos().iter().any(|m| {
            get(m, "dn").as_string().as_deref() == Some(dn)
                && get(&get(m, "attributes"), "descr").as_string().as_deref() == Some("two")
        })
    })
    .await;

    let del = change("fvTenant", dn, &[]);
    Reflect::set(&del, &s("status"), &s("deleted")).unwrap();
    wait(fx.session.commit(del.unchecked_into(), None))
        .await
        .expect("deleted");
    until(5000, "the deleted push", || fx.log.saw(dn, "deleted")).await;
    store_matches_truth(&sub, fx.base, "fvTenant")
        .await
        .unwrap();
    fx.ec.close();
    wait(fx.session.logout()).await.unwrap();
}

#[wasm_bindgen_test]
async fn nxos_commit_and_lookup_without_a_channel() {
    let _turn = turn().await;
    let Some(base) = NXOS else { return };
    let session = login_at(base, "nxos").await;
    let ifs = wait(session.lookup_by_class("l1PhysIf".into(), None))
        .await
        .unwrap();
    let first = Array::from(&ifs).get(0);
    let dn = get(&first, "dn").as_string().unwrap();
    let c = change("l1PhysIf", &dn, &[("descr", "set-by-commit")]);
    wait(session.commit(c.unchecked_into(), None))
        .await
        .unwrap();
    let now = wait(session.lookup_by_dn(dn, None)).await.unwrap();
    assert_eq!(
        get(&get(&now, "attributes"), "descr")
            .as_string()
            .as_deref(),
        Some("set-by-commit")
    );
    wait(session.logout()).await.unwrap();
}

#[wasm_bindgen_test]
async fn refusals_are_typed_and_send_nothing() {
    let fx = fixture().await;
    // Requests in flight, read in the same task as the call: a call that sends starts its fetch
    // before it returns, and nothing else can finish meanwhile.
    let requests = || get(&JsValue::from(fx.ec.resources()), "requests").as_f64();
    let before = requests();
    let sent = fx.session.lookup_by_dn("uni/tn-common".into(), None);
    assert_eq!(
        requests(),
        before.map(|n| n + 1.0),
        "a good call sends at once"
    );
    wait(sent).await.unwrap();
    let long = format!("uni/tn-{}", "a".repeat(5000));
    let bad_changes = [
        obj(&[("className", s("fvTenant"))]),
        change("fv-Tenant", "uni/tn-x", &[]),
        change("fvTenant", "uni/tn-x?rsp-subtree=full", &[]),
        change("fvTenant", &long, &[]),
        {
            let c = change("fvTenant", "uni/tn-x", &[]);
            let a = obj(&[("descr", JsValue::from(5))]);
            Reflect::set(&c, &s("attributes"), &a).unwrap();
            c
        },
    ];
    for c in bad_changes {
        let before = requests();
        let p = fx.session.commit(c.unchecked_into(), None);
        assert_eq!(requests(), before, "nothing is sent");
        let err = wait(p).await.expect_err("refused");
        assert_eq!(code(&err), "INVALID_QUERY");
    }
    // One bad change in an array stops the whole array before anything goes out.
    let before = requests();
    let mixed = Array::of2(
        &change("fvTenant", "uni/tn-fine", &[]),
        &change("fvTenant", "uni/tn-x&y=1", &[]),
    );
    let p = fx.session.commit(mixed.unchecked_into(), None);
    assert_eq!(requests(), before, "nothing is sent");
    let err = wait(p).await.expect_err("refused");
    assert_eq!(code(&err), "INVALID_QUERY");
    let err = wait(fx.session.lookup_by_dn("uni/tn-x#frag".into(), None))
        .await
        .expect_err("refused");
    assert_eq!(code(&err), "INVALID_QUERY");
    let err = wait(fx.session.delete(long, None))
        .await
        .expect_err("refused");
    assert_eq!(code(&err), "INVALID_QUERY");
    let none = wait(fx.session.lookup_by_dn("uni/tn-fine".into(), None))
        .await
        .unwrap();
    assert!(none.is_null(), "the good half of the array was not written");

    // Device refusals: status, code and text, no token.
    let orphan = change("fvBD", "uni/tn-nowhere/BD-x", &[]);
    let err = wait(fx.session.commit(orphan.unchecked_into(), None))
        .await
        .expect_err("no parent");
    assert_eq!(code(&err), "DEVICE_ERROR");
    assert_eq!(get(&err, "httpStatus").as_f64(), Some(400.0));
    assert_eq!(get(&err, "deviceCode").as_string().as_deref(), Some("400"));
    assert_eq!(
        get(&err, "deviceText").as_string().as_deref(),
        Some("Invalid request: parent object uni/tn-nowhere does not exist")
    );
    let typo = change("fvTenant", "uni/tn-common", &[("descrr", "x")]);
    let err = wait(fx.session.commit(typo.unchecked_into(), None))
        .await
        .expect_err("unknown property");
    assert_eq!(
        get(&err, "deviceText").as_string().as_deref(),
        Some("unknown property descrr for class fvTenant")
    );
    let err = wait(fx.session.lookup_by_class("fvTenantt".into(), None))
        .await
        .expect_err("unknown class");
    assert_eq!(code(&err), "UNKNOWN_CLASS");
    let text = js_sys::JSON::stringify(&err).unwrap().as_string().unwrap()
        + &get(&err, "message").as_string().unwrap_or_default();
    assert!(
        !text.contains("token") && !text.contains("APIC-cookie"),
        "{text}"
    );

    // Abort and timeout: the device is slow for a while.
    sim(fx.base, "/_sim/delay?ms=2000", None).await;
    let ctl = web_sys::AbortController::new().unwrap();
    let p = fx.session.lookup_by_class(
        "fvTenant".into(),
        Some(opts(&[("signal", ctl.signal().into())])),
    );
    sleep(100).await;
    ctl.abort();
    let err = wait(p).await.expect_err("aborted");
    assert_eq!(code(&err), "ABORTED");
    let err = wait(fx.session.query(
        class("fvTenant").unchecked_into(),
        call_opts(&[("requestTimeoutMs", JsValue::from(300))]),
    ))
    .await
    .expect_err("timed out");
    assert_eq!(code(&err), "TIMEOUT");
    let err = wait(fx.session.query(
        class("fvTenant").unchecked_into(),
        call_opts(&[("signal", ctl.signal().into())]),
    ))
    .await
    .expect_err("an aborted signal sends nothing");
    assert_eq!(code(&err), "ABORTED");
    sim(fx.base, "/_sim/reset-faults", None).await;
    sleep(2500).await;
    fx.ec.close();
    wait(fx.session.logout()).await.unwrap();
}
