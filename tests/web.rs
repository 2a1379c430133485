//! Browser tests: the package's JavaScript classes in headless Chromium and Firefox against a real
//! dme-sim on loopback. `scripts/test.sh` starts the simulators (APIC and NX-OS flavors, with
//! `--cors`, short lifetimes) and passes their URLs at build time in `DME_SIM_URL` and
//! `DME_SIM_NXOS_URL`, and a third APIC one whose sessions live 30 s in
//! `DME_SIM_LIFETIMES_URL`.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use dme_events::{ClassQuery, DnQuery, EventChannel, Session, Subscription};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const APIC: Option<&str> = option_env!("DME_SIM_URL");
const NXOS: Option<&str> = option_env!("DME_SIM_NXOS_URL");
const LIFETIMES: Option<&str> = option_env!("DME_SIM_LIFETIMES_URL");

fn apic() -> &'static str {
    APIC.expect("DME_SIM_URL must name a running dme-sim (scripts/test.sh starts one)")
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn js_fetch(url: &str, init: &JsValue) -> Promise;
}

fn obj(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o
}

/// An options object typed as whatever the API takes.
fn opts<T: JsCast>(pairs: &[(&str, JsValue)]) -> T {
    obj(pairs).unchecked_into()
}

/// A future of any promise-typed value.
fn wait<P: JsCast>(p: P) -> JsFuture {
    JsFuture::from(p.unchecked_into::<Promise>())
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

/// POSTs to the simulator (fault injection, writes) and returns the parsed JSON answer.
async fn sim(base: &str, path: &str, body: Option<&str>) -> JsValue {
    let init = obj(&[("method", s("POST"))]);
    if let Some(b) = body {
        Reflect::set(&init, &s("body"), &s(b)).unwrap();
        Reflect::set(
            &init,
            &s("headers"),
            &obj(&[("Content-Type", s("application/json"))]),
        )
        .unwrap();
    }
    let resp = wait(js_fetch(&format!("{base}{path}"), &init))
        .await
        .expect("sim reachable");
    let json: Function = get(&resp, "json").dyn_into().unwrap();
    wait(json.call0(&resp).unwrap().dyn_into::<Promise>().unwrap())
        .await
        .unwrap()
}

async fn sim_get(base: &str, path: &str) -> JsValue {
    let init = obj(&[("method", s("GET"))]);
    let resp = wait(js_fetch(&format!("{base}{path}"), &init))
        .await
        .unwrap();
    let json: Function = get(&resp, "json").dyn_into().unwrap();
    wait(json.call0(&resp).unwrap().dyn_into::<Promise>().unwrap())
        .await
        .unwrap()
}

async fn login_at(url: &str, flavor: &str) -> Session {
    login_with(url, flavor, &[]).await
}

async fn login_with(url: &str, flavor: &str, more: &[(&str, JsValue)]) -> Session {
    let mut pairs = vec![
        ("url", s(url)),
        ("user", s("admin")),
        ("password", s("ins3965!")),
        ("flavor", s(flavor)),
        ("seed", JsValue::from(7)),
        ("backoffBaseMs", JsValue::from(200)),
        ("backoffCapMs", JsValue::from(1000)),
        ("heartbeatMs", JsValue::from(3000)),
    ];
    pairs.extend(more.iter().cloned());
    let v = wait(Session::login(opts(&pairs)).unwrap())
        .await
        .expect("login succeeds");
    Session::try_from_js_value(v).expect("a Session")
}

thread_local! {
    static BUSY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The tests share one browser cookie jar (cookies ignore ports) and two simulators whose faults
/// are global, so they take turns: wasm-bindgen-test runs async tests concurrently.
struct Turn;

async fn turn() -> Turn {
    while BUSY.with(|b| b.replace(true)) {
        TimeoutFuture::new(20).await;
    }
    Turn
}

impl Drop for Turn {
    fn drop(&mut self) {
        BUSY.with(|b| b.set(false));
    }
}

type JsCallback = Closure<dyn FnMut(JsValue)>;

/// Collects what callbacks receive.
#[derive(Default)]
struct Log {
    events: RefCell<Vec<JsValue>>,
    gaps: RefCell<Vec<JsValue>>,
    errors: RefCell<Vec<JsValue>>,
    states: RefCell<Vec<String>>,
    _closures: RefCell<Vec<JsCallback>>,
}

impl Log {
    fn cb(self: &Rc<Self>, pick: fn(&Log) -> &RefCell<Vec<JsValue>>) -> JsValue {
        let me = Rc::downgrade(self);
        let c = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            if let Some(l) = me.upgrade() {
                pick(&l).borrow_mut().push(v);
            }
        });
        let f = c.as_ref().clone();
        self._closures.borrow_mut().push(c);
        f
    }

    fn state_cb(self: &Rc<Self>) -> JsValue {
        let me = Rc::downgrade(self);
        let c = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            if let Some(l) = me.upgrade() {
                l.states
                    .borrow_mut()
                    .push(get(&v, "state").as_string().unwrap_or_default());
            }
        });
        let f = c.as_ref().clone();
        self._closures.borrow_mut().push(c);
        f
    }

    /// Every MO delivered so far, flattened.
    fn mos(&self) -> Vec<JsValue> {
        self.events
            .borrow()
            .iter()
            .flat_map(|batch| Array::from(batch).to_vec())
            .collect()
    }

    fn saw(&self, dn: &str, status: &str) -> bool {
        self.mos().iter().any(|m| {
            get(m, "dn").as_string().as_deref() == Some(dn)
                && get(m, "status").as_string().as_deref() == Some(status)
        })
    }
}

fn channel(session: &Session, log: &Rc<Log>) -> EventChannel {
    EventChannel::new(
        session,
        Some(opts(&[
            ("onState", log.state_cb()),
            ("onError", log.cb(|l| &l.errors)),
            ("onGap", log.cb(|l| &l.gaps)),
        ])),
    )
    .expect("channel")
}

/// What most tests start from: their turn, the APIC simulator, a logged-in session and its
/// channel with a log of every callback.
struct Fx {
    _turn: Turn,
    base: &'static str,
    session: Session,
    log: Rc<Log>,
    ec: EventChannel,
}

async fn fixture() -> Fx {
    let _turn = turn().await;
    let base = apic();
    let session = login_at(base, "apic").await;
    let log = Rc::new(Log::default());
    let ec = channel(&session, &log);
    Fx {
        _turn,
        base,
        session,
        log,
        ec,
    }
}

/// Subscribes with any options object and waits for the device's answer.
async fn subscribe_raw(ec: &EventChannel, query: JsValue, options: Option<Object>) -> Subscription {
    let v = wait(
        ec.subscribe(query.unchecked_into(), options.map(JsCast::unchecked_into))
            .unwrap(),
    )
    .await
    .expect("subscribe succeeds");
    Subscription::try_from_js_value(v).expect("a Subscription")
}

async fn subscribe(ec: &EventChannel, query: JsValue, log: &Rc<Log>, store: bool) -> Subscription {
    let opts = obj(&[
        ("onEvent", log.cb(|l| &l.events)),
        ("onGap", log.cb(|l| &l.gaps)),
        ("store", JsValue::from(store)),
    ]);
    subscribe_raw(ec, query, Some(opts)).await
}

/// Waits until `cond` holds, checking every 50 ms, for at most `ms`.
async fn until(ms: u32, what: &str, cond: impl Fn() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(waited < ms, "timed out after {ms} ms waiting for {what}");
        TimeoutFuture::new(50).await;
        waited += 50;
    }
}

async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

fn class(name: &str) -> JsValue {
    ClassQuery::new(name.into(), None).unwrap().into()
}

/// Creates (or rewrites) tenant `name` through the simulator, as a change made on the device.
async fn write_tenant(base: &str, name: &str, descr: &str) {
    sim(
        base,
        &format!("/_sim/write?dn=uni/tn-{name}"),
        Some(&tenant_body(name, descr)),
    )
    .await;
}

async fn delete_tenant(base: &str, name: &str) {
    sim(base, &format!("/_sim/delete?dn=uni/tn-{name}"), None).await;
}

fn tenant_body(name: &str, descr: &str) -> String {
    format!(r#"{{"fvTenant":{{"attributes":{{"name":"{name}","descr":"{descr}"}}}}}}"#)
}

/// The store of a subscription, as `dn → attributes["descr"]`, next to the sim's truth.
async fn store_matches_truth(sub: &Subscription, base: &str, class: &str) -> Result<(), String> {
    objects_match_truth(&sub.store().into(), base, class).await
}

/// Objects (an array or any iterable of MOs), as `dn → attributes["descr"]`, next to the truth.
async fn objects_match_truth(objects: &JsValue, base: &str, class: &str) -> Result<(), String> {
    let truth = sim_get(base, &format!("/_sim/truth?class={class}")).await;
    let truth = Array::from(&get(&truth, "imdata"));
    let mut want: Vec<(String, String)> = truth
        .iter()
        .map(|e| {
            let a = get(&get(&e, class), "attributes");
            (
                get(&a, "dn").as_string().unwrap(),
                get(&a, "descr").as_string().unwrap_or_default(),
            )
        })
        .collect();
    let mut have: Vec<(String, String)> = Array::from(objects)
        .iter()
        .map(|m| {
            let a = get(&m, "attributes");
            (
                get(&m, "dn").as_string().unwrap(),
                get(&a, "descr").as_string().unwrap_or_default(),
            )
        })
        .collect();
    want.sort();
    have.sort();
    if want == have {
        Ok(())
    } else {
        Err(format!(
            "store {} objects, truth {}",
            have.len(),
            want.len()
        ))
    }
}

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

/// Runs a snippet of JavaScript with arguments (`a`, `b`) and returns its value.
fn js(body: &str, a: &JsValue, b: &JsValue) -> JsValue {
    Function::new_with_args("a, b", body)
        .call2(&JsValue::UNDEFINED, a, b)
        .expect("the snippet runs")
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

#[path = "web/queries.rs"]
mod queries;
