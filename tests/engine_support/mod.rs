//! The engine tests' world in simulated time: a deterministic fake device (`device`) and the
//! harness that carries the engine's actions to it and its answers back (`harness`).
//!
//! Shared by `tests/engine/`, `tests/engine_props.rs`, `tests/security.rs` and the scale bench.

#![allow(dead_code)]

mod device;
mod harness;

pub use device::*;
pub use harness::*;
