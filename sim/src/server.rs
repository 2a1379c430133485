//! HTTP routing and the device REST API: sessions, queries, subscriptions, writes, the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;

use crate::mit::{Attrs, Change};
use crate::query::{prop_filter, Query, RspSubtree, Scope};
use crate::render::{envelope, error_body, Enc, Node, XML_DECL};
use crate::state::{
    AuthErr, EndReason, Out, TEXT_BAD_LOGIN, TEXT_NO_SOCKET, TEXT_SUB_REFRESH, TEXT_THROTTLED,
};
use crate::util::{parse_query, pct_decode, split_dn};
use crate::{Flavor, Sim};

pub const MAX_BODY: usize = 4 * 1024 * 1024;
pub const MAX_URI: usize = 8192;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

async fn handle(
    AxState(sim): AxState<Arc<Sim>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = route(&sim, peer, req).await;
    if sim.cfg.cors {
        if let Some(o) = origin {
            if loopback_origin(o.to_str().unwrap_or("")) {
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("Content-Type, DevCookie, APIC-challenge"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
    }
    resp
}

/// `http://127.0.0.1[:port]`, `http://localhost[:port]`, `http://[::1][:port]` (or https).
pub fn loopback_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"));
    let Some(rest) = rest else { return false };
    let host = if let Some(r) = rest.strip_prefix("[::1]") {
        r
    } else if let Some(r) = rest.strip_prefix("127.0.0.1") {
        r
    } else if let Some(r) = rest.strip_prefix("localhost") {
        r
    } else {
        return false;
    };
    host.is_empty()
        || (host.starts_with(':')
            && host.len() > 1
            && host[1..].bytes().all(|b| b.is_ascii_digit()))
}

async fn route(sim: &Arc<Sim>, peer: SocketAddr, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if req.method() == Method::OPTIONS {
        return if sim.cfg.cors {
            plain(StatusCode::NO_CONTENT, "")
        } else {
            plain(StatusCode::METHOD_NOT_ALLOWED, "")
        };
    }
    if let Some(rest) = path.strip_prefix("/_sim/") {
        if sim.upstream.is_some() && rest != "stats" {
            return plain(
                StatusCode::NOT_FOUND,
                "the /_sim/ API is not available in --upstream mode",
            );
        }
        return crate::faults::handle(sim, rest, req).await;
    }
    if path.starts_with("/api/") || path.starts_with("/socket") {
        if let Some(up) = &sim.upstream {
            return up.forward(sim, req).await;
        }
    }
    if let Some(token) = path.strip_prefix("/socket") {
        let token = token.to_string();
        return socket(sim, token, req).await;
    }
    if path.starts_with("/api/") {
        return api(sim, peer, req).await;
    }
    let method = req.method().clone();
    drop(req);
    crate::statics::serve(sim, method, path).await
}

pub fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub fn body_resp(status: u16, enc: Enc, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(enc.content_type()),
    );
    r
}

pub fn err(enc: Enc, code: u16, text: &str) -> Response {
    body_resp(code, enc, error_body(enc, code, text))
}

fn auth_err(enc: Enc, e: AuthErr) -> Response {
    err(enc, 403, e.text())
}

/// Tokens a request carries: every `APIC-cookie` cookie, then `DevCookie`.
pub fn request_tokens(h: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for v in h.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k.trim().eq_ignore_ascii_case("APIC-cookie") && !v.is_empty() {
                    out.push(v.trim().to_string());
                }
            }
        }
    }
    for v in h.get_all("DevCookie") {
        if let Ok(s) = v.to_str() {
            if !s.is_empty() {
                out.push(s.trim().to_string());
            }
        }
    }
    out
}

/// Devices reject some fully-encoded query strings: the filter language's `( ) , |` must
/// travel literally. Returns the offending parameter.
fn over_encoded(q: Option<&str>) -> Option<String> {
    for part in q?.split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if matches!(
            k,
            "query-target-filter" | "order-by" | "target-subtree-class" | "rsp-subtree-class"
        ) {
            let l = v.to_ascii_lowercase();
            if ["%28", "%29", "%2c", "%7c"].iter().any(|e| l.contains(e)) {
                return Some(k.to_string());
            }
        }
    }
    None
}

fn challenge(h: &HeaderMap, params: &[(String, String)]) -> Option<String> {
    h.get("APIC-challenge")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k == "challenge")
                .map(|(_, v)| v.clone())
        })
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn api(sim: &Arc<Sim>, peer: SocketAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let full_path = parts.uri.path().to_string();
    let enc = if full_path.ends_with(".xml") {
        Enc::Xml
    } else {
        Enc::Json
    };
    if parts.uri.to_string().len() > MAX_URI {
        return err(enc, 414, "Request line too long");
    }
    // Faults that hit every REST request.
    let delay = {
        let mut st = sim.lock();
        let now = Instant::now();
        if st.faults.down_until.is_some_and(|t| now < t) {
            return err(enc, 503, TEXT_THROTTLED);
        }
        if st.faults.fail_503 > 0 {
            st.faults.fail_503 -= 1;
            return err(enc, 503, TEXT_THROTTLED);
        }
        let d = st.faults.delay_ms;
        if d > 0 {
            match &mut st.faults.delay_n {
                Some(0) => {
                    st.faults.delay_ms = 0;
                    st.faults.delay_n = None;
                    0
                }
                Some(n) => {
                    *n -= 1;
                    d
                }
                None => d,
            }
        } else {
            0
        }
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay.min(600_000))).await;
    }
    let Some(rest) = full_path
        .strip_prefix("/api/")
        .and_then(|r| r.strip_suffix(".json").or_else(|| r.strip_suffix(".xml")))
    else {
        return err(
            enc,
            400,
            "Invalid request: the URL must end in .json or .xml",
        );
    };
    let rest = pct_decode(rest);
    if let Some(k) = over_encoded(parts.uri.query()) {
        return err(
            enc,
            400,
            &format!(
                "Invalid request: {k} is over-encoded (keep ( ) , | literal; only \" is encoded)"
            ),
        );
    }
    let params = parse_query(parts.uri.query());
    let method = parts.method.clone();
    let headers = parts.headers;
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return err(enc, 400, "Invalid request: body too large or unreadable"),
    };
    let ip = peer.ip();
    match (rest.as_str(), &method) {
        ("aaaLogin" | "mo/aaaLogin", &Method::POST) => login(sim, ip, enc, &params, &body),
        ("aaaRefresh" | "mo/aaaRefresh", &Method::GET | &Method::POST) => {
            refresh(sim, ip, enc, &headers, &params)
        }
        ("aaaLogout" | "mo/aaaLogout", &Method::POST) => logout(sim, enc, &headers, &params),
        ("subscriptionRefresh", &Method::GET | &Method::POST) => {
            sub_refresh(sim, enc, &headers, &params)
        }
        (r, m) => {
            let now = Instant::now();
            let sid = {
                let mut st = sim.lock();
                match st.auth(
                    &request_tokens(&headers),
                    challenge(&headers, &params).as_deref(),
                    now,
                ) {
                    Ok(s) => s,
                    Err(e) => return auth_err(enc, e),
                }
            };
            let scope = if let Some(c) = r
                .strip_prefix("class/")
                .or_else(|| r.strip_prefix("node/class/"))
            {
                let (under, class) = split_dn(c);
                Some(Scope::Class {
                    class: class.to_string(),
                    under: (!under.is_empty()).then(|| under.to_string()),
                })
            } else {
                r.strip_prefix("mo/")
                    .or_else(|| r.strip_prefix("node/mo/"))
                    .map(|d| Scope::Mo {
                        dn: d.trim_end_matches('/').to_string(),
                    })
            };
            if let Some(Scope::Mo { dn }) = &scope {
                if !crate::util::valid_dn(dn) {
                    return err(enc, 400, &format!("Invalid DN {dn}"));
                }
            }
            match (scope, m) {
                (Some(scope), &Method::GET) => query(sim, sid, enc, scope, &params),
                (Some(Scope::Mo { dn }), &Method::POST) => write(sim, enc, &dn, &body),
                (Some(Scope::Mo { dn }), &Method::DELETE) => {
                    let mut st = sim.lock();
                    let st = &mut *st;
                    let changes = st.mit.delete(&dn, &mut st.clock);
                    st.dispatch(&sim.cat, changes);
                    body_resp(200, enc, envelope(enc, 0, None, &[]))
                }
                (Some(_), _) => err(enc, 405, "Method not allowed"),
                (None, _) => {
                    let name = r.rsplit('/').next().unwrap_or(r);
                    err(
                        enc,
                        400,
                        &format!("Request failed, unresolved class for {name}"),
                    )
                }
            }
        }
    }
}

// ---------------------------------------------------------------- sessions

/// Parse an aaaUser body (JSON or XML): (name, pwd).
fn parse_aaa_user(enc: Enc, body: &[u8]) -> Option<(String, String)> {
    match enc {
        Enc::Json => {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            let a = v.get("aaaUser")?.get("attributes")?;
            let name = a.get("name")?.as_str()?.to_string();
            let pwd = a
                .get("pwd")
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_string();
            Some((name, pwd))
        }
        Enc::Xml => {
            let nodes = parse_xml_tree(body)?;
            let n = nodes.into_iter().find(|n| n.class == "aaaUser")?;
            let name = n.attrs.get("name")?.clone();
            let pwd = n.attrs.get("pwd").cloned().unwrap_or_default();
            Some((name, pwd))
        }
    }
}

fn login_node(sim: &Sim, s: &crate::state::Session, url_token: Option<&str>) -> Node {
    let cfg = &sim.cfg;
    let mut a = Attrs::new();
    let mut set = |k: &str, v: &str| {
        a.insert(k.to_string(), v.to_string());
    };
    set("token", &s.token);
    set("siteFingerprint", "NdxD72K/uXaUK0wn");
    set("refreshTimeoutSeconds", &cfg.refresh_timeout.to_string());
    set("guiIdleTimeoutSeconds", "1200");
    set("creationTime", &s.created_unix.to_string());
    set("firstLoginTime", &s.created_unix.to_string());
    set("userName", &s.user);
    set("remoteUser", "false");
    set("sessionId", &s.session_id);
    set("lastName", "");
    set("firstName", "");
    match cfg.flavor {
        Flavor::Apic => {
            let ml = cfg.effective_max_lifetime().map_or(86_400, |d| d.as_secs());
            set("maximumLifetimeSeconds", &ml.to_string());
            set("restTimeoutSeconds", "90");
            set("unixUserId", "15374");
            set("version", "5.2(1g)");
            set("buildTime", "Fri Jan 22 10:28:08 PST 2021");
            set("node", "topology/pod-1/node-1");
        }
        Flavor::Nxos => {
            set("restTimeoutSeconds", "0");
            set("unixUserId", "0");
            set("version", "9.3(3)");
            set("buildTime", "Sun Dec 22 02:00:00 PST 2019");
        }
    }
    if let Some(u) = url_token {
        set("urlToken", u);
    }
    let mut children = Vec::new();
    if cfg.flavor == Flavor::Apic {
        let attrs = |kv: &[(&str, &str)]| -> Attrs {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        children.push(Node {
            class: "aaaUserDomain".into(),
            attrs: attrs(&[("name", "all"), ("rolesR", "admin"), ("rolesW", "admin")]),
            children: vec![
                Node {
                    class: "aaaReadRoles".into(),
                    ..Default::default()
                },
                Node {
                    class: "aaaWriteRoles".into(),
                    attrs: Attrs::new(),
                    children: vec![Node {
                        class: "role".into(),
                        attrs: attrs(&[("name", "admin")]),
                        children: vec![],
                    }],
                },
            ],
        });
        for t in ["uni/tn-common", "uni/tn-infra", "uni/tn-mgmt"] {
            children.push(Node {
                class: "DnDomainMapEntry".into(),
                attrs: attrs(&[
                    ("dn", t),
                    ("readPrivileges", "admin"),
                    ("writePrivileges", "admin"),
                ]),
                children: vec![],
            });
        }
    }
    Node {
        class: "aaaLogin".into(),
        attrs: a,
        children,
    }
}

fn with_cookie(mut r: Response, token: &str) -> Response {
    // Plain http: no `Secure` (browsers would drop the cookie). No SameSite, like the devices.
    if let Ok(v) = HeaderValue::from_str(&format!("APIC-cookie={token}; path=/; HttpOnly")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn login(
    sim: &Arc<Sim>,
    ip: std::net::IpAddr,
    enc: Enc,
    params: &[(String, String)],
    body: &[u8],
) -> Response {
    let now = Instant::now();
    let mut st = sim.lock();
    if !st.throttle_ok(ip, now) {
        return err(enc, 503, TEXT_THROTTLED);
    }
    let Some((name, pwd)) = parse_aaa_user(enc, body) else {
        return err(
            enc,
            400,
            "Failed to parse login request: expected aaaUser with name and pwd",
        );
    };
    if name != sim.cfg.user || pwd != sim.cfg.password {
        return err(enc, 401, TEXT_BAD_LOGIN);
    }
    let gui = param(params, "gui-token-request") == Some("yes");
    let sid = st.login(&name, gui, now);
    let Some(s) = st.sessions.get(&sid) else {
        return err(enc, 500, "internal error");
    };
    let node = login_node(sim, s, s.url_token.as_deref());
    let token = s.token.clone();
    drop(st);
    with_cookie(body_resp(200, enc, envelope(enc, 1, None, &[node])), &token)
}

fn refresh(
    sim: &Arc<Sim>,
    ip: std::net::IpAddr,
    enc: Enc,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Response {
    let now = Instant::now();
    let mut st = sim.lock();
    if !st.throttle_ok(ip, now) {
        return err(enc, 503, TEXT_THROTTLED);
    }
    let sid = match st.auth(
        &request_tokens(headers),
        challenge(headers, params).as_deref(),
        now,
    ) {
        Ok(s) => s,
        Err(e) => return auth_err(enc, e),
    };
    if let Err(e) = st.refresh_session(sid, now) {
        return auth_err(enc, e);
    }
    let Some(s) = st.sessions.get(&sid) else {
        return err(enc, 500, "internal error");
    };
    // aaaRefresh answers an empty urlToken: clients keep the last non-empty one.
    let node = login_node(sim, s, s.url_token.as_ref().map(|_| ""));
    let token = s.token.clone();
    drop(st);
    with_cookie(body_resp(200, enc, envelope(enc, 1, None, &[node])), &token)
}

fn logout(sim: &Arc<Sim>, enc: Enc, headers: &HeaderMap, params: &[(String, String)]) -> Response {
    let mut st = sim.lock();
    match st.auth(
        &request_tokens(headers),
        challenge(headers, params).as_deref(),
        Instant::now(),
    ) {
        Ok(sid) => {
            st.end_session(sid, EndReason::Logout);
            body_resp(200, enc, envelope(enc, 0, None, &[]))
        }
        Err(e) => auth_err(enc, e),
    }
}

fn sub_refresh(
    sim: &Arc<Sim>,
    enc: Enc,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Response {
    let now = Instant::now();
    let mut st = sim.lock();
    let sid = match st.auth(
        &request_tokens(headers),
        challenge(headers, params).as_deref(),
        now,
    ) {
        Ok(s) => s,
        Err(e) => return auth_err(enc, e),
    };
    if st.faults.fail_refresh > 0 {
        st.faults.fail_refresh -= 1;
        return err(enc, 400, TEXT_SUB_REFRESH);
    }
    let ok = param(params, "id")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|id| st.refresh_sub(sid, id, now));
    if !ok {
        return err(enc, 400, TEXT_SUB_REFRESH);
    }
    match enc {
        Enc::Json => body_resp(200, enc, "{\"imdata\":[]}".into()),
        Enc::Xml => body_resp(200, enc, format!("{XML_DECL}<imdata></imdata>")),
    }
}

// ---------------------------------------------------------------- queries

/// Build the rendered node for a result DN (top level: `dn`; nested: `rn`).
fn result_node(
    sim: &Sim,
    st: &crate::state::State,
    dn: &str,
    q: &Query,
    depth: u32,
) -> Option<Node> {
    let mo = st.mit.get(dn)?;
    let mut attrs = prop_filter(mo, q.prop_include, &sim.cat);
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
                .rsp_subtree_classes
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
    sim: &Arc<Sim>,
    sid: u64,
    enc: Enc,
    scope: Scope,
    params: &[(String, String)],
) -> Response {
    let q = match Query::parse(scope, params, &sim.cat) {
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

// ---------------------------------------------------------------- writes

/// A parsed object from a write body.
#[derive(Debug, Clone, Default)]
pub struct InNode {
    pub class: String,
    pub attrs: Attrs,
    pub children: Vec<InNode>,
}

fn json_to_in(v: &serde_json::Value, depth: u32) -> Option<InNode> {
    if depth > 32 {
        return None;
    }
    let obj = v.as_object()?;
    let (class, inner) = obj.iter().next()?;
    let mut n = InNode {
        class: class.clone(),
        ..Default::default()
    };
    if let Some(a) = inner.get("attributes").and_then(|a| a.as_object()) {
        for (k, v) in a {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(x) => x.to_string(),
                serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                _ => return None,
            };
            n.attrs.insert(k.clone(), s);
        }
    }
    if let Some(ch) = inner.get("children") {
        for c in ch.as_array()? {
            n.children.push(json_to_in(c, depth + 1)?);
        }
    }
    Some(n)
}

/// Parse XML elements into a forest (used for login and write bodies).
pub fn parse_xml_tree(body: &[u8]) -> Option<Vec<InNode>> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<InNode> = Vec::new();
    let mut roots = Vec::new();
    let mut buf = Vec::new();
    let to_node = |e: &quick_xml::events::BytesStart| -> Option<InNode> {
        let class = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
        let mut n = InNode {
            class,
            ..Default::default()
        };
        for a in e.attributes() {
            let a = a.ok()?;
            let k = String::from_utf8(a.key.as_ref().to_vec()).ok()?;
            let v = a.unescape_value().ok()?.into_owned();
            n.attrs.insert(k, v);
        }
        Some(n)
    };
    loop {
        match r.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                if stack.len() > 32 {
                    return None;
                }
                stack.push(to_node(&e)?);
            }
            Event::Empty(e) => {
                let n = to_node(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => roots.push(n),
                }
            }
            Event::End(_) => {
                let n = stack.pop()?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => roots.push(n),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() || roots.is_empty() {
        return None;
    }
    Some(roots)
}

/// Named relations resolve like APIC: `fvRsBd.tnFvBDName` / `fvRsCtx.tnFvCtxName` set
/// `tDn`, `tRn` and `state` (the tenant's object, else tenant common's, else missing-target).
pub fn resolve_relation(mit: &crate::mit::Mit, class: &str, dn: &str, attrs: &mut Attrs) {
    let (name_prop, prefix) = match class {
        "fvRsBd" => ("tnFvBDName", "BD-"),
        "fvRsCtx" => ("tnFvCtxName", "ctx-"),
        _ => return,
    };
    let Some(name) = attrs.get(name_prop).cloned() else {
        return;
    };
    let tenant: String = dn.split('/').take(2).collect::<Vec<_>>().join("/");
    let name = if name.is_empty() {
        "default".to_string()
    } else {
        name
    };
    let own = format!("{tenant}/{prefix}{name}");
    let common = format!("uni/tn-common/{prefix}{name}");
    let (tdn, state) = if mit.contains(&own) {
        (own, "formed")
    } else if mit.contains(&common) {
        (common, "formed")
    } else {
        (own, "missing-target")
    };
    attrs.insert("tDn".into(), tdn);
    attrs.insert("tRn".into(), format!("{prefix}{name}"));
    attrs.insert("state".into(), state.into());
}

/// Objects the device creates on its own next to a new object.
pub fn auto_children(flavor: Flavor, class: &str, dn: &str) -> Vec<(String, String, Attrs)> {
    if flavor != Flavor::Apic {
        return Vec::new();
    }
    let a = |kv: &[(&str, &str)]| -> Attrs {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    match class {
        "fvTenant" => vec![(
            format!("{dn}/rsTenantMonPol"),
            "fvRsTenantMonPol".into(),
            a(&[]),
        )],
        "fvAEPg" => vec![(
            format!("{dn}/rsbd"),
            "fvRsBd".into(),
            a(&[
                ("tnFvBDName", ""),
                ("tDn", "uni/tn-common/BD-default"),
                ("tRn", "BD-default"),
                ("state", "formed"),
                ("uid", "0"),
            ]),
        )],
        "fvBD" => vec![(
            format!("{dn}/rsctx"),
            "fvRsCtx".into(),
            a(&[
                ("tnFvCtxName", ""),
                ("tDn", "uni/tn-common/ctx-default"),
                ("tRn", "ctx-default"),
                ("state", "formed"),
                ("uid", "0"),
            ]),
        )],
        _ => Vec::new(),
    }
}

/// Apply a write body rooted at the URL's DN. Returns the changes, or a 400 text.
pub fn apply_write(
    sim: &Sim,
    st: &mut crate::state::State,
    url_dn: &str,
    root: &InNode,
) -> Result<Vec<Change>, String> {
    let info = sim
        .cat
        .get(&root.class)
        .ok_or_else(|| format!("Request failed, unresolved class for {}", root.class))?;
    let dn = if let Some(d) = root.attrs.get("dn") {
        d.clone()
    } else if info.parse_rn(split_dn(url_dn).1).is_some() {
        url_dn.to_string()
    } else {
        let rn = info.make_rn(&root.attrs).ok_or_else(|| {
            format!(
                "Invalid request: missing naming properties for class {}",
                root.class
            )
        })?;
        if url_dn.is_empty() {
            rn
        } else {
            format!("{url_dn}/{rn}")
        }
    };
    let mut out = Vec::new();
    apply_node(sim, st, &dn, root, &mut out, 0)?;
    Ok(out)
}

fn apply_node(
    sim: &Sim,
    st: &mut crate::state::State,
    dn: &str,
    n: &InNode,
    out: &mut Vec<Change>,
    depth: u32,
) -> Result<(), String> {
    if depth > 32 {
        return Err("Invalid request: nesting too deep".into());
    }
    let info = sim
        .cat
        .get(&n.class)
        .ok_or_else(|| format!("Request failed, unresolved class for {}", n.class))?;
    let status = n.attrs.get("status").map(String::as_str).unwrap_or("");
    if status.contains("deleted") {
        let st2 = &mut *st;
        out.extend(st2.mit.delete(dn, &mut st2.clock));
        return Ok(());
    }
    // The DN must fit the class.
    let rn = split_dn(dn).1;
    let naming = info
        .parse_rn(rn)
        .ok_or_else(|| format!("Invalid request: dn {dn} does not match class {}", n.class))?;
    let parent = split_dn(dn).0;
    if !parent.is_empty() && !st.mit.contains(parent) {
        return Err(format!(
            "Invalid request: parent object {parent} does not exist"
        ));
    }
    if info.template.len() > 5 {
        for k in n.attrs.keys() {
            if !info.template.contains_key(k)
                && !matches!(k.as_str(), "dn" | "rn" | "status" | "childAction" | "modTs")
            {
                return Err(format!("unknown property {k} for class {}", n.class));
            }
        }
    }
    let mut attrs = n.attrs.clone();
    for (k, v) in naming {
        attrs.insert(k, v);
    }
    resolve_relation(&st.mit, &n.class, dn, &mut attrs);
    let existed = st.mit.contains(dn);
    let st2 = &mut *st;
    if let Some(ch) = st2
        .mit
        .upsert(dn, &n.class, &attrs, Some(&info.template), &mut st2.clock)
    {
        out.push(ch);
    }
    for c in &n.children {
        let cinfo = sim
            .cat
            .get(&c.class)
            .ok_or_else(|| format!("Request failed, unresolved class for {}", c.class))?;
        let cdn = match (c.attrs.get("dn"), c.attrs.get("rn")) {
            (Some(d), _) => d.clone(),
            (None, Some(r)) => format!("{dn}/{r}"),
            (None, None) => {
                let r = cinfo.make_rn(&c.attrs).ok_or_else(|| {
                    format!(
                        "Invalid request: missing naming properties for class {}",
                        c.class
                    )
                })?;
                format!("{dn}/{r}")
            }
        };
        apply_node(sim, st, &cdn, c, out, depth + 1)?;
    }
    if !existed {
        for (adn, aclass, aattrs) in auto_children(sim.cfg.flavor, &n.class, dn) {
            if !st.mit.contains(&adn) {
                let t = sim.cat.get(&aclass).map(|i| i.template.clone());
                let st2 = &mut *st;
                if let Some(ch) = st2
                    .mit
                    .upsert(&adn, &aclass, &aattrs, t.as_ref(), &mut st2.clock)
                {
                    out.push(ch);
                }
            }
        }
    }
    Ok(())
}

pub fn parse_write_body(enc: Enc, body: &[u8]) -> Result<InNode, String> {
    match enc {
        Enc::Json => {
            let v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| format!("Invalid request: JSON parsing error: {e}"))?;
            json_to_in(&v, 0).ok_or_else(|| {
                "Invalid request: expected {\"<class>\":{\"attributes\":{...}}}".to_string()
            })
        }
        Enc::Xml => parse_xml_tree(body)
            .and_then(|v| v.into_iter().next())
            .ok_or_else(|| "Invalid request: XML parsing error".to_string()),
    }
}

fn write(sim: &Arc<Sim>, enc: Enc, url_dn: &str, body: &[u8]) -> Response {
    let root = match parse_write_body(enc, body) {
        Ok(r) => r,
        Err(t) => return err(enc, 400, &t),
    };
    let mut st = sim.lock();
    match apply_write(sim, &mut st, url_dn, &root) {
        Ok(changes) => {
            st.dispatch(&sim.cat, changes);
            body_resp(200, enc, envelope(enc, 0, None, &[]))
        }
        Err(t) => err(enc, 400, &t),
    }
}

// ---------------------------------------------------------------- the socket

/// Takes the WebSocket upgrade out of a request, or answers 400 in the device envelope. The
/// request's parts stay available (the proxy needs its path).
pub(crate) async fn upgrade(
    req: Request,
) -> Result<(WebSocketUpgrade, axum::http::request::Parts), Response> {
    let (mut parts, _body) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(w) => Ok((w, parts)),
        Err(_) => Err(err(
            Enc::Json,
            400,
            "Invalid request: WebSocket upgrade expected",
        )),
    }
}

async fn socket(sim: &Arc<Sim>, token: String, req: Request) -> Response {
    let ws = match upgrade(req).await {
        Ok((w, _)) => w,
        Err(r) => return r,
    };
    let attached = {
        let mut st = sim.lock();
        if st.faults.down_until.is_some_and(|t| Instant::now() < t) {
            return err(Enc::Json, 503, TEXT_THROTTLED);
        }
        if st.faults.refuse_sockets > 0 {
            st.faults.refuse_sockets -= 1;
            st.counters.sockets_refused += 1;
            // As a proxy that does not pass WebSockets answers: a plain page, no envelope.
            return plain(StatusCode::FORBIDDEN, "WebSocket upgrades are not allowed");
        }
        match st.auth_socket(&token, Instant::now()) {
            Ok(sid) => st.attach_socket(sid).map(|(conn, rx)| (sid, conn, rx)),
            Err(e) => return auth_err(Enc::Json, e),
        }
    };
    let Some((sid, conn, rx)) = attached else {
        return auth_err(Enc::Json, AuthErr::NoCookie);
    };
    let sim = sim.clone();
    ws.on_upgrade(move |socket| socket_task(sim, sid, conn, rx, socket))
}

async fn socket_task(
    sim: Arc<Sim>,
    sid: u64,
    conn: u64,
    mut rx: tokio::sync::mpsc::Receiver<Out>,
    mut ws: WebSocket,
) {
    let mut stop = sim.shutdown_signal();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if ws.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = ws
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                Some(Out::Abort) | None => break,
            },
            inc = ws.recv() => match inc {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                // The protocol has no client messages: ignore them.
                Some(Ok(_)) => {}
            },
            _ = crate::stopped(&mut stop) => break,
        }
    }
    sim.lock().detach_socket(sid, conn);
}
