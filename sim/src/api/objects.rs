//! Objects over REST: class and DN queries (and subscribing with them), writes and deletes,
//! after the request's session is found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;

use super::{auth_err, body_resp, err, Rest};
use crate::mit::parse_write_body;
use crate::query::{prop_filter, Query, RspSubtree, Target};
use crate::render::{envelope, Format, Node};
use crate::state::{TEXT_NO_SOCKET, TEXT_THROTTLED};
use crate::util::{split_dn, valid_dn};
use crate::{Flavor, Sim};

/// Every other `/api/` request: `class/...` and `mo/...` (and their `node/` forms) as queries,
/// writes and deletes; anything else is the device's "unresolved class" answer. The session
/// is checked first, as on the device.
pub async fn object(State(sim): State<Arc<Sim>>, rest: Rest) -> Response {
    let enc = rest.format;
    let now = Instant::now();
    let sid = match rest.auth(&mut sim.lock(), now) {
        Ok(s) => s,
        Err(e) => return auth_err(enc, e),
    };
    let target = target_of(&rest.path);
    if let Some(Target::Dn { dn }) = &target {
        if !valid_dn(dn) {
            return err(enc, 400, &format!("Invalid DN {dn}"));
        }
    }
    match (target, &rest.method) {
        (Some(target), &Method::GET) => query(&sim, sid, enc, target, &rest.params),
        (Some(Target::Dn { dn }), &Method::POST) => write(&sim, enc, &dn, &rest.body),
        (Some(Target::Dn { dn }), &Method::DELETE) => {
            sim.lock().delete(&sim.cat, &dn, now);
            body_resp(200, enc, envelope(enc, 0, None, &[]))
        }
        (Some(_), _) => err(enc, 405, "Method not allowed"),
        (None, _) => {
            let r = rest.path.as_str();
            let name = r.rsplit('/').next().unwrap_or(r);
            err(
                enc,
                400,
                &format!("Request failed, unresolved class for {name}"),
            )
        }
    }
}

/// The target a decoded API path names: `class/<cls>`, `class/<dn>/<cls>`, `mo/<dn>`, each
/// also after `node/`.
fn target_of(path: &str) -> Option<Target> {
    if let Some(c) = path
        .strip_prefix("class/")
        .or_else(|| path.strip_prefix("node/class/"))
    {
        let (scope, class) = split_dn(c);
        return Some(Target::Class {
            class: class.to_string(),
            scope: (!scope.is_empty()).then(|| scope.to_string()),
        });
    }
    path.strip_prefix("mo/")
        .or_else(|| path.strip_prefix("node/mo/"))
        .map(|d| Target::Dn {
            dn: d.trim_end_matches('/').to_string(),
        })
}

/// Build the rendered node for a result DN (top level: `dn`; nested: `rn`).
fn result_node(
    sim: &Sim,
    st: &crate::state::State,
    dn: &str,
    q: &Query,
    depth: u32,
) -> Option<Node> {
    let mo = st.mit.get(dn)?;
    let mut attrs = prop_filter(mo, q.rsp_prop_include, &sim.cat);
    if depth == 0 {
        attrs.insert("dn".into(), dn.to_string());
    } else {
        attrs.insert("rn".into(), split_dn(dn).1.to_string());
    }
    attrs.insert("status".into(), String::new());
    let mut children = Vec::new();
    let go_down = match q.rsp_subtree {
        RspSubtree::No => false,
        RspSubtree::Children => depth == 0,
        RspSubtree::Full => depth < 32,
    };
    if go_down {
        for c in st.mit.children_of(dn) {
            let Some(cm) = st.mit.get(&c) else { continue };
            let wanted = q
                .rsp_subtree_class
                .as_ref()
                .into_iter()
                .all(|l| l.contains(&cm.class));
            if !wanted && q.rsp_subtree == RspSubtree::Children {
                continue;
            }
            if let Some(n) = result_node(sim, st, &c, q, depth + 1) {
                if wanted || !n.children.is_empty() {
                    children.push(n);
                }
            }
        }
    }
    Some(Node {
        class: mo.class.clone(),
        attrs,
        children,
    })
}

fn query(
    sim: &Sim,
    sid: u64,
    enc: Format,
    target: Target,
    params: &[(String, String)],
) -> Response {
    let q = match Query::parse(target, params, &sim.cat) {
        Ok(q) => q,
        Err((code, text)) => return err(enc, code, &text),
    };
    let now = Instant::now();
    let mut st = sim.lock();
    if q.subscription && !st.has_open_socket(sid) {
        return err(enc, 405, TEXT_NO_SOCKET);
    }
    let (total, dns) = match q.run(&st.mit, sim.cfg.max_result) {
        Ok(r) => r,
        Err((code, text)) => return err(enc, code, &text),
    };
    let nodes: Vec<Node> = dns
        .iter()
        .filter_map(|d| result_node(sim, &st, d, &q, 0))
        .collect();
    if q.subscription && st.subs.len() >= crate::state::MAX_SUBS {
        return err(enc, 503, TEXT_THROTTLED);
    }
    let sub_id = if q.subscription {
        let mut lifetime = sim.cfg.default_sub_lifetime();
        if let (Some(rt), Flavor::Apic) = (q.refresh_timeout, sim.cfg.flavor) {
            // APIC honours refresh-timeout (up to the session's 24 h); NX-OS ignores it.
            lifetime = Duration::from_secs(rt.clamp(1, 86_400));
        }
        Some(st.add_sub(sid, q, enc, lifetime, now).to_string())
    } else {
        None
    };
    drop(st);
    body_resp(200, enc, envelope(enc, total, sub_id.as_deref(), &nodes))
}

fn write(sim: &Sim, enc: Format, url_dn: &str, body: &[u8]) -> Response {
    let root = match parse_write_body(enc, body) {
        Ok(r) => r,
        Err(t) => return err(enc, 400, &t),
    };
    match sim.lock().write(&sim.cat, url_dn, &root, Instant::now()) {
        Ok(_) => body_resp(200, enc, envelope(enc, 0, None, &[])),
        Err(t) => err(enc, 400, &t),
    }
}
