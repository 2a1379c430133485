//! Pure functions over objects: what changed across a gap, and which objects are repeats.
//!
//! Kept apart from the state machine because they decide nothing about time or connections:
//! each takes objects and returns objects, so they are tested on their own.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};

use crate::protocol::{Attributes, Mo, Status, Store};

/// Store mode after a (re)subscribe: the first snapshot fills the store (the consumer has it as
/// `Subscribed.initial`); a later one is diffed against what was held and the differences are
/// returned as full objects with status `Created`, `Modified` or `Deleted`.
pub(super) fn reconcile(store: &mut Store, snapshot: &[Mo], first: bool) -> Vec<Mo> {
    resync(store, snapshot, first, None)
}

/// Store mode after a planned rotation moved a subscription: as a later [`reconcile`], except
/// for the dns in `recent` (delivered under the old id while the move was under way, so perhaps
/// newer than the snapshot). For those the store keeps what it holds and nothing is reported:
/// their changes after the snapshot come again on the new id, or came already.
pub(super) fn reconcile_move(
    store: &mut Store,
    snapshot: &[Mo],
    recent: Option<&HashSet<String>>,
) -> Vec<Mo> {
    resync(store, snapshot, false, recent)
}

fn resync(
    store: &mut Store,
    snapshot: &[Mo],
    first: bool,
    keep: Option<&HashSet<String>>,
) -> Vec<Mo> {
    let kept = |dn: &str| keep.is_some_and(|k| k.contains(dn));
    let mut held = store.take();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for top in snapshot {
        top.walk(&mut |m: &Mo| {
            if kept(&m.dn) {
                return;
            }
            let mut flat = m.clone();
            flat.children.clear();
            store.apply(&flat);
            if first || !seen.insert(m.dn.clone()) {
                return;
            }
            match held.remove(&m.dn) {
                None => {
                    flat.status = Status::Created;
                    out.push(flat);
                }
                Some(old) => {
                    if !same_content(&old.attributes, &flat.attributes)
                        || old.class_name != flat.class_name
                    {
                        flat.status = Status::Modified;
                        out.push(flat);
                    }
                }
            }
        });
    }
    if !first {
        for (dn, mut old) in held {
            if kept(&dn) {
                store.apply(&old);
                continue;
            }
            old.status = Status::Deleted;
            out.push(old);
        }
    }
    out
}

/// Attributes that say when or how an object was last written, not what it is: a difference in
/// them alone is no change to report after a gap.
const BOOKKEEPING: [&str; 3] = ["modTs", "childAction", "rn"];

pub(super) fn same_content(a: &Attributes, b: &Attributes) -> bool {
    fn content(m: &Attributes) -> impl Iterator<Item = (&String, &String)> {
        m.iter().filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
    }
    a == b || content(a).eq(content(b))
}

/// Drops exact repeats of an object within one frame (the device sometimes sends one twice).
pub(super) fn dedup_frame(mos: Vec<Mo>) -> Vec<Mo> {
    if mos.len() < 2 {
        return mos;
    }
    if mos.len() <= 16 {
        let mut out: Vec<Mo> = Vec::with_capacity(mos.len());
        for m in mos {
            if !out.iter().any(|o| o == &m) {
                out.push(m);
            }
        }
        return out;
    }
    let mut seen = HashSet::with_capacity(mos.len());
    mos.into_iter()
        .filter(|m| seen.insert(fingerprint(m)))
        .collect()
}

/// A content hash of one object (class, dn, status, attributes). `DefaultHasher::new` uses fixed
/// keys, so this is deterministic.
pub(super) fn fingerprint(m: &Mo) -> u64 {
    let mut h = DefaultHasher::new();
    m.class_name.hash(&mut h);
    m.dn.hash(&mut h);
    m.status.as_str().hash(&mut h);
    for (k, v) in &m.attributes {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_synthesizes_created_modified_deleted() {
        let mut store = Store::new();
        let a = Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("descr", "1");
        let b = Mo::new("fvTenant", "uni/tn-b", Status::Snapshot);
        assert!(reconcile(&mut store, &[a.clone(), b.clone()], true).is_empty());
        let a2 = Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("descr", "2");
        let c = Mo::new("fvTenant", "uni/tn-c", Status::Snapshot);
        let out = reconcile(&mut store, &[a2, c], false);
        let got: Vec<(&str, Status)> = out.iter().map(|m| (m.dn.as_str(), m.status)).collect();
        assert_eq!(
            got,
            vec![
                ("uni/tn-a", Status::Modified),
                ("uni/tn-c", Status::Created),
                ("uni/tn-b", Status::Deleted)
            ]
        );
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("uni/tn-a").unwrap().get("descr"), Some("2"));
    }

    /// Runtime objects answer `modTs:"never"` in queries but carry a timestamp in pushes: an
    /// object whose only difference after a gap is bookkeeping (`modTs`, `childAction`, `rn`)
    /// did not change.
    #[test]
    fn reconcile_ignores_bookkeeping_only_differences() {
        let mut store = Store::new();
        let held = Mo::new("ethpmPhysIf", "sys/phys-[eth1/1]/phys", Status::Snapshot)
            .with("operSt", "up")
            .with("modTs", "2026-11-23T01:00:00.000+00:00")
            .with("childAction", "");
        reconcile(&mut store, &[held], true);
        let snap = Mo::new("ethpmPhysIf", "sys/phys-[eth1/1]/phys", Status::Snapshot)
            .with("operSt", "up")
            .with("modTs", "never")
            .with("rn", "phys")
            .with("childAction", "");
        assert!(reconcile(&mut store, std::slice::from_ref(&snap), false).is_empty());
        let changed = snap.with("operSt", "down");
        assert_eq!(reconcile(&mut store, &[changed], false).len(), 1);
    }

    /// A rotation's snapshot may be older than what the old id delivered meanwhile: those
    /// objects keep their newer state (no revert, no second delivery); the others are diffed.
    #[test]
    fn reconcile_move_keeps_recent_objects_and_reports_the_rest() {
        let mut store = Store::new();
        let a = Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("descr", "1");
        let b = Mo::new("fvTenant", "uni/tn-b", Status::Snapshot).with("descr", "1");
        let c = Mo::new("fvTenant", "uni/tn-c", Status::Snapshot);
        reconcile(&mut store, &[a.clone(), b.clone(), c.clone()], true);
        // The old id delivered: a modified, d created, c deleted; b changed unseen.
        store.apply(&a.clone().with("descr", "2"));
        store.apply(&Mo::new("fvTenant", "uni/tn-d", Status::Created));
        store.apply(&Mo::new("fvTenant", "uni/tn-c", Status::Deleted));
        let recent: HashSet<String> = ["uni/tn-a", "uni/tn-c", "uni/tn-d"]
            .into_iter()
            .map(String::from)
            .collect();
        // The snapshot was taken before those three changes, after b's.
        let snap = [a, b.with("descr", "9"), c];
        let out = reconcile_move(&mut store, &snap, Some(&recent));
        let got: Vec<(&str, Status)> = out.iter().map(|m| (m.dn.as_str(), m.status)).collect();
        assert_eq!(got, vec![("uni/tn-b", Status::Modified)]);
        assert_eq!(store.get("uni/tn-a").unwrap().get("descr"), Some("2"));
        assert_eq!(store.get("uni/tn-b").unwrap().get("descr"), Some("9"));
        assert!(store.get("uni/tn-c").is_none());
        assert!(store.get("uni/tn-d").is_some());
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn frame_dedup_keeps_order_and_distinct_objects() {
        let a = Mo::new("fvTenant", "uni/tn-a", Status::Modified).with("descr", "1");
        let b = Mo::new("fvTenant", "uni/tn-a", Status::Modified).with("descr", "2");
        assert_eq!(
            dedup_frame(vec![a.clone(), a.clone(), b.clone()]),
            vec![a.clone(), b.clone()]
        );
        let many: Vec<Mo> = (0..40)
            .map(|i| if i % 2 == 0 { a.clone() } else { b.clone() })
            .collect();
        assert_eq!(dedup_frame(many), vec![a, b]);
    }
}
