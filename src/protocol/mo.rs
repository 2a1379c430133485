//! Managed objects (MOs): the unit every query answer and every push is made of.
//!
//! An MO is a class name, a distinguished name (`dn`, its identity), a status and string
//! attributes. Pushes carry `created` (full object), `modified` (a sparse delta: only what changed
//! plus `dn`, `modTs`, `rn:""`, `childAction`) or `deleted`. A snapshot from a query carries
//! `status:""`. See PROTOCOL.md §6.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// The attributes of an MO: every value is a string on the wire. Ordered so that equality,
/// diffing and Debug output are deterministic.
pub type Attributes = BTreeMap<String, String>;

/// What a push (or snapshot entry) says happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `status:""`: an object as it is now, from a query answer or subscribe snapshot.
    Snapshot,
    Created,
    Modified,
    Deleted,
}

impl Status {
    /// The wire spelling (`""` for a snapshot).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Snapshot => "",
            Status::Created => "created",
            Status::Modified => "modified",
            Status::Deleted => "deleted",
        }
    }

    /// Reads a wire status. Unknown spellings are treated as `modified` (the safe reading: merge,
    /// never replace) and reported as such through the `None`.
    pub fn from_wire(s: &str) -> Option<Status> {
        match s {
            "" => Some(Status::Snapshot),
            "created" => Some(Status::Created),
            "modified" => Some(Status::Modified),
            "deleted" => Some(Status::Deleted),
            _ => None,
        }
    }
}

/// One managed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mo {
    /// The class, from the JSON key or the XML element name (`fvTenant`, `l1PhysIf`, ...).
    pub class_name: String,
    /// The identity of the object. Also kept in `attributes["dn"]` as the device sent it.
    pub dn: String,
    pub status: Status,
    /// True when the device sent no `status` (or one we do not know): the object is then treated
    /// as `modified`, as PROTOCOL.md §6 asks.
    pub status_missing: bool,
    /// Every attribute the device sent except `status`, which lives in [`Mo::status`].
    pub attributes: Attributes,
    /// Nested children (only in query answers that asked for `rsp-subtree`; never in pushes).
    pub children: Vec<Mo>,
}

impl Mo {
    /// A new MO with the given class and dn; `attributes["dn"]` is filled in.
    pub fn new(class_name: impl Into<String>, dn: impl Into<String>, status: Status) -> Mo {
        let dn = dn.into();
        let mut attributes = Attributes::new();
        attributes.insert("dn".to_owned(), dn.clone());
        Mo {
            class_name: class_name.into(),
            dn,
            status,
            status_missing: false,
            attributes,
            children: Vec::new(),
        }
    }

    /// Builder helper: sets one attribute.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Mo {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// The value of one attribute.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Merges a sparse `modified` delta into this (held) object: every attribute of the delta
    /// overwrites ours, nothing else changes. `rn:""` in a push is not a change (pushes always carry
    /// it empty, §6), so an empty `rn` never clobbers a held one. Returns the names of the
    /// attributes whose value actually changed.
    pub fn merge(&mut self, delta: &Mo) -> Vec<String> {
        let mut changed = Vec::new();
        for (k, v) in &delta.attributes {
            if k == "rn" && v.is_empty() {
                continue;
            }
            match self.attributes.entry(k.clone()) {
                Entry::Occupied(mut e) => {
                    if e.get() != v {
                        e.insert(v.clone());
                        changed.push(k.clone());
                    }
                }
                Entry::Vacant(e) => {
                    e.insert(v.clone());
                    changed.push(k.clone());
                }
            }
        }
        changed
    }

    /// Visits this object and every nested child, depth first (parents before children).
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Mo)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }
}

/// What applying one MO to a [`Store`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new object (a `created`, a snapshot entry, or a `modified` for an object we did not hold).
    Inserted,
    /// An existing object changed; the names of the attributes whose values changed.
    Updated(Vec<String>),
    /// Nothing changed (a repeated delta, or a delete of an object we did not hold).
    Unchanged,
    /// The object was removed.
    Removed,
}

/// `dn → Mo`: the current state of what a subscription covers, built from a snapshot and kept up
/// to date by pushes with the delete and sparse-merge rules of PROTOCOL.md §6.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    objects: BTreeMap<String, Mo>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, dn: &str) -> Option<&Mo> {
        self.objects.get(dn)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mo> {
        self.objects.values()
    }

    pub fn clear(&mut self) {
        self.objects.clear();
    }

    /// Removes and returns every object (for a diff against a new snapshot).
    pub fn take(&mut self) -> BTreeMap<String, Mo> {
        std::mem::take(&mut self.objects)
    }

    /// Applies one MO: `deleted` removes; `created` and snapshot entries replace whole; `modified`
    /// (and a missing status) merges into the held object, or inserts it when not held. The stored
    /// object keeps the status of its last full form (`created` or snapshot).
    pub fn apply(&mut self, mo: &Mo) -> Applied {
        match mo.status {
            Status::Deleted => match self.objects.remove(&mo.dn) {
                Some(_) => Applied::Removed,
                None => Applied::Unchanged,
            },
            Status::Created | Status::Snapshot => {
                let mut full = mo.clone();
                full.children.clear();
                match self.objects.insert(mo.dn.clone(), full) {
                    None => Applied::Inserted,
                    Some(old) => {
                        let new = &self.objects[&mo.dn];
                        let changed = diff_attributes(&old.attributes, &new.attributes);
                        if changed.is_empty() && old.class_name == new.class_name {
                            Applied::Unchanged
                        } else {
                            Applied::Updated(changed)
                        }
                    }
                }
            }
            Status::Modified => match self.objects.get_mut(&mo.dn) {
                Some(held) => {
                    let changed = held.merge(mo);
                    if changed.is_empty() {
                        Applied::Unchanged
                    } else {
                        Applied::Updated(changed)
                    }
                }
                None => {
                    let mut partial = mo.clone();
                    partial.children.clear();
                    self.objects.insert(mo.dn.clone(), partial);
                    Applied::Inserted
                }
            },
        }
    }
}

/// The names of the attributes that differ between two attribute sets (changed, added or removed).
pub fn diff_attributes(old: &Attributes, new: &Attributes) -> Vec<String> {
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(status: Status) -> Mo {
        Mo::new("fvTenant", "uni/tn-acme", status)
    }

    #[test]
    fn merge_overwrites_only_what_the_delta_carries() {
        let mut held = tenant(Status::Created)
            .with("name", "acme")
            .with("descr", "old")
            .with("rn", "tn-acme");
        let delta = tenant(Status::Modified)
            .with("descr", "new")
            .with("rn", "")
            .with("modTs", "2023-05-04T16:02:00.972-04:00");
        let mut changed = held.merge(&delta);
        changed.sort();
        assert_eq!(changed, vec!["descr", "modTs"]);
        assert_eq!(held.get("name"), Some("acme"));
        assert_eq!(held.get("descr"), Some("new"));
        assert_eq!(
            held.get("rn"),
            Some("tn-acme"),
            "empty rn in a push is not a change"
        );
    }

    #[test]
    fn store_applies_create_modify_delete() {
        let mut s = Store::new();
        assert_eq!(
            s.apply(&tenant(Status::Created).with("name", "acme")),
            Applied::Inserted
        );
        assert_eq!(
            s.apply(&tenant(Status::Modified).with("descr", "x")),
            Applied::Updated(vec!["descr".into()])
        );
        assert_eq!(
            s.apply(&tenant(Status::Modified).with("descr", "x")),
            Applied::Unchanged
        );
        assert_eq!(s.get("uni/tn-acme").unwrap().get("name"), Some("acme"));
        assert_eq!(s.apply(&tenant(Status::Deleted)), Applied::Removed);
        assert!(s.is_empty());
        assert_eq!(s.apply(&tenant(Status::Deleted)), Applied::Unchanged);
    }

    #[test]
    fn modified_for_an_unknown_object_inserts_it() {
        let mut s = Store::new();
        assert_eq!(
            s.apply(&tenant(Status::Modified).with("descr", "x")),
            Applied::Inserted
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn snapshot_replaces_whole_and_reports_removed_attributes() {
        let mut s = Store::new();
        s.apply(&tenant(Status::Snapshot).with("a", "1").with("b", "2"));
        let r = s.apply(&tenant(Status::Snapshot).with("a", "1"));
        assert_eq!(r, Applied::Updated(vec!["b".into()]));
        assert_eq!(s.get("uni/tn-acme").unwrap().get("b"), None);
    }
}
