//! Store merge ops: a sequence of pushes and snapshot entries with arbitrary attributes applied to
//! a `Store`, checked against a plain model of PROTOCOL.md §6 (deleted removes, created and
//! snapshot replace whole, modified merges a sparse delta where an empty `rn` is no change), and
//! the `Applied` answer checked against what happened.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use dme_events::protocol::{diff_attributes, Applied, Attributes, Mo, Status, Store};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Op {
    status: u8,
    object: u8,
    class: bool,
    attributes: Vec<(u8, Option<String>)>,
    rn_empty: bool,
}

const KEYS: [&str; 6] = ["name", "descr", "rn", "modTs", "childAction", "dn"];

#[derive(Clone, PartialEq, Debug)]
struct Held {
    class: String,
    attributes: Attributes,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut store = Store::new();
    let mut model: BTreeMap<String, Held> = BTreeMap::new();
    for op in ops.iter().take(256) {
        let status = [
            Status::Created,
            Status::Modified,
            Status::Deleted,
            Status::Snapshot,
        ][usize::from(op.status % 4)];
        let dn = format!("uni/tn-{}", op.object % 8);
        let class = if op.class { "fvTenant" } else { "fvCtx" };
        let mut mo = Mo::new(class, dn.clone(), status);
        for (k, v) in &op.attributes {
            let key = KEYS[usize::from(k % 6)];
            mo.attributes
                .insert(key.to_owned(), v.clone().unwrap_or_default());
        }
        if op.rn_empty {
            mo.attributes.insert("rn".into(), String::new());
        }
        // A child never reaches the store.
        mo.children
            .push(Mo::new("fvBD", format!("{dn}/BD-x"), Status::Snapshot));

        let before = model.get(&dn).cloned();
        let got = store.apply(&mo);
        let want = match status {
            Status::Deleted => match model.remove(&dn) {
                Some(_) => Applied::Removed,
                None => Applied::Unchanged,
            },
            Status::Created | Status::Snapshot => {
                let new = Held {
                    class: class.to_owned(),
                    attributes: mo.attributes.clone(),
                };
                let old = model.insert(dn.clone(), new.clone());
                match old {
                    None => Applied::Inserted,
                    Some(old) => {
                        let changed = diff_attributes(&old.attributes, &new.attributes);
                        if changed.is_empty() && old.class == new.class {
                            Applied::Unchanged
                        } else {
                            Applied::Updated(changed)
                        }
                    }
                }
            }
            Status::Modified => match model.get_mut(&dn) {
                None => {
                    model.insert(
                        dn.clone(),
                        Held {
                            class: class.to_owned(),
                            attributes: mo.attributes.clone(),
                        },
                    );
                    Applied::Inserted
                }
                Some(held) => {
                    let old = held.attributes.clone();
                    for (k, v) in &mo.attributes {
                        if !(k == "rn" && v.is_empty()) {
                            held.attributes.insert(k.clone(), v.clone());
                        }
                    }
                    let changed = diff_attributes(&old, &held.attributes);
                    if changed.is_empty() {
                        Applied::Unchanged
                    } else {
                        Applied::Updated(changed)
                    }
                }
            },
        };
        assert_eq!(got, want, "{status:?} on {before:?}");
        if let Applied::Updated(names) = &got {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(&sorted, names, "changed names not sorted and unique");
        }
        // The store and the model agree on every object after every op.
        assert_eq!(store.len(), model.len());
        for (dn, held) in &model {
            let mo = store
                .get(dn)
                .expect("held in the model, missing in the store");
            assert_eq!(&mo.dn, dn);
            assert_eq!(mo.class_name, held.class);
            assert_eq!(mo.attributes, held.attributes);
            assert!(mo.children.is_empty(), "children kept in the store");
        }
    }
});
