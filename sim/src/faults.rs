//! The fault-injection and inspection API under `/_sim/`. Parameters come from the query
//! string or from a flat JSON object body (`{"n":3}`); any method works, POST is the convention.

#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};

use crate::api::{plain, MAX_BODY};
use crate::mit::{parse_write_body, Attrs, Mit};
use crate::render::{envelope, Format, Node};
use crate::state::{DropMode, EndReason, Faults};
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

/// The fault API. In `--upstream` mode only `stats` is served: there is no simulated device
/// to break.
pub fn router(upstream: bool) -> Router<Arc<Sim>> {
    if upstream {
        return Router::new()
            .route("/stats", any(stats))
            .fallback(|| async {
                plain(
                    StatusCode::NOT_FOUND,
                    "the /_sim/ API is not available in --upstream mode",
                )
            });
    }
    Router::new()
        .route("/drop-sockets", any(drop_sockets))
        .route("/restart", any(restart))
        .route("/expire-session", any(expire_session))
        .route("/expire-subscription", any(expire_subscription))
        .route("/fail-refresh", any(fail_refresh))
        .route("/fail-503", any(fail_503))
        .route("/delay", any(delay))
        .route("/silence", any(silence))
        .route("/refuse-sockets", any(refuse_sockets))
        .route("/duplicate", any(duplicate))
        .route("/lose", any(lose))
        .route("/strip-status", any(strip_status))
        .route("/batch", any(batch))
        .route("/malformed", any(malformed))
        .route("/churn", any(churn))
        .route("/reset-faults", any(reset_faults))
        .route("/write", any(write))
        .route("/delete", any(delete))
        .route("/truth", any(truth_api))
        .route("/stats", any(stats))
        .fallback(|uri: Uri| async move {
            let what = uri.path().trim_start_matches('/').to_string();
            json_resp(
                StatusCode::NOT_FOUND,
                json!({ "ok": false, "error": format!("unknown /_sim/ endpoint '{what}'") }),
            )
        })
}

/// A call's parameters: the query string, then the fields of a flat JSON object body.
impl FromRequest<Arc<Sim>> for Params {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &Arc<Sim>) -> Result<Params, Infallible> {
        let mut params = parse_query(req.uri().query());
        let body = to_bytes(req.into_body(), MAX_BODY)
            .await
            .unwrap_or_default();
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
        Ok(Params(params))
    }
}

type Answer = Result<Response, Response>;

async fn drop_sockets(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let mode = match p.get("mode") {
        None | Some("abort") => DropMode::Abort,
        Some("close") => DropMode::Close,
        Some("forget") => DropMode::Forget,
        Some(_) => return Err(bad("mode must be abort, close or forget")),
    };
    let n = sim.lock().drop_sockets(p.get("user"), mode);
    Ok(ok(json!({ "ok": true, "dropped": n })))
}

async fn restart(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let now = Instant::now();
    let down = p.num("down_ms", 0)?;
    let mut st = sim.lock();
    st.restart(now);
    st.faults.down_until = (down > 0).then(|| now + Duration::from_millis(down.min(600_000)));
    Ok(ok(json!({ "ok": true })))
}

async fn expire_session(State(sim): State<Arc<Sim>>, p: Params) -> Response {
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
    let now = Instant::now();
    for sid in &ids {
        st.end_session(*sid, EndReason::Timeout, now);
    }
    ok(json!({ "ok": true, "expired": ids.len() }))
}

async fn expire_subscription(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
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
    Ok(ok(json!({ "ok": true, "expired": n })))
}

/// The faults that count requests or frames: set the count `n` (default 1).
fn set_count(sim: &Sim, p: &Params, field: fn(&mut Faults) -> &mut u32) -> Answer {
    let n = p.num("n", 1)?;
    *field(&mut sim.lock().faults) = n.min(u32::MAX as u64) as u32;
    Ok(ok(json!({ "ok": true, "n": n })))
}

async fn fail_refresh(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    set_count(&sim, &p, |f| &mut f.fail_refresh)
}

/// `n`: the next n requests answer 503; `ms`: every request does for that long (a throttling
/// storm; sockets stay open and sessions, subscriptions and their lifetimes run on).
async fn fail_503(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    if p.get("ms").is_none() {
        return set_count(&sim, &p, |f| &mut f.fail_503);
    }
    let ms = p.num("ms", 0)?.min(600_000);
    sim.lock().faults.down_until = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
    Ok(ok(json!({ "ok": true, "ms": ms })))
}

async fn refuse_sockets(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    set_count(&sim, &p, |f| &mut f.refuse_sockets)
}

async fn duplicate(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    set_count(&sim, &p, |f| &mut f.duplicate)
}

async fn lose(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    set_count(&sim, &p, |f| &mut f.lose)
}

async fn strip_status(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    set_count(&sim, &p, |f| &mut f.strip_status)
}

async fn delay(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let ms = p.num("ms", 0)?.min(600_000);
    let n = p.get("n").and_then(|v| v.parse::<u32>().ok());
    let mut st = sim.lock();
    st.faults.delay_ms = ms;
    st.faults.delay_n = n;
    Ok(ok(json!({ "ok": true, "ms": ms, "n": n })))
}

async fn silence(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
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
    Ok(ok(json!({ "ok": found, "silenced": on })))
}

async fn batch(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let n = p.num("n", 2)?.clamp(1, 10_000) as usize;
    sim.lock().faults.batch = Some((n, Vec::new(), Instant::now()));
    Ok(ok(json!({ "ok": true, "n": n })))
}

async fn malformed(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let text = match p.get("kind").unwrap_or("truncated") {
        "garbage" => "\u{1}not json at all <<<".to_string(),
        "wrong-shape" => "{\"subscriptionId\":12345,\"imdata\":{\"fvTenant\":null}}".to_string(),
        "empty" => String::new(),
        _ => "{\"subscriptionId\":[\"1\"],\"imdata\":[{\"fvTenant\":{\"attributes\":{\"dn\":\"uni/tn-x\"".to_string(),
    };
    let n = sim.lock().send_raw(&text);
    ok(json!({ "ok": true, "sent": n }))
}

async fn churn(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let rate: f64 = p
        .get("rate")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| bad("rate required (changes per second)"))?;
    sim.set_churn(rate);
    Ok(ok(json!({ "ok": true, "rate": sim.churn() })))
}

async fn reset_faults(State(sim): State<Arc<Sim>>) -> Response {
    let mut st = sim.lock();
    let batch = st.faults.batch.take();
    st.faults = Default::default();
    if let Some((_, v, _)) = batch {
        st.dispatch(&sim.cat, v, Instant::now());
    }
    for s in st.subs.values_mut() {
        s.silenced = false;
    }
    ok(json!({ "ok": true }))
}

/// `write?dn=`: the body is the object (JSON), as a REST write's, without a session.
async fn write(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery, body: Bytes) -> Answer {
    let p = Params(parse_query(q.as_deref()));
    let dn = p.get("dn").unwrap_or("").to_string();
    let root = parse_write_body(Format::Json, &body).map_err(|t| bad(&t))?;
    let n = sim
        .lock()
        .write(&sim.cat, &dn, &root, Instant::now())
        .map_err(|t| bad(&t))?;
    Ok(ok(json!({ "ok": true, "changes": n })))
}

async fn delete(State(sim): State<Arc<Sim>>, p: Params) -> Answer {
    let dn = p.get("dn").ok_or_else(|| bad("dn required"))?.to_string();
    let n = sim.lock().delete(&sim.cat, &dn, Instant::now());
    Ok(ok(json!({ "ok": true, "changes": n })))
}

/// `truth?dn=&class=`: the tree as it is, flat, for comparing a client's view with.
async fn truth_api(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let root = p.get("dn").unwrap_or("").to_string();
    let classes: Option<Vec<String>> = p
        .get("class")
        .map(|c| c.split(',').map(str::to_string).collect());
    let st = sim.lock();
    let nodes = truth(&st.mit, &root, classes.as_deref(), 2_000_000);
    let body = envelope(Format::Json, nodes.len(), None, &nodes);
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
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

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let now = Instant::now();
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
                "encoding": if s.format == Format::Xml { "xml" } else { "json" },
                "lifetime_s": s.lifetime.as_secs(),
                "expires_in_ms": s.expires.saturating_duration_since(now).as_millis() as u64,
                "silenced": s.silenced,
                "pushes": s.pushes,
            })
        })
        .collect();
    let c = st.counters;
    ok(json!({
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
    }))
}
