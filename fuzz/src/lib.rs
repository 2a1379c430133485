//! Shared checks of the fuzz targets: the invariants every parsed object keeps, and a writer that
//! turns parsed objects back into a device document so that a parse can be checked by parsing
//! again (the round trip).

use dme_events::protocol::{
    parse_error, parse_login, parse_query, parse_refresh, Mo, Notification, QueryResponse,
    ResponseError, Status,
};
use serde_json::{json, Map, Value};

/// A status spelling no device sends: written for objects whose status was missing or unknown,
/// so that reading it back flags it the same way at every nesting level.
const UNKNOWN_STATUS: &str = "?unknown";

/// What every MO coming out of a parser must satisfy.
pub fn check_mo(mo: &Mo) {
    assert!(!mo.dn.is_empty(), "an MO without a dn");
    assert_eq!(
        mo.attributes.get("dn"),
        Some(&mo.dn),
        "attributes[dn] differs from the dn"
    );
    assert!(
        !mo.attributes.contains_key("status"),
        "status left among the attributes"
    );
    if mo.status_missing {
        assert_eq!(
            mo.status,
            Status::Modified,
            "a missing status reads as modified"
        );
    }
    for c in &mo.children {
        check_mo(c);
    }
}

/// A subscription id is a decimal string (never a number that lost precision).
pub fn check_id(id: &str) {
    assert!(
        !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_digit()),
        "subscription id {id:?} is not a decimal string"
    );
}

fn mo_entry(mo: &Mo) -> Value {
    let mut attributes = Map::new();
    for (k, v) in &mo.attributes {
        attributes.insert(k.clone(), Value::String(v.clone()));
    }
    let status = if mo.status_missing {
        UNKNOWN_STATUS
    } else {
        mo.status.as_str()
    };
    attributes.insert("status".into(), Value::String(status.into()));
    let mut body = Map::new();
    body.insert("attributes".into(), Value::Object(attributes));
    if !mo.children.is_empty() {
        body.insert(
            "children".into(),
            Value::Array(mo.children.iter().map(mo_entry).collect()),
        );
    }
    let mut entry = Map::new();
    entry.insert(mo.class_name.clone(), Value::Object(body));
    Value::Object(entry)
}

/// A JSON push frame carrying these ids and objects.
pub fn notification_json(ids: &[String], mos: &[Mo]) -> String {
    json!({
        "subscriptionId": ids,
        "imdata": mos.iter().map(mo_entry).collect::<Vec<_>>(),
    })
    .to_string()
}

/// A JSON subscribe answer carrying these objects (and the id, when there is one).
pub fn query_json(id: Option<&str>, mos: &[Mo]) -> String {
    let mut doc = Map::new();
    if let Some(id) = id {
        doc.insert("subscriptionId".into(), Value::String(id.into()));
    }
    doc.insert(
        "imdata".into(),
        Value::Array(mos.iter().map(mo_entry).collect()),
    );
    Value::Object(doc).to_string()
}

/// Checks a parsed notification and that writing it out as JSON and parsing that gives back the
/// same ids and objects (the entries that were rejected are not written).
pub fn check_notification(n: &Notification) {
    assert!(!n.subscription_ids.is_empty(), "a push without ids");
    n.subscription_ids.iter().for_each(|id| check_id(id));
    n.mos.iter().for_each(check_mo);
    let again =
        dme_events::protocol::parse_notification(&notification_json(&n.subscription_ids, &n.mos))
            .expect("a written notification parses");
    assert_eq!(again.subscription_ids, n.subscription_ids);
    assert_eq!(again.mos, n.mos, "objects changed in the round trip");
    assert!(again.rejected.is_empty());
}

/// Checks a parsed query answer, with the same round trip.
pub fn check_query(r: &QueryResponse) {
    if let Some(id) = &r.subscription_id {
        check_id(id);
    }
    r.mos.iter().for_each(check_mo);
    let again = parse_query(200, &query_json(r.subscription_id.as_deref(), &r.mos))
        .expect("a written query answer parses");
    assert_eq!(again.subscription_id, r.subscription_id);
    assert_eq!(again.mos, r.mos, "objects changed in the round trip");
    assert!(again.rejected.is_empty());
}

/// A parse error of an HTTP answer must agree with the status: outside 2xx it is always the
/// device's error, carrying that status.
pub fn check_response_error(status: u16, e: &ResponseError) {
    let _ = e.to_string();
    if !(200..300).contains(&status) {
        match e {
            ResponseError::Device(d) => assert_eq!(d.http_status, status),
            ResponseError::Malformed(m) => panic!("HTTP {status} read as malformed: {m}"),
        }
    }
}

/// When a body is a device error envelope (it names a `code`), no 2xx reading of it may succeed.
pub fn check_envelope_consistency(body: &str) {
    let e = parse_error(200, body);
    if e.code.is_none() {
        return;
    }
    assert!(
        matches!(parse_refresh(200, body), Err(ResponseError::Device(_))),
        "an error envelope accepted as a refresh"
    );
    assert!(
        matches!(parse_query(200, body), Err(ResponseError::Device(_))),
        "an error envelope accepted as a query answer"
    );
    assert!(
        matches!(parse_login(200, body), Err(ResponseError::Device(_))),
        "an error envelope accepted as a login"
    );
}

/// The HTTP status and the body of a fuzz input: two bytes of status (kept in 100..=599 and
/// biased to the statuses devices send), then the body.
pub fn status_and_body(data: &[u8]) -> Option<(u16, &str)> {
    let (head, rest) = data.split_at_checked(2)?;
    let pick = u16::from_le_bytes([head[0], head[1]]);
    const COMMON: [u16; 8] = [200, 200, 400, 401, 403, 405, 503, 500];
    let status = if pick & 0x8000 == 0 {
        COMMON[usize::from(pick % 8)]
    } else {
        100 + (pick & 0x7fff) % 500
    };
    Some((status, std::str::from_utf8(rest).ok()?))
}
