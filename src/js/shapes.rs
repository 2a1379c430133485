//! The plain objects JavaScript receives for engine values: connection states, gaps, pulled
//! entries, counters, the channel's stats and iterator results.

use js_sys::Object;
use wasm_bindgen::JsValue;

use super::error::{engine_error, set};
use super::mo::mos_to_js;
use crate::engine::{
    ConnectionState, Counters, DegradedReason, GapReason, Pulled, Stats, SubHandle,
};
use crate::web::clock::to_wall;

fn object() -> JsValue {
    Object::new().into()
}

/// `{ done: true, value: undefined }`.
pub(crate) fn iter_done() -> JsValue {
    let o = object();
    set(&o, "done", JsValue::TRUE);
    set(&o, "value", JsValue::UNDEFINED);
    o
}

/// `{ done: false, value }`.
pub(crate) fn iter_value(v: JsValue) -> JsValue {
    let o = object();
    set(&o, "done", JsValue::FALSE);
    set(&o, "value", v);
    o
}

pub(crate) fn gap_reason(r: GapReason) -> &'static str {
    match r {
        GapReason::Reconnect => "reconnect",
        GapReason::Relogin => "relogin",
        GapReason::Rotation => "rotation",
        GapReason::Expired => "expired",
        GapReason::SocketRebuilt => "socket-rebuilt",
        GapReason::Failover => "failover",
        GapReason::QueueOverflow => "queue-overflow",
    }
}

/// `{ type: "gap", subscription, reason }`.
pub(crate) fn gap_js(handle: SubHandle, reason: GapReason) -> JsValue {
    let o = object();
    set(&o, "type", JsValue::from_str("gap"));
    set(&o, "subscription", JsValue::from(handle.0 as f64));
    set(&o, "reason", JsValue::from_str(gap_reason(reason)));
    o
}

/// `{ type: "mos", subscription, mos }` or a gap.
pub(crate) fn pulled_js(p: &Pulled) -> JsValue {
    match p {
        Pulled::Mos { handle, mos } => {
            let o = object();
            set(&o, "type", JsValue::from_str("mos"));
            set(&o, "subscription", JsValue::from(handle.0 as f64));
            set(&o, "mos", mos_to_js(mos).into());
            o
        }
        Pulled::Gap { handle, reason } => gap_js(*handle, *reason),
    }
}

/// The connection state: `{ state: "live" }`, `{ state: "reconnecting", attempt, nextAt }`,
/// `{ state: "failed", error }`, ...
pub(crate) fn state_js(s: &ConnectionState) -> JsValue {
    let o = object();
    let name = match s {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Live => "live",
        ConnectionState::Degraded { reason } => {
            let r = match reason {
                DegradedReason::Offline => "offline",
                DegradedReason::RequestFailures => "request-failures",
                DegradedReason::Throttled => "throttled",
                DegradedReason::Verifying => "verifying",
            };
            set(&o, "reason", JsValue::from_str(r));
            "degraded"
        }
        ConnectionState::Reconnecting { attempt, next_at } => {
            set(&o, "attempt", JsValue::from(*attempt));
            set(&o, "nextAt", JsValue::from(to_wall(*next_at)));
            "reconnecting"
        }
        ConnectionState::Failed { reason } => {
            set(&o, "error", engine_error(reason));
            "failed"
        }
        ConnectionState::Closed => "closed",
    };
    set(&o, "state", JsValue::from_str(name));
    o
}

/// A subscription's (or the channel's total) counters, camelCased.
pub(crate) fn counters_js(c: &Counters) -> JsValue {
    let o = object();
    for (k, v) in [
        ("frames", c.frames),
        ("mos", c.mos),
        ("gaps", c.gaps),
        ("reconnects", c.reconnects),
        ("refreshes", c.refreshes),
        ("refreshFailures", c.refresh_failures),
        ("expiries", c.expiries),
        ("drops", c.drops),
    ] {
        set(&o, k, JsValue::from(v as f64));
    }
    o
}

/// The channel's counters: its own, the total, and each subscription's by handle.
pub(crate) fn stats_js(s: &Stats) -> JsValue {
    let o = object();
    for (k, v) in [
        ("frames", s.frames),
        ("logins", s.logins),
        ("tokenRefreshes", s.token_refreshes),
        ("sessionRotations", s.session_rotations),
        ("reconnects", s.reconnects),
        ("unknownIdFrames", s.unknown_id_frames),
        ("malformedFrames", s.malformed_frames),
        ("heartbeats", s.heartbeats),
        ("refreshRequests", s.refresh_requests),
        ("subscribeRequests", s.subscribe_requests),
    ] {
        set(&o, k, JsValue::from(v as f64));
    }
    set(&o, "total", counters_js(&s.total));
    let per = object();
    for (h, c) in &s.per_subscription {
        set(&per, &h.0.to_string(), counters_js(c));
    }
    set(&o, "perSubscription", per);
    o
}
