//! The two clocks the shell reads: monotonic milliseconds for the engine, wall-clock milliseconds
//! for people.

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

thread_local! {
    /// `performance` and its `now`, looked up once: this runs for every socket message, and two
    /// property lookups by name per call were a visible share of the delivery cost.
    static PERF_NOW: Option<(JsValue, Function)> = {
        Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
            .ok()
            .filter(|p| p.is_object())
            .and_then(|p| {
                let now = Reflect::get(&p, &JsValue::from_str("now")).ok()?;
                let f: Function = now.dyn_into().ok()?;
                Some((p, f))
            })
    };
}

/// Monotonic milliseconds: `performance.now()` where the runtime has it, else `Date.now()`.
pub(crate) fn now_ms() -> u64 {
    let t = PERF_NOW
        .with(|p| {
            p.as_ref()
                .and_then(|(perf, f)| f.call0(perf).ok()?.as_f64())
        })
        .unwrap_or_else(js_sys::Date::now);
    t.max(0.0) as u64
}

/// Wall-clock milliseconds since the epoch.
pub(crate) fn wall_ms() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// Converts an engine time (monotonic ms) into wall-clock ms, for showing to people.
pub(crate) fn to_wall(t: u64) -> f64 {
    wall_ms() as f64 + (t as f64 - now_ms() as f64)
}
