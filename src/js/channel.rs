//! `EventChannel`: the JavaScript class for a session's subscriptions, callbacks and pull-style
//! `getevent()`.

use std::collections::VecDeque;
use std::future::ready;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{coded, engine_error, set, socket_unavailable};
use super::future::promise;
use super::hub::{Hub, SubEntry};
use super::options::{self, get};
use super::reply::reply;
use super::session::Session;
use super::shapes::{pulled_js, state_js, stats_js};
use super::types::{
    AnyQuery, EventChannelOptions, GetEventOptions, JsConnectionState, JsResources, JsStats,
    PromisePulled, PromiseSubscription, SubscribeOptions,
};
use crate::engine::{EngineError, SubOptions};
use crate::protocol::Query;
use crate::web::clock::now_ms;
use crate::web::shell::Shell;

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

/// The query behind a `ClassQuery` / `DnQuery`, read back from its rendered path (rendering
/// round-trips, which the property tests prove).
pub(crate) fn query_of(v: &JsValue) -> Option<Query> {
    let f: Function = js_sys::Reflect::get(v, &JsValue::from_str("__dmeQueryPath"))
        .ok()?
        .dyn_into()
        .ok()?;
    let path = f.call0(v).ok()?.as_string()?;
    Query::parse(&path).ok()
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
            // One at a time, as the options are checked: a bad one leaves the earlier ones set.
            hub.callbacks.borrow_mut().on_state = callback(o, "onState")?;
            hub.callbacks.borrow_mut().on_error = callback(o, "onError")?;
            hub.callbacks.borrow_mut().on_gap = callback(o, "onGap")?;
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
    /// Options: `{ onEvent, onGap, onReconciled, store, view, refreshTimeout }`. Without `onEvent`, events wait in a
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
        let on_reconciled = callback(&o, "onReconciled")?;
        let store = get(&o, "store").and_then(|v| v.as_bool()).unwrap_or(false);
        let view = get(&o, "view").and_then(|v| v.as_bool()).unwrap_or(false);
        if view && !store {
            return Err(coded("INVALID_CONFIG", "option view needs store: true"));
        }
        let push = on_event.is_some() || view;
        let mut opts = SubOptions {
            store,
            pull: !push,
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
        let (pending, answer) = reply();
        let handle = self.shell.read_mut(|e| e.subscribe(q, opts, now_ms()));
        self.hub.subs.borrow_mut().insert(
            handle,
            SubEntry {
                on_event,
                on_gap,
                on_reconciled,
                store,
                push,
                view: None,
                reconciling: None,
                pending: Some(pending),
                initial: Array::new().into(),
                refreshes: VecDeque::new(),
            },
        );
        self.shell.pump();
        Ok(promise(answer).unchecked_into())
    }

    /// Waits for the next entry of the pull queue: `{ type: "mos", subscription, mos }` or
    /// `{ type: "gap", subscription, reason }`; `null` after `timeoutMs` (default: wait forever).
    pub fn getevent(&self, options: Option<GetEventOptions>) -> PromisePulled {
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        let now = self.hub.pull.borrow_mut().take(&self.shell, None);
        if let Some(p) = now {
            return promise(ready(Ok(pulled_js(&p)))).unchecked_into();
        }
        if self.shell.is_closed() {
            return promise(ready(Ok(JsValue::NULL))).unchecked_into();
        }
        let timeout = options
            .as_ref()
            .and_then(|o| get(o, "timeoutMs"))
            .and_then(|v| v.as_f64());
        let (waiter, answer) = reply();
        let timer = timeout.map(|ms| {
            let waiter = waiter.clone();
            Timeout::new(ms.clamp(0.0, 2e9) as u32, move || {
                waiter.send(Ok(JsValue::NULL))
            })
        });
        self.hub.pull.borrow_mut().wait_any(waiter);
        promise(async move {
            let pulled = answer.await;
            // Answered (by an entry or by the timer itself): the timer goes, cleared on drop.
            drop(timer);
            pulled
        })
        .unchecked_into()
    }

    /// Counters, in total and per subscription.
    pub fn stats(&self) -> JsStats {
        stats_js(&self.shell.read(|e| e.stats())).unchecked_into()
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
        self.hub.fail_all_pending(&EngineError::Closed);
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
