//! The HTTP surface: one router naming every route the device serves, the fault API nested
//! under `/_sim`, CORS for loopback origins, and the one path axum cannot name (`/socket<token>`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post, MethodRouter};
use axum::Router;

use crate::api::objects::object;
use crate::api::{gate, plain, session};
use crate::Sim;

pub fn router(sim: Arc<Sim>) -> Router {
    let device = if sim.upstream.is_some() {
        Router::new()
            .route("/api/{*rest}", any(forward))
            .route("/api/", any(forward))
    } else {
        api(&sim)
    };
    device
        .nest("/_sim", crate::faults::router(sim.upstream.is_some()))
        .fallback(socket_or_static)
        .layer(middleware::from_fn_with_state(sim.clone(), cors))
        .with_state(sim)
}

/// The simulated REST API. A session route answered with another method falls to [`object`],
/// as on the device (where `mo/aaaLogin` is also an object's DN).
fn api(sim: &Arc<Sim>) -> Router<Arc<Sim>> {
    let mut r = Router::new();
    for ext in ["json", "xml"] {
        let both = |m: MethodRouter<Arc<Sim>>, name: &str, r: Router<Arc<Sim>>| {
            r.route(&format!("/api/{name}.{ext}"), m.clone())
                .route(&format!("/api/mo/{name}.{ext}"), m)
        };
        r = both(post(session::login).fallback(object), "aaaLogin", r);
        r = both(
            get(session::refresh)
                .post(session::refresh)
                .fallback(object),
            "aaaRefresh",
            r,
        );
        r = both(post(session::logout).fallback(object), "aaaLogout", r);
        r = r.route(
            &format!("/api/subscriptionRefresh.{ext}"),
            get(session::sub_refresh)
                .post(session::sub_refresh)
                .fallback(object),
        );
    }
    r.route("/api/class/{*class}", any(object))
        .route("/api/node/class/{*class}", any(object))
        .route("/api/mo/{*dn}", any(object))
        .route("/api/node/mo/{*dn}", any(object))
        .route("/api/{*other}", any(object))
        .route("/api/", any(object))
        .route_layer(middleware::from_fn_with_state(sim.clone(), gate))
}

/// The socket's URL glues the token to the path (`/socket<token>`, and a token may hold `/`),
/// which no axum path pattern expresses: it is matched by prefix here, before static files.
async fn socket_or_static(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Some(token) = path.strip_prefix("/socket") {
        return match &sim.upstream {
            Some(up) => up.forward(&sim, req).await,
            None => crate::socket::socket(&sim, token, req).await,
        };
    }
    let method = req.method().clone();
    drop(req);
    crate::statics::serve(&sim, method, path).await
}

async fn forward(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    match &sim.upstream {
        Some(up) => up.forward(&sim, req).await,
        None => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Preflights (answered here, before any route) and the CORS headers on every answer to a
/// loopback origin, when `--cors` is on.
async fn cors(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = if req.method() == Method::OPTIONS {
        if sim.cfg.cors {
            plain(StatusCode::NO_CONTENT, "")
        } else {
            plain(StatusCode::METHOD_NOT_ALLOWED, "")
        }
    } else {
        next.run(req).await
    };
    let Some(o) = origin.filter(|o| sim.cfg.cors && loopback_origin(o.to_str().unwrap_or("")))
    else {
        return resp;
    };
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
