//! The management information tree (MIT): objects keyed by DN, with class and child indexes,
//! and the change records that writes and churn produce.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::util::{iso_ms, now_ms, parent_dn, split_dn};

mod write;

pub use write::{
    auto_children, parse_write_body, parse_xml_tree, resolve_relation, InNode, Writer,
};

pub type Attrs = BTreeMap<String, String>;

/// One managed object. `attrs` never holds `dn`, `rn` or `status` (added when rendering).
#[derive(Debug, Clone, PartialEq)]
pub struct Mo {
    pub class: String,
    pub attrs: Attrs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// One change to one object, as it will be pushed.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    pub class: String,
    pub dn: String,
    /// The attributes the push carries besides dn/modTs/rn/childAction/status:
    /// all of them for `created`, the changed ones for `modified`, resets for `deleted`.
    pub delta: Attrs,
    /// The full object (after the change; before it for `deleted`) for filter evaluation.
    pub full: Attrs,
    pub mod_ts: String,
}

impl Change {
    /// The attributes of the pushed object, including dn, modTs, rn:"", childAction, status.
    pub fn push_attrs(&self) -> Attrs {
        let mut a = self.delta.clone();
        a.insert("dn".into(), self.dn.clone());
        a.insert("modTs".into(), self.mod_ts.clone());
        a.insert("rn".into(), String::new());
        a.entry("childAction".into()).or_default();
        a.insert("status".into(), self.kind.as_str().into());
        a
    }
}

/// A strictly increasing modTs clock.
#[derive(Debug, Default)]
pub struct ModClock {
    last: i64,
}

impl ModClock {
    pub fn tick(&mut self) -> String {
        let t = now_ms().max(self.last + 1);
        self.last = t;
        iso_ms(t)
    }
}

#[derive(Debug, Default)]
pub struct Mit {
    objs: BTreeMap<String, Mo>,
    by_class: HashMap<String, BTreeSet<String>>,
    children: HashMap<String, BTreeSet<String>>,
}

impl Mit {
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    pub fn get(&self, dn: &str) -> Option<&Mo> {
        self.objs.get(dn)
    }

    pub fn contains(&self, dn: &str) -> bool {
        self.objs.contains_key(dn)
    }

    /// Insert or replace an object (no change record).
    pub fn put(&mut self, dn: String, mo: Mo) {
        if let Some(old) = self.objs.get(&dn) {
            if old.class != mo.class {
                if let Some(s) = self.by_class.get_mut(&old.class) {
                    s.remove(&dn);
                }
            }
        }
        self.by_class
            .entry(mo.class.clone())
            .or_default()
            .insert(dn.clone());
        let parent = parent_dn(&dn).to_string();
        self.children.entry(parent).or_default().insert(dn.clone());
        self.objs.insert(dn, mo);
    }

    /// Remove one object (not its children).
    fn take(&mut self, dn: &str) -> Option<Mo> {
        let mo = self.objs.remove(dn)?;
        if let Some(s) = self.by_class.get_mut(&mo.class) {
            s.remove(dn);
        }
        let parent = parent_dn(dn);
        if let Some(s) = self.children.get_mut(parent) {
            s.remove(dn);
            if s.is_empty() {
                self.children.remove(parent);
            }
        }
        Some(mo)
    }

    /// DNs of the direct children of `dn`, sorted.
    pub fn children_of(&self, dn: &str) -> Vec<String> {
        self.children
            .get(dn)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// DNs of the objects of a class, sorted.
    pub fn class_dns(&self, class: &str) -> Vec<String> {
        self.by_class
            .get(class)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The n-th DN of a class (in DN order).
    pub fn class_nth(&self, class: &str, n: usize) -> Option<String> {
        self.by_class.get(class)?.iter().nth(n).cloned()
    }

    pub fn class_count(&self, class: &str) -> usize {
        self.by_class.get(class).map_or(0, |s| s.len())
    }

    /// `root` and every descendant, parents before children (depth-first, sorted).
    pub fn subtree(&self, root: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_string()];
        if !self.objs.contains_key(root) {
            stack = self.children_of(root);
            stack.reverse();
        }
        while let Some(dn) = stack.pop() {
            let mut kids = self.children_of(&dn);
            if self.objs.contains_key(&dn) {
                out.push(dn);
            }
            kids.reverse();
            stack.extend(kids);
        }
        out
    }

    /// Every DN, sorted.
    pub fn all_dns(&self) -> impl Iterator<Item = &String> {
        self.objs.keys()
    }

    /// Create or modify one object; returns the change (None when nothing changed).
    pub fn upsert(
        &mut self,
        dn: &str,
        class: &str,
        attrs: &Attrs,
        template: Option<&Attrs>,
        clock: &mut ModClock,
    ) -> Option<Change> {
        match self.objs.get(dn) {
            Some(old) if old.class == class => {
                let mut delta = Attrs::new();
                for (k, v) in attrs {
                    if matches!(k.as_str(), "dn" | "rn" | "status" | "modTs" | "childAction") {
                        continue;
                    }
                    if old.attrs.get(k) != Some(v) {
                        delta.insert(k.clone(), v.clone());
                    }
                }
                if delta.is_empty() {
                    return None;
                }
                let ts = clock.tick();
                let mut mo = old.clone();
                for (k, v) in &delta {
                    mo.attrs.insert(k.clone(), v.clone());
                }
                if mo.attrs.get("modTs").map(String::as_str) != Some("never") {
                    mo.attrs.insert("modTs".into(), ts.clone());
                }
                let full = mo.attrs.clone();
                self.put(dn.to_string(), mo);
                Some(Change {
                    kind: ChangeKind::Modified,
                    class: class.into(),
                    dn: dn.into(),
                    delta,
                    full,
                    mod_ts: ts,
                })
            }
            _ => {
                let ts = clock.tick();
                let mut a = template.cloned().unwrap_or_default();
                for (k, v) in attrs {
                    if matches!(k.as_str(), "dn" | "rn" | "status") {
                        continue;
                    }
                    a.insert(k.clone(), v.clone());
                }
                a.insert("modTs".into(), ts.clone());
                a.insert("childAction".into(), String::new());
                let full = a.clone();
                self.put(
                    dn.to_string(),
                    Mo {
                        class: class.into(),
                        attrs: a.clone(),
                    },
                );
                let mut delta = a;
                delta.remove("modTs");
                Some(Change {
                    kind: ChangeKind::Created,
                    class: class.into(),
                    dn: dn.into(),
                    delta,
                    full,
                    mod_ts: ts,
                })
            }
        }
    }

    /// Delete an object and its subtree; one change per object, parent first.
    pub fn delete(&mut self, dn: &str, clock: &mut ModClock) -> Vec<Change> {
        if !self.objs.contains_key(dn) {
            return Vec::new();
        }
        let dns = self.subtree(dn);
        let ts = clock.tick();
        let mut out = Vec::with_capacity(dns.len());
        for d in dns {
            if let Some(mo) = self.take(&d) {
                let mut delta = Attrs::new();
                if mo.class == "fvAEPg" {
                    delta.insert("pcTag".into(), "any".into());
                    delta.insert("scope".into(), "0".into());
                }
                out.push(Change {
                    kind: ChangeKind::Deleted,
                    class: mo.class,
                    dn: d,
                    delta,
                    full: mo.attrs,
                    mod_ts: ts.clone(),
                });
            }
        }
        out
    }

    /// The RN of a DN (convenience).
    pub fn rn_of(dn: &str) -> &str {
        split_dn(dn).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(kv: &[(&str, &str)]) -> Attrs {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn upsert_and_delete() {
        let mut m = Mit::default();
        let mut c = ModClock::default();
        let ch = m
            .upsert(
                "uni/tn-a",
                "fvTenant",
                &a(&[("name", "a")]),
                Some(&a(&[("descr", "")])),
                &mut c,
            )
            .unwrap();
        assert_eq!(ch.kind, ChangeKind::Created);
        assert!(m
            .upsert("uni/tn-a", "fvTenant", &a(&[("name", "a")]), None, &mut c)
            .is_none());
        let ch = m
            .upsert("uni/tn-a", "fvTenant", &a(&[("descr", "x")]), None, &mut c)
            .unwrap();
        assert_eq!(ch.kind, ChangeKind::Modified);
        assert_eq!(ch.delta, a(&[("descr", "x")]));
        m.upsert("uni/tn-a/BD-b", "fvBD", &a(&[("name", "b")]), None, &mut c);
        m.upsert("uni/tn-a/BD-b/rsctx", "fvRsCtx", &a(&[]), None, &mut c);
        assert_eq!(
            m.subtree("uni/tn-a"),
            vec!["uni/tn-a", "uni/tn-a/BD-b", "uni/tn-a/BD-b/rsctx"]
        );
        let del = m.delete("uni/tn-a", &mut c);
        assert_eq!(del.len(), 3);
        assert_eq!(del[0].dn, "uni/tn-a");
        assert!(m.is_empty());
        assert_eq!(m.class_count("fvBD"), 0);
    }
}
