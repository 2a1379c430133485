//! `Session`, `EventChannel` and `Subscription`: the classes JavaScript uses, after Cobra's
//! EventChannel. They are views of one [`Shell`] (which owns the engine); a [`Hub`] turns the
//! engine's events into callback calls and settles promises.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{coded, engine_error, set, socket_unavailable};
use super::mo::{mos_to_js, store_to_js};
use super::options::{self, get};
use super::types::{
    AnyQuery, EventChannelOptions, GetEventOptions, JsConnectionState, JsResources, JsStats,
    JsSubscriptionInfo, LoginOptions, MoArray, MoArrayOrNull, PromiseIter, PromisePulled,
    PromiseSession, PromiseSubscription, PromiseVoid, SubscribeOptions, TokenOptions,
};
use crate::engine::{
    ConnectionState, Counters, EngineError, Event, GapReason, Pulled, SubHandle, SubOptions,
    SubState,
};
use crate::protocol::Query;
use crate::vecmap::VecMap;
use crate::web::shell::{to_wall, Listener, Shell};

type Settle = (Function, Function);

fn new_promise(store: impl FnOnce(Settle)) -> Promise {
    let mut store = Some(store);
    Promise::new(&mut |resolve, reject| {
        if let Some(s) = store.take() {
            s((resolve, reject));
        }
    })
}

fn resolve(s: &Settle, v: &JsValue) {
    let _ = s.0.call1(&JsValue::UNDEFINED, v);
}

fn reject(s: &Settle, e: &JsValue) {
    let _ = s.1.call1(&JsValue::UNDEFINED, e);
}

/// Per-subscription bookkeeping on the JavaScript side.
struct SubEntry {
    on_event: Option<Function>,
    on_gap: Option<Function>,
    store: bool,
    /// The promise of `ec.subscribe`, until the first `Subscribed`.
    pending: Option<Settle>,
    initial: JsValue,
    /// `refresh()` promises with the counters they started from.
    refreshes: Vec<(Settle, u64, u64)>,
    /// `next()` promises of async iteration waiting for data.
    iter_waiters: VecDeque<Settle>,
    closed: bool,
}

/// Turns engine events into JavaScript calls.
pub(crate) struct Hub {
    login: RefCell<Option<(Settle, JsValue)>>,
    logout: RefCell<Vec<Settle>>,
    on_state: RefCell<Option<Function>>,
    on_error: RefCell<Option<Function>>,
    on_gap: RefCell<Option<Function>>,
    subs: RefCell<VecMap<SubHandle, SubEntry>>,
    /// Entries taken from the engine's pull queue while looking for another subscription's.
    parked: RefCell<VecDeque<Pulled>>,
    getevent_waiters: RefCell<VecDeque<(Settle, Option<gloo_timers::callback::Timeout>)>>,
    state: RefCell<ConnectionState>,
    channel_open: Cell<bool>,
    /// The last error reported, to explain a first login that could not connect.
    last_error: RefCell<Option<JsValue>>,
    /// The session was adopted (`fromToken`): closing must not log it out.
    adopted: Cell<bool>,
    /// The channel was closed: user callbacks are no longer called.
    detached: Cell<bool>,
    me: std::rc::Weak<Hub>,
}

impl Hub {
    fn new() -> Rc<Hub> {
        Rc::new_cyclic(|me| Hub {
            me: me.clone(),
            login: RefCell::new(None),
            logout: RefCell::new(Vec::new()),
            on_state: RefCell::new(None),
            on_error: RefCell::new(None),
            on_gap: RefCell::new(None),
            subs: RefCell::new(VecMap::new()),
            parked: RefCell::new(VecDeque::new()),
            getevent_waiters: RefCell::new(VecDeque::new()),
            state: RefCell::new(ConnectionState::Connecting),
            channel_open: Cell::new(false),
            last_error: RefCell::new(None),
            adopted: Cell::new(false),
            detached: Cell::new(false),
        })
    }

    /// Calls a user callback; an exception it throws goes to `onError` and never stops delivery.
    fn call(&self, f: &Function, args: &[&JsValue]) {
        let r = match args {
            [a] => f.call1(&JsValue::UNDEFINED, a),
            [a, b] => f.call2(&JsValue::UNDEFINED, a, b),
            _ => f.call0(&JsValue::UNDEFINED),
        };
        if let Err(thrown) = r {
            let err = coded("CALLBACK_THREW", "a callback threw an exception");
            set(&err, "cause", thrown);
            self.report(&err);
        }
    }

    fn report(&self, err: &JsValue) {
        let f = self.on_error.borrow().clone();
        match f {
            // An exception in onError itself is dropped: there is nobody left to tell.
            Some(f) => {
                let _ = f.call1(&JsValue::UNDEFINED, err);
            }
            None => web_sys_console_warn(err),
        }
    }

    fn fail_all_pending(&self, err: &JsValue) {
        let pend: Vec<Settle> = self
            .subs
            .borrow_mut()
            .values_mut()
            .filter_map(|e| e.pending.take())
            .collect();
        for p in pend {
            reject(&p, err);
        }
        let waiters: Vec<_> = self.getevent_waiters.borrow_mut().drain(..).collect();
        for (w, _timer) in waiters {
            resolve(&w, &JsValue::NULL);
        }
        let iters: Vec<Settle> = self
            .subs
            .borrow_mut()
            .values_mut()
            .flat_map(|e| e.iter_waiters.drain(..).collect::<Vec<_>>())
            .collect();
        for w in iters {
            resolve(&w, &iter_done());
        }
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(v: &JsValue);
}

fn web_sys_console_warn(v: &JsValue) {
    console_warn(v);
}

fn iter_done() -> JsValue {
    let o: JsValue = Object::new().into();
    set(&o, "done", JsValue::TRUE);
    set(&o, "value", JsValue::UNDEFINED);
    o
}

fn iter_value(v: JsValue) -> JsValue {
    let o: JsValue = Object::new().into();
    set(&o, "done", JsValue::FALSE);
    set(&o, "value", v);
    o
}

fn gap_reason(r: GapReason) -> &'static str {
    match r {
        GapReason::Reconnect => "reconnect",
        GapReason::Relogin => "relogin",
        GapReason::Rotation => "rotation",
        GapReason::Expired => "expired",
        GapReason::SocketRebuilt => "socket-rebuilt",
        GapReason::Failover => "failover",
        GapReason::QueueOverflow => "queue-overflow",
    }
}

fn gap_js(handle: SubHandle, reason: GapReason) -> JsValue {
    let o: JsValue = Object::new().into();
    set(&o, "type", JsValue::from_str("gap"));
    set(&o, "subscription", JsValue::from(handle.0 as f64));
    set(&o, "reason", JsValue::from_str(gap_reason(reason)));
    o
}

fn pulled_js(p: &Pulled) -> JsValue {
    match p {
        Pulled::Mos { handle, mos } => {
            let o: JsValue = Object::new().into();
            set(&o, "type", JsValue::from_str("mos"));
            set(&o, "subscription", JsValue::from(handle.0 as f64));
            set(&o, "mos", mos_to_js(mos).into());
            o
        }
        Pulled::Gap { handle, reason } => gap_js(*handle, *reason),
    }
}

/// The connection state as a plain object: `{ state: "live" }`,
/// `{ state: "reconnecting", attempt, nextAt }`, `{ state: "failed", error }`, ...
pub(crate) fn state_js(s: &ConnectionState) -> JsValue {
    let o: JsValue = Object::new().into();
    let name = match s {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Live => "live",
        ConnectionState::Degraded { reason } => {
            let r = match reason {
                crate::engine::DegradedReason::Offline => "offline",
                crate::engine::DegradedReason::RequestFailures => "request-failures",
                crate::engine::DegradedReason::Throttled => "throttled",
                crate::engine::DegradedReason::Verifying => "verifying",
            };
            set(&o, "reason", JsValue::from_str(r));
            "degraded"
        }
        ConnectionState::Reconnecting { attempt, next_at } => {
            set(&o, "attempt", JsValue::from(*attempt));
            set(&o, "nextAt", JsValue::from(to_wall(*next_at)));
            "reconnecting"
        }
        ConnectionState::Failed { reason } => {
            set(&o, "error", engine_error(reason));
            "failed"
        }
        ConnectionState::Closed => "closed",
    };
    set(&o, "state", JsValue::from_str(name));
    o
}

impl Listener for Hub {
    fn on_event(&self, shell: &Rc<Shell>, event: Event) {
        if self.detached.get() && !matches!(event, Event::LoggedOut | Event::Closed) {
            return;
        }
        match event {
            Event::State(s) => {
                *self.state.borrow_mut() = s.clone();
                // `Session.login` reports the first attempt's failure instead of retrying
                // forever; retries are for sessions that were established once.
                if matches!(s, ConnectionState::Reconnecting { .. })
                    && self.login.borrow().is_some()
                {
                    let err = self.last_error.borrow_mut().take().unwrap_or_else(|| {
                        coded("NETWORK", "could not establish a session with the device")
                    });
                    if let Some((p, _)) = self.login.borrow_mut().take() {
                        reject(&p, &err);
                    }
                    shell.shutdown();
                    return;
                }
                if let ConnectionState::Failed { reason } = &s {
                    shell.shutdown();
                    let err = engine_error(reason);
                    if let Some((p, _)) = self.login.borrow_mut().take() {
                        reject(&p, &err);
                    }
                    self.fail_all_pending(&err);
                }
                let f = self.on_state.borrow().clone();
                if let Some(f) = f {
                    self.call(&f, &[&state_js(&s)]);
                }
            }
            Event::LoggedIn(_) => {
                if let Some((p, session)) = self.login.borrow_mut().take() {
                    resolve(&p, &session);
                }
            }
            Event::Subscribed {
                handle, initial, ..
            } => {
                let (pending, resubscribed) = {
                    let mut subs = self.subs.borrow_mut();
                    let Some(e) = subs.get_mut(&handle) else {
                        return;
                    };
                    let first = e.pending.take();
                    let again = first.is_none() && !e.store;
                    if first.is_some() {
                        e.initial = mos_to_js(&initial).into();
                    }
                    (first, again.then(|| e.on_event.clone()).flatten())
                };
                if let Some(p) = pending {
                    let sub = Subscription {
                        shell: shell.clone(),
                        hub: self.me.upgrade().expect("the hub outlives its events"),
                        handle,
                    };
                    resolve(&p, &sub.into());
                } else if let Some(f) = resubscribed {
                    // Without store mode, the new snapshot after a gap is the truth to adopt.
                    self.call(&f, &[&mos_to_js(&initial).into()]);
                }
            }
            Event::SubscribeFailed { handle, error } => {
                let err = engine_error(&error);
                let pending = self
                    .subs
                    .borrow_mut()
                    .get_mut(&handle)
                    .and_then(|e| e.pending.take());
                match pending {
                    Some(p) => {
                        self.subs.borrow_mut().remove(&handle);
                        reject(&p, &err);
                    }
                    None => {
                        set(&err, "subscription", JsValue::from(handle.0 as f64));
                        self.report(&err);
                    }
                }
            }
            Event::Deliver { handle, mos } => {
                let f = self
                    .subs
                    .borrow()
                    .get(&handle)
                    .and_then(|e| e.on_event.clone());
                if let Some(f) = f {
                    self.call(&f, &[&mos_to_js(&mos).into()]);
                }
            }
            Event::Gap { handle, reason } => {
                let f = self
                    .subs
                    .borrow()
                    .get(&handle)
                    .and_then(|e| e.on_gap.clone())
                    .or_else(|| self.on_gap.borrow().clone());
                if let Some(f) = f {
                    self.call(&f, &[&gap_js(handle, reason)]);
                }
            }
            // `refresh()` promises are settled in `after_pump` (from the counters).
            Event::Refreshed { .. } => {}
            Event::Error(e) => {
                let err = engine_error(&e);
                if self.login.borrow().is_some() {
                    *self.last_error.borrow_mut() = Some(err);
                } else {
                    self.report(&err);
                }
            }
            Event::LoggedOut | Event::Closed => {
                shell.shutdown();
                let waiters: Vec<Settle> = self.logout.borrow_mut().drain(..).collect();
                for w in waiters {
                    resolve(&w, &JsValue::UNDEFINED);
                }
                let err = engine_error(&EngineError::Closed);
                if let Some((p, _)) = self.login.borrow_mut().take() {
                    reject(&p, &err);
                }
                self.fail_all_pending(&err);
            }
        }
    }

    fn after_pump(&self, shell: &Rc<Shell>) {
        // Settle refresh() promises whose counters moved.
        let mut done = Vec::new();
        {
            let mut subs = self.subs.borrow_mut();
            for (h, e) in subs.iter_mut() {
                if e.refreshes.is_empty() {
                    continue;
                }
                let c = shell
                    .read(|en| en.subscription_info(*h))
                    .map(|i| i.counters)
                    .unwrap_or_default();
                e.refreshes.retain(|(s, ok0, fail0)| {
                    if c.refreshes > *ok0 {
                        done.push((s.clone(), true));
                        false
                    } else if c.refresh_failures > *fail0 {
                        done.push((s.clone(), false));
                        false
                    } else {
                        true
                    }
                });
            }
        }
        for (s, ok) in done {
            if ok {
                resolve(&s, &JsValue::UNDEFINED);
            } else {
                reject(
                    &s,
                    &coded("REFRESH_REJECTED", "the subscription refresh failed"),
                );
            }
        }
        // Feed waiting pull consumers.
        loop {
            let waiting = !self.getevent_waiters.borrow().is_empty();
            if !waiting {
                break;
            }
            let Some(p) = self.take_pulled(shell, None) else {
                break;
            };
            let w = self.getevent_waiters.borrow_mut().pop_front();
            if let Some((w, _timer)) = w {
                resolve(&w, &pulled_js(&p));
            }
        }
        let handles: Vec<SubHandle> = self
            .subs
            .borrow()
            .iter()
            .filter(|(_, e)| !e.iter_waiters.is_empty())
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            loop {
                let has = self
                    .subs
                    .borrow()
                    .get(&h)
                    .is_some_and(|e| !e.iter_waiters.is_empty());
                if !has {
                    break;
                }
                let Some(p) = self.take_pulled(shell, Some(h)) else {
                    break;
                };
                let w = self
                    .subs
                    .borrow_mut()
                    .get_mut(&h)
                    .and_then(|e| e.iter_waiters.pop_front());
                if let Some(w) = w {
                    resolve(&w, &iter_value(pulled_js(&p)));
                }
            }
        }
    }
}

impl Hub {
    /// The next pulled entry (for one subscription, or any), parking others met on the way.
    fn take_pulled(&self, shell: &Rc<Shell>, only: Option<SubHandle>) -> Option<Pulled> {
        let handle_of = |p: &Pulled| match p {
            Pulled::Mos { handle, .. } | Pulled::Gap { handle, .. } => *handle,
        };
        {
            let mut parked = self.parked.borrow_mut();
            let pos = parked
                .iter()
                .position(|p| only.is_none_or(|h| handle_of(p) == h));
            if let Some(i) = pos {
                return parked.remove(i);
            }
        }
        loop {
            let p = shell.read_mut(|e| e.next_pulled())?;
            match only {
                Some(h) if handle_of(&p) != h => self.parked.borrow_mut().push_back(p),
                _ => return Some(p),
            }
        }
    }
}

/// A session with one controller (or a cluster): logs in, keeps the session alive, and owns the
/// one socket every subscription of the session shares.
#[wasm_bindgen]
pub struct Session {
    shell: Rc<Shell>,
    hub: Rc<Hub>,
}

fn start(opts: &Object, adopt: bool) -> Result<Promise, JsValue> {
    let config = options::config(opts, adopt)?;
    let ctor = options::socket_constructor(opts.as_ref())?;
    let shell = Shell::start(config, ctor);
    let hub = Hub::new();
    hub.adopted.set(adopt);
    shell.set_listener(hub.clone());
    let session: JsValue = Session {
        shell: shell.clone(),
        hub: hub.clone(),
    }
    .into();
    let promise = new_promise(|s| *hub.login.borrow_mut() = Some((s, session)));
    shell.pump();
    Ok(promise)
}

#[wasm_bindgen]
impl Session {
    /// Logs in with user and password: `Session.login({ url, user, password, flavor })`.
    /// Resolves once the session is established; rejects with `AUTH_REJECTED` and friends.
    pub fn login(options: LoginOptions) -> Result<PromiseSession, JsValue> {
        start(options.unchecked_ref(), false).map(JsCast::unchecked_into)
    }

    /// Adopts an existing session: `Session.fromToken({ url, token, urlToken?, devCookie? })`.
    #[wasm_bindgen(js_name = fromToken)]
    pub fn from_token(options: TokenOptions) -> Result<PromiseSession, JsValue> {
        start(options.unchecked_ref(), true).map(JsCast::unchecked_into)
    }

    /// The controller in use (base URL, no credentials).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.shell.read(|e| e.current_url().to_string())
    }

    /// The device's software version from the login answer.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> Option<String> {
        self.shell
            .read(|e| e.session_info().and_then(|i| i.version.clone()))
    }

    #[wasm_bindgen(getter)]
    pub fn user(&self) -> Option<String> {
        self.shell
            .read(|e| e.session_info().and_then(|i| i.user_name.clone()))
    }

    /// The connection state: `{ state: "live" | "connecting" | ... }`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> JsConnectionState {
        state_js(&self.hub.state.borrow()).unchecked_into()
    }

    /// Logs out (`aaaLogout`), closes the socket and stops every timer.
    pub fn logout(&self) -> PromiseVoid {
        if self.shell.is_closed() {
            return Promise::resolve(&JsValue::UNDEFINED).unchecked_into();
        }
        let hub = self.hub.clone();
        let p = new_promise(|s| hub.logout.borrow_mut().push(s));
        self.shell.with_engine(|e, now| e.logout(now));
        p.unchecked_into()
    }

    /// Closes without logging out.
    pub fn close(&self) {
        self.shell.shutdown();
    }
}

/// The event channel of a session, after Cobra's EventChannel: subscriptions, callbacks, and
/// pull-style `getevent()`.
#[wasm_bindgen]
pub struct EventChannel {
    shell: Rc<Shell>,
    hub: Rc<Hub>,
}

fn callback(o: &JsValue, key: &str) -> Result<Option<Function>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => v.dyn_into::<Function>().map(Some).map_err(|_| {
            coded(
                "INVALID_CONFIG",
                &format!("option {key} must be a function"),
            )
        }),
    }
}

#[wasm_bindgen]
impl EventChannel {
    /// `new EventChannel(session, { onState, onError, onGap, WebSocket })`. Throws
    /// `SOCKET_UNAVAILABLE` at once where the runtime has no `WebSocket` and none is given.
    #[wasm_bindgen(constructor)]
    pub fn new(
        session: &Session,
        options: Option<EventChannelOptions>,
    ) -> Result<EventChannel, JsValue> {
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        let hub = session.hub.clone();
        let ctor = match &options {
            Some(o) => options::socket_constructor(o.as_ref())?,
            None => None,
        };
        if ctor.is_none() && !session.shell.can_open_sockets() {
            return Err(socket_unavailable());
        }
        if hub.channel_open.get() {
            return Err(coded(
                "INVALID_STATE",
                "this session already has an open EventChannel",
            ));
        }
        if let Some(o) = &options {
            *hub.on_state.borrow_mut() = callback(o, "onState")?;
            *hub.on_error.borrow_mut() = callback(o, "onError")?;
            *hub.on_gap.borrow_mut() = callback(o, "onGap")?;
        }
        hub.channel_open.set(true);
        if let Some(c) = ctor {
            session.shell.set_socket_constructor(c);
        }
        Ok(EventChannel {
            shell: session.shell.clone(),
            hub,
        })
    }

    /// Subscribes to a query. Resolves with a `Subscription` once the device accepted it.
    /// Options: `{ onEvent, onGap, store, refreshTimeout }`. Without `onEvent`, events wait in a
    /// bounded queue for `getevent()` or async iteration.
    pub fn subscribe(
        &self,
        query: AnyQuery,
        options: Option<SubscribeOptions>,
    ) -> Result<PromiseSubscription, JsValue> {
        let query: JsValue = query.into();
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        let Some(q) = query_of(&query) else {
            return Err(coded(
                "INVALID_QUERY",
                "subscribe takes a ClassQuery or a DnQuery",
            ));
        };
        let o: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let on_event = callback(&o, "onEvent")?;
        let on_gap = callback(&o, "onGap")?;
        let store = get(&o, "store").and_then(|v| v.as_bool()).unwrap_or(false);
        let mut opts = SubOptions {
            store,
            pull: on_event.is_none(),
            ..SubOptions::default()
        };
        match get(&o, "refreshTimeout") {
            None => {}
            Some(v) if v.as_bool() == Some(false) => opts.no_refresh_timeout = true,
            Some(v) => match v.as_f64() {
                Some(n) if n >= 1.0 && n <= f64::from(u32::MAX) => {
                    opts.refresh_timeout = Some(n as u32)
                }
                _ => {
                    return Err(coded(
                        "INVALID_QUERY",
                        "refreshTimeout must be a number of seconds or false",
                    ))
                }
            },
        }
        if self.shell.is_closed() {
            return Err(engine_error(&EngineError::Closed));
        }
        let hub = self.hub.clone();
        let shell = self.shell.clone();
        let promise = new_promise(move |s| {
            let handle = shell.read_mut(|e| e.subscribe(q, opts, crate::web::shell::now_ms()));
            hub.subs.borrow_mut().insert(
                handle,
                SubEntry {
                    on_event,
                    on_gap,
                    store,
                    pending: Some(s),
                    initial: Array::new().into(),
                    refreshes: Vec::new(),
                    iter_waiters: VecDeque::new(),
                    closed: false,
                },
            );
        });
        self.shell.pump();
        Ok(promise.unchecked_into())
    }

    /// Waits for the next entry of the pull queue: `{ type: "mos", subscription, mos }` or
    /// `{ type: "gap", subscription, reason }`; `null` after `timeoutMs` (default: wait forever).
    pub fn getevent(&self, options: Option<GetEventOptions>) -> PromisePulled {
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        if let Some(p) = self.hub.take_pulled(&self.shell, None) {
            return Promise::resolve(&pulled_js(&p)).unchecked_into();
        }
        if self.shell.is_closed() {
            return Promise::resolve(&JsValue::NULL).unchecked_into();
        }
        let timeout = options
            .as_ref()
            .and_then(|o| get(o, "timeoutMs"))
            .and_then(|v| v.as_f64());
        let hub = self.hub.clone();
        new_promise(move |s| {
            let timer = timeout.map(|ms| {
                let weak = hub.me.clone();
                let key = s.0.clone();
                gloo_timers::callback::Timeout::new(ms.clamp(0.0, 2e9) as u32, move || {
                    let Some(hub) = weak.upgrade() else { return };
                    let mut w = hub.getevent_waiters.borrow_mut();
                    if let Some(i) = w.iter().position(|((r, _), _)| *r == key) {
                        let ((r, _), timer) = w.remove(i).expect("position is valid");
                        drop(w);
                        // This timer is running: release it after the callback returns.
                        wasm_bindgen_futures::spawn_local(async move { drop(timer) });
                        let _ = r.call1(&JsValue::UNDEFINED, &JsValue::NULL);
                    }
                })
            });
            hub.getevent_waiters.borrow_mut().push_back((s, timer));
        })
        .unchecked_into()
    }

    /// Counters, in total and per subscription.
    pub fn stats(&self) -> JsStats {
        let s = self.shell.read(|e| e.stats());
        let o: JsValue = Object::new().into();
        for (k, v) in [
            ("frames", s.frames),
            ("logins", s.logins),
            ("tokenRefreshes", s.token_refreshes),
            ("sessionRotations", s.session_rotations),
            ("reconnects", s.reconnects),
            ("unknownIdFrames", s.unknown_id_frames),
            ("malformedFrames", s.malformed_frames),
            ("heartbeats", s.heartbeats),
            ("refreshRequests", s.refresh_requests),
            ("subscribeRequests", s.subscribe_requests),
        ] {
            set(&o, k, JsValue::from(v as f64));
        }
        set(&o, "total", counters_js(&s.total));
        let per: JsValue = Object::new().into();
        for (h, c) in &s.per_subscription {
            set(&per, &h.0.to_string(), counters_js(c));
        }
        set(&o, "perSubscription", per);
        o.unchecked_into()
    }

    /// The connection state: `{ state: "live" | ... }`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> JsConnectionState {
        state_js(&self.hub.state.borrow()).unchecked_into()
    }

    /// Closes the channel and ends the connection: callbacks stop at once, a session this
    /// package logged in to is logged out (an adopted one is left to its owner), and then no
    /// timer, socket or listener stays behind.
    pub fn close(&self) {
        if self.hub.detached.replace(true) {
            return;
        }
        self.hub.channel_open.set(false);
        self.hub
            .fail_all_pending(&engine_error(&EngineError::Closed));
        if self.hub.adopted.get() || self.shell.is_closed() {
            self.shell.shutdown();
        } else {
            // The LoggedOut (or Closed) event that follows shuts the shell down.
            self.shell.with_engine(|e, now| e.logout(now));
        }
    }

    /// Resources the channel still holds: `{ sockets, requests, timer }` (for leak checks).
    #[wasm_bindgen(js_name = resources)]
    pub fn resources(&self) -> JsResources {
        let (s, r, t) = self.shell.resources();
        let o: JsValue = Object::new().into();
        set(&o, "sockets", JsValue::from(s as u32));
        set(&o, "requests", JsValue::from(r as u32));
        set(&o, "timer", JsValue::from(t));
        o.unchecked_into()
    }
}

/// The query behind a `ClassQuery` / `DnQuery`, read back from its rendered path (rendering
/// round-trips, which the property tests prove).
fn query_of(v: &JsValue) -> Option<Query> {
    let f: Function = js_sys::Reflect::get(v, &JsValue::from_str("__dmeQueryPath"))
        .ok()?
        .dyn_into()
        .ok()?;
    let path = f.call0(v).ok()?.as_string()?;
    Query::parse(&path).ok()
}

fn counters_js(c: &Counters) -> JsValue {
    let o: JsValue = Object::new().into();
    for (k, v) in [
        ("frames", c.frames),
        ("mos", c.mos),
        ("gaps", c.gaps),
        ("reconnects", c.reconnects),
        ("refreshes", c.refreshes),
        ("refreshFailures", c.refresh_failures),
        ("expiries", c.expiries),
        ("drops", c.drops),
    ] {
        set(&o, k, JsValue::from(v as f64));
    }
    o
}

/// One subscription: a stable handle over the device's changing subscription id.
#[wasm_bindgen]
pub struct Subscription {
    shell: Rc<Shell>,
    hub: Rc<Hub>,
    handle: SubHandle,
}

#[wasm_bindgen]
impl Subscription {
    /// The device's current subscription id, a decimal string (it changes on every
    /// resubscribe). Empty while resubscribing.
    #[wasm_bindgen(getter)]
    pub fn subid(&self) -> String {
        self.shell
            .read(|e| e.subscription_info(self.handle))
            .and_then(|i| i.subscription_id)
            .unwrap_or_default()
    }

    /// The local handle, stable for the life of the channel.
    #[wasm_bindgen(getter)]
    pub fn handle(&self) -> f64 {
        self.handle.0 as f64
    }

    /// The snapshot the subscribe returned.
    #[wasm_bindgen(getter)]
    pub fn initial(&self) -> MoArray {
        self.hub
            .subs
            .borrow()
            .get(&self.handle)
            .map(|e| e.initial.clone())
            .unwrap_or_else(|| Array::new().into())
            .unchecked_into()
    }

    /// Refreshes now (it also happens on its own). Resolves when the device confirmed it.
    pub fn refresh(&self) -> PromiseVoid {
        let Some(info) = self.shell.read(|e| e.subscription_info(self.handle)) else {
            return Promise::reject(&engine_error(&EngineError::UnknownHandle)).unchecked_into();
        };
        let hub = self.hub.clone();
        let handle = self.handle;
        let p = new_promise(move |s| {
            if let Some(e) = hub.subs.borrow_mut().get_mut(&handle) {
                e.refreshes
                    .push((s, info.counters.refreshes, info.counters.refresh_failures));
            }
        });
        self.shell.with_engine(|e, now| e.refresh(self.handle, now));
        p.unchecked_into()
    }

    /// Stops the subscription: no more refreshes, late pushes for it are dropped.
    pub fn close(&self) {
        let entry = self.hub.subs.borrow_mut().remove(&self.handle);
        if let Some(mut e) = entry {
            e.closed = true;
            for w in e.iter_waiters.drain(..) {
                resolve(&w, &iter_done());
            }
        }
        self.shell
            .with_engine(|e, now| e.unsubscribe(self.handle, now));
    }

    /// `{ subscriptionId, state, nextRefreshAt, expiresAt, lifetimeSecs, counters }` (times are
    /// wall-clock milliseconds).
    pub fn info(&self) -> JsSubscriptionInfo {
        let Some(i) = self.shell.read(|e| e.subscription_info(self.handle)) else {
            return JsValue::NULL.unchecked_into();
        };
        let o: JsValue = Object::new().into();
        set(
            &o,
            "subscriptionId",
            i.subscription_id
                .map(|s| JsValue::from_str(&s))
                .unwrap_or(JsValue::NULL),
        );
        let st = match i.state {
            SubState::Pending => "pending",
            SubState::Subscribing => "subscribing",
            SubState::Active => "active",
            SubState::Failed => "failed",
        };
        set(&o, "state", JsValue::from_str(st));
        let t = |v: Option<u64>| {
            v.map(|t| JsValue::from(to_wall(t)))
                .unwrap_or(JsValue::NULL)
        };
        set(&o, "nextRefreshAt", t(i.next_refresh_at));
        set(&o, "expiresAt", t(i.expires_at));
        set(&o, "lifetimeSecs", JsValue::from(i.lifetime_secs));
        set(&o, "counters", counters_js(&i.counters));
        o.unchecked_into()
    }

    /// Store mode: the current objects (`dn → Mo`) as an array.
    pub fn store(&self) -> MoArrayOrNull {
        self.shell
            .read(|e| e.store(self.handle).map(store_to_js))
            .unwrap_or(JsValue::NULL)
            .unchecked_into()
    }

    /// Async iteration (`for await (const ev of sub)`) for subscriptions without `onEvent`:
    /// resolves with `{ done, value }` where value is `{ type: "mos", mos }` or `{ type: "gap" }`.
    pub fn next(&self) -> PromiseIter {
        if !self.hub.subs.borrow().contains_key(&self.handle) || self.shell.is_closed() {
            return Promise::resolve(&iter_done()).unchecked_into();
        }
        if let Some(p) = self.hub.take_pulled(&self.shell, Some(self.handle)) {
            return Promise::resolve(&iter_value(pulled_js(&p))).unchecked_into();
        }
        let hub = self.hub.clone();
        let handle = self.handle;
        new_promise(move |s| {
            if let Some(e) = hub.subs.borrow_mut().get_mut(&handle) {
                e.iter_waiters.push_back(s);
            }
        })
        .unchecked_into()
    }

    /// Ends async iteration early (`break` in `for await`).
    #[wasm_bindgen(js_name = "return")]
    pub fn return_(&self) -> PromiseIter {
        self.close();
        Promise::resolve(&iter_done()).unchecked_into()
    }
}
