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
    prop::collection::vec(seg, 1..5).prop_map(|segs| segs.join("/"))
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
            }
            // The only refusal the generator can provoke is the length limit.
            Err(e) => prop_assert!(matches!(e, QueryError::TooLong(_)), "{e}"),
        }
    }

    #[test]
    fn injected_values_are_refused(
        q in query(),
        bad in prop::sample::select(vec!["?", "&", "#", "\n", " ", "\t", "%"]),
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
