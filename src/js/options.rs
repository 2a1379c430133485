//! Reading JavaScript option objects into the engine's [`Config`].

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::coded;
use crate::engine::{Auth, Config, Flavor, TokenTransport};
use crate::protocol::BaseUrl;

pub(crate) fn get(o: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(o, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn bad(key: &str, what: &str) -> JsValue {
    coded("INVALID_CONFIG", &format!("option {key} must be {what}"))
}

pub(crate) fn opt_string(o: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => v.as_string().map(Some).ok_or_else(|| bad(key, "a string")),
    }
}

fn opt_number(o: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(bad(key, "a non-negative number")),
        },
    }
}

fn opt_bool(o: &JsValue, key: &str) -> Result<Option<bool>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| bad(key, "a boolean")),
    }
}

/// The `WebSocket` option: a constructor to open sockets with instead of the global one.
pub(crate) fn socket_constructor(o: &JsValue) -> Result<Option<js_sys::Function>, JsValue> {
    match get(o, "WebSocket") {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<js_sys::Function>()
            .map(Some)
            .map_err(|_| bad("WebSocket", "a WebSocket constructor")),
    }
}

/// The page's own origin, when there is a page (`location.origin`).
fn page_origin() -> Option<String> {
    let loc = Reflect::get(&js_sys::global(), &JsValue::from_str("location")).ok()?;
    if !loc.is_object() {
        return None;
    }
    Reflect::get(&loc, &JsValue::from_str("origin"))
        .ok()?
        .as_string()
        .filter(|o| o.starts_with("http"))
}

/// Whether the runtime keeps cookies for `fetch`: a browser does, in a page and in a web worker
/// (which has no `document`); Deno, Node and workerd do not. A browser is also the one runtime
/// that drops a `Cookie` header set by script (a forbidden request header, removed without an
/// error), so a request built with one tells them apart without any network traffic.
fn has_cookie_jar() -> bool {
    if Reflect::get(&js_sys::global(), &JsValue::from_str("document"))
        .map(|d| d.is_object())
        .unwrap_or(false)
    {
        return true;
    }
    let probe = || -> Option<bool> {
        let headers = web_sys::Headers::new().ok()?;
        headers.append("Cookie", "probe=1").ok()?;
        let init = web_sys::RequestInit::new();
        init.set_headers(&headers);
        let req = web_sys::Request::new_with_str_and_init("http://127.0.0.1/", &init).ok()?;
        Some(!req.headers().has("Cookie").ok()?)
    };
    probe().unwrap_or(false)
}

fn urls(o: &JsValue) -> Result<Vec<BaseUrl>, JsValue> {
    let mut raw = Vec::new();
    if let Some(list) = get(o, "urls") {
        if !Array::is_array(&list) {
            return Err(bad("urls", "an array of strings"));
        }
        for v in Array::from(&list).iter() {
            raw.push(
                v.as_string()
                    .ok_or_else(|| bad("urls", "an array of strings"))?,
            );
        }
    }
    if let Some(u) = opt_string(o, "url")? {
        raw.insert(0, u);
    }
    if raw.is_empty() {
        raw.push(page_origin().ok_or_else(|| {
            coded(
                "INVALID_CONFIG",
                "no url given and the runtime has no page origin to default to",
            )
        })?);
    }
    raw.iter()
        .map(|u| BaseUrl::parse(u).map_err(|e| coded("INVALID_CONFIG", &e.to_string())))
        .collect()
}

/// Builds the engine configuration from `Session.login` / `Session.fromToken` options.
pub(crate) fn config(o: &Object, adopt: bool) -> Result<Config, JsValue> {
    let o: &JsValue = o.as_ref();
    let urls = urls(o)?;
    let auth = if adopt {
        Auth::Token {
            token: opt_string(o, "token")?.ok_or_else(|| bad("token", "a string"))?,
            url_token: opt_string(o, "urlToken")?,
            user: opt_string(o, "user")?,
        }
    } else {
        Auth::Password {
            user: opt_string(o, "user")?.ok_or_else(|| bad("user", "a string"))?,
            password: opt_string(o, "password")?.ok_or_else(|| bad("password", "a string"))?,
        }
    };
    let flavor = match opt_string(o, "flavor")?.as_deref() {
        None | Some("apic") => Flavor::Apic,
        Some("nxos") => Flavor::Nxos,
        Some(_) => return Err(bad("flavor", "\"apic\" or \"nxos\"")),
    };
    let first = urls[0].clone();
    let mut c = match flavor {
        Flavor::Apic => Config::apic(first, auth),
        Flavor::Nxos => Config::nxos(first, auth),
    };
    c.urls = urls;
    c.token_transport = match opt_string(o, "tokenTransport")?.as_deref() {
        Some("cookie-jar") => TokenTransport::CookieJar,
        Some("cookie-header") => TokenTransport::CookieHeader,
        Some("devcookie") => TokenTransport::DevCookie,
        Some(_) => {
            return Err(bad(
                "tokenTransport",
                "\"cookie-jar\", \"cookie-header\" or \"devcookie\"",
            ))
        }
        None if opt_bool(o, "devCookie")? == Some(true) => TokenTransport::DevCookie,
        None if has_cookie_jar() => TokenTransport::CookieJar,
        None => TokenTransport::CookieHeader,
    };
    if let Some(g) = opt_bool(o, "guiToken")? {
        c.gui_token = g;
    }
    if let Some(n) = opt_number(o, "seed")? {
        c.seed = n as u64;
    } else {
        c.seed = (js_sys::Math::random() * 9.007_199_254_740_991e15) as u64;
    }
    if let Some(n) = opt_number(o, "refreshRateCap")? {
        if n <= 0.0 {
            return Err(bad("refreshRateCap", "a positive number"));
        }
        c.refresh_rate_cap = n;
    }
    match get(o, "refreshTimeout") {
        None => {}
        Some(v) if v.as_bool() == Some(false) => c.default_refresh_timeout = None,
        Some(v) => match v.as_f64() {
            Some(n) if n >= 1.0 && n <= f64::from(u32::MAX) => {
                c.default_refresh_timeout = Some(n as u32)
            }
            _ => return Err(bad("refreshTimeout", "a number of seconds or false")),
        },
    }
    if let Some(n) = opt_number(o, "maxReconnectAttempts")? {
        c.max_reconnect_attempts = Some(n as u32);
    }
    if let Some(n) = opt_number(o, "heartbeatMs")? {
        c.heartbeat_idle_ms = n as u64;
    }
    if let Some(n) = opt_number(o, "requestTimeoutMs")? {
        c.request_timeout_ms = n.max(1.0) as u64;
    }
    if let Some(n) = opt_number(o, "backoffBaseMs")? {
        c.backoff_base_ms = n.max(1.0) as u64;
    }
    if let Some(n) = opt_number(o, "backoffCapMs")? {
        c.backoff_cap_ms = n.max(1.0) as u64;
    }
    if let Some(n) = opt_number(o, "queueCapacity")? {
        c.queue_capacity = (n as usize).max(1);
    }
    Ok(c)
}
