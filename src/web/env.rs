//! Page visibility and network state, where the runtime has them: `visibilitychange` on the
//! global `document` (pages only) and `online` / `offline` on the global object (pages and
//! workers). Listeners are owned by `EnvWatch` and removed when it is dropped.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

pub(crate) enum EnvEvent {
    Visible(bool),
    Online(bool),
}

/// One registered listener: where, which event, and the closure it owns.
type Listener = (EventTarget, &'static str, Closure<dyn FnMut(Event)>);

#[must_use = "dropping an EnvWatch removes its listeners"]
pub(crate) struct EnvWatch {
    listeners: Vec<Listener>,
}

fn global_target(name: Option<&str>) -> Option<EventTarget> {
    let global = js_sys::global();
    let obj: JsValue = match name {
        None => global.into(),
        Some(n) => Reflect::get(&global, &n.into()).ok()?,
    };
    if !obj.is_object() {
        return None;
    }
    // Only objects that really are event targets (Deno's and Node's globals may not be).
    let has = Reflect::get(&obj, &"addEventListener".into()).ok()?;
    if has.is_function() {
        Some(obj.unchecked_into())
    } else {
        None
    }
}

/// Whether the page is visible now (`true` where there is no page).
pub(crate) fn is_visible() -> bool {
    global_target(Some("document"))
        .and_then(|d| Reflect::get(&d, &"visibilityState".into()).ok())
        .and_then(|v| v.as_string())
        .map(|s| s != "hidden")
        .unwrap_or(true)
}

impl EnvWatch {
    pub(crate) fn start(on_event: impl Fn(EnvEvent) + 'static) -> EnvWatch {
        let on_event = std::rc::Rc::new(on_event);
        let mut listeners = Vec::new();
        if let Some(doc) = global_target(Some("document")) {
            let f = on_event.clone();
            let c = Closure::<dyn FnMut(Event)>::new(move |_| f(EnvEvent::Visible(is_visible())));
            if doc
                .add_event_listener_with_callback("visibilitychange", c.as_ref().unchecked_ref())
                .is_ok()
            {
                listeners.push((doc, "visibilitychange", c));
            }
        }
        if let Some(global) = global_target(None) {
            for (name, online) in [("online", true), ("offline", false)] {
                let f = on_event.clone();
                let c = Closure::<dyn FnMut(Event)>::new(move |_| f(EnvEvent::Online(online)));
                if global
                    .add_event_listener_with_callback(name, c.as_ref().unchecked_ref())
                    .is_ok()
                {
                    listeners.push((global.clone(), name, c));
                }
            }
        }
        EnvWatch { listeners }
    }
}

impl Drop for EnvWatch {
    fn drop(&mut self) {
        for (target, name, c) in &self.listeners {
            let _ = target.remove_event_listener_with_callback(name, c.as_ref().unchecked_ref());
        }
    }
}
