//! One HTTP exchange on the runtime's global `fetch` (browsers, workers, Deno, Node, workerd):
//! no `window`, an `AbortController` for the engine's timeout, the body read as text.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestCredentials, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, bound directly so the same code runs where there is no `window`.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &Request) -> Promise;
}

/// Why an exchange produced no HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FetchFailure {
    /// `fetch` rejected: the network failed or (in a browser) CORS refused the answer. The two
    /// look the same from script; `cross_origin` says whether CORS could be the cause.
    Network { cross_origin: bool },
    /// The engine's deadline passed and the request was aborted.
    Aborted,
    /// The request could not even be built (a header value the runtime refuses, say).
    Refused(String),
}

pub(crate) struct Exchange {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Send the browser's cookies (`credentials: "include"`). Off where the runtime has no cookie
    /// jar: workerd refuses the option outright.
    pub with_credentials: bool,
}

/// Performs the exchange; `abort` lets the caller cancel it (a timeout or a close).
pub(crate) async fn fetch_text(
    ex: Exchange,
    abort: &AbortController,
) -> Result<(u16, String), FetchFailure> {
    let init = RequestInit::new();
    init.set_method(ex.method);
    if ex.with_credentials {
        init.set_credentials(RequestCredentials::Include);
    }
    init.set_signal(Some(&abort.signal()));
    let headers = Headers::new().map_err(|_| FetchFailure::Refused("headers".into()))?;
    for (k, v) in &ex.headers {
        // The message names the header, never its value (it may be a token).
        headers
            .append(k, v)
            .map_err(|_| FetchFailure::Refused(format!("the runtime refused header {k}")))?;
    }
    if let Some(body) = &ex.body {
        headers
            .set("Content-Type", "application/json")
            .map_err(|_| FetchFailure::Refused("Content-Type".into()))?;
        init.set_body(&JsValue::from_str(body));
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(&ex.url, &init)
        .map_err(|_| FetchFailure::Refused("the runtime refused the request".into()))?;
    let cross_origin = is_cross_origin(&ex.url);
    let resp = JsFuture::from(global_fetch(&request)).await.map_err(|_| {
        if abort.signal().aborted() {
            FetchFailure::Aborted
        } else {
            FetchFailure::Network { cross_origin }
        }
    })?;
    let resp: Response = resp
        .dyn_into()
        .map_err(|_| FetchFailure::Network { cross_origin })?;
    let status = resp.status();
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|v| v.as_string()),
        Err(_) => None,
    };
    match text {
        Some(t) => Ok((status, t)),
        None if abort.signal().aborted() => Err(FetchFailure::Aborted),
        None => Err(FetchFailure::Network { cross_origin }),
    }
}

/// Whether `url` is on another origin than the page (only a page has one; elsewhere there is no
/// CORS and the answer is no).
fn is_cross_origin(url: &str) -> bool {
    let global = js_sys::global();
    let origin = Reflect::get(&global, &"location".into())
        .ok()
        .filter(|l| l.is_object())
        .and_then(|l| Reflect::get(&l, &"origin".into()).ok())
        .and_then(|o| o.as_string());
    match origin {
        Some(o) if o != "null" => !url.starts_with(&format!("{o}/")) && url != o,
        _ => false,
    }
}

/// Calls a global function by name if the runtime has it (used for optional APIs).
#[allow(dead_code)]
pub(crate) fn global_function(name: &str) -> Option<Function> {
    Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
}
