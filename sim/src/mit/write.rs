//! The device's write model: parsing a write body (JSON or XML) and applying it to the tree the
//! way APIC does (naming from the DN, relations resolved, the objects the device adds itself).

use super::{Attrs, Change, Mit, ModClock};
use crate::catalog::Catalog;
use crate::render::Format;
use crate::util::split_dn;
use crate::Flavor;

/// A parsed object from a write body.
#[derive(Debug, Clone, Default)]
pub struct InNode {
    pub class: String,
    pub attrs: Attrs,
    pub children: Vec<InNode>,
}

fn json_to_in(v: &serde_json::Value, depth: u32) -> Option<InNode> {
    if depth > 32 {
        return None;
    }
    let obj = v.as_object()?;
    let (class, inner) = obj.iter().next()?;
    let mut n = InNode {
        class: class.clone(),
        ..Default::default()
    };
    if let Some(a) = inner.get("attributes").and_then(|a| a.as_object()) {
        for (k, v) in a {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(x) => x.to_string(),
                serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                _ => return None,
            };
            n.attrs.insert(k.clone(), s);
        }
    }
    if let Some(ch) = inner.get("children") {
        for c in ch.as_array()? {
            n.children.push(json_to_in(c, depth + 1)?);
        }
    }
    Some(n)
}

/// Parse XML elements into a forest (used for login and write bodies).
pub fn parse_xml_tree(body: &[u8]) -> Option<Vec<InNode>> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<InNode> = Vec::new();
    let mut roots = Vec::new();
    let mut buf = Vec::new();
    let to_node = |e: &quick_xml::events::BytesStart| -> Option<InNode> {
        let class = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
        let mut n = InNode {
            class,
            ..Default::default()
        };
        for a in e.attributes() {
            let a = a.ok()?;
            let k = String::from_utf8(a.key.as_ref().to_vec()).ok()?;
            let v = a.unescape_value().ok()?.into_owned();
            n.attrs.insert(k, v);
        }
        Some(n)
    };
    loop {
        match r.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                if stack.len() > 32 {
                    return None;
                }
                stack.push(to_node(&e)?);
            }
            Event::Empty(e) => {
                let n = to_node(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => roots.push(n),
                }
            }
            Event::End(_) => {
                let n = stack.pop()?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => roots.push(n),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() || roots.is_empty() {
        return None;
    }
    Some(roots)
}

/// Named relations resolve like APIC: `fvRsBd.tnFvBDName` / `fvRsCtx.tnFvCtxName` set
/// `tDn`, `tRn` and `state` (the tenant's object, else tenant common's, else missing-target).
pub fn resolve_relation(mit: &Mit, class: &str, dn: &str, attrs: &mut Attrs) {
    let (name_prop, prefix) = match class {
        "fvRsBd" => ("tnFvBDName", "BD-"),
        "fvRsCtx" => ("tnFvCtxName", "ctx-"),
        _ => return,
    };
    let Some(name) = attrs.get(name_prop).cloned() else {
        return;
    };
    let tenant: String = dn.split('/').take(2).collect::<Vec<_>>().join("/");
    let name = if name.is_empty() {
        "default".to_string()
    } else {
        name
    };
    let own = format!("{tenant}/{prefix}{name}");
    let common = format!("uni/tn-common/{prefix}{name}");
    let (tdn, state) = if mit.contains(&own) {
        (own, "formed")
    } else if mit.contains(&common) {
        (common, "formed")
    } else {
        (own, "missing-target")
    };
    attrs.insert("tDn".into(), tdn);
    attrs.insert("tRn".into(), format!("{prefix}{name}"));
    attrs.insert("state".into(), state.into());
}

/// Objects the device creates on its own next to a new object.
pub fn auto_children(flavor: Flavor, class: &str, dn: &str) -> Vec<(String, String, Attrs)> {
    if flavor != Flavor::Apic {
        return Vec::new();
    }
    let a = |kv: &[(&str, &str)]| -> Attrs {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    match class {
        "fvTenant" => vec![(
            format!("{dn}/rsTenantMonPol"),
            "fvRsTenantMonPol".into(),
            a(&[]),
        )],
        "fvAEPg" => vec![(
            format!("{dn}/rsbd"),
            "fvRsBd".into(),
            a(&[
                ("tnFvBDName", ""),
                ("tDn", "uni/tn-common/BD-default"),
                ("tRn", "BD-default"),
                ("state", "formed"),
                ("uid", "0"),
            ]),
        )],
        "fvBD" => vec![(
            format!("{dn}/rsctx"),
            "fvRsCtx".into(),
            a(&[
                ("tnFvCtxName", ""),
                ("tDn", "uni/tn-common/ctx-default"),
                ("tRn", "ctx-default"),
                ("state", "formed"),
                ("uid", "0"),
            ]),
        )],
        _ => Vec::new(),
    }
}

/// One write applied to the tree: what it needs besides the tree, and the changes it made.
pub struct Writer<'a> {
    pub mit: &'a mut Mit,
    pub clock: &'a mut ModClock,
    pub cat: &'a Catalog,
    pub flavor: Flavor,
    pub changes: Vec<Change>,
}

impl Writer<'_> {
    /// Apply a write body rooted at the URL's DN; a bad body gives the 400 text.
    pub fn apply(&mut self, url_dn: &str, root: &InNode) -> Result<(), String> {
        let info = self
            .cat
            .get(&root.class)
            .ok_or_else(|| format!("Request failed, unresolved class for {}", root.class))?;
        let dn = if let Some(d) = root.attrs.get("dn") {
            d.clone()
        } else if info.parse_rn(split_dn(url_dn).1).is_some() {
            url_dn.to_string()
        } else {
            let rn = info.make_rn(&root.attrs).ok_or_else(|| {
                format!(
                    "Invalid request: missing naming properties for class {}",
                    root.class
                )
            })?;
            if url_dn.is_empty() {
                rn
            } else {
                format!("{url_dn}/{rn}")
            }
        };
        self.node(&dn, root, 0)
    }

    fn node(&mut self, dn: &str, n: &InNode, depth: u32) -> Result<(), String> {
        if depth > 32 {
            return Err("Invalid request: nesting too deep".into());
        }
        let info = self
            .cat
            .get(&n.class)
            .ok_or_else(|| format!("Request failed, unresolved class for {}", n.class))?;
        let status = n.attrs.get("status").map(String::as_str).unwrap_or("");
        if status.contains("deleted") {
            self.changes.extend(self.mit.delete(dn, self.clock));
            return Ok(());
        }
        // The DN must fit the class.
        let rn = split_dn(dn).1;
        let naming = info
            .parse_rn(rn)
            .ok_or_else(|| format!("Invalid request: dn {dn} does not match class {}", n.class))?;
        let parent = split_dn(dn).0;
        if !parent.is_empty() && !self.mit.contains(parent) {
            return Err(format!(
                "Invalid request: parent object {parent} does not exist"
            ));
        }
        // "modified" alone changes an object that exists; it never creates one.
        if status == "modified" && !self.mit.contains(dn) {
            return Err(format!("Invalid request: object {dn} does not exist"));
        }
        if info.template.len() > 5 {
            for k in n.attrs.keys() {
                if !info.template.contains_key(k)
                    && !matches!(k.as_str(), "dn" | "rn" | "status" | "childAction" | "modTs")
                {
                    return Err(format!("unknown property {k} for class {}", n.class));
                }
            }
        }
        let mut attrs = n.attrs.clone();
        for (k, v) in naming {
            attrs.insert(k, v);
        }
        resolve_relation(self.mit, &n.class, dn, &mut attrs);
        let existed = self.mit.contains(dn);
        if let Some(ch) = self
            .mit
            .upsert(dn, &n.class, &attrs, Some(&info.template), self.clock)
        {
            self.changes.push(ch);
        }
        for c in &n.children {
            let cinfo = self
                .cat
                .get(&c.class)
                .ok_or_else(|| format!("Request failed, unresolved class for {}", c.class))?;
            let cdn = match (c.attrs.get("dn"), c.attrs.get("rn")) {
                (Some(d), _) => d.clone(),
                (None, Some(r)) => format!("{dn}/{r}"),
                (None, None) => {
                    let r = cinfo.make_rn(&c.attrs).ok_or_else(|| {
                        format!(
                            "Invalid request: missing naming properties for class {}",
                            c.class
                        )
                    })?;
                    format!("{dn}/{r}")
                }
            };
            self.node(&cdn, c, depth + 1)?;
        }
        if !existed {
            for (adn, aclass, aattrs) in auto_children(self.flavor, &n.class, dn) {
                if !self.mit.contains(&adn) {
                    let t = self.cat.get(&aclass).map(|i| &i.template);
                    if let Some(ch) = self.mit.upsert(&adn, &aclass, &aattrs, t, self.clock) {
                        self.changes.push(ch);
                    }
                }
            }
        }
        Ok(())
    }
}

pub fn parse_write_body(format: Format, body: &[u8]) -> Result<InNode, String> {
    match format {
        Format::Json => {
            let v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| format!("Invalid request: JSON parsing error: {e}"))?;
            json_to_in(&v, 0).ok_or_else(|| {
                "Invalid request: expected {\"<class>\":{\"attributes\":{...}}}".to_string()
            })
        }
        Format::Xml => parse_xml_tree(body)
            .and_then(|v| v.into_iter().next())
            .ok_or_else(|| "Invalid request: XML parsing error".to_string()),
    }
}
