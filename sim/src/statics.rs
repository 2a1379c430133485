//! Static files: `--www DIR` at `/`, `--pkg DIR` at `/pkg/`, so the demo page is same-origin
//! with the fabric.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::api::plain;
use crate::util::pct_decode;
use crate::Sim;

pub fn content_type(p: &Path) -> &'static str {
    match p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "ts" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Join a URL path under a root, refusing anything that would leave it.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = pct_decode(rel);
    let mut out = root.to_path_buf();
    for c in Path::new(rel.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

async fn file(root: &Path, rel: &str, head: bool) -> Response {
    let Some(mut p) = safe_join(root, rel) else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    if tokio::fs::metadata(&p)
        .await
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        p.push("index.html");
    }
    match tokio::fs::read(&p).await {
        Ok(bytes) => {
            let len = bytes.len();
            let mut r = Response::new(if head {
                Body::empty()
            } else {
                Body::from(bytes)
            });
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&p)),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                r.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            r
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

pub async fn serve(sim: &Arc<Sim>, method: Method, path: String) -> Response {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = path.as_str();
    if let Some(rest) = path.strip_prefix("/pkg/") {
        if let Some(dir) = &sim.cfg.pkg_dir {
            return file(dir, rest, head).await;
        }
        return plain(StatusCode::NOT_FOUND, "no --pkg directory");
    }
    if let Some(dir) = &sim.cfg.www_dir {
        return file(dir, path, head).await;
    }
    if path == "/" {
        let mut r = Response::new(Body::from(format!(
            "<!doctype html><title>dme-sim</title><h1>dme-sim ({})</h1><p>A simulated {} for dme-events. \
             REST under <code>/api/</code>, the socket at <code>/socket&lt;token&gt;</code>, \
             faults and truth under <code>/_sim/</code> (see <code>/_sim/stats</code>).</p>",
            sim.cfg.flavor.as_str(),
            if sim.cfg.flavor == crate::Flavor::Apic { "Cisco APIC" } else { "Cisco NX-OS switch" }
        )));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    plain(StatusCode::NOT_FOUND, "not found")
}
