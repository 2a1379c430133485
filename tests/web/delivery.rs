//! Browser tests of what subscriptions deliver: store mode's created, modified and deleted, one
//! frame shared by a class and a dn subscription, XML, NX-OS, callbacks that throw or call back
//! into the package, `getevent()`, and a 50,000-object burst.

use super::*;

#[wasm_bindgen_test]
async fn class_subscription_created_modified_deleted_in_store_mode() {
    let _turn = turn().await;
    let base = apic();
    let session = login_at(base, "apic").await;
    assert_eq!(session.user().as_deref(), Some("admin"));
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let sub = subscribe(&ec, class("fvTenant"), &log, true).await;
    assert!(sub.subid().len() > 15, "id kept as a long decimal string");
    assert!(sub.subid().parse::<u128>().unwrap() > (1u128 << 53));
    let initial = Array::from(&sub.initial());
    assert!(initial.length() >= 3, "common, infra, mgmt at least");
    assert_eq!(
        get(&initial.get(0), "status").as_string().as_deref(),
        Some("")
    );

    write_tenant(base, "wasm1", "one").await;
    until(5000, "created", || log.saw("uni/tn-wasm1", "created")).await;
    sim(
        base,
        "/_sim/write?dn=uni/tn-wasm1",
        Some(r#"{"fvTenant":{"attributes":{"descr":"two"}}}"#),
    )
    .await;
    until(5000, "modified", || log.saw("uni/tn-wasm1", "modified")).await;
    // Store mode delivers the merged object: the sparse delta did not lose the name.
    let merged = log
        .mos()
        .into_iter()
        .rev()
        .find(|m| get(m, "status").as_string().as_deref() == Some("modified"))
        .unwrap();
    let a = get(&merged, "attributes");
    assert_eq!(get(&a, "descr").as_string().as_deref(), Some("two"));
    assert_eq!(get(&a, "name").as_string().as_deref(), Some("wasm1"));
    store_matches_truth(&sub, base, "fvTenant").await.unwrap();

    delete_tenant(base, "wasm1").await;
    until(5000, "deleted", || log.saw("uni/tn-wasm1", "deleted")).await;
    store_matches_truth(&sub, base, "fvTenant").await.unwrap();
    assert!(log.errors.borrow().is_empty(), "no errors");
    assert!(log.gaps.borrow().is_empty(), "no gaps");
    ec.close();
}

#[wasm_bindgen_test]
async fn dn_and_class_subscriptions_share_one_frame_and_xml_works() {
    let _turn = turn().await;
    let base = apic();
    write_tenant(base, "wasm2", "a").await;
    let session = login_at(base, "apic").await;
    let log_class = Rc::new(Log::default());
    let log_dn = Rc::new(Log::default());
    let log_xml = Rc::new(Log::default());
    let ec = channel(&session, &log_class);
    let by_class = subscribe(&ec, class("fvTenant"), &log_class, false).await;
    let by_dn = subscribe(
        &ec,
        DnQuery::new("uni/tn-wasm2".into(), None).unwrap().into(),
        &log_dn,
        false,
    )
    .await;
    let _xml = subscribe(
        &ec,
        ClassQuery::new(
            "fvTenant".into(),
            Some(obj(&[("format", s("xml"))]).unchecked_into()),
        )
        .unwrap()
        .into(),
        &log_xml,
        false,
    )
    .await;
    assert_ne!(by_class.subid(), by_dn.subid());
    assert_eq!(Array::from(&by_dn.initial()).length(), 1);
    sim(
        base,
        "/_sim/write?dn=uni/tn-wasm2",
        Some(r#"{"fvTenant":{"attributes":{"descr":"b"}}}"#),
    )
    .await;
    until(5000, "all three saw it", || {
        log_class.saw("uni/tn-wasm2", "modified")
            && log_dn.saw("uni/tn-wasm2", "modified")
            && log_xml.saw("uni/tn-wasm2", "modified")
    })
    .await;
    let stats = ec.stats();
    // One JSON frame for both JSON subscriptions, one XML frame: each delivered once.
    assert_eq!(log_class.mos().len(), 1);
    assert_eq!(log_dn.mos().len(), 1);
    assert!(get(&stats, "frames").as_f64().unwrap() >= 2.0);
    // Converted once: both are handed the same array.
    let batch = |l: &Log| l.events.borrow().last().cloned().unwrap();
    assert!(Object::is(&batch(&log_class), &batch(&log_dn)));
    delete_tenant(base, "wasm2").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn a_throwing_callback_is_reported_and_delivery_continues() {
    let Fx {
        _turn,
        base,
        session: _,
        log,
        ec,
    } = fixture().await;
    let thrower = Function::new_with_args("mos", "throw new Error('user bug')");
    let _sub = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[("onEvent", thrower.into())])),
    )
    .await;
    let log2 = Rc::new(Log::default());
    let _sub2 = subscribe(&ec, class("fvTenant"), &log2, false).await;
    write_tenant(base, "wasm7", "x").await;
    until(5000, "the other subscription still gets it", || {
        log2.saw("uni/tn-wasm7", "created")
    })
    .await;
    until(2000, "CALLBACK_THREW reported", || {
        log.errors
            .borrow()
            .iter()
            .any(|e| get(e, "code").as_string().as_deref() == Some("CALLBACK_THREW"))
    })
    .await;
    delete_tenant(base, "wasm7").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn getevent_pulls_and_times_out() {
    let Fx {
        _turn,
        base,
        session: _,
        log: _,
        ec,
    } = fixture().await;
    let _sub = subscribe_raw(&ec, class("fvTenant"), None).await;
    let none = wait(ec.getevent(Some(opts(&[("timeoutMs", JsValue::from(200))]))))
        .await
        .unwrap();
    assert!(none.is_null(), "nothing yet: null after the timeout");
    let pending = ec.getevent(Some(opts(&[("timeoutMs", JsValue::from(5000))])));
    write_tenant(base, "wasm8", "x").await;
    let ev = wait(pending).await.unwrap();
    assert_eq!(get(&ev, "type").as_string().as_deref(), Some("mos"));
    let mos = Array::from(&get(&ev, "mos"));
    assert_eq!(
        get(&mos.get(0), "dn").as_string().as_deref(),
        Some("uni/tn-wasm8")
    );
    delete_tenant(base, "wasm8").await;
    ec.close();
}

#[wasm_bindgen_test]
async fn nxos_flavor_run() {
    let _turn = turn().await;
    let base = NXOS.expect("DME_SIM_NXOS_URL must name a running NX-OS dme-sim");
    let session = login_at(base, "nxos").await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let sub = subscribe(&ec, class("l1PhysIf"), &log, true).await;
    assert!(
        sub.subid().parse::<u128>().unwrap() > (1u128 << 63),
        "NX-OS ids exceed 2^63"
    );
    let first = Array::from(&sub.initial());
    assert!(first.length() > 0);
    let dn = get(&first.get(0), "dn").as_string().unwrap();
    assert!(dn.starts_with("sys/intf/phys-["), "{dn}");
    let descr = format!("from-test-{}", js_sys::Date::now());
    let body = format!(r#"{{"l1PhysIf":{{"attributes":{{"descr":"{descr}"}}}}}}"#);
    sim(base, &format!("/_sim/write?dn={dn}"), Some(&body)).await;
    until(5000, "modified", || log.saw(&dn, "modified")).await;
    ec.close();
}

#[wasm_bindgen_test]
async fn callbacks_may_call_back_into_the_package() {
    let _turn = turn().await;
    let base = apic();
    let session = login_at(base, "apic").await;
    let log = Rc::new(Log::default());
    let ec = Rc::new(channel(&session, &log));
    let seen: Rc<RefCell<Vec<f64>>> = Rc::default();
    // onEvent reads the channel's stats and subscribes anew from inside the delivery.
    let (ec2, seen2) = (Rc::downgrade(&ec), seen.clone());
    let reenter = Closure::<dyn FnMut(JsValue)>::new(move |_mos: JsValue| {
        if let Some(ec) = ec2.upgrade() {
            seen2
                .borrow_mut()
                .push(get(&ec.stats(), "frames").as_f64().unwrap_or(-1.0));
            let _ = ec.subscribe(class("fvBD").unchecked_into(), None);
        }
    });
    let _sub = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[("onEvent", reenter.as_ref().clone())])),
    )
    .await;
    write_tenant(base, "wasm10", "x").await;
    until(5000, "the re-entrant callback ran", || {
        !seen.borrow().is_empty()
    })
    .await;
    assert!(seen.borrow()[0] >= 1.0);
    until(5000, "the nested subscribe went out", || {
        get(&ec.stats(), "subscribeRequests")
            .as_f64()
            .unwrap_or(0.0)
            >= 2.0
    })
    .await;
    // Closing from inside a callback is fine too.
    let ec3 = Rc::downgrade(&ec);
    let closer = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
        if let Some(ec) = ec3.upgrade() {
            ec.close();
        }
    });
    let _sub2 = subscribe_raw(
        &ec,
        class("fvTenant"),
        Some(obj(&[("onEvent", closer.as_ref().clone())])),
    )
    .await;
    delete_tenant(base, "wasm10").await;
    until(5000, "closed from a callback", || {
        get(&ec.resources(), "sockets").as_f64() == Some(0.0)
    })
    .await;
    drop(reenter);
}

#[wasm_bindgen_test]
async fn a_50000_object_burst_arrives_complete_in_order_and_in_slices() {
    let _turn = turn().await;
    // Keep a handle on the package's socket, to hand it one frame as the device would.
    js(
        "globalThis.__realWS = globalThis.WebSocket; globalThis.__burstSockets = [];
         globalThis.WebSocket = class extends globalThis.__realWS {
           constructor(u, p) { super(u, p); globalThis.__burstSockets.push(this); } };",
        &JsValue::UNDEFINED,
        &JsValue::UNDEFINED,
    );
    let session = login_at(apic(), "apic").await;
    js(
        "globalThis.WebSocket = globalThis.__realWS;",
        &JsValue::UNDEFINED,
        &JsValue::UNDEFINED,
    );
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    let sub = subscribe(&ec, class("fvTenant"), &log, false).await;
    let frame = |prefix: &str| {
        js(
            "const m = []; for (let k = 0; k < 50000; k++) m.push({ fvTenant: { attributes:
               { dn: `uni/tn-${b}${k}`, status: 'created', name: `${b}${k}`, descr: 'x'.repeat(40) } } });
             return JSON.stringify({ subscriptionId: [a], imdata: m });",
            &s(&sub.subid()),
            &s(prefix),
        )
    };
    let burst: Vec<String> = (0..50000).map(|k| format!("uni/tn-burst{k}")).collect();
    let seen = |log: &Log, prefix: &str| -> Vec<String> {
        log.mos()
            .iter()
            .filter_map(|m| get(m, "dn").as_string())
            .filter(|d| d.starts_with(prefix))
            .collect()
    };
    // Dispatch, then note how much had arrived when a timer queued right after could run: with
    // slices, the event loop turns long before the burst is through.
    let probe = js(
        "const ws = globalThis.__burstSockets.at(-1); const probe = { at: -1 };
         ws.onmessage(new MessageEvent('message', { data: a }));
         setTimeout(() => { probe.at = b(); }, 0);
         return probe;",
        &frame("burst"),
        &Closure::<dyn Fn() -> f64>::new({
            let log = Rc::downgrade(&log);
            move || log.upgrade().map_or(0, |l| l.mos().len()) as f64
        })
        .into_js_value(),
    );
    until(30_000, "the whole burst", || {
        seen(&log, "uni/tn-burst").len() >= 50000
    })
    .await;
    assert_eq!(seen(&log, "uni/tn-burst"), burst, "complete and in order");
    let at = get(&probe, "at").as_f64().unwrap();
    assert!(
        (0.0..50000.0).contains(&at),
        "the event loop ran during the burst ({at} objects delivered by then)"
    );
    let biggest = log
        .events
        .borrow()
        .iter()
        .map(|b| Array::from(b).length())
        .max()
        .unwrap();
    assert!(biggest <= 2000, "delivered in slices (largest {biggest})");
    assert!(log.errors.borrow().is_empty());

    // Closing the subscription during a burst stops its delivery at once.
    js(
        "globalThis.__burstSockets.at(-1).onmessage(new MessageEvent('message', { data: a }));",
        &frame("again"),
        &JsValue::UNDEFINED,
    );
    // The frame is taken in and delivered over many tasks: close once the first slice is in.
    let mut first = 0;
    for _ in 0..2000 {
        first = seen(&log, "uni/tn-again").len();
        if first > 0 {
            break;
        }
        sleep(1).await;
    }
    assert!(first > 0 && first < 50000, "{first}");
    sub.close();
    sleep(500).await;
    assert_eq!(seen(&log, "uni/tn-again").len(), first);
    ec.close();
}
