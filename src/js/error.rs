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
