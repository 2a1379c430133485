//! The XML reader (quick-xml): `<imdata totalCount=".." subscriptionId="a,b">` around one element
//! per MO, its XML attributes being the MO's attributes and nested elements its children.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::doc::{Doc, RawMo};
use super::error::MalformedError;
use super::mo::Attributes;
use super::query::Format;

const MAX_DEPTH: usize = 32;

pub(crate) fn read(what: &'static str, body: &str) -> Result<Doc, MalformedError> {
    let bad = |detail: String| MalformedError::new(what, detail);
    let mut reader = Reader::from_str(body);
    let mut doc = Doc {
        format: Format::Xml,
        total_count: None,
        ids: None,
        has_imdata: false,
        entries: Vec::new(),
    };
    // The element stack below the root: each open MO waiting for its children.
    let mut stack: Vec<RawMo> = Vec::new();
    let mut root_seen = false;
    let mut root_open = false;
    loop {
        let ev = reader.read_event().map_err(|e| {
            bad(format!(
                "invalid XML at byte {}: {e}",
                reader.buffer_position()
            ))
        })?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) if !root_seen => {
                root_seen = true;
                if e.name().as_ref() == b"imdata" {
                    doc.has_imdata = true;
                    for (k, v) in attrs(&e).map_err(&bad)? {
                        match k.as_str() {
                            "totalCount" => doc.total_count = Some(v),
                            "subscriptionId" => doc.ids = Some(split_ids(&v)),
                            _ => {}
                        }
                    }
                    root_open = !empty;
                } else {
                    // A bare MO as the root element.
                    let mo = raw_mo(&e).map_err(&bad)?;
                    if empty {
                        doc.entries.push(Ok(mo));
                    } else {
                        stack.push(mo);
                        root_open = true;
                    }
                }
            }
            Event::Start(e) => {
                if !root_open {
                    return Err(bad("content after the root element".to_owned()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                stack.push(raw_mo(&e).map_err(&bad)?);
            }
            Event::Empty(e) => {
                if !root_open {
                    return Err(bad("content after the root element".to_owned()));
                }
                let mo = raw_mo(&e).map_err(&bad)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Ok(mo)),
                    None => doc.entries.push(Ok(mo)),
                }
            }
            Event::End(_) => match stack.pop() {
                Some(mo) => match stack.last_mut() {
                    Some(parent) => parent.children.push(Ok(mo)),
                    None => {
                        doc.entries.push(Ok(mo));
                        if !doc.has_imdata {
                            root_open = false;
                        }
                    }
                },
                None => root_open = false,
            },
            Event::Eof => break,
            // Declaration, whitespace, comments, processing instructions: nothing to keep.
            _ => {}
        }
    }
    if !root_seen {
        return Err(bad("no root element".to_owned()));
    }
    if root_open || !stack.is_empty() {
        return Err(bad("unclosed element".to_owned()));
    }
    Ok(doc)
}

fn raw_mo(e: &BytesStart) -> Result<RawMo, String> {
    let class_name = std::str::from_utf8(e.name().as_ref())
        .map_err(|_| "element name is not UTF-8".to_owned())?
        .to_owned();
    let mut attributes = Attributes::new();
    for (k, v) in attrs(e)? {
        attributes.insert(k, v);
    }
    Ok(RawMo {
        class_name,
        attributes,
        children: Vec::new(),
    })
}

fn attrs(e: &BytesStart) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute: {err}"))?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| "attribute name is not UTF-8".to_owned())?
            .to_owned();
        let value = a
            .unescape_value()
            .map_err(|err| format!("bad attribute value: {err}"))?
            .into_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// `subscriptionId="a,b"`: several ids are comma-separated (PROTOCOL.md §6).
fn split_ids(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .map(|s| {
            if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit()) {
                Ok(s.to_owned())
            } else {
                Err("subscriptionId is not a list of decimal strings".to_owned())
            }
        })
        .collect()
}
