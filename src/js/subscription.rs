//! `Subscription`: the JavaScript class for one subscription, with its snapshot, refresh,
//! counters, store and async iteration.

use std::future::ready;
use std::rc::Rc;

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{set, Failure};
use super::future::promise;
use super::hub::Hub;
use super::mo::store_to_js;
use super::reply::reply;
use super::shapes::{counters_js, iter_done, iter_value, pulled_js};
use super::types::{JsSubscriptionInfo, MoArray, MoArrayOrNull, PromiseIter, PromiseVoid};
use crate::engine::{EngineError, SubHandle, SubState};
use crate::web::clock::to_wall;
use crate::web::shell::Shell;

/// One subscription: a stable handle over the device's changing subscription id.
#[wasm_bindgen]
pub struct Subscription {
    pub(super) shell: Rc<Shell>,
    pub(super) hub: Rc<Hub>,
    pub(super) handle: SubHandle,
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
        if self
            .shell
            .read(|e| e.subscription_info(self.handle))
            .is_none()
        {
            let unknown: Result<JsValue, Failure> = Err(EngineError::UnknownHandle.into());
            return promise(ready(unknown)).unchecked_into();
        }
        let (done, answer) = reply();
        if let Some(e) = self.hub.subs.borrow_mut().get_mut(&self.handle) {
            e.refreshes.push_back(done);
        }
        self.shell.with_engine(|e, now| e.refresh(self.handle, now));
        promise(answer).unchecked_into()
    }

    /// Stops the subscription: no more refreshes, late pushes for it are dropped.
    pub fn close(&self) {
        self.hub.subs.borrow_mut().remove(&self.handle);
        self.hub.pull.borrow_mut().end(self.handle);
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
            return promise(ready(Ok(iter_done()))).unchecked_into();
        }
        let now = self
            .hub
            .pull
            .borrow_mut()
            .take(&self.shell, Some(self.handle));
        if let Some(p) = now {
            return promise(ready(Ok(iter_value(pulled_js(&p))))).unchecked_into();
        }
        let (waiter, answer) = reply();
        self.hub.pull.borrow_mut().wait_for(self.handle, waiter);
        promise(answer).unchecked_into()
    }

    /// Ends async iteration early (`break` in `for await`).
    #[wasm_bindgen(js_name = "return")]
    pub fn return_(&self) -> PromiseIter {
        self.close();
        promise(ready(Ok(iter_done()))).unchecked_into()
    }
}
