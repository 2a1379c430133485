//! `Session`'s queries and writes: `query`, `lookupByDn`, `lookupByClass`, `pages`, `commit` and
//! `delete`. Each is one engine call (`Engine::call`): it goes out with the session's current
//! token and survives what the session survives; this file only checks the input, waits for the
//! answer and shapes it. Every call takes `{ signal, requestTimeoutMs }`, and works with or
//! without an `EventChannel`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use super::channel::query_of;
use super::error::Failure;
use super::future::promise;
use super::hub::Hub;
use super::mo::mos_to_js;
use super::options::get;
use super::query::apply_options;
use super::reply::{reply, Answer};
use super::session::Session;
use super::shapes::{iter_done, iter_value};
use super::types::{
    AnyQuery, JsCallOptions, JsChanges, JsClassLookupOptions, JsLookupOptions, JsPagesOptions,
    PromiseCommit, PromiseMoArray, PromiseMoOrNull, PromisePage, PromiseQueryAnswer,
};
use crate::engine::{CallHandle, CallRequest, EngineError, Method, TransportFailure};
use crate::protocol::{
    delete_request, Change, Query, QueryError, QueryResponse, Target, WriteRequest,
};
use crate::web::clock::now_ms;
use crate::web::shell::Shell;

/// What every call takes besides its input.
#[derive(Clone, Default)]
struct CallOptions {
    signal: Option<AbortSignal>,
    timeout_ms: Option<u64>,
}

fn invalid(option: &'static str, reason: &'static str) -> Failure {
    EngineError::Query(QueryError::InvalidValue { option, reason }).into()
}

fn call_options(o: Option<&JsValue>) -> Result<CallOptions, Failure> {
    let Some(o) = o.filter(|o| o.is_object()) else {
        return Ok(CallOptions::default());
    };
    let signal = match get(o, "signal") {
        None => None,
        Some(s) => Some(
            s.dyn_into::<AbortSignal>()
                .map_err(|_| invalid("signal", "must be an AbortSignal"))?,
        ),
    };
    let timeout_ms = match get(o, "requestTimeoutMs") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(n) if (1.0..=86_400_000.0).contains(&n) => Some(n as u64),
            _ => return Err(invalid("requestTimeoutMs", "must be a number of ms")),
        },
    };
    Ok(CallOptions { signal, timeout_ms })
}

/// Removes its `abort` listener when the call ends, whichever way.
struct AbortHook {
    signal: AbortSignal,
    listener: Closure<dyn FnMut()>,
}

impl AbortHook {
    fn new(signal: AbortSignal, shell: Rc<Shell>, call: CallHandle) -> AbortHook {
        let listener = Closure::<dyn FnMut()>::new(move || {
            shell.with_engine(|e, now| e.cancel_call(call, now));
        });
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        AbortHook { signal, listener }
    }
}

impl Drop for AbortHook {
    fn drop(&mut self) {
        let _ = self
            .signal
            .remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}

/// A call sent and waiting for its `Event::Answered`, which the hub sends here.
struct Sent {
    answer: Answer<QueryResponse>,
    _hook: Option<AbortHook>,
}

/// Sends one call through the engine now, in the caller's task (so calls go out in call
/// order, and a refused one provably sent nothing).
fn send(
    shell: &Rc<Shell>,
    hub: &Rc<Hub>,
    method: Method,
    w: WriteRequest,
    opts: CallOptions,
) -> Result<Sent, Failure> {
    if opts.signal.as_ref().is_some_and(|s| s.aborted()) {
        return Err(EngineError::Transport(TransportFailure::Aborted).into());
    }
    if shell.is_closed() {
        return Err(EngineError::Closed.into());
    }
    let req = CallRequest {
        method,
        path: w.path,
        body: w.body,
        timeout_ms: opts.timeout_ms,
    };
    let (tx, answer) = reply();
    // Registered before the engine's events are pumped: a stopped engine answers at once.
    let h = shell.read_mut(|e| e.call(req, now_ms()));
    hub.calls.borrow_mut().insert(h, tx);
    shell.pump();
    let _hook = opts.signal.map(|s| AbortHook::new(s, shell.clone(), h));
    Ok(Sent { answer, _hook })
}

/// Sends now and waits for the answer.
fn run(
    shell: &Rc<Shell>,
    hub: &Rc<Hub>,
    method: Method,
    w: WriteRequest,
    opts: CallOptions,
) -> impl std::future::Future<Output = Result<QueryResponse, Failure>> {
    let sent = send(shell, hub, method, w, opts);
    async move {
        let sent = sent?;
        let _hook = sent._hook;
        sent.answer.await
    }
}

/// `{ totalCount, mos }`.
fn answer_js(r: &QueryResponse) -> JsValue {
    let o = Object::new();
    let total = r.total_count.unwrap_or(r.mos.len() as u64);
    let _ = Reflect::set(&o, &"totalCount".into(), &JsValue::from(total as f64));
    let _ = Reflect::set(&o, &"mos".into(), &mos_to_js(&r.mos));
    o.into()
}

/// A query's path, or why it cannot be one.
fn render(q: &Query) -> Result<WriteRequest, Failure> {
    let path = q.render().map_err(EngineError::Query)?;
    Ok(WriteRequest { path, body: None })
}

/// A plain query answered "too big" should have been paged.
fn hint_too_big(e: Failure) -> Failure {
    match e {
        Failure::Engine(EngineError::Device(d)) if d.kind.code() == "RESULT_TOO_BIG" => {
            Failure::Hinted(
                EngineError::Device(d),
                "the answer is too big for one request: use session.pages(query, { pageSize })",
            )
        }
        other => other,
    }
}

/// A change object: `{ className, dn, attributes?, status? }`, every attribute a string.
fn change_of(v: &JsValue) -> Result<Change, Failure> {
    if !v.is_object() {
        return Err(invalid(
            "change",
            "must be an object { className, dn, attributes }",
        ));
    }
    let text = |key: &'static str| -> Result<Option<String>, Failure> {
        match get(v, key) {
            None => Ok(None),
            Some(s) => s
                .as_string()
                .map(Some)
                .ok_or_else(|| invalid(key, "must be a string")),
        }
    };
    let dn = text("dn")?.ok_or_else(|| invalid("dn", "every change needs a dn"))?;
    let class_name =
        text("className")?.ok_or_else(|| invalid("className", "every change needs a className"))?;
    let mut change = Change::new(class_name, dn);
    change.status = text("status")?;
    if let Some(attrs) = get(v, "attributes") {
        let attrs: Object = attrs
            .dyn_into()
            .map_err(|_| invalid("attributes", "must be an object of strings"))?;
        for entry in Object::entries(&attrs).iter() {
            let pair: Array = entry.unchecked_into();
            let (k, val) = (pair.get(0).as_string().unwrap_or_default(), pair.get(1));
            let val = val
                .as_string()
                .ok_or_else(|| invalid("attributes", "every value must be a string"))?;
            change.attributes.push((k, val));
        }
    }
    Ok(change)
}

impl Session {
    fn start(
        &self,
        method: Method,
        w: WriteRequest,
        opts: CallOptions,
    ) -> impl std::future::Future<Output = Result<QueryResponse, Failure>> {
        run(&self.shell, &self.hub, method, w, opts)
    }

    fn lookup(
        &self,
        q: Query,
        options: &JsValue,
    ) -> Result<impl std::future::Future<Output = Result<QueryResponse, Failure>>, Failure> {
        let opts = call_options(Some(options))?;
        Ok(self.start(Method::Get, render(&q)?, opts))
    }
}

/// The query of a `ClassQuery` / `DnQuery` argument.
fn query_arg(v: &JsValue) -> Result<Query, Failure> {
    query_of(v).ok_or_else(|| invalid("query", "must be a ClassQuery or a DnQuery"))
}

fn rejected(e: Failure) -> Promise {
    promise(std::future::ready(Err::<JsValue, _>(e)))
}

#[wasm_bindgen]
impl Session {
    /// Runs a `ClassQuery` or `DnQuery` once: `{ totalCount, mos }`. Options: `signal`,
    /// `requestTimeoutMs`.
    pub fn query(&self, query: AnyQuery, options: Option<JsCallOptions>) -> PromiseQueryAnswer {
        let go = || -> Result<Promise, Failure> {
            let q = query_arg(&query)?;
            let opts = call_options(options.as_ref().map(|o| o.as_ref()))?;
            let f = self.start(Method::Get, render(&q)?, opts);
            Ok(promise(async move {
                f.await.map(|r| answer_js(&r)).map_err(hint_too_big)
            }))
        };
        go().unwrap_or_else(rejected).unchecked_into()
    }

    /// One object by its dn, or `null` when there is none. Takes the `DnQuery` options (e.g.
    /// `rspSubtree: "children"`) and `signal`, `requestTimeoutMs`.
    #[wasm_bindgen(js_name = lookupByDn)]
    pub fn lookup_by_dn(&self, dn: String, options: Option<JsLookupOptions>) -> PromiseMoOrNull {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let go = || -> Result<Promise, Failure> {
            let mut q = Query::dn(dn);
            apply_options(&mut q, options.dyn_ref::<Object>())
                .map_err(|_| invalid("options", "not a valid DnQuery option"))?;
            let f = self.lookup(q, &options)?;
            Ok(promise(async move {
                let r = f.await?;
                Ok::<JsValue, Failure>(match r.mos.first() {
                    Some(mo) => mos_to_js(std::slice::from_ref(mo)).get(0),
                    None => JsValue::NULL,
                })
            }))
        };
        go().unwrap_or_else(rejected).unchecked_into()
    }

    /// Every object of a class: `Mo[]`. Takes the `ClassQuery` options (`under`, `filter`, ...)
    /// and `signal`, `requestTimeoutMs`.
    #[wasm_bindgen(js_name = lookupByClass)]
    pub fn lookup_by_class(
        &self,
        class_name: String,
        options: Option<JsClassLookupOptions>,
    ) -> PromiseMoArray {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let go = || -> Result<Promise, Failure> {
            let mut q = Query::class(class_name);
            if let Some(under) = get(&options, "under") {
                let under = under
                    .as_string()
                    .ok_or_else(|| invalid("under", "must be a dn"))?;
                q = q.under(under);
            }
            apply_options(&mut q, options.dyn_ref::<Object>())
                .map_err(|_| invalid("options", "not a valid ClassQuery option"))?;
            let f = self.lookup(q, &options)?;
            Ok(promise(async move {
                f.await.map(|r| mos_to_js(&r.mos)).map_err(hint_too_big)
            }))
        };
        go().unwrap_or_else(rejected).unchecked_into()
    }

    /// `for await (const page of session.pages(query, { pageSize: 100 }))`: the answer a page
    /// at a time (`{ page, totalCount, mos }`), ordered by dn unless the query gives `orderBy`,
    /// until `totalCount` objects came (or a page comes back empty).
    pub fn pages(&self, query: AnyQuery, options: JsPagesOptions) -> Result<Pages, JsValue> {
        let options: JsValue = options.into();
        let mut q = query_arg(&query).map_err(JsValue::from)?;
        let size = get(&options, "pageSize")
            .and_then(|v| v.as_f64())
            .filter(|n| (1.0..=1_000_000.0).contains(n) && n.fract() == 0.0)
            .ok_or_else(|| JsValue::from(invalid("pageSize", "must be a whole number >= 1")))?;
        let opts = call_options(Some(&options)).map_err(JsValue::from)?;
        if q.options.order_by.is_empty() {
            // Without an order, a device may return an object on two pages and skip another.
            let class = match &q.target {
                Target::Class { class, .. } => Some(class.clone()),
                Target::Dn { .. } => q.options.target_subtree_class.first().cloned(),
            };
            if let Some(c) = class {
                q.options.order_by = vec![format!("{c}.dn")];
            }
        }
        q.options.page_size = Some(size as u32);
        q.validate()
            .map_err(|e| JsValue::from(Failure::from(EngineError::Query(e))))?;
        Ok(Pages {
            state: Rc::new(RefCell::new(PagesState {
                shell: self.shell.clone(),
                hub: self.hub.clone(),
                query: q,
                opts,
                next_page: 0,
                seen: 0,
                done: false,
            })),
        })
    }

    /// Creates or modifies (`status: "created,modified"` unless given) or deletes
    /// (`status: "deleted"`) objects: `{ className, dn, attributes }` or an array of them, posted
    /// one after the other in order. Everything is checked before anything is sent. Resolves
    /// with the device's answer (`{ totalCount, mos }`), an array of them for an array.
    pub fn commit(&self, changes: JsChanges, options: Option<JsCallOptions>) -> PromiseCommit {
        let go = || -> Result<Promise, Failure> {
            let v: JsValue = changes.into();
            let many = Array::is_array(&v);
            let list: Vec<JsValue> = if many {
                Array::from(&v).iter().collect()
            } else {
                vec![v]
            };
            let reqs = list
                .iter()
                .map(|c| {
                    change_of(c).and_then(|c| c.request().map_err(|e| EngineError::Query(e).into()))
                })
                .collect::<Result<Vec<WriteRequest>, Failure>>()?;
            let opts = call_options(options.as_ref().map(|o| o.as_ref()))?;
            let (shell, hub) = (self.shell.clone(), self.hub.clone());
            let mut reqs = reqs.into_iter();
            let first = reqs
                .next()
                .map(|w| run(&shell, &hub, Method::Post, w, opts.clone()));
            Ok(promise(async move {
                let out = Array::new();
                if let Some(f) = first {
                    out.push(&answer_js(&f.await?));
                }
                for w in reqs {
                    let r = run(&shell, &hub, Method::Post, w, opts.clone()).await?;
                    out.push(&answer_js(&r));
                }
                Ok::<JsValue, Failure>(if many { out.into() } else { out.get(0) })
            }))
        };
        go().unwrap_or_else(rejected).unchecked_into()
    }

    /// Deletes one object (and its subtree) by its dn: `DELETE /api/mo/<dn>.json`.
    pub fn delete(&self, dn: String, options: Option<JsCallOptions>) -> PromiseQueryAnswer {
        let go = || -> Result<Promise, Failure> {
            let w = delete_request(&dn).map_err(EngineError::Query)?;
            let opts = call_options(options.as_ref().map(|o| o.as_ref()))?;
            let f = self.start(Method::Delete, w, opts);
            Ok(promise(async move { f.await.map(|r| answer_js(&r)) }))
        };
        go().unwrap_or_else(rejected).unchecked_into()
    }
}

struct PagesState {
    shell: Rc<Shell>,
    hub: Rc<Hub>,
    query: Query,
    opts: CallOptions,
    next_page: u32,
    seen: u64,
    done: bool,
}

/// The async iterator of [`Session::pages`].
#[wasm_bindgen]
pub struct Pages {
    state: Rc<RefCell<PagesState>>,
}

#[wasm_bindgen]
impl Pages {
    /// The next page: `{ value: { page, totalCount, mos }, done: false }`, then `{ done: true }`.
    pub fn next(&self) -> PromisePage {
        let (fut, page) = {
            let mut s = self.state.borrow_mut();
            if s.done {
                return promise(std::future::ready(Ok::<JsValue, Failure>(iter_done())))
                    .unchecked_into();
            }
            let page = s.next_page;
            s.next_page += 1;
            let mut q = s.query.clone();
            q.options.page = Some(page);
            let w = match render(&q) {
                Ok(w) => w,
                Err(e) => return rejected(e).unchecked_into(),
            };
            let fut = run(&s.shell, &s.hub, Method::Get, w, s.opts.clone());
            (fut, page)
        };
        let state = self.state.clone();
        promise(async move {
            let r = fut.await;
            let mut s = state.borrow_mut();
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    s.done = true;
                    return Err(e);
                }
            };
            if r.mos.is_empty() {
                s.done = true;
                return Ok(iter_done());
            }
            s.seen += r.mos.len() as u64;
            let total = r.total_count.unwrap_or(s.seen);
            if s.seen >= total {
                s.done = true;
            }
            let v = answer_js(&r);
            let _ = Reflect::set(&v, &"page".into(), &JsValue::from(page));
            Ok(iter_value(v))
        })
        .unchecked_into()
    }

    /// Ends the iteration (a `break` out of `for await`).
    #[wasm_bindgen(js_name = "return")]
    pub fn return_(&self) -> PromisePage {
        self.state.borrow_mut().done = true;
        promise(std::future::ready(Ok::<JsValue, Failure>(iter_done()))).unchecked_into()
    }
}
