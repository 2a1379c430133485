//! The engine's native tests against a fake device (`tests/engine_support`), in simulated
//! time, by kind: `scenarios` (long runs, end to end), `disruptions` (losses and recovery),
//! `decisions` (one input and the engine's answer, often driven by hand) and `bursts` (large
//! frames in slices).
//!
//! `cargo test -p dme-events --test engine -- --nocapture` shows the figures of the long runs.

#[path = "../engine_support/mod.rs"]
mod support;

mod bursts;
mod decisions;
mod disruptions;
mod queries;
mod rotation;
mod scenarios;
mod sockets;

use std::collections::BTreeMap;
use std::time::Instant;

use dme_events::engine::{
    Action, Auth, Config, ConnectionState, Engine, EngineError, Event, GapReason, Pulled, SocketId,
    SubHandle, SubOptions, SubState, Timer, TokenTransport,
};
use dme_events::protocol::{Mo, Query, Status};
use support::*;

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;

fn live(sim: &Sim) -> bool {
    *sim.engine.state() == ConnectionState::Live
}

fn all_active(sim: &Sim) -> bool {
    sim.engine
        .handles()
        .iter()
        .all(|h| sim.engine.subscription_info(*h).unwrap().state == SubState::Active)
}

fn assert_clean(sim: &Sim) {
    assert!(
        sim.violations.is_empty(),
        "violations: {:#?}",
        &sim.violations[..sim.violations.len().min(10)]
    );
}

fn http(a: Option<Action>) -> dme_events::engine::HttpRequest {
    match a {
        Some(Action::Http(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

const LOGIN_OK: &str = r#"{"totalCount":"1","imdata":[{"aaaLogin":{"attributes":{"token":"T1","refreshTimeoutSeconds":"600","urlToken":"U1"}}}]}"#;

/// Logs in and opens the socket by hand; returns the socket id.
fn up(e: &mut Engine) -> SocketId {
    let login = http(e.poll_action());
    e.handle_http_response(login.id, 200, LOGIN_OK.into(), 10);
    let Some(Action::OpenSocket { id, url }) = e.poll_action() else {
        panic!()
    };
    assert!(url.starts_with("ws://dev/socketT1"));
    e.handle_socket_open(id, 20);
    id
}
