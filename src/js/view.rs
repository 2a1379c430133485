//! Live views of store-mode subscriptions (`sub.snapshot`, `sub.onChange`, `sub.subscribe`):
//! the binding to the view module (`view.js`) and the hub's feed into it.

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::coded;
use super::hub::Hub;
use super::subscription::Subscription;
use super::types::{OnChangeFn, SnapshotFn, SubscribeFn};
use crate::engine::SubHandle;

#[wasm_bindgen(module = "/src/js/view.js")]
extern "C" {
    #[derive(Clone)]
    pub(crate) type View;
    #[wasm_bindgen(constructor, catch)]
    fn new(initial: &JsValue) -> Result<View, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn apply(this: &View, mos: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn gap(this: &View, reason: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn reconciled(this: &View, differences: f64) -> Result<(), JsValue>;
}

impl Hub {
    /// The view of a subscription, made on first use from what its store holds now.
    fn view_of(&self, sub: &Subscription) -> Result<View, JsValue> {
        let (existing, usable) = match self.subs.borrow().get(&sub.handle) {
            None => {
                return Err(coded(
                    "INVALID_STATE",
                    "the subscription is closed or was never established",
                ))
            }
            Some(e) => (e.view.clone(), e.store && e.push),
        };
        if let Some(v) = existing {
            return Ok(v);
        }
        if !usable {
            return Err(coded(
                "INVALID_STATE",
                "views need a store-mode subscription delivered by push: subscribe with \
                 { store: true, view: true } or { store: true, onEvent }",
            ));
        }
        let view = View::new(&sub.store().into())?;
        if let Some(e) = self.subs.borrow_mut().get_mut(&sub.handle) {
            e.view = Some(view.clone());
        }
        Ok(view)
    }

    /// Feeds a delivered batch (already converted for `onEvent`) to the view, if there is one.
    pub(crate) fn view_apply(&self, view: &View, mos: &JsValue) {
        if let Err(e) = view.apply(mos) {
            self.view_failed(e);
        }
    }

    pub(crate) fn view_gap(&self, handle: SubHandle, reason: &str) {
        let view = self.subs.borrow().get(&handle).and_then(|e| e.view.clone());
        if let Some(Err(e)) = view.map(|v| v.gap(reason)) {
            self.view_failed(e);
        }
    }

    pub(crate) fn view_reconciled(&self, view: &View, differences: usize) {
        if let Err(e) = view.reconciled(differences as f64) {
            self.view_failed(e);
        }
    }
}

/// One of the view's functions, as a detached function (it works unbound).
fn member<T: JsCast>(view: View, name: &str) -> Result<T, JsValue> {
    Reflect::get(&view, &JsValue::from_str(name))?
        .dyn_into::<Function>()
        .map(JsCast::unchecked_into)
        .map_err(|_| coded("INVALID_STATE", "the view lacks a member"))
}

#[wasm_bindgen]
impl Subscription {
    /// Store mode: a function returning the current immutable snapshot of the objects; the same
    /// snapshot until something changes. Works unbound. Throws `INVALID_STATE` on a subscription
    /// that is closed, not in store mode, or pulled (made without `onEvent` or `view: true`).
    #[wasm_bindgen(getter)]
    pub fn snapshot(&self) -> Result<SnapshotFn, JsValue> {
        member(self.hub.view_of(self)?, "snapshot")
    }

    /// Store mode: `onChange(listener)` calls `listener()` once after each delivery (gap and
    /// reconciliation included), never inside one; it returns the unsubscribe function. Works
    /// unbound, as `useSyncExternalStore(sub.onChange, sub.snapshot)` needs.
    #[wasm_bindgen(getter, js_name = "onChange")]
    pub fn on_change(&self) -> Result<OnChangeFn, JsValue> {
        member(self.hub.view_of(self)?, "onChange")
    }

    /// Store mode, the Svelte store contract: `subscribe(run)` calls `run(snapshot)` at once and
    /// after each change, and returns the unsubscribe function.
    #[wasm_bindgen(getter)]
    pub fn subscribe(&self) -> Result<SubscribeFn, JsValue> {
        member(self.hub.view_of(self)?, "subscribe")
    }
}
