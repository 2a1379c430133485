//! Read queries: paths, encodings, query-target, target-subtree-class, filters, rsp-subtree,
//! paging, limits, and the 400 answers.

use dme_sim::Flavor;

use crate::common::*;

fn dns(r: &Resp) -> Vec<String> {
    r.json()["imdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| entry(e).1["dn"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn class_mo_and_node_paths() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let a = c.get("/api/class/fvTenant.json").await;
    let b = c.get("/api/node/class/fvTenant.json").await;
    assert_eq!(a.status, 200);
    assert_eq!(dns(&a), dns(&b));
    assert!(a.total() >= 4);
    assert_eq!(a.total(), dns(&a).len());
    for d in ["/api/mo/uni/tn-acme.json", "/api/node/mo/uni/tn-acme.json"] {
        let r = c.get(d).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.total(), 1);
        let (cls, at) = entry(&r.json()["imdata"][0]);
        assert_eq!(cls, "fvTenant");
        assert_eq!(at["dn"], "uni/tn-acme");
        assert_eq!(at["status"], "");
        assert!(at.as_object().unwrap().values().all(|v| v.is_string()));
    }
    // class under a DN
    let r = c
        .get("/api/node/class/topology/pod-1/node-101/l1PhysIf.json")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.total(), 48);
    assert!(dns(&r)
        .iter()
        .all(|d| d.starts_with("topology/pod-1/node-101/sys/phys-[")));
    // a missing object is an empty answer, not an error
    let r = c.get("/api/mo/uni/tn-nope.json").await;
    assert_eq!((r.status, r.total()), (200, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn xml_answers() {
    let sim = start(cfg(Flavor::Nxos)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = c.get("/api/mo/sys/intf/phys-[eth1/2].xml").await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.starts_with(
            r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1"><l1PhysIf "#
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains(r#"dn="sys/intf/phys-[eth1/2]""#));
    assert!(r.headers["content-type"].to_str().unwrap().contains("xml"));
    let r = c.get("/api/class/fvTenant.xml").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text.contains(
            r#"<error code="400" text="Request failed, unresolved class for fvTenant"/>"#
        ),
        "{}",
        r.text
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_class_is_400() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = c.get("/api/class/fvTenantt.json").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error(),
        (
            "400".to_string(),
            "Request failed, unresolved class for fvTenantt".to_string()
        )
    );
    let r = c
        .get("/api/mo/uni.json?query-target=subtree&target-subtree-class=fvNope")
        .await;
    assert_eq!(r.status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn query_target_and_target_subtree_class() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let kids = c
        .get("/api/mo/uni/tn-acme.json?query-target=children")
        .await;
    assert!(
        dns(&kids)
            .iter()
            .all(|d| d.starts_with("uni/tn-acme/") && d.matches('/').count() == 2),
        "{:?}",
        dns(&kids)
    );
    let sub = c.get("/api/mo/uni/tn-acme.json?query-target=subtree").await;
    assert!(
        dns(&sub).contains(&"uni/tn-acme".to_string()),
        "subtree includes the object"
    );
    let truth = send(http().get(format!("{}/_sim/truth?dn=uni/tn-acme", sim.base_url()))).await;
    assert_eq!(sub.total(), truth.total());
    let epgs = c
        .get("/api/mo/uni/tn-acme.json?query-target=subtree&target-subtree-class=fvAEPg,fvBD")
        .await;
    assert!(epgs.total() > 0);
    for e in epgs.json()["imdata"].as_array().unwrap() {
        let (cls, _) = entry(e);
        assert!(cls == "fvAEPg" || cls == "fvBD");
    }
    let t = send(http().get(format!(
        "{}/_sim/truth?dn=uni/tn-acme&class=fvAEPg,fvBD",
        sim.base_url()
    )))
    .await;
    assert_eq!(epgs.total(), t.total());
    // class + subtree: every EPG under every tenant
    let all = c
        .get("/api/class/fvTenant.json?query-target=subtree&target-subtree-class=fvAEPg")
        .await;
    let t = send(http().get(format!("{}/_sim/truth?class=fvAEPg", sim.base_url()))).await;
    assert_eq!(all.total(), t.total());
    let bad = c.get("/api/mo/uni.json?query-target=everything").await;
    assert_eq!(bad.status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn filter_operators() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let all = c.get("/api/class/fvTenant.json").await.total();
    let q = |f: &str| format!("/api/class/fvTenant.json?query-target-filter={f}");
    let eq = c.get(&q("eq(fvTenant.name,%22acme%22)")).await;
    assert_eq!(dns(&eq), vec!["uni/tn-acme"]);
    assert_eq!(
        c.get(&q("ne(fvTenant.name,%22acme%22)")).await.total(),
        all - 1
    );
    let w = c.get(&q("wcard(fvTenant.name,%22^ac%22)")).await;
    assert!(dns(&w).iter().all(|d| d.starts_with("uni/tn-ac")) && w.total() >= 1);
    assert_eq!(
        c.get(&q(
            "and(eq(fvTenant.name,%22acme%22),eq(fvTenant.descr,%22%22))"
        ))
        .await
        .total(),
        1
    );
    assert_eq!(
        c.get(&q(
            "or(eq(fvTenant.name,%22acme%22),eq(fvTenant.name,%22common%22))"
        ))
        .await
        .total(),
        2
    );
    assert_eq!(
        c.get(&q("not(eq(fvTenant.name,%22acme%22))")).await.total(),
        all - 1
    );
    // dn is filterable like any property
    let f = c
        .get("/api/class/l1PhysIf.json?query-target-filter=wcard(l1PhysIf.dn,%22node-101/%22)")
        .await;
    assert_eq!(f.total(), 48);
    assert!(dns(&f).iter().all(|d| d.contains("/node-101/")));
    // strict like the devices: ( ) , | must travel literally, only " is encoded
    let r = c.get(&q("eq%28fvTenant.name%2C%22acme%22%29")).await;
    assert_eq!(r.status, 400);
    assert!(r.error().1.contains("over-encoded"), "{}", r.text);
    // a literal space (encoded as %20) inside a quoted value is fine
    assert_eq!(
        c.get(&q("eq(fvTenant.descr,%22a%20b%22)")).await.status,
        200
    );
    for bad in [
        "eq(fvTenant.name",
        "foo(fvTenant.name,%22x%22)",
        "and()",
        "eq(name,%22x%22)",
    ] {
        let r = c.get(&q(bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.error().0, "400");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn rsp_subtree_children_and_full_nest_with_rn() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = c.get("/api/mo/uni/tn-acme.json?rsp-subtree=children").await;
    let v = r.json();
    let t = &v["imdata"][0]["fvTenant"];
    let kids = t["children"].as_array().expect("children");
    assert!(!kids.is_empty());
    for k in kids {
        let (_, a) = entry(k);
        assert!(a.get("dn").is_none(), "nested children carry rn, not dn");
        assert!(a["rn"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(k
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .get("children")
            .is_none());
    }
    let r = c
        .get("/api/mo/uni/tn-acme.json?rsp-subtree=full&rsp-subtree-class=fvRsBd")
        .await;
    let s = r.text;
    assert!(s.contains("\"fvRsBd\""));
    assert!(
        s.contains("\"fvAEPg\""),
        "ancestors of wanted classes are kept"
    );
    assert!(!s.contains("\"fvSubnet\""));
    let r = c
        .get("/api/mo/uni/tn-acme.json?rsp-prop-include=naming-only")
        .await;
    assert_eq!(keys(&r.attrs(0)), vec!["dn", "name", "status"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_and_limits() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.max_result = 100;
    let sim = start(cfg).await;
    let c = Client::login(&sim.base_url()).await;
    let p0 = c.get("/api/class/fvTenant.json?page-size=3&page=0").await;
    let p1 = c.get("/api/class/fvTenant.json?page-size=3&page=1").await;
    let all = c.get("/api/class/fvTenant.json").await;
    assert_eq!(p0.total(), all.total(), "totalCount counts every match");
    assert_eq!(dns(&p0).len(), 3);
    let mut joined = dns(&p0);
    joined.extend(dns(&p1));
    assert_eq!(joined, dns(&all)[..joined.len()].to_vec());
    let far = c
        .get("/api/class/fvTenant.json?page-size=3&page=999999")
        .await;
    assert_eq!((far.status, dns(&far).len()), (200, 0));
    let huge = c
        .get("/api/class/fvTenant.json?page-size=99999999999999&page=99999999999999")
        .await;
    assert_eq!(huge.status, 200);
    for bad in ["page-size=abc", "page-size=0", "page=-1", "page-size=1e9"] {
        assert_eq!(
            c.get(&format!("/api/class/fvTenant.json?{bad}"))
                .await
                .status,
            400,
            "{bad}"
        );
    }
    let big = c.get("/api/class/l1PhysIf.json").await;
    assert_eq!(big.status, 400);
    assert_eq!(
        big.error().1,
        "Unable to process the query, result dataset is too big"
    );
    assert_eq!(
        c.get("/api/class/l1PhysIf.json?page-size=50").await.status,
        200
    );
    let desc = c
        .get("/api/class/fvTenant.json?order-by=fvTenant.name|desc")
        .await;
    let mut sorted = dns(&desc);
    sorted.sort();
    sorted.reverse();
    assert_eq!(dns(&desc), sorted);
    sim.shutdown().await;
}
