//! The shared reading of a device document, JSON or XML: an envelope (`totalCount`,
//! `subscriptionId`) around `imdata` entries, each entry one MO with attributes and children.
//!
//! Both readers tolerate what they do not know (extra keys, numbers where strings belong) and keep
//! going past a broken entry: it becomes an [`EntryError`] while the other entries survive. Only a
//! document that is not JSON / XML at all, or whose envelope is broken, fails as a whole.

use super::error::MalformedError;
use super::mo::{Attributes, Mo, Status};
use super::query::Format;

/// One `imdata` entry that could not be read as an MO; the rest of the document is unaffected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// Position in `imdata` (top-level entries only; a child's problem is reported at its root).
    pub index: usize,
    pub reason: String,
}

/// A raw entry before status and dn are settled.
pub(crate) struct RawMo {
    pub class_name: String,
    pub attributes: Attributes,
    pub children: Vec<Result<RawMo, String>>,
}

/// What a reader found in a document.
pub(crate) struct Doc {
    pub format: Format,
    pub total_count: Option<String>,
    /// `subscriptionId`: `None` when absent, `Err` when present but unreadable.
    pub ids: Option<Result<Vec<String>, String>>,
    /// Whether an `imdata` member / root element was present.
    pub has_imdata: bool,
    pub entries: Vec<Result<RawMo, String>>,
}

/// Reads a document, choosing JSON or XML from its first non-blank character.
pub(crate) fn read(what: &'static str, body: &str) -> Result<Doc, MalformedError> {
    match body.trim_start().as_bytes().first() {
        Some(b'{') => super::json::read(what, body),
        Some(b'<') => super::xml::read(what, body),
        Some(_) => Err(MalformedError::new(what, "neither a JSON object nor XML")),
        None => Err(MalformedError::new(what, "empty body")),
    }
}

/// How a missing `status` is read: in pushes it means `modified` (flagged); in query answers the
/// object is simply as it is now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MissingStatus {
    Modified,
    Snapshot,
}

/// Turns raw entries into MOs: settles `status` and `dn` (children that carry only `rn` get
/// `parent dn + "/" + rn`). An entry without an identity becomes an [`EntryError`].
pub(crate) fn finish(
    entries: Vec<Result<RawMo, String>>,
    missing: MissingStatus,
) -> (Vec<Mo>, Vec<EntryError>) {
    let mut mos = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, e) in entries.into_iter().enumerate() {
        match e.and_then(|raw| to_mo(raw, None, missing)) {
            Ok(mo) => mos.push(mo),
            Err(reason) => errors.push(EntryError { index, reason }),
        }
    }
    (mos, errors)
}

fn to_mo(raw: RawMo, parent_dn: Option<&str>, missing: MissingStatus) -> Result<Mo, String> {
    let RawMo {
        class_name,
        mut attributes,
        children,
    } = raw;
    let (status, status_missing) = match attributes.remove("status") {
        Some(s) => match Status::from_wire(&s) {
            Some(st) => (st, false),
            None => (Status::Modified, true),
        },
        None => match missing {
            MissingStatus::Modified => (Status::Modified, true),
            MissingStatus::Snapshot => (Status::Snapshot, false),
        },
    };
    let dn = match attributes.get("dn") {
        Some(dn) if !dn.is_empty() => dn.clone(),
        _ => {
            let rn = attributes.get("rn").filter(|r| !r.is_empty());
            match (parent_dn, rn) {
                (Some(p), Some(rn)) => {
                    let dn = format!("{p}/{rn}");
                    attributes.insert("dn".to_owned(), dn.clone());
                    dn
                }
                _ => return Err(format!("{class_name} object without a dn")),
            }
        }
    };
    let mut kids = Vec::with_capacity(children.len());
    for c in children {
        kids.push(c.and_then(|c| to_mo(c, Some(&dn), MissingStatus::Snapshot))?);
    }
    Ok(Mo {
        class_name,
        dn,
        status,
        status_missing,
        attributes,
        children: kids,
    })
}
