//! Rendering MOs, result envelopes, errors and push frames in JSON and XML, the way the
//! devices print them (every value a string, attributes sorted by name).

use std::collections::BTreeMap;

use crate::util::{json_str, xml_escape};

pub const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The document encoding of an answer and of a subscription's pushes (`Format` in the
/// client's protocol layer too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// A path ending in `.xml` asks for XML; everything else is answered in JSON.
    pub fn of_path(path: &str) -> Format {
        if path.ends_with(".xml") {
            Format::Xml
        } else {
            Format::Json
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "text/xml",
        }
    }
}

/// A rendered-to-be object: class, attributes (including dn or rn, status) and children.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub class: String,
    pub attrs: BTreeMap<String, String>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn render(&self, enc: Format, out: &mut String) {
        match enc {
            Format::Json => {
                out.push('{');
                out.push_str(&json_str(&self.class));
                out.push_str(":{\"attributes\":{");
                for (i, (k, v)) in self.attrs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&json_str(k));
                    out.push(':');
                    out.push_str(&json_str(v));
                }
                out.push('}');
                if !self.children.is_empty() {
                    out.push_str(",\"children\":[");
                    for (i, c) in self.children.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        c.render(enc, out);
                    }
                    out.push(']');
                }
                out.push_str("}}");
            }
            Format::Xml => {
                out.push('<');
                out.push_str(&self.class);
                for (k, v) in &self.attrs {
                    out.push(' ');
                    out.push_str(k);
                    out.push_str("=\"");
                    out.push_str(&xml_escape(v));
                    out.push('"');
                }
                if self.children.is_empty() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    for c in &self.children {
                        c.render(enc, out);
                    }
                    out.push_str("</");
                    out.push_str(&self.class);
                    out.push('>');
                }
            }
        }
    }
}

/// A result envelope: `{"totalCount":"N","subscriptionId":"id","imdata":[...]}`.
pub fn envelope(enc: Format, total: usize, sub_id: Option<&str>, items: &[Node]) -> String {
    let mut out = String::with_capacity(256 + items.len() * 512);
    match enc {
        Format::Json => {
            out.push_str(&format!("{{\"totalCount\":\"{total}\","));
            if let Some(id) = sub_id {
                out.push_str(&format!("\"subscriptionId\":{},", json_str(id)));
            }
            out.push_str("\"imdata\":[");
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                n.render(enc, &mut out);
            }
            out.push_str("]}");
        }
        Format::Xml => {
            out.push_str(XML_DECL);
            out.push_str(&format!("<imdata totalCount=\"{total}\""));
            if let Some(id) = sub_id {
                out.push_str(&format!(" subscriptionId=\"{}\"", xml_escape(id)));
            }
            out.push('>');
            for n in items {
                n.render(enc, &mut out);
            }
            out.push_str("</imdata>");
        }
    }
    out
}

/// The device error envelope.
pub fn error_body(enc: Format, code: u16, text: &str) -> String {
    match enc {
        Format::Json => format!(
            "{{\"totalCount\":\"1\",\"imdata\":[{{\"error\":{{\"attributes\":{{\"code\":\"{code}\",\"text\":{}}}}}}}]}}",
            json_str(text)
        ),
        Format::Xml => format!(
            "{XML_DECL}<imdata totalCount=\"1\"><error code=\"{code}\" text=\"{}\"/></imdata>",
            xml_escape(text)
        ),
    }
}

/// A push frame: ids as an array (JSON) or a comma-separated attribute (XML), no totalCount.
pub fn push_frame(enc: Format, ids: &[String], items: &[Node]) -> String {
    let mut out = String::with_capacity(128 + items.len() * 512);
    match enc {
        Format::Json => {
            out.push_str("{\"subscriptionId\":[");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_str(id));
            }
            out.push_str("],\"imdata\":[");
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                n.render(enc, &mut out);
            }
            out.push_str("]}");
        }
        Format::Xml => {
            out.push_str(XML_DECL);
            out.push_str(&format!(
                "<imdata subscriptionId=\"{}\">",
                xml_escape(&ids.join(","))
            ));
            for n in items {
                n.render(enc, &mut out);
            }
            out.push_str("</imdata>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let n = Node {
            class: "fvTenant".into(),
            attrs: [("dn", "uni/tn-a"), ("name", "a&\"")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children: vec![],
        };
        let j = envelope(
            Format::Json,
            1,
            Some("72057598349803562"),
            std::slice::from_ref(&n),
        );
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["subscriptionId"], "72057598349803562");
        assert_eq!(v["imdata"][0]["fvTenant"]["attributes"]["name"], "a&\"");
        let x = push_frame(Format::Xml, &["1".into(), "2".into()], &[n]);
        assert!(x.contains("subscriptionId=\"1,2\"") && x.contains("name=\"a&amp;&quot;\""));
        let e = error_body(Format::Json, 403, "x");
        assert_eq!(
            e,
            r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"403","text":"x"}}}]}"#
        );
    }
}
