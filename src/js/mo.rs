//! Managed objects handed to JavaScript as plain objects:
//! `{ className, dn, status, attributes: { name: "value", ... }, children?, statusMissing? }`.

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use super::error::set;
use crate::protocol::{Mo, Store};

/// One MO as a plain JS object.
pub(crate) fn mo_to_js(mo: &Mo) -> JsValue {
    let obj: JsValue = Object::new().into();
    set(&obj, "className", JsValue::from_str(&mo.class_name));
    set(&obj, "dn", JsValue::from_str(&mo.dn));
    set(&obj, "status", JsValue::from_str(mo.status.as_str()));
    let attrs: JsValue = Object::new().into();
    for (k, v) in &mo.attributes {
        set(&attrs, k, JsValue::from_str(v));
    }
    set(&obj, "attributes", attrs);
    if mo.status_missing {
        set(&obj, "statusMissing", JsValue::TRUE);
    }
    if !mo.children.is_empty() {
        set(&obj, "children", mos_to_js(&mo.children).into());
    }
    obj
}

/// A list of MOs as a JS array.
pub(crate) fn mos_to_js(mos: &[Mo]) -> Array {
    let arr = Array::new_with_length(mos.len() as u32);
    for (i, mo) in mos.iter().enumerate() {
        arr.set(i as u32, mo_to_js(mo));
    }
    arr
}

/// Every object of a store, as a JS array.
pub(crate) fn store_to_js(store: &Store) -> JsValue {
    let arr = Array::new_with_length(store.len() as u32);
    for (i, mo) in store.iter().enumerate() {
        arr.set(i as u32, mo_to_js(mo));
    }
    arr.into()
}
