//! dme-events: watch Cisco APIC (ACI) fabrics and NX-OS switches live from JavaScript.
//!
//! Layers, one direction of dependency: [`protocol`] (pure data: queries, parsers, the `Mo`
//! model), the engine (a sans-IO state machine), the web shell (fetch, WebSocket, timers) and the
//! `#[wasm_bindgen]` surface.

pub mod engine;
pub mod protocol;

mod js;
mod vecmap;
mod web;

pub use js::calls::Pages;
pub use js::channel::EventChannel;
pub use js::query::{ClassQuery, DnQuery};
pub use js::session::Session;
pub use js::subscription::Subscription;

use wasm_bindgen::prelude::*;

/// The package version, as built.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
