//! dme-events: watch Cisco APIC (ACI) fabrics and NX-OS switches live from JavaScript.
//!
//! Layers, one direction of dependency: [`protocol`] (pure data: queries, parsers, the `Mo`
//! model), the engine (a sans-IO state machine), the web shell (fetch, WebSocket, timers) and the
//! `#[wasm_bindgen]` surface.

pub mod protocol;
