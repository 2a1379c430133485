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
/// device said it.
pub(crate) fn engine_error(e: &EngineError) -> JsValue {
    match e {
        EngineError::Device(d) => device_error(d),
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
        }
    }
}
