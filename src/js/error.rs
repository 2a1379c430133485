//! Errors at the JavaScript boundary: a real `Error` with a stable `code` and, for device
//! answers, `httpStatus`, `deviceCode` and `deviceText`. Messages never carry a token.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::engine::EngineError;
use crate::protocol::{DeviceError, QueryError};

pub(crate) fn set(e: &JsValue, key: &str, value: JsValue) {
    let _ = Reflect::set(e, &JsValue::from_str(key), &value);
}

pub(crate) fn query_error(e: &QueryError) -> JsValue {
    coded("INVALID_QUERY", &e.to_string())
}

/// A JS `Error` for a device answer.
pub(crate) fn device_error(e: &DeviceError) -> JsValue {
    let err: JsValue = js_sys::Error::new(&e.to_string()).into();
    set(&err, "code", JsValue::from_str(e.kind.code()));
    set(&err, "httpStatus", JsValue::from(e.http_status));
    if let Some(c) = &e.code {
        set(&err, "deviceCode", JsValue::from_str(c));
    }
    set(&err, "deviceText", JsValue::from_str(&e.text));
    err
}

/// A JS `Error` with a code and a message.
pub(crate) fn coded(code: &str, message: &str) -> JsValue {
    let err: JsValue = js_sys::Error::new(message).into();
    set(&err, "code", JsValue::from_str(code));
    err
}

/// A JS `Error` for any engine error: `code` always; the device's status, code and text when the
/// device said it; a refused socket's close code and whether HTTP still worked.
pub(crate) fn engine_error(e: &EngineError) -> JsValue {
    match e {
        EngineError::Device(d) => device_error(d),
        EngineError::SocketFailed(f) => {
            let err = coded(e.code(), &e.to_string());
            let opt = |v: Option<JsValue>| v.unwrap_or(JsValue::NULL);
            set(&err, "closeCode", opt(f.close_code.map(JsValue::from)));
            set(&err, "httpWorks", opt(f.http_works.map(JsValue::from)));
            if f.http_works == Some(true) && in_page() {
                set(
                    &err,
                    "hint",
                    JsValue::from_str(
                        "the device answers over HTTP but the socket is refused: a proxy between \
                         this page and the device may refuse WebSocket upgrades",
                    ),
                );
            }
            err
        }
        other => coded(other.code(), &other.to_string()),
    }
}

/// Why a promise of this package rejects. [`super::future::promise`] turns it into the JS
/// `Error` (through the `From` below), so each one has its code and message in one place.
pub(crate) enum Failure {
    Engine(EngineError),
    /// The first login could not reach the device, and the engine reported nothing more exact.
    NoSession,
    /// The device did not confirm a `refresh()`.
    RefreshRejected,
    /// An engine error with what to do about it (`hint`).
    Hinted(EngineError, &'static str),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::Engine(e)
    }
}

impl From<Failure> for JsValue {
    fn from(f: Failure) -> JsValue {
        match f {
            Failure::Engine(e) => engine_error(&e),
            Failure::NoSession => coded("NETWORK", "could not establish a session with the device"),
            Failure::RefreshRejected => {
                coded("REFRESH_REJECTED", "the subscription refresh failed")
            }
            Failure::Hinted(e, hint) => {
                let err = engine_error(&e);
                set(&err, "hint", JsValue::from_str(hint));
                err
            }
        }
    }
}

/// Whether this runs in a browser page (which has a `document`), where proxies are the usual
/// reason for a refused socket.
fn in_page() -> bool {
    Reflect::get(&js_sys::global(), &JsValue::from_str("document")).is_ok_and(|d| d.is_object())
}

/// `new EventChannel` where there is no WebSocket to open the event socket with.
pub(crate) fn socket_unavailable() -> JsValue {
    coded(
        "SOCKET_UNAVAILABLE",
        "this runtime has no WebSocket: use Node.js 22 or later, run Node.js 20 with \
         --experimental-websocket, or pass a WebSocket constructor \
         (new EventChannel(session, { WebSocket }), e.g. the ws package's)",
    )
}
