//! Writes: a change to one object as devices take it, `POST /api/mo/<dn>.json` with the class as
//! the key and the dn among the attributes (`{"fvTenant":{"attributes":{"dn":..,"status":..}}}`),
//! the same on APIC and NX-OS; and the delete of an object by its dn.
//!
//! Everything is checked before a request exists, with the rules queries use: the dn and class
//! name with the same checks, the request line within the same limit, and property names that
//! can only be names, so that nothing in a change can reach another object than the one named.

use serde_json::{Map, Value};

use super::encoding::{check_class, check_dn};
use super::error::QueryError;
use super::query::MAX_REQUEST_LINE;

/// What a change asks of the device when it does not say (create, or modify what exists).
pub const DEFAULT_STATUS: &str = "created,modified";

/// A change to one object: create or modify it, or delete it (`status: "deleted"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub class_name: String,
    pub dn: String,
    /// Properties to set, in the order given (without `dn` and `status`).
    pub attributes: Vec<(String, String)>,
    /// `created`, `modified`, `created,modified` or `deleted`; [`DEFAULT_STATUS`] when `None`.
    pub status: Option<String>,
}

/// A request ready for the engine: the path and the body (none for a delete by dn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub path: String,
    pub body: Option<String>,
}

/// A property name is `[A-Za-z][A-Za-z0-9_]*` (`descr`, `nameAlias`, `ctx_id` on NX-OS).
fn check_property(name: &str) -> Result<(), QueryError> {
    let mut cs = name.chars();
    let ok = matches!(cs.next(), Some(c) if c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(QueryError::InvalidValue {
            option: "attributes",
            reason: "a property name is a letter followed by letters, digits and '_'",
        })
    }
}

fn check_status(status: &str) -> Result<(), QueryError> {
    let each_known = status
        .split(',')
        .all(|s| matches!(s, "created" | "modified" | "deleted"));
    if each_known && !status.is_empty() {
        Ok(())
    } else {
        Err(QueryError::InvalidValue {
            option: "status",
            reason: "one of created, modified, created,modified or deleted",
        })
    }
}

/// `/api/mo/<dn>.json`, within the request-line limit.
fn mo_path(dn: &str) -> Result<String, QueryError> {
    check_dn(dn)?;
    let path = format!("/api/mo/{dn}.json");
    // "POST " + path + " HTTP/1.1"
    let line = path.len() + 14;
    if line > MAX_REQUEST_LINE {
        return Err(QueryError::TooLong(line));
    }
    Ok(path)
}

impl Change {
    /// Creates or modifies `dn` of class `class_name` with these properties.
    pub fn new(class_name: impl Into<String>, dn: impl Into<String>) -> Change {
        Change {
            class_name: class_name.into(),
            dn: dn.into(),
            attributes: Vec::new(),
            status: None,
        }
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Change {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// The POST that makes this change.
    pub fn request(&self) -> Result<WriteRequest, QueryError> {
        check_class(&self.class_name)?;
        let path = mo_path(&self.dn)?;
        let status = self.status.as_deref().unwrap_or(DEFAULT_STATUS);
        check_status(status)?;
        let mut attrs = Map::new();
        attrs.insert("dn".into(), Value::String(self.dn.clone()));
        for (k, v) in &self.attributes {
            check_property(k)?;
            if k == "dn" || k == "status" {
                return Err(QueryError::InvalidValue {
                    option: "attributes",
                    reason: "dn and status are given on their own, not as attributes",
                });
            }
            attrs.insert(k.clone(), Value::String(v.clone()));
        }
        attrs.insert("status".into(), Value::String(status.to_owned()));
        let mut inner = Map::new();
        inner.insert("attributes".into(), Value::Object(attrs));
        let mut outer = Map::new();
        outer.insert(self.class_name.clone(), Value::Object(inner));
        Ok(WriteRequest {
            path,
            body: Some(Value::Object(outer).to_string()),
        })
    }
}

/// The `DELETE /api/mo/<dn>.json` that deletes an object (and its subtree) by its dn alone.
pub fn delete_request(dn: &str) -> Result<WriteRequest, QueryError> {
    Ok(WriteRequest {
        path: mo_path(dn)?,
        body: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_posted_with_the_class_as_key_and_the_dn_inside() {
        let r = Change::new("fvTenant", "uni/tn-acme")
            .with("descr", "a \"quoted\" text")
            .request()
            .unwrap();
        assert_eq!(r.path, "/api/mo/uni/tn-acme.json");
        let v: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
        let a = &v["fvTenant"]["attributes"];
        assert_eq!(a["dn"], "uni/tn-acme");
        assert_eq!(a["status"], "created,modified");
        assert_eq!(a["descr"], "a \"quoted\" text");

        let mut del = Change::new("fvTenant", "uni/tn-acme");
        del.status = Some("deleted".into());
        let v: Value = serde_json::from_str(&del.request().unwrap().body.unwrap()).unwrap();
        assert_eq!(v["fvTenant"]["attributes"]["status"], "deleted");
        assert_eq!(
            delete_request("sys/intf/phys-[eth1/1]").unwrap().path,
            "/api/mo/sys/intf/phys-[eth1/1].json"
        );
    }

    #[test]
    fn bad_changes_are_refused_before_a_request_exists() {
        let bad = [
            Change::new("fvTenant", ""),
            Change::new("fvTenant", "uni/tn-a?x=1"),
            Change::new("fvTenant", "uni/../aaaLogout"),
            Change::new("fv-Tenant", "uni/tn-a"),
            Change::new("", "uni/tn-a"),
            Change::new("fvTenant", "uni/tn-a").with("de scr", "x"),
            Change::new("fvTenant", "uni/tn-a").with("status", "deleted"),
            Change::new("fvTenant", "uni/tn-a").with("dn", "uni/tn-b"),
            Change::new("fvTenant", format!("uni/tn-{}", "a".repeat(5000))),
            Change {
                status: Some("wiped".into()),
                ..Change::new("fvTenant", "uni/tn-a")
            },
        ];
        for c in bad {
            assert!(c.request().is_err(), "{c:?}");
        }
        assert!(matches!(
            delete_request(&"a".repeat(5000)),
            Err(QueryError::TooLong(_))
        ));
    }
}
