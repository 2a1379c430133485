//! The device's REST API under `/api/`: the checks every request passes first, the parsed
//! request its handlers take, and answers in the device's shapes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::render::{error_body, Format};
use crate::state::{AuthErr, TEXT_THROTTLED};
use crate::util::{parse_query, pct_decode};
use crate::Sim;

pub mod objects;
pub mod session;

pub const MAX_BODY: usize = 4 * 1024 * 1024;
pub const MAX_URI: usize = 8192;

/// A REST request past the checks of [`gate`]: its path below `/api/` without the `.json` /
/// `.xml` suffix, percent-decoded, and everything else a handler reads.
pub struct Rest {
    pub format: Format,
    pub path: String,
    pub method: Method,
    pub params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: IpAddr,
}

impl Rest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Tokens the request carries: every `APIC-cookie` cookie, then `DevCookie`.
    pub fn tokens(&self) -> Vec<String> {
        request_tokens(&self.headers)
    }

    /// The GUI challenge (`urlToken`): the `APIC-challenge` header, else `?challenge=`.
    pub fn challenge(&self) -> Option<String> {
        self.headers
            .get("APIC-challenge")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.param("challenge").map(str::to_string))
    }

    /// The session the request authenticates as.
    pub fn auth(&self, st: &mut crate::state::State, now: Instant) -> Result<u64, AuthErr> {
        st.auth(&self.tokens(), self.challenge().as_deref(), now)
    }
}

impl FromRequest<Arc<Sim>> for Rest {
    type Rejection = Response;

    async fn from_request(req: Request, _: &Arc<Sim>) -> Result<Rest, Response> {
        let (parts, body) = req.into_parts();
        let format = Format::of_path(parts.uri.path());
        let path = api_path(parts.uri.path())
            .map(pct_decode)
            .unwrap_or_default();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
        let Ok(body) = to_bytes(body, MAX_BODY).await else {
            return Err(err(
                format,
                400,
                "Invalid request: body too large or unreadable",
            ));
        };
        Ok(Rest {
            format,
            path,
            method: parts.method,
            params: parse_query(parts.uri.query()),
            headers: parts.headers,
            body,
            peer,
        })
    }
}

/// `/api/<path>.json` or `.xml` -> `<path>` (still percent-encoded).
fn api_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/")
        .and_then(|r| r.strip_suffix(".json").or_else(|| r.strip_suffix(".xml")))
}

/// What every REST request passes before its handler, in the device's order: the request
/// line's length, the injected faults (down, 503, delay), the suffix, the filter encoding.
pub async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let format = Format::of_path(req.uri().path());
    if req.uri().to_string().len() > MAX_URI {
        return err(format, 414, "Request line too long");
    }
    let delay = {
        let mut st = sim.lock();
        let now = Instant::now();
        if st.faults.down_until.is_some_and(|t| now < t) {
            return err(format, 503, TEXT_THROTTLED);
        }
        if st.faults.fail_503 > 0 {
            st.faults.fail_503 -= 1;
            return err(format, 503, TEXT_THROTTLED);
        }
        st.faults.take_delay()
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay.min(600_000))).await;
    }
    if api_path(req.uri().path()).is_none() {
        return err(
            format,
            400,
            "Invalid request: the URL must end in .json or .xml",
        );
    }
    if let Some(k) = over_encoded(req.uri().query()) {
        return err(
            format,
            400,
            &format!(
                "Invalid request: {k} is over-encoded (keep ( ) , | literal; only \" is encoded)"
            ),
        );
    }
    next.run(req).await
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

pub fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub fn body_resp(status: u16, format: Format, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

pub fn err(format: Format, code: u16, text: &str) -> Response {
    body_resp(code, format, error_body(format, code, text))
}

pub fn auth_err(format: Format, e: AuthErr) -> Response {
    err(format, 403, e.text())
}
