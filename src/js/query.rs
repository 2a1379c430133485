//! `ClassQuery` and `DnQuery` for JavaScript: the protocol's [`Query`] with its options given as a
//! plain object (`{ queryTarget: "subtree", targetSubtreeClass: ["fvBD"], filter: 'eq(...)', ...}`),
//! validated when constructed so a bad query throws at the line that built it.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::types::{JsClassQueryOptions, JsQueryOptions};

use super::error::{coded, query_error};
use crate::protocol::{Format, Query, QueryTarget, RspPropInclude, RspSubtree};

/// A class query: every object of one class (`/api/class/<class>.json`).
#[wasm_bindgen]
pub struct ClassQuery {
    pub(crate) inner: Query,
}

/// A DN query: one object and, with `queryTarget`, its children or subtree (`/api/mo/<dn>.json`).
#[wasm_bindgen]
pub struct DnQuery {
    pub(crate) inner: Query,
}

/// The methods both query classes share: the rendered path.
macro_rules! rendered_path {
    ($t:ty) => {
        #[wasm_bindgen]
        impl $t {
            /// The request path this query renders to (without `subscription=yes`).
            #[wasm_bindgen(js_name = toString)]
            pub fn to_string_js(&self) -> String {
                self.inner.render().unwrap_or_default()
            }

            /// The rendered path, read back by `EventChannel.subscribe`.
            #[wasm_bindgen(js_name = __dmeQueryPath)]
            pub fn query_path(&self) -> String {
                self.to_string_js()
            }
        }
    };
}
rendered_path!(ClassQuery);
rendered_path!(DnQuery);

#[wasm_bindgen]
impl ClassQuery {
    #[wasm_bindgen(constructor)]
    pub fn new(
        class_name: String,
        options: Option<JsClassQueryOptions>,
    ) -> Result<ClassQuery, JsValue> {
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        let mut q = Query::class(class_name);
        if let Some(o) = &options {
            if let Some(scope) = string(o, "under")? {
                q = q.under(scope);
            }
        }
        apply_options(&mut q, options.as_ref())?;
        Ok(ClassQuery { inner: q })
    }

    #[wasm_bindgen(getter, js_name = className)]
    pub fn class_name(&self) -> String {
        self.inner.class_name().unwrap_or_default().to_owned()
    }
}

#[wasm_bindgen]
impl DnQuery {
    #[wasm_bindgen(constructor)]
    pub fn new(dn: String, options: Option<JsQueryOptions>) -> Result<DnQuery, JsValue> {
        let options: Option<Object> = options.map(JsCast::unchecked_into);
        let mut q = Query::dn(dn);
        apply_options(&mut q, options.as_ref())?;
        Ok(DnQuery { inner: q })
    }

    #[wasm_bindgen(getter)]
    pub fn dn(&self) -> String {
        match &self.inner.target {
            crate::protocol::Target::Dn { dn } => dn.clone(),
            crate::protocol::Target::Class { .. } => String::new(),
        }
    }
}

fn get(o: &Object, key: &str) -> Option<JsValue> {
    Reflect::get(o, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn bad(key: &str, what: &str) -> JsValue {
    coded("INVALID_QUERY", &format!("option {key} must be {what}"))
}

fn string(o: &Object, key: &str) -> Result<Option<String>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => v.as_string().map(Some).ok_or_else(|| bad(key, "a string")),
    }
}

fn strings(o: &Object, key: &str) -> Result<Vec<String>, JsValue> {
    match get(o, key) {
        None => Ok(Vec::new()),
        Some(v) if v.is_string() => Ok(v
            .as_string()
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect()),
        Some(v) if Array::is_array(&v) => Array::from(&v)
            .iter()
            .map(|x| x.as_string().ok_or_else(|| bad(key, "an array of strings")))
            .collect(),
        Some(_) => Err(bad(key, "a string or an array of strings")),
    }
}

fn number(o: &Object, key: &str) -> Result<Option<u32>, JsValue> {
    match get(o, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0 => {
                Ok(Some(n as u32))
            }
            _ => Err(bad(key, "a whole number")),
        },
    }
}

fn choice<T>(
    o: &Object,
    key: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, JsValue> {
    match string(o, key)? {
        None => Ok(None),
        Some(s) => parse(&s).map(Some).ok_or_else(|| bad(key, what)),
    }
}

/// Reads the options object into the query and validates the result.
pub(crate) fn apply_options(q: &mut Query, options: Option<&Object>) -> Result<(), JsValue> {
    if let Some(o) = options {
        if get(o, "node").and_then(|v| v.as_bool()) == Some(true) {
            q.node = true;
        }
        if let Some(f) = string(o, "format")? {
            q.format = match f.as_str() {
                "json" => Format::Json,
                "xml" => Format::Xml,
                _ => return Err(bad("format", "\"json\" or \"xml\"")),
            };
        }
        let opts = &mut q.options;
        opts.query_target = choice(
            o,
            "queryTarget",
            QueryTarget::parse,
            "\"self\", \"children\" or \"subtree\"",
        )?;
        opts.target_subtree_class = strings(o, "targetSubtreeClass")?;
        opts.query_target_filter = string(o, "filter")?.or(string(o, "queryTargetFilter")?);
        opts.rsp_subtree = choice(
            o,
            "rspSubtree",
            RspSubtree::parse,
            "\"no\", \"children\" or \"full\"",
        )?;
        opts.rsp_subtree_class = strings(o, "rspSubtreeClass")?;
        opts.rsp_subtree_include = strings(o, "rspSubtreeInclude")?;
        opts.rsp_prop_include = choice(
            o,
            "rspPropInclude",
            RspPropInclude::parse,
            "\"all\", \"naming-only\" or \"config-only\"",
        )?;
        opts.order_by = strings(o, "orderBy")?;
        opts.page = number(o, "page")?;
        opts.page_size = number(o, "pageSize")?;
    }
    q.validate().map_err(|e| query_error(&e))
}
