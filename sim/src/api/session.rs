//! Sessions over REST: aaaLogin, aaaRefresh, aaaLogout and subscriptionRefresh, with the
//! login answer the devices give.

use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::{auth_err, body_resp, err, Rest};
use crate::mit::{parse_xml_tree, Attrs};
use crate::render::{envelope, Format, Node, XML_DECL};
use crate::state::{EndReason, TEXT_BAD_LOGIN, TEXT_SUB_REFRESH, TEXT_THROTTLED};
use crate::{Flavor, Sim};

/// Parse an aaaUser body (JSON or XML): (name, pwd).
fn parse_aaa_user(enc: Format, body: &[u8]) -> Option<(String, String)> {
    match enc {
        Format::Json => {
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
        Format::Xml => {
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

fn with_cookie(sim: &Sim, mut r: Response, token: &str) -> Response {
    // `Secure` only over TLS: on plain http browsers would drop the cookie. No SameSite, like
    // the devices.
    let secure = if sim.tls.is_some() { "; Secure" } else { "" };
    let cookie = format!("APIC-cookie={token}; path=/; HttpOnly{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `aaaLogin`: a new session, its token in the body and the `APIC-cookie`.
pub async fn login(State(sim): State<Arc<Sim>>, rest: Rest) -> Response {
    let enc = rest.format;
    let now = Instant::now();
    let mut st = sim.lock();
    if !st.throttle_ok(rest.peer, now) {
        return err(enc, 503, TEXT_THROTTLED);
    }
    let Some((name, pwd)) = parse_aaa_user(enc, &rest.body) else {
        return err(
            enc,
            400,
            "Failed to parse login request: expected aaaUser with name and pwd",
        );
    };
    if name != sim.cfg.user || pwd != sim.cfg.password {
        return err(enc, 401, TEXT_BAD_LOGIN);
    }
    let gui = rest.param("gui-token-request") == Some("yes");
    let sid = st.login(&name, gui, now);
    session_answer(&sim, st, sid, enc, false)
}

/// The login-shaped answer of `aaaLogin` and `aaaRefresh` for session `sid`, with its cookie.
/// `aaaRefresh` answers an empty urlToken (`refreshed`): clients keep the last non-empty one.
fn session_answer(
    sim: &Sim,
    st: MutexGuard<'_, crate::state::State>,
    sid: u64,
    enc: Format,
    refreshed: bool,
) -> Response {
    let Some(s) = st.sessions.get(&sid) else {
        return err(enc, 500, "internal error");
    };
    let url_token = match s.url_token.as_deref() {
        Some(_) if refreshed => Some(""),
        t => t,
    };
    let node = login_node(sim, s, url_token);
    let token = s.token.clone();
    drop(st);
    with_cookie(
        sim,
        body_resp(200, enc, envelope(enc, 1, None, &[node])),
        &token,
    )
}

/// `aaaRefresh`: a new token for the session (the old one keeps its grace).
pub async fn refresh(State(sim): State<Arc<Sim>>, rest: Rest) -> Response {
    let enc = rest.format;
    let now = Instant::now();
    let mut st = sim.lock();
    if !st.throttle_ok(rest.peer, now) {
        return err(enc, 503, TEXT_THROTTLED);
    }
    let sid = match rest.auth(&mut st, now) {
        Ok(s) => s,
        Err(e) => return auth_err(enc, e),
    };
    if let Err(e) = st.refresh_session(sid, now) {
        return auth_err(enc, e);
    }
    session_answer(&sim, st, sid, enc, true)
}

/// `aaaLogout`: the session ends, its socket closes.
pub async fn logout(State(sim): State<Arc<Sim>>, rest: Rest) -> Response {
    let enc = rest.format;
    let now = Instant::now();
    let mut st = sim.lock();
    match rest.auth(&mut st, now) {
        Ok(sid) => {
            st.end_session(sid, EndReason::Logout, now);
            body_resp(200, enc, envelope(enc, 0, None, &[]))
        }
        Err(e) => auth_err(enc, e),
    }
}

/// `subscriptionRefresh?id=`: the subscription lives another lifetime.
pub async fn sub_refresh(State(sim): State<Arc<Sim>>, rest: Rest) -> Response {
    let enc = rest.format;
    let now = Instant::now();
    let mut st = sim.lock();
    let sid = match rest.auth(&mut st, now) {
        Ok(s) => s,
        Err(e) => return auth_err(enc, e),
    };
    if st.faults.fail_refresh > 0 {
        st.faults.fail_refresh -= 1;
        return err(enc, 400, TEXT_SUB_REFRESH);
    }
    let ok = rest
        .param("id")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|id| st.refresh_sub(sid, id, now));
    if !ok {
        return err(enc, 400, TEXT_SUB_REFRESH);
    }
    match enc {
        Format::Json => body_resp(200, enc, "{\"imdata\":[]}".into()),
        Format::Xml => body_resp(200, enc, format!("{XML_DECL}<imdata></imdata>")),
    }
}
