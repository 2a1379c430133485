//! Integration tests: a Rust HTTP and WebSocket client against running simulators on
//! ephemeral loopback ports. Every server is stopped by its test (and exits by itself after
//! 90 s at worst); every wait is bounded.

mod common;
mod faults;
mod misc;
mod query;
mod session;
mod subs;
mod tls;
