//! Every captured payload in `tests/fixtures/captures.jsonl` parsed and its values checked.
//! Runs natively (`cargo test`) and in Chromium (`wasm-pack test --headless --chrome`).

use dme_events::protocol::*;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod capture_support;
use capture_support::{captures, Capture};

fn capture(id: &str) -> Capture {
    captures()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no capture {id}"))
}

#[test]
fn every_capture_parses_by_kind() {
    let all = captures();
    assert!(all.len() >= 20, "{} captures", all.len());
    for c in &all {
        let status = c.http_status.unwrap_or(200);
        match c.kind.as_str() {
            "login-response" => {
                parse_login(status, &c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
            }
            "error-response" => {
                let e = parse_error(status, &c.body);
                assert_eq!(e.http_status, status, "{}", c.id);
                assert_eq!(
                    e.code.as_deref(),
                    Some(status.to_string().as_str()),
                    "{}",
                    c.id
                );
                assert!(!e.text.is_empty(), "{}", c.id);
            }
            "refresh-response" => parse_refresh(status, &c.body).unwrap(),
            "subscribe-response" => {
                let r = parse_query(status, &c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
                assert!(r.subscription_id.is_some(), "{}", c.id);
                assert!(r.rejected.is_empty(), "{}", c.id);
            }
            "notification" => {
                let n = parse_notification(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
                assert!(!n.subscription_ids.is_empty(), "{}", c.id);
                assert!(!n.mos.is_empty() && n.rejected.is_empty(), "{}", c.id);
            }
            "mo" => {
                parse_mo(&c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
            }
            other => panic!("unknown kind {other} in {}", c.id),
        }
    }
}

#[test]
fn apic_login_values() {
    let c = capture("apic-login-2.0");
    let l = parse_login(200, &c.body).unwrap();
    assert!(l.token.starts_with("ZldYAsoO9d0FfAQM8xaEVWvQ"));
    assert!(l.token.ends_with("c/tem"));
    assert_eq!(l.refresh_timeout_secs, 600);
    assert_eq!(l.maximum_lifetime_secs, Some(86400));
    assert_eq!(l.creation_time, Some(1_500_134_817));
    assert_eq!(l.version.as_deref(), Some("2.0(2f)"));
    assert_eq!(l.user_name.as_deref(), Some("admin"));
    assert_eq!(l.node.as_deref(), Some("topology/pod-1/node-1"));
    assert_eq!(l.url_token, None);
    let dbg = format!("{l:?}");
    assert!(!dbg.contains("ZldYAsoO"), "Debug must not show the token");
}

#[test]
fn nxos_login_values_bare_shape() {
    let l = parse_login(200, &capture("nxos-login-doc").body).unwrap();
    assert!(l.token.starts_with("LIOcWMWyt5Mn"));
    assert!(l.token.ends_with("xm0="));
    assert_eq!(l.refresh_timeout_secs, 600);
    assert_eq!(
        l.maximum_lifetime_secs, None,
        "NX-OS has no maximum lifetime"
    );
    assert_eq!(l.creation_time, Some(1_435_631_774));
    assert_eq!(l.version.as_deref(), Some("0.9(14HEAD${version.patch})"));
}

#[test]
fn login_xml_with_url_token() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1"><aaaLogin token="abc+/=" refreshTimeoutSeconds="300" maximumLifetimeSeconds="86400" creationTime="1700000000" urlToken="u-tok" version="5.2(1g)" userName="admin"><aaaUserDomain name="all"/></aaaLogin></imdata>"#;
    let l = parse_login(200, body).unwrap();
    assert_eq!(l.token, "abc+/=");
    assert_eq!(l.refresh_timeout_secs, 300);
    assert_eq!(l.url_token.as_deref(), Some("u-tok"));
    assert!(!format!("{l:?}").contains("u-tok"));
}

#[test]
fn login_refresh_with_empty_url_token_keeps_none() {
    let body = r#"{"imdata":[{"aaaLogin":{"attributes":{"token":"T2","refreshTimeoutSeconds":"600","urlToken":""}}}]}"#;
    assert_eq!(parse_login(200, body).unwrap().url_token, None);
}

#[test]
fn login_errors_are_typed() {
    let e = parse_login(401, &capture("apic-login-bad-credentials-json").body).unwrap_err();
    let ResponseError::Device(d) = e else {
        panic!("{e:?}")
    };
    assert_eq!(d.kind, ErrorKind::AuthRejected);
    assert_eq!(
        d.text,
        "Username or password is incorrect - FAILED local authentication"
    );
    let d = parse_error(401, &capture("apic-login-bad-credentials-xml").body);
    assert_eq!(d.kind, ErrorKind::AuthRejected);
    assert_eq!(d.code.as_deref(), Some("401"));
    for bad in [
        "",
        "{}",
        r#"{"imdata":[]}"#,
        r#"{"imdata":[{"aaaLogin":{"attributes":{}}}]}"#,
        "<html>",
    ] {
        assert!(
            matches!(parse_login(200, bad), Err(ResponseError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn error_captures_classify() {
    let kind = |id: &str, status| parse_error(status, &capture(id).body).kind;
    assert_eq!(kind("apic-no-cookie", 403), ErrorKind::SessionExpired);
    assert_eq!(kind("apic-token-timeout", 403), ErrorKind::SessionExpired);
    assert_eq!(
        kind("apic-subscribe-without-socket", 405),
        ErrorKind::SocketNotFound
    );
    assert_eq!(
        kind("apic-refresh-expired", 400),
        ErrorKind::RefreshRejected
    );
    let r = parse_refresh(400, &capture("apic-refresh-expired").body).unwrap_err();
    assert!(matches!(
        r,
        ResponseError::Device(DeviceError {
            kind: ErrorKind::RefreshRejected,
            http_status: 400,
            ..
        })
    ));
    // A proxy's HTML page is not quoted.
    let d = parse_error(502, "<html><body>Bad gateway token=abc</body></html>");
    assert_eq!(d.text, "");
    assert_eq!(d.kind, ErrorKind::Other);
    // 503 without a body is throttling.
    assert_eq!(parse_error(503, "").kind, ErrorKind::Throttled);
}

#[test]
fn subscribe_responses() {
    let r = parse_query(200, &capture("nxos-subscribe-mo").body).unwrap();
    assert_eq!(r.subscription_id.as_deref(), Some("18374686685813276673"));
    assert_eq!(r.total_count, Some(0));
    assert!(r.mos.is_empty());

    let r = parse_query(200, &capture("apic-subscribe-vzbrcp").body).unwrap();
    assert_eq!(r.subscription_id.as_deref(), Some("72057598349803562"));
    assert_eq!(r.total_count, Some(1));
    assert_eq!(r.mos.len(), 1);
    let mo = &r.mos[0];
    assert_eq!(mo.class_name, "vzBrCP");
    assert_eq!(mo.dn, "uni/tn-TenantA/brc-test");
    assert_eq!(mo.status, Status::Snapshot);
    assert!(!mo.status_missing);
    assert_eq!(mo.get("scope"), Some("context"));
    assert_eq!(mo.get("modTs"), Some("2020-04-13T10:43:19.237+00:00"));
    assert_eq!(mo.get("status"), None, "status lives in Mo::status");
}

#[test]
fn subscribe_response_with_children_and_xml() {
    let body = r#"{"totalCount":"1","subscriptionId":"72057598349803563","imdata":[{"fvTenant":{"attributes":{"dn":"uni/tn-a","name":"a","status":""},"children":[{"fvBD":{"attributes":{"rn":"BD-web","name":"web","status":""},"children":[{"fvSubnet":{"attributes":{"rn":"subnet-[10.0.0.1/24]","ip":"10.0.0.1/24"}}}]}}]}}]}"#;
    let r = parse_query(200, body).unwrap();
    let t = &r.mos[0];
    assert_eq!(t.children[0].dn, "uni/tn-a/BD-web");
    assert_eq!(t.children[0].get("dn"), Some("uni/tn-a/BD-web"));
    assert_eq!(
        t.children[0].children[0].dn,
        "uni/tn-a/BD-web/subnet-[10.0.0.1/24]"
    );
    let mut n = 0;
    t.walk(&mut |_| n += 1);
    assert_eq!(n, 3);

    let xml = r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1" subscriptionId="72057598349803564"><fvTenant dn="uni/tn-a" name="a &amp; b" status=""><fvBD rn="BD-web" name="web" status=""/></fvTenant></imdata>"#;
    let r = parse_query(200, xml).unwrap();
    assert_eq!(r.format, Format::Xml);
    assert_eq!(r.subscription_id.as_deref(), Some("72057598349803564"));
    assert_eq!(r.mos[0].get("name"), Some("a & b"));
    assert_eq!(r.mos[0].children[0].dn, "uni/tn-a/BD-web");
}

#[test]
fn subscribe_errors() {
    let e = parse_query(405, &capture("apic-subscribe-without-socket").body).unwrap_err();
    assert!(matches!(
        e,
        ResponseError::Device(DeviceError {
            kind: ErrorKind::SocketNotFound,
            ..
        })
    ));
    let body = r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"400","text":"Request failed, unresolved class for fvTenantt"}}}]}"#;
    let e = parse_query(400, body).unwrap_err();
    assert!(matches!(
        e,
        ResponseError::Device(DeviceError {
            kind: ErrorKind::UnknownClass,
            ..
        })
    ));
    // An id that lost precision as a JSON number is refused, not rounded.
    let e = parse_query(200, r#"{"subscriptionId":72057598349803562.0,"imdata":[]}"#).unwrap_err();
    assert!(matches!(e, ResponseError::Malformed(_)));
    // An error envelope under HTTP 200 is still an error.
    let e = parse_query(200, body).unwrap_err();
    assert!(matches!(
        e,
        ResponseError::Device(DeviceError {
            http_status: 400,
            ..
        })
    ));
}

#[test]
fn notification_with_four_ids() {
    let n = parse_notification(&capture("apic-vzbrcp-created-4ids").body).unwrap();
    assert_eq!(
        n.subscription_ids,
        [
            "72057598349803551",
            "72057598349803552",
            "72057598349803553",
            "72057598349803561"
        ]
    );
    let mo = &n.mos[0];
    assert_eq!(mo.class_name, "vzBrCP");
    assert_eq!(mo.status, Status::Created);
    assert_eq!(mo.get("configIssues"), Some("filter-not-present"));
    assert_eq!(mo.get("rn"), Some(""));

    let n = parse_notification(&capture("apic-fvtenant-deleted-4ids").body).unwrap();
    assert_eq!(n.subscription_ids.len(), 4);
    assert_eq!(n.mos[0].status, Status::Deleted);
    assert_eq!(n.mos[0].dn, "uni/tn-mtimm-simple2");
}

#[test]
fn nxos_notification_id_above_2_pow_63() {
    let n = parse_notification(&capture("nxos-l1physif-modified").body).unwrap();
    assert_eq!(n.subscription_ids, ["18374686685813276673"]);
    let mo = &n.mos[0];
    assert_eq!(mo.class_name, "l1PhysIf");
    assert_eq!(mo.dn, "sys/intf/phys-[eth1/1]");
    assert_eq!(mo.status, Status::Modified);
    assert_eq!(mo.get("descr"), Some("test"));
}

#[test]
fn sparse_delta_merges_into_held_object() {
    let n = parse_notification(&capture("apic-fvbd-modified-sparse").body).unwrap();
    let delta = &n.mos[0];
    assert_eq!(delta.dn, "uni/tn-CL/BD-CLbd");
    assert_eq!(delta.attributes.len(), 5, "{:?}", delta.attributes);
    let mut held = Mo::new("fvBD", "uni/tn-CL/BD-CLbd", Status::Snapshot)
        .with("name", "CLbd")
        .with("configIssues", "ctx-not-present")
        .with("rn", "BD-CLbd");
    let changed = held.merge(delta);
    assert!(changed.contains(&"configIssues".to_string()));
    assert_eq!(held.get("name"), Some("CLbd"));
    assert_eq!(held.get("configIssues"), Some(""));
    assert_eq!(held.get("rn"), Some("BD-CLbd"));
    assert_eq!(held.get("modTs"), Some("2023-05-04T16:02:00.972-04:00"));
}

#[test]
fn xml_notification() {
    let n = parse_notification(&capture("apic-xml-notification-shape").body).unwrap();
    assert_eq!(n.format, Format::Xml);
    assert_eq!(n.subscription_ids, ["72342148523360257"]);
    let mo = &n.mos[0];
    assert_eq!(mo.class_name, "fvAEPg");
    assert_eq!(mo.dn, "uni/tn-test/ap-test/epg-web");
    assert_eq!(mo.status, Status::Created);
    assert_eq!(mo.get("scope"), Some("2686976"));
    let n = parse_notification(r#"<imdata subscriptionId="1,2"><fvTenant dn="uni/tn-a" status="deleted"/><fvTenant dn="uni/tn-b" status="modified" descr="x"/></imdata>"#).unwrap();
    assert_eq!(n.subscription_ids, ["1", "2"]);
    assert_eq!(n.mos.len(), 2);
    assert_eq!(n.mos[1].get("descr"), Some("x"));
}

#[test]
fn mo_captures() {
    let mo = parse_mo(&capture("apic-fvrtbd-created").body).unwrap();
    assert_eq!(mo.class_name, "fvRtBd");
    assert_eq!(
        mo.dn,
        "uni/tn-dh-ansible-aac/BD-BD_VLAN100/rtbd-[uni/tn-dh-ansible-aac/ap-dh-ap/epg-dh-epg]"
    );
    assert_eq!(mo.get("tCl"), Some("fvAEPg"));
    let mo = parse_mo(&capture("apic-fvaepg-deleted").body).unwrap();
    assert_eq!(mo.status, Status::Deleted);
    assert_eq!(mo.get("pcTag"), Some("any"));
    let mo = parse_mo(&capture("apic-faultinst-modified-attrs").body).unwrap();
    assert_eq!(mo.get("lc"), Some("raised"));
    assert_eq!(mo.get("severity"), Some("warning"));
    assert_eq!(mo.get("occur"), Some("951"));
    let mo = parse_mo(&capture("apic-fvtenant-created-mo").body).unwrap();
    assert_eq!(
        (mo.class_name.as_str(), mo.dn.as_str()),
        ("fvTenant", "uni/tn-acme")
    );
    assert_eq!(mo.status, Status::Created);
}

#[test]
fn every_imdata_entry_and_every_id() {
    let frame = r#"{"subscriptionId":["1","2"],"imdata":[
        {"fvTenant":{"attributes":{"dn":"uni/tn-a","status":"created","name":"a"}}},
        {"fvTenant":{"attributes":{"dn":"uni/tn-b","status":"modified","descr":"d"}}},
        {"fvTenant":{"attributes":{"dn":"uni/tn-c","status":"deleted"}}}]}"#;
    let n = parse_notification(frame).unwrap();
    assert_eq!(n.subscription_ids, ["1", "2"]);
    let dns: Vec<_> = n.mos.iter().map(|m| m.dn.as_str()).collect();
    assert_eq!(dns, ["uni/tn-a", "uni/tn-b", "uni/tn-c"]);
}

#[test]
fn missing_status_is_modified_and_flagged() {
    let n = parse_notification(
        r#"{"subscriptionId":["5"],"imdata":[{"fvBD":{"attributes":{"dn":"uni/tn-a/BD-b","descr":"x"}}}]}"#,
    )
    .unwrap();
    assert_eq!(n.mos[0].status, Status::Modified);
    assert!(n.mos[0].status_missing);
}

#[test]
fn tolerates_unknown_fields_and_non_string_values() {
    let n = parse_notification(
        r#"{"subscriptionId":"7","extra":{"a":[1,2]},"imdata":[{"l1PhysIf":{"attributes":{"dn":"sys/intf/phys-[eth1/1]","status":"modified","speed":100000,"up":true,"nothing":null,"nested":{"x":1}},"unknown":1}}]}"#,
    )
    .unwrap();
    let mo = &n.mos[0];
    assert_eq!(mo.get("speed"), Some("100000"));
    assert_eq!(mo.get("up"), Some("true"));
    assert_eq!(mo.get("nothing"), None);
    assert_eq!(mo.get("nested"), None);
}

#[test]
fn broken_entries_are_rejected_alone() {
    let n = parse_notification(
        r#"{"subscriptionId":["9"],"imdata":[42,{"fvTenant":{"attributes":{"status":"created"}}},{"fvTenant":"x"},{"fvTenant":{"attributes":{"dn":"uni/tn-ok","status":"created"}}}]}"#,
    )
    .unwrap();
    assert_eq!(n.mos.len(), 1);
    assert_eq!(n.mos[0].dn, "uni/tn-ok");
    let idx: Vec<_> = n.rejected.iter().map(|r| r.index).collect();
    assert_eq!(idx, [0, 1, 2]);
}

#[test]
fn malformed_frames_are_typed_errors() {
    for bad in [
        "",
        "   ",
        "not json",
        "{",
        "[]",
        "null",
        r#"{"imdata":[]}"#,
        r#"{"subscriptionId":[],"imdata":[]}"#,
        r#"{"subscriptionId":["1"]}"#,
        r#"{"subscriptionId":["1"],"imdata":{}}"#,
        r#"{"subscriptionId":["x1"],"imdata":[]}"#,
        r#"{"subscriptionId":[1.5],"imdata":[]}"#,
        r#"{"subscriptionId":["1"],"imdata":[]} trailing"#,
        "<imdata subscriptionId=\"1\"><fvTenant dn=\"a\"></imdata>",
        "<imdata>",
        "<?xml version=\"1.0\"?>",
    ] {
        let e = parse_notification(bad).unwrap_err();
        assert_eq!(e.what, "notification", "{bad:?}");
    }
}
