//! Managed objects handed to JavaScript as plain objects:
//! `{ className, dn, status, attributes: { name: "value", ... }, children?, statusMissing? }`.
//!
//! Why JSON: building each object with `Reflect.set` crossed the boundary (and decoded two small
//! strings) once per attribute, which made delivery several times slower than plain JavaScript.
//! A whole batch is written as one JSON text in Rust and handed to `JSON.parse` once: one string
//! crossing and the engine's fastest object builder. `JSON.parse` also makes a key such as
//! `__proto__` an ordinary own property, where `Reflect.set` would have changed the prototype.

use js_sys::{Array, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::protocol::{Mo, Store};

/// Appends `s` as a JSON string literal.
fn push_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_mo(out: &mut String, mo: &Mo) {
    out.push_str("{\"className\":");
    push_str(out, &mo.class_name);
    out.push_str(",\"dn\":");
    push_str(out, &mo.dn);
    out.push_str(",\"status\":\"");
    out.push_str(mo.status.as_str());
    out.push_str("\",\"attributes\":{");
    for (i, (k, v)) in mo.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
    if mo.status_missing {
        out.push_str(",\"statusMissing\":true");
    }
    if !mo.children.is_empty() {
        out.push_str(",\"children\":");
        push_mos(out, mo.children.iter());
    }
    out.push('}');
}

fn push_mos<'a>(out: &mut String, mos: impl Iterator<Item = &'a Mo>) {
    out.push('[');
    for (i, mo) in mos.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_mo(out, mo);
    }
    out.push(']');
}

fn parse_array(text: &str) -> Array {
    // The text is well-formed by construction; an empty array is the impossible fallback.
    JSON::parse(text)
        .ok()
        .and_then(|v| v.dyn_into::<Array>().ok())
        .unwrap_or_default()
}

/// A list of MOs as a JS array.
pub(crate) fn mos_to_js(mos: &[Mo]) -> Array {
    let mut s = String::with_capacity(64 + mos.len() * 256);
    push_mos(&mut s, mos.iter());
    parse_array(&s)
}

/// Every object of a store, as a JS array.
pub(crate) fn store_to_js(store: &Store) -> JsValue {
    let mut s = String::with_capacity(64 + store.len() * 256);
    push_mos(&mut s, store.iter());
    parse_array(&s).into()
}
