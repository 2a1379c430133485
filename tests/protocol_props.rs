//! Property tests: no input makes a parser panic, and rendered queries parse back to themselves.
#![cfg(not(target_arch = "wasm32"))]

use dme_events::protocol::*;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    r#"{"subscriptionId":["72057598349803551","72057598349803552"],"imdata":[{"vzBrCP":{"attributes":{"dn":"uni/tn-TenantA/brc-test","status":"created","name":"test","rn":""}}},{"fvBD":{"attributes":{"dn":"uni/tn-CL/BD-CLbd","status":"modified","configIssues":""}}}]}"#,
    r#"{"subscriptionId":["18374686685813276673"],"imdata":[{"l1PhysIf":{"attributes":{"childAction":"","descr":"test","dn":"sys/intf/phys-[eth1/1]","modTs":"2019-10-18T19:42:29.446+00:00","rn":"","status":"modified"}}}]}"#,
    r#"<?xml version="1.0" encoding="UTF-8"?><imdata subscriptionId="72342148523360257"><fvAEPg dn="uni/tn-test/ap-test/epg-web" status="created" scope="2686976"/></imdata>"#,
    r#"{"totalCount":"1","subscriptionId":"72057598349803562","imdata":[{"fvTenant":{"attributes":{"dn":"uni/tn-a","status":""},"children":[{"fvBD":{"attributes":{"rn":"BD-x"}}}]}}]}"#,
    r#"{"totalCount":"1","imdata":[{"aaaLogin":{"attributes":{"token":"abc","refreshTimeoutSeconds":"600","maximumLifetimeSeconds":"86400"}}}]}"#,
    r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"403","text":"Token was invalid (Error: Token timeout)"}}}]}"#,
];

/// Every parser on one input: none may panic, whatever it returns.
fn parse_all(s: &str) {
    let _ = parse_notification(s);
    let _ = parse_mo(s);
    for status in [200, 400, 403, 405, 503] {
        let _ = parse_login(status, s);
        let _ = parse_query(status, s);
        let _ = parse_refresh(status, s);
        let _ = parse_error(status, s);
    }
    let _ = Query::parse(s);
}

/// A mutation of a seed: delete, insert, replace or duplicate a byte range.
fn mutate(seed: &str, ops: &[(u8, usize, usize, u8)]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for &(op, at, len, byte) in ops {
        if b.is_empty() {
            break;
        }
        let at = at % b.len();
        let end = (at + len % 16).min(b.len());
        match op % 4 {
            0 => {
                b.drain(at..end);
            }
            1 => b.insert(at, byte),
            2 => b[at] = byte,
            _ => {
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn class_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{0,15}"
}

fn dn() -> impl Strategy<Value = String> {
    let seg = "[A-Za-z0-9][A-Za-z0-9_.:+=-]{0,10}(\\[[A-Za-z0-9./:]{1,12}\\])?";
    // A '/' inside brackets still splits the URL path: no empty, '.' or '..' piece (refused).
    prop::collection::vec(seg, 1..5)
        .prop_map(|segs| segs.join("/"))
        .prop_filter("no empty or dot path segment", |d| {
            d.split('/').all(|s| !matches!(s, "" | "." | ".."))
        })
}

fn filter() -> impl Strategy<Value = String> {
    let leaf = (
        prop::sample::select(vec!["eq", "ne", "wcard", "gt", "lt"]),
        class_name(),
        "[a-zA-Z]{1,8}",
        "[ -~&&[^\"?&#]]{0,12}",
    )
        .prop_map(|(op, c, p, v)| format!("{op}({c}.{p},\"{v}\")"));
    leaf.prop_recursive(3, 8, 3, |inner| {
        (
            prop::sample::select(vec!["and", "or", "not"]),
            prop::collection::vec(inner, 1..3),
        )
            .prop_map(|(op, xs)| format!("{op}({})", xs.join(",")))
    })
}

fn query() -> impl Strategy<Value = Query> {
    let target = prop_oneof![
        (class_name(), prop::option::of(dn()))
            .prop_map(|(class, scope)| Target::Class { class, scope }),
        dn().prop_map(|dn| Target::Dn { dn }),
    ];
    let opts = (
        prop::option::of(prop::sample::select(vec![
            QueryTarget::SelfOnly,
            QueryTarget::Children,
            QueryTarget::Subtree,
        ])),
        prop::collection::vec(class_name(), 0..3),
        prop::option::of(filter()),
        prop::option::of(prop::sample::select(vec![
            RspSubtree::No,
            RspSubtree::Children,
            RspSubtree::Full,
        ])),
        prop::collection::vec(class_name(), 0..3),
        prop::collection::vec("[a-z][a-z-]{0,10}", 0..3),
        prop::option::of(prop::sample::select(vec![
            RspPropInclude::All,
            RspPropInclude::NamingOnly,
            RspPropInclude::ConfigOnly,
        ])),
        prop::collection::vec("[a-zA-Z]{1,6}\\.[a-zA-Z]{1,6}(\\|(asc|desc))?", 0..2),
        (
            prop::option::of(0u32..1000),
            prop::option::of(1u32..100_000),
            prop::option::of(1u32..86_400),
            prop::option::of(any::<bool>()),
        ),
    );
    (target, any::<bool>(), any::<bool>(), opts).prop_map(|(target, node, xml, o)| {
        let node = node || matches!(target, Target::Class { scope: Some(_), .. });
        Query {
            target,
            node,
            format: if xml { Format::Xml } else { Format::Json },
            options: QueryOptions {
                query_target: o.0,
                target_subtree_class: o.1,
                query_target_filter: o.2,
                rsp_subtree: o.3,
                rsp_subtree_class: o.4,
                rsp_subtree_include: o.5,
                rsp_prop_include: o.6,
                order_by: o.7,
                page: o.8 .0,
                page_size: o.8 .1,
                refresh_timeout: o.8 .2,
                subscription: o.8 .3,
            },
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        parse_all(&s);
    }

    #[test]
    fn arbitrary_json_shaped_strings_never_panic(s in r#"[{}\[\]":,a-z0-9 <>/=]{0,200}"#) {
        parse_all(&s);
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in prop::sample::select(SEEDS),
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 1..8),
    ) {
        parse_all(&mutate(seed, &ops));
    }

    #[test]
    fn rendered_queries_round_trip(q in query()) {
        match q.render() {
            Ok(path) => {
                let back = Query::parse(&path).expect("a rendered query parses");
                prop_assert_eq!(&back, &q);
                prop_assert_eq!(back.render().unwrap(), path.clone());
                prop_assert!(!path.contains(' ') && !path.contains('#') && !path.contains('"'));
                prop_assert_eq!(path.matches('?').count(), usize::from(path.contains('=')));
                let before_query = path.split('?').next().unwrap_or_default();
                prop_assert!(before_query.split('/').all(|s| s != "." && s != ".."), "{}", path);
            }
            // The only refusal the generator can provoke is the length limit.
            Err(e) => prop_assert!(matches!(e, QueryError::TooLong(_)), "{e}"),
        }
    }

    #[test]
    fn injected_values_are_refused(
        q in query(),
        bad in prop::sample::select(vec!["?", "&", "#", "\n", " ", "\t", "%", "[/../]", "[a/./b]", "/../"]),
        at in any::<prop::sample::Index>(),
    ) {
        let mut q = q;
        match &mut q.target {
            Target::Dn { dn } | Target::Class { scope: Some(dn), .. } => {
                let i = at.index(dn.len() + 1);
                let i = (0..=i).rev().find(|i| dn.is_char_boundary(*i)).unwrap_or(0);
                dn.insert_str(i, bad);
            }
            Target::Class { class, .. } => class.push_str(bad),
        }
        prop_assert!(q.render().is_err());
    }

    #[test]
    fn store_matches_a_simple_model(ops in prop::collection::vec((0u8..3, 0u8..4, 0u8..3, 0u8..3), 0..60)) {
        let mut store = Store::new();
        let mut model: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> = Default::default();
        for (kind, obj, attr, val) in ops {
            let dn = format!("uni/tn-{obj}");
            let (k, v) = (format!("a{attr}"), format!("v{val}"));
            let status = [Status::Created, Status::Modified, Status::Deleted][kind as usize];
            let mo = Mo::new("fvTenant", dn.clone(), status).with(k.clone(), v.clone());
            store.apply(&mo);
            match status {
                Status::Deleted => { model.remove(&dn); }
                Status::Created | Status::Snapshot => {
                    model.insert(dn.clone(), mo.attributes.clone());
                }
                Status::Modified => {
                    model.entry(dn.clone()).or_insert_with(|| mo.attributes.clone()).insert(k, v);
                }
            }
        }
        let got: std::collections::BTreeMap<_, _> = store.iter().map(|m| (m.dn.clone(), m.attributes.clone())).collect();
        prop_assert_eq!(got, model);
    }
}

// ---------------------------------------------------------------------------------------------
// Every parser against the real captures of tests/fixtures (mutated), and generated documents
// that must read back exactly. The cargo-fuzz targets in fuzz/ check the same invariants for
// longer (scripts/fuzz.sh).

mod capture_support;
use capture_support::captures;

fn capture_bodies(kinds: &[&str]) -> Vec<(u16, String)> {
    captures()
        .into_iter()
        .filter(|c| kinds.contains(&c.kind.as_str()))
        .map(|c| (c.http_status.unwrap_or(200), c.body))
        .collect()
}

/// What every parsed MO satisfies, at every depth.
fn check_mo(mo: &Mo) -> Result<(), TestCaseError> {
    prop_assert!(!mo.dn.is_empty());
    prop_assert_eq!(mo.attributes.get("dn"), Some(&mo.dn));
    prop_assert!(!mo.attributes.contains_key("status"));
    prop_assert!(!mo.status_missing || mo.status == Status::Modified);
    for c in &mo.children {
        check_mo(c)?;
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), TestCaseError> {
    prop_assert!(!id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_digit()));
    Ok(())
}

/// Outside 2xx an HTTP answer is always the device's error, with that status.
fn check_http_error(status: u16, e: &ResponseError) -> Result<(), TestCaseError> {
    if !(200..300).contains(&status) {
        prop_assert!(
            matches!(e, ResponseError::Device(d) if d.http_status == status),
            "{e:?}"
        );
    }
    Ok(())
}

/// Runs every parser on one input and checks what each returns.
fn check_all(status: u16, s: &str) -> Result<(), TestCaseError> {
    match parse_notification(s) {
        Ok(n) => {
            prop_assert!(!n.subscription_ids.is_empty());
            for id in &n.subscription_ids {
                check_id(id)?;
            }
            for mo in &n.mos {
                check_mo(mo)?;
            }
        }
        Err(e) => prop_assert_eq!(e.what, "notification"),
    }
    if let Ok(mo) = parse_mo(s) {
        check_mo(&mo)?;
    }
    match parse_login(status, s) {
        Ok(l) => {
            prop_assert!((200..300).contains(&status));
            prop_assert!(!l.token.is_empty() && !l.token.contains(char::is_whitespace));
            prop_assert!(l.refresh_timeout_secs > 0);
        }
        Err(e) => check_http_error(status, &e)?,
    }
    match parse_query(status, s) {
        Ok(r) => {
            prop_assert!((200..300).contains(&status));
            if let Some(id) = &r.subscription_id {
                check_id(id)?;
            }
            for mo in &r.mos {
                check_mo(mo)?;
            }
        }
        Err(e) => check_http_error(status, &e)?,
    }
    match parse_refresh(status, s) {
        Ok(()) => prop_assert!((200..300).contains(&status)),
        Err(e) => check_http_error(status, &e)?,
    }
    let e = parse_error(status, s);
    prop_assert_eq!(e.http_status, status);
    // A body that is an error envelope is never a successful 2xx answer.
    if parse_error(200, s).code.is_some() {
        prop_assert!(matches!(
            parse_refresh(200, s),
            Err(ResponseError::Device(_))
        ));
        prop_assert!(matches!(parse_query(200, s), Err(ResponseError::Device(_))));
        prop_assert!(matches!(parse_login(200, s), Err(ResponseError::Device(_))));
    }
    Ok(())
}

/// A JSON entry for an MO as a device writes it (status among the attributes).
fn mo_json(mo: &Mo) -> serde_json::Value {
    let mut attrs: serde_json::Map<String, serde_json::Value> = mo
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    attrs.insert("status".into(), mo.status.as_str().into());
    let mut body = serde_json::json!({ "attributes": attrs });
    if !mo.children.is_empty() {
        body["children"] = mo.children.iter().map(mo_json).collect();
    }
    serde_json::json!({ mo.class_name.clone(): body })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An XML element for an MO as a device writes it.
fn mo_xml(mo: &Mo) -> String {
    let mut s = format!("<{}", mo.class_name);
    for (k, v) in &mo.attributes {
        s.push_str(&format!(" {k}=\"{}\"", xml_escape(v)));
    }
    s.push_str(&format!(" status=\"{}\"", mo.status.as_str()));
    if mo.children.is_empty() {
        s.push_str("/>");
    } else {
        s.push('>');
        for c in &mo.children {
            s.push_str(&mo_xml(c));
        }
        s.push_str(&format!("</{}>", mo.class_name));
    }
    s
}

fn id() -> impl Strategy<Value = String> {
    "[1-9][0-9]{0,19}"
}

fn attr_value() -> impl Strategy<Value = String> {
    // Printable text including markup and JSON-significant characters, and some non-ASCII.
    "[ -~éü€\u{1F600}]{0,16}"
}

/// A generated MO: class, dn, status and attributes as devices send them.
fn gen_mo(statuses: &'static [Status]) -> impl Strategy<Value = Mo> {
    (
        class_name(),
        dn(),
        prop::sample::select(statuses),
        prop::collection::btree_map("[a-z][A-Za-z0-9]{0,10}", attr_value(), 0..6),
    )
        .prop_map(|(class, dn, status, attrs)| {
            let mut mo = Mo::new(class, dn, status);
            for (k, v) in attrs {
                if k != "dn" && k != "status" {
                    mo.attributes.insert(k, v);
                }
            }
            mo
        })
}

const PUSH_STATUSES: &[Status] = &[Status::Created, Status::Modified, Status::Deleted];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Mutated real payloads of every kind through every parser: no panic, a typed answer, and
    /// whatever parses keeps the invariants.
    #[test]
    fn mutated_captures_through_every_parser(
        which in any::<prop::sample::Index>(),
        status in prop::sample::select(vec![200u16, 204, 400, 401, 403, 405, 500, 503]),
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 0..6),
    ) {
        let all = capture_bodies(&[
            "login-response", "error-response", "refresh-response", "subscribe-response",
            "notification", "mo",
        ]);
        let (_, body) = &all[which.index(all.len())];
        check_all(status, &mutate(body, &ops))?;
    }

    #[test]
    fn arbitrary_input_through_every_parser(
        status in 100u16..600,
        s in prop_oneof![".{0,200}", r#"[{}\[\]":,a-zA-Z0-9 <>/=?]{0,200}"#],
    ) {
        check_all(status, &s)?;
    }

    /// Generated pushes, JSON and XML, read back exactly: every id, every object, in order.
    #[test]
    fn generated_notifications_read_back(
        ids in prop::collection::vec(id(), 1..5),
        mos in prop::collection::vec(gen_mo(PUSH_STATUSES), 0..6),
        xml in any::<bool>(),
    ) {
        let frame = if xml {
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><imdata subscriptionId="{}">{}</imdata>"#,
                ids.join(","),
                mos.iter().map(mo_xml).collect::<String>()
            )
        } else {
            serde_json::json!({"subscriptionId": ids, "imdata": mos.iter().map(mo_json).collect::<Vec<_>>()}).to_string()
        };
        let n = parse_notification(&frame).map_err(|e| TestCaseError::fail(format!("{e}: {frame}")))?;
        prop_assert_eq!(n.format, if xml { Format::Xml } else { Format::Json });
        prop_assert_eq!(n.subscription_ids, ids);
        prop_assert_eq!(n.mos, mos);
        prop_assert!(n.rejected.is_empty());
    }

    /// Generated subscribe answers with nested children (identified by `rn` only), JSON and XML.
    #[test]
    fn generated_subscribe_answers_read_back(
        sub in id(),
        roots in prop::collection::vec(
            (gen_mo(&[Status::Snapshot]), prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,8}", attr_value()), 0..3)),
            0..4,
        ),
        xml in any::<bool>(),
    ) {
        // Children carry only an rn; the parser gives them parent dn + "/" + rn.
        let mut written = Vec::new();
        let mut expected = Vec::new();
        for (mut root, kids) in roots {
            let mut exp = root.clone();
            for (i, (rn, v)) in kids.into_iter().enumerate() {
                let rn = format!("{rn}{i}");
                let mut w = Mo::new("fvBD", "", Status::Snapshot).with("rn", rn.clone()).with("descr", v);
                w.attributes.remove("dn");
                let mut e = Mo::new("fvBD", format!("{}/{rn}", root.dn), Status::Snapshot).with("rn", rn).with("descr", w.attributes["descr"].clone());
                e.attributes.insert("dn".into(), e.dn.clone());
                root.children.push(w);
                exp.children.push(e);
            }
            written.push(root);
            expected.push(exp);
        }
        let body = if xml {
            format!(
                r#"<imdata totalCount="{}" subscriptionId="{sub}">{}</imdata>"#,
                written.len(),
                written.iter().map(mo_xml).collect::<String>()
            )
        } else {
            serde_json::json!({"totalCount": written.len().to_string(), "subscriptionId": sub, "imdata": written.iter().map(mo_json).collect::<Vec<_>>()}).to_string()
        };
        let r = parse_query(200, &body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(r.subscription_id, Some(sub));
        prop_assert_eq!(r.total_count, Some(expected.len() as u64));
        prop_assert_eq!(r.mos, expected);
        prop_assert!(r.rejected.is_empty());
    }

    /// Generated login and aaaRefresh answers (APIC envelope, NX-OS bare object, XML).
    #[test]
    fn generated_logins_read_back(
        token in "[A-Za-z0-9+/=.-]{1,120}",
        refresh in 1u64..100_000,
        lifetime in prop::option::of(1u64..1_000_000),
        url_token in prop::option::of("[A-Za-z0-9]{0,20}"),
        version in "[0-9]\\.[0-9]\\([0-9][a-z]\\)",
        shape in 0u8..3,
    ) {
        let mut attrs = vec![
            ("token", token.clone()),
            ("refreshTimeoutSeconds", refresh.to_string()),
            ("version", version.clone()),
            ("creationTime", "1700000000".to_owned()),
        ];
        if let Some(l) = lifetime {
            attrs.push(("maximumLifetimeSeconds", l.to_string()));
        }
        if let Some(u) = &url_token {
            attrs.push(("urlToken", u.clone()));
        }
        let map: serde_json::Map<_, _> = attrs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str()))).collect();
        let body = match shape {
            0 => serde_json::json!({"totalCount": "1", "imdata": [{"aaaLogin": {"attributes": map}}]}).to_string(),
            1 => serde_json::json!({"aaaLogin": {"attributes": map}}).to_string(),
            _ => format!(
                "<imdata totalCount=\"1\"><aaaLogin {}/></imdata>",
                attrs.iter().map(|(k, v)| format!("{k}=\"{}\"", xml_escape(v))).collect::<Vec<_>>().join(" ")
            ),
        };
        let l = parse_login(200, &body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(&l.token, &token);
        prop_assert_eq!(l.refresh_timeout_secs, refresh);
        prop_assert_eq!(l.maximum_lifetime_secs, lifetime);
        prop_assert_eq!(l.creation_time, Some(1_700_000_000));
        prop_assert_eq!(l.url_token.as_deref(), url_token.as_deref().filter(|u| !u.is_empty()));
        prop_assert_eq!(l.version.as_deref(), Some(version.as_str()));
        if token.len() >= 12 {
            let shown = format!("{l:?}");
            prop_assert!(!shown.contains(&token));
        }
    }

    /// Error envelopes (JSON and XML) keep the device's code and text verbatim under every
    /// status, classify as the status and text say, and fail refresh, query and login alike.
    #[test]
    fn error_envelopes_keep_code_and_text(
        status in prop::sample::select(vec![400u16, 401, 403, 404, 405, 500, 503]),
        code in prop::option::of("[0-9]{3}"),
        text in attr_value(),
        phrase in prop::option::of(prop::sample::select(vec![
            "unable to locate opened web socket", "Subscription refresh timeout",
            "unresolved class for fvTenantt", "result dataset is too big", "Token timeout",
        ])),
        xml in any::<bool>(),
    ) {
        let text = format!("{text}{}", phrase.unwrap_or(""));
        let body = if xml {
            let code = code.as_ref().map(|c| format!(" code=\"{c}\"")).unwrap_or_default();
            format!("<imdata totalCount=\"1\"><error{code} text=\"{}\"/></imdata>", xml_escape(&text))
        } else {
            let mut a = serde_json::Map::new();
            if let Some(c) = &code {
                a.insert("code".into(), c.as_str().into());
            }
            a.insert("text".into(), text.as_str().into());
            serde_json::json!({"totalCount": "1", "imdata": [{"error": {"attributes": a}}]}).to_string()
        };
        let e = parse_error(status, &body);
        prop_assert_eq!(&e, &DeviceError::classify(status, code.clone(), text.clone()));
        if status == 405 || text.to_ascii_lowercase().contains("unable to locate opened web socket") {
            prop_assert_eq!(e.kind, ErrorKind::SocketNotFound);
        }
        for r in [
            parse_refresh(status, &body).err(),
            parse_query(status, &body).err(),
            parse_login(status, &body).err(),
        ] {
            prop_assert_eq!(r, Some(ResponseError::Device(e.clone())));
        }
        // Under 200 the envelope still fails every answer, with the device's code as the status.
        if code.is_some() {
            prop_assert!(matches!(parse_refresh(200, &body), Err(ResponseError::Device(_))));
        }
    }

    /// Successful refresh answers in every shape seen, and nothing else in them matters.
    #[test]
    fn refresh_answers_succeed(status in 200u16..300, extra in prop::option::of("[a-z]{1,8}"), ws in "[ \n\t]{0,3}", shape in 0u8..4) {
        let body = match shape {
            0 => String::new(),
            1 => r#"{"imdata":[]}"#.to_owned(),
            2 => format!(r#"{{"totalCount":"0","imdata":[]{}}}"#, extra.map(|e| format!(r#","{e}":1"#)).unwrap_or_default()),
            _ => r#"<imdata totalCount="0"/>"#.to_owned(),
        };
        prop_assert_eq!(parse_refresh(status, &format!("{ws}{body}{ws}")), Ok(()));
    }

    /// Whatever `Query::parse` accepts renders to a path that parses back to the same query.
    #[test]
    fn parsed_queries_render_and_parse_back(s in prop_oneof![
        ".{0,80}",
        "/api/(node/)?(class|mo)/[a-zA-Z0-9/\\[\\].-]{1,30}\\.(json|xml)(\\?[a-z-]{1,20}=[a-zA-Z0-9,|.%()-]{0,20}(&[a-z-]{1,20}=[a-z0-9]{0,5})?)?",
    ]) {
        if let Ok(q) = Query::parse(&s) {
            let path = q.render().expect("a parsed query renders");
            prop_assert_eq!(Query::parse(&path).expect("and parses back"), q);
        }
    }

    /// Values that would add a parameter or a fragment are refused in every option that takes
    /// free text, not only in DNs and class names.
    #[test]
    fn injection_refused_in_every_option(
        bad in prop::sample::select(vec!["&page=1", "?x", "#f", "&", "\n", "\r", "\u{0}"]),
        which in 0u8..5,
        at in any::<prop::sample::Index>(),
    ) {
        let insert = |s: &str| {
            let i = at.index(s.len() + 1);
            let i = (0..=i).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            format!("{}{bad}{}", &s[..i], &s[i..])
        };
        let mut q = Query::class("fvBD").subscribe();
        match which {
            0 => q.options.query_target_filter = Some(insert(r#"eq(fvBD.name,"web")"#)),
            1 => q.options.target_subtree_class = vec![insert("fvSubnet")],
            2 => q.options.rsp_subtree_class = vec![insert("fvSubnet")],
            3 => q.options.rsp_subtree_include = vec![insert("faults")],
            _ => q.options.order_by = vec![insert("fvBD.name|desc")],
        }
        prop_assert!(q.render().is_err(), "{:?}", q);
    }

    /// Sparse deltas with an empty `rn` (every push carries one) never clobber the held rn.
    #[test]
    fn empty_rn_in_deltas_never_clobbers(
        rn in "[a-z]{1,8}-[a-z0-9]{1,8}",
        deltas in prop::collection::vec(prop::collection::btree_map("[a-z]{1,6}", "[a-z0-9]{0,4}", 0..4), 1..6),
    ) {
        let mut store = Store::new();
        store.apply(&Mo::new("fvTenant", "uni/tn-a", Status::Snapshot).with("rn", rn.clone()));
        for d in deltas {
            let mut mo = Mo::new("fvTenant", "uni/tn-a", Status::Modified).with("rn", "");
            for (k, v) in d {
                if k != "rn" && k != "dn" {
                    mo.attributes.insert(k, v);
                }
            }
            store.apply(&mo);
            prop_assert_eq!(store.get("uni/tn-a").and_then(|m| m.get("rn")), Some(rn.as_str()));
        }
    }
}
