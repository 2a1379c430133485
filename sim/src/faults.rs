//! The fault-injection and inspection API under `/_sim/`. Parameters come from the query
//! string or from a flat JSON object body (`{"n":3}`); any method works, POST is the convention.

#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::mit::{Attrs, Mit};
use crate::render::{envelope, Enc, Node};
use crate::server::{apply_write, parse_write_body};
use crate::state::{DropMode, EndReason};
use crate::util::parse_query;
use crate::Sim;

fn json_resp(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(v: Value) -> Response {
    json_resp(StatusCode::OK, v)
}

fn bad(text: &str) -> Response {
    json_resp(
        StatusCode::BAD_REQUEST,
        json!({ "ok": false, "error": text }),
    )
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    fn num(&self, k: &str, default: u64) -> Result<u64, Response> {
        match self.get(k) {
            None | Some("") => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(&format!("parameter {k} must be a non-negative integer"))),
        }
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "yes" | ""))
    }
}

pub async fn handle(sim: &Arc<Sim>, what: &str, req: Request) -> Response {
    let mut params = parse_query(req.uri().query());
    let body = to_bytes(req.into_body(), crate::server::MAX_BODY)
        .await
        .unwrap_or_default();
    // `write` takes the object as its body; the others may take flat JSON parameters.
    if what != "write" && !body.is_empty() {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&body) {
            for (k, v) in m {
                let s = match v {
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                params.push((k, s));
            }
        }
    }
    let p = Params(params);
    match dispatch(sim, what, &p, &body) {
        Ok(r) => r,
        Err(r) => r,
    }
}

fn dispatch(sim: &Arc<Sim>, what: &str, p: &Params, body: &[u8]) -> Result<Response, Response> {
    let now = Instant::now();
    Ok(match what {
        "drop-sockets" => {
            let mode = match p.get("mode") {
                None | Some("abort") => DropMode::Abort,
                Some("close") => DropMode::Close,
                Some("forget") => DropMode::Forget,
                Some(_) => return Err(bad("mode must be abort, close or forget")),
            };
            let n = sim.lock().drop_sockets(p.get("user"), mode);
            ok(json!({ "ok": true, "dropped": n }))
        }
        "restart" => {
            let down = p.num("down_ms", 0)?;
            let mut st = sim.lock();
            st.restart();
            st.faults.down_until =
                (down > 0).then(|| now + Duration::from_millis(down.min(600_000)));
            ok(json!({ "ok": true }))
        }
        "expire-session" => {
            let mut st = sim.lock();
            let user = p.get("user").map(str::to_string);
            let by_token = p.get("token").map(|t| st.session_of_token(t));
            let ids: Vec<u64> = st
                .sessions
                .values()
                .filter(|s| user.as_deref().into_iter().all(|u| s.user == u))
                .filter(|s| by_token.into_iter().all(|t| t == Some(s.id)))
                .map(|s| s.id)
                .collect();
            for sid in &ids {
                st.end_session(*sid, EndReason::Timeout);
            }
            ok(json!({ "ok": true, "expired": ids.len() }))
        }
        "expire-subscription" => {
            let mut st = sim.lock();
            let n = if p.flag("all") && p.get("id").is_none() {
                let n = st.subs.len();
                st.subs.clear();
                n
            } else {
                let id = p
                    .get("id")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| bad("id required"))?;
                usize::from(st.subs.remove(&id).is_some())
            };
            ok(json!({ "ok": true, "expired": n }))
        }
        "fail-refresh" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.fail_refresh = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "fail-503" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.fail_503 = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "delay" => {
            let ms = p.num("ms", 0)?.min(600_000);
            let n = p.get("n").and_then(|v| v.parse::<u32>().ok());
            let mut st = sim.lock();
            st.faults.delay_ms = ms;
            st.faults.delay_n = n;
            ok(json!({ "ok": true, "ms": ms, "n": n }))
        }
        "silence" => {
            let id = p
                .get("id")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| bad("id required"))?;
            let on = p.get("on").into_iter().all(|v| v != "0" && v != "false");
            let mut st = sim.lock();
            let found = match st.subs.get_mut(&id) {
                Some(s) => {
                    s.silenced = on;
                    true
                }
                None => false,
            };
            ok(json!({ "ok": found, "silenced": on }))
        }
        "refuse-sockets" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.refuse_sockets = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "duplicate" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.duplicate = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "lose" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.lose = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "strip-status" => {
            let n = p.num("n", 1)?;
            sim.lock().faults.strip_status = n.min(u32::MAX as u64) as u32;
            ok(json!({ "ok": true, "n": n }))
        }
        "batch" => {
            let n = p.num("n", 2)?.clamp(1, 10_000) as usize;
            sim.lock().faults.batch = Some((n, Vec::new(), now));
            ok(json!({ "ok": true, "n": n }))
        }
        "malformed" => {
            let text = match p.get("kind").unwrap_or("truncated") {
                "garbage" => "\u{1}not json at all <<<".to_string(),
                "wrong-shape" => "{\"subscriptionId\":12345,\"imdata\":{\"fvTenant\":null}}".to_string(),
                "empty" => String::new(),
                _ => "{\"subscriptionId\":[\"1\"],\"imdata\":[{\"fvTenant\":{\"attributes\":{\"dn\":\"uni/tn-x\"".to_string(),
            };
            let n = sim.lock().send_raw(&text);
            ok(json!({ "ok": true, "sent": n }))
        }
        "churn" => {
            let rate: f64 = p
                .get("rate")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| bad("rate required (changes per second)"))?;
            sim.set_churn(rate);
            ok(json!({ "ok": true, "rate": sim.churn() }))
        }
        "reset-faults" => {
            let mut st = sim.lock();
            let batch = st.faults.batch.take();
            st.faults = Default::default();
            if let Some((_, v, _)) = batch {
                st.dispatch(&sim.cat, v);
            }
            for s in st.subs.values_mut() {
                s.silenced = false;
            }
            ok(json!({ "ok": true }))
        }
        "write" => {
            let dn = p.get("dn").unwrap_or("").to_string();
            let root = parse_write_body(Enc::Json, body).map_err(|t| bad(&t))?;
            let mut st = sim.lock();
            let changes = apply_write(sim, &mut st, &dn, &root).map_err(|t| bad(&t))?;
            let n = changes.len();
            st.dispatch(&sim.cat, changes);
            ok(json!({ "ok": true, "changes": n }))
        }
        "delete" => {
            let dn = p.get("dn").ok_or_else(|| bad("dn required"))?.to_string();
            let mut st = sim.lock();
            let st2 = &mut *st;
            let changes = st2.mit.delete(&dn, &mut st2.clock);
            let n = changes.len();
            st2.dispatch(&sim.cat, changes);
            ok(json!({ "ok": true, "changes": n }))
        }
        "truth" => {
            let root = p.get("dn").unwrap_or("").to_string();
            let classes: Option<Vec<String>> = p
                .get("class")
                .map(|c| c.split(',').map(str::to_string).collect());
            let st = sim.lock();
            let nodes = truth(&st.mit, &root, classes.as_deref(), 2_000_000);
            let body = envelope(Enc::Json, nodes.len(), None, &nodes);
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        "stats" => ok(stats(sim, now)),
        _ => json_resp(
            StatusCode::NOT_FOUND,
            json!({ "ok": false, "error": format!("unknown /_sim/ endpoint '{what}'") }),
        ),
    })
}

/// Every object at or under `root` (the whole tree for ""), flat, in DN order.
pub fn truth(mit: &Mit, root: &str, classes: Option<&[String]>, limit: usize) -> Vec<Node> {
    let dns: Vec<String> = if root.is_empty() {
        mit.all_dns().cloned().collect()
    } else {
        mit.subtree(root)
    };
    let mut dns = dns;
    dns.sort();
    dns.into_iter()
        .filter_map(|d| {
            let mo = mit.get(&d)?;
            if let Some(c) = classes {
                if !c.contains(&mo.class) {
                    return None;
                }
            }
            let mut attrs: Attrs = mo.attrs.clone();
            attrs.insert("dn".into(), d);
            attrs.insert("status".into(), String::new());
            Some(Node {
                class: mo.class.clone(),
                attrs,
                children: vec![],
            })
        })
        .take(limit)
        .collect()
}

fn stats(sim: &Arc<Sim>, now: Instant) -> Value {
    let st = sim.lock();
    let sessions: Vec<Value> = st
        .sessions
        .values()
        .map(|s| {
            json!({
                "id": s.id,
                "user": s.user,
                "socket": s.socket.is_some(),
                "gui_token": s.url_token.is_some(),
                "age_ms": now.saturating_duration_since(s.created).as_millis() as u64,
                "token_expires_in_ms": s.token_expires.saturating_duration_since(now).as_millis() as u64,
            })
        })
        .collect();
    let subs: Vec<Value> = st
        .subs
        .values()
        .map(|s| {
            json!({
                "id": s.id.to_string(),
                "session": s.session,
                "query": s.query.describe(),
                "encoding": if s.enc == Enc::Xml { "xml" } else { "json" },
                "lifetime_s": s.lifetime.as_secs(),
                "expires_in_ms": s.expires.saturating_duration_since(now).as_millis() as u64,
                "silenced": s.silenced,
                "pushes": s.pushes,
            })
        })
        .collect();
    let c = st.counters;
    json!({
        "flavor": sim.cfg.flavor.as_str(),
        "uptime_ms": now.saturating_duration_since(sim.started).as_millis() as u64,
        "objects": st.mit.len(),
        "churn": sim.churn(),
        "sessions": sessions,
        "sockets": st.socket_count(),
        "subscriptions": subs,
        "frames_sent": c.frames_sent,
        "objects_pushed": c.objects_pushed,
        "pushes_sent": c.frames_sent,
        "changes": c.changes,
        "logins": c.logins,
        "refreshes": c.refreshes,
        "subscribes": c.subscribes,
        "sockets_opened": c.sockets_opened,
        "sockets_refused": c.sockets_refused,
        "sockets_dropped_slow": c.sockets_dropped_slow,
        "frames_lost": c.frames_lost,
        "faults": {
            "fail_refresh": st.faults.fail_refresh,
            "fail_503": st.faults.fail_503,
            "delay_ms": st.faults.delay_ms,
            "duplicate": st.faults.duplicate,
            "refuse_sockets": st.faults.refuse_sockets,
            "batch_pending": st.faults.batch.as_ref().map(|(n, v, _)| json!({"n": n, "held": v.len()})),
        },
        "upstream": sim.cfg.upstream,
    })
}
