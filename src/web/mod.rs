//! The thin shell that runs the engine in a JavaScript runtime: the global `fetch`, the global
//! `WebSocket`, `setTimeout` (through gloo-timers), page visibility and network events. Nothing
//! here decides anything: it performs the engine's actions and feeds back what happened.

pub(crate) mod clock;
pub(crate) mod env;
pub(crate) mod http;
pub(crate) mod inbox;
pub(crate) mod shell;
pub(crate) mod socket;
pub(crate) mod tick;
