//! Error envelopes and their classification from HTTP status and device text. Structured input:
//! a status, a device code and text, and a raw body. The classification follows PROTOCOL.md §2
//! whatever the text, and the device's text and code survive verbatim.
#![no_main]

use arbitrary::Arbitrary;
use dme_events::protocol::{parse_error, DeviceError, ErrorKind};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

#[derive(Arbitrary, Debug)]
struct Input {
    status: u16,
    code: Option<String>,
    text: String,
    /// Phrases the classification looks for, spliced into the text.
    phrase: Option<(u8, bool)>,
    xml: bool,
    body: String,
}

const PHRASES: [&str; 6] = [
    "unable to locate opened web socket",
    "Subscription refresh timeout",
    "Request failed, unresolved class for fvTenantt",
    "result dataset is too big",
    "Token was invalid (Error: Token timeout)",
    "Need a valid webtoken cookie",
];

fn expected(status: u16, text: &str) -> Option<ErrorKind> {
    let t = text.to_ascii_lowercase();
    if status == 405 || t.contains("unable to locate opened web socket") {
        return Some(ErrorKind::SocketNotFound);
    }
    if t.contains("subscription refresh timeout") {
        return Some(ErrorKind::RefreshRejected);
    }
    if t.contains("unresolved class") {
        return Some(ErrorKind::UnknownClass);
    }
    if t.contains("dataset is too big") {
        return Some(ErrorKind::ResultTooBig);
    }
    match status {
        401 => Some(ErrorKind::AuthRejected),
        503 => Some(ErrorKind::Throttled),
        403 if t.is_empty() || t.contains("token") || t.contains("cookie") => {
            Some(ErrorKind::SessionExpired)
        }
        // Other 403s depend on wording; everything else is Other.
        403 => None,
        _ => Some(ErrorKind::Other),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fuzz_target!(|input: Input| {
    let mut text = input.text.clone();
    if let Some((which, upper)) = input.phrase {
        let p = PHRASES[usize::from(which) % PHRASES.len()];
        text.push_str(&if upper {
            p.to_uppercase()
        } else {
            p.to_owned()
        });
    }
    // Classification straight from status and text.
    let d = DeviceError::classify(input.status, input.code.clone(), text.clone());
    if let Some(k) = expected(input.status, &text) {
        assert_eq!(d.kind, k, "status {} text {text:?}", input.status);
    }
    assert_eq!(d.text, text);
    let shown = d.to_string();
    assert!(shown.starts_with(d.kind.code()));
    assert!(shown.contains(&input.status.to_string()));

    // The same through an envelope, JSON or XML: code and text come back verbatim.
    let body = if input.xml {
        let code = input
            .code
            .as_ref()
            .map(|c| format!(" code=\"{}\"", xml_escape(c)))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><imdata totalCount=\"1\"><error{code} text=\"{}\"/></imdata>",
            xml_escape(&text)
        )
    } else {
        let mut attrs = serde_json::Map::new();
        if let Some(c) = &input.code {
            attrs.insert("code".into(), json!(c));
        }
        attrs.insert("text".into(), json!(text));
        json!({"totalCount": "1", "imdata": [{"error": {"attributes": attrs}}]}).to_string()
    };
    let e = parse_error(input.status, &body);
    assert_eq!(e.http_status, input.status);
    assert_eq!(e.kind, d.kind);
    assert_eq!(e.code, input.code);
    assert_eq!(e.text, text);

    // Any body: a typed error carrying the status; no text is quoted unless it is the device's.
    let e = parse_error(input.status, &input.body);
    assert_eq!(e.http_status, input.status);
    if e.code.is_none() && e.text.is_empty() {
        assert_eq!(
            e.kind,
            DeviceError::classify(input.status, None, String::new()).kind
        );
    }
    let _ = e.to_string();
});
