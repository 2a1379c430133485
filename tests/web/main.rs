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

/// Runs a snippet of JavaScript with arguments (`a`, `b`) and returns its value.
fn js(body: &str, a: &JsValue, b: &JsValue) -> JsValue {
    Function::new_with_args("a, b", body)
        .call2(&JsValue::UNDEFINED, a, b)
        .expect("the snippet runs")
}

mod delivery;
mod disruptions;
mod lifecycle;
mod queries;
mod views;
