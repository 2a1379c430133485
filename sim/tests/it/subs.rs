//! Subscriptions: 405 without a socket, ids, snapshots, refresh, expiry, refresh-timeout, and
//! the pushes writes produce (created / sparse modified / minimal deleted, one frame per change
//! listing every matching id, filters, XML frames, session isolation).

use std::time::Duration;

use dme_sim::Flavor;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn subscribe_without_socket_is_405_verbatim() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = c.get("/api/class/fvTenant.json?subscription=yes").await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.text,
        capture("apic-subscribe-without-socket")["body"]
            .as_str()
            .unwrap()
    );
    // another session's socket does not count
    let other = Client::login(&sim.base_url()).await;
    let _ws = other.socket().await;
    assert_eq!(
        c.get("/api/class/fvTenant.json?subscription=yes")
            .await
            .status,
        405
    );
    // plain reads need no socket
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn apic_subscribe_scalar_id_above_2_53_and_snapshot() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let _ws = c.socket().await;
    let (r, id) = c.subscribe("/api/class/vzBrCP.json").await;
    let n: u64 = id.parse().unwrap();
    assert!(n > (1u64 << 53), "{n}");
    let v = r.json();
    let cap: serde_json::Value =
        serde_json::from_str(capture("apic-subscribe-vzbrcp")["body"].as_str().unwrap()).unwrap();
    assert_eq!(keys(&v), keys(&cap));
    assert!(v["subscriptionId"].is_string());
    let total = r.total();
    assert!(total > 0);
    assert_eq!(v["imdata"].as_array().unwrap().len(), total);
    let (cls, a) = entry(&v["imdata"][0]);
    assert_eq!(cls, "vzBrCP");
    assert_eq!(a["status"], "");
    for k in keys(&cap["imdata"][0]["vzBrCP"]["attributes"]) {
        assert!(a.get(&k).is_some(), "vzBrCP lacks {k}");
    }
    // ids grow
    let (_, id2) = c.subscribe("/api/class/fvTenant.json").await;
    assert!(id2.parse::<u64>().unwrap() > n);
    sim.shutdown().await;
}

#[tokio::test]
async fn nxos_subscribe_id_above_2_63() {
    let sim = start(cfg(Flavor::Nxos)).await;
    let c = Client::login(&sim.base_url()).await;
    let _ws = c.socket().await;
    let (r, id) = c.subscribe("/api/mo/sys/intf/phys-[eth1/1].json").await;
    let n: u64 = id.parse().unwrap();
    assert!(n > (1u64 << 63), "{n}");
    let cap: serde_json::Value =
        serde_json::from_str(capture("nxos-subscribe-mo")["body"].as_str().unwrap()).unwrap();
    assert_eq!(keys(&r.json()), keys(&cap));
    assert_eq!(r.total(), 1);
    let (cls, a) = entry(&r.json()["imdata"][0]);
    assert_eq!(cls, "l1PhysIf");
    assert_eq!(a["dn"], "sys/intf/phys-[eth1/1]");
    sim.shutdown().await;
}

#[tokio::test]
async fn subscription_refresh_ok_unknown_and_bad() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let _ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    let r = c
        .get(&format!("/api/subscriptionRefresh.json?id={id}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, capture("apic-refresh-ok")["body"].as_str().unwrap());
    let cap = capture("apic-refresh-expired");
    for q in ["id=72057598349803000", "id=abc", ""] {
        let r = c.get(&format!("/api/subscriptionRefresh.json?{q}")).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.text, cap["body"].as_str().unwrap());
    }
    // another session cannot refresh it
    let other = Client::login(&sim.base_url()).await;
    assert_eq!(
        other
            .get(&format!("/api/subscriptionRefresh.json?id={id}"))
            .await
            .status,
        400
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unrefreshed_subscription_expires_and_stops_pushing() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.sub_lifetime = Some(Duration::from_millis(1000));
    let sim = start(cfg).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, dead) = c.subscribe("/api/class/fvTenant.json").await;
    let (_, alive) = c
        .subscribe("/api/class/fvTenant.json?query-target=self")
        .await;
    for _ in 0..5 {
        sleep_ms(250).await;
        assert_eq!(
            c.get(&format!("/api/subscriptionRefresh.json?id={alive}"))
                .await
                .status,
            200
        );
    }
    c.write(
        "uni/tn-late",
        json!({"fvTenant":{"attributes":{"name":"late"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(
        ids(&f),
        vec![alive.clone()],
        "only the refreshed subscription still pushes"
    );
    let r = c
        .get(&format!("/api/subscriptionRefresh.json?id={dead}"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error().1, "Subscription refresh timeout");
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_timeout_is_honoured_on_apic_only() {
    for (flavor, survives) in [(Flavor::Apic, true), (Flavor::Nxos, false)] {
        let mut cfg = cfg(flavor);
        cfg.sub_lifetime = Some(Duration::from_millis(600));
        let sim = start(cfg).await;
        let c = Client::login(&sim.base_url()).await;
        let _ws = c.socket().await;
        let path = if flavor == Flavor::Apic {
            "/api/class/fvTenant.json?refresh-timeout=30"
        } else {
            "/api/class/l2BD.json?refresh-timeout=30"
        };
        let (_, id) = c.subscribe(path).await;
        sleep_ms(1000).await;
        let r = c
            .get(&format!("/api/subscriptionRefresh.json?id={id}"))
            .await;
        assert_eq!(r.status == 200, survives, "{flavor:?}: {}", r.text);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn default_lifetimes_per_flavor() {
    for (flavor, secs) in [(Flavor::Apic, 60), (Flavor::Nxos, 90)] {
        let sim = start(cfg(flavor)).await;
        let c = Client::login(&sim.base_url()).await;
        let _ws = c.socket().await;
        let path = if flavor == Flavor::Apic {
            "/api/class/fvTenant.json"
        } else {
            "/api/class/l2BD.json"
        };
        c.subscribe(path).await;
        let s = stats(&sim.base_url()).await;
        assert_eq!(s["subscriptions"][0]["lifetime_s"], secs);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn created_modified_deleted_push_shapes() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    c.write(
        "uni/tn-shape",
        json!({"fvTenant":{"attributes":{"name":"shape","status":"created,modified"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id.clone()]);
    assert!(f.get("totalCount").is_none(), "pushes carry no totalCount");
    let (cls, a) = entry(&f["imdata"][0]);
    assert_eq!(cls, "fvTenant");
    assert_eq!(a["status"], "created");
    assert_eq!(a["rn"], "");
    assert_eq!(a["dn"], "uni/tn-shape");
    let cap: serde_json::Value = serde_json::from_str(
        capture("apic-fvtenant-created-mo")["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for k in keys(&cap["fvTenant"]["attributes"]) {
        assert!(a.get(&k).is_some(), "created push lacks {k}");
    }
    // sparse modified
    c.write(
        "uni/tn-shape",
        json!({"fvTenant":{"attributes":{"descr":"hello"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    let (_, a) = entry(&f["imdata"][0]);
    assert_eq!(
        keys(&a),
        vec!["childAction", "descr", "dn", "modTs", "rn", "status"]
    );
    assert_eq!(a["status"], "modified");
    assert_eq!(a["descr"], "hello");
    let cap: serde_json::Value =
        serde_json::from_str(capture("nxos-l1physif-modified")["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        keys(&a),
        keys(&entry(&cap["imdata"][0]).1),
        "same shape as the captured sparse delta"
    );
    // writing the same value again pushes nothing
    c.write(
        "uni/tn-shape",
        json!({"fvTenant":{"attributes":{"descr":"hello"}}}),
    )
    .await;
    assert!(ws.quiet(Duration::from_millis(300)).await);
    // deleted
    c.write(
        "uni/tn-shape",
        json!({"fvTenant":{"attributes":{"status":"deleted"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    let (_, a) = entry(&f["imdata"][0]);
    let cap: serde_json::Value = serde_json::from_str(
        capture("apic-fvtenant-deleted-4ids")["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys(&a), keys(&entry(&cap["imdata"][0]).1));
    assert_eq!(a["status"], "deleted");
    sim.shutdown().await;
}

#[tokio::test]
async fn one_frame_lists_every_matching_subscription() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, a) = c.subscribe("/api/class/fvTenant.json").await;
    let (_, b) = c.subscribe("/api/mo/uni/tn-multi.json").await;
    let (_, d) = c
        .subscribe(
            "/api/node/class/fvTenant.json?query-target-filter=eq(fvTenant.name,%22multi%22)",
        )
        .await;
    let (_, other) = c.subscribe("/api/class/fvBD.json").await;
    c.write(
        "uni/tn-multi",
        json!({"fvTenant":{"attributes":{"name":"multi"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    let mut got = ids(&f);
    got.sort();
    let mut want = vec![a, b, d];
    want.sort();
    assert_eq!(got, want);
    assert!(!got.contains(&other));
    assert_eq!(f["imdata"].as_array().unwrap().len(), 1);
    assert!(
        ws.quiet(Duration::from_millis(300)).await,
        "exactly one frame for one change"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn filters_apply_to_pushes() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, id) = c
        .subscribe("/api/class/fvBD.json?query-target-filter=and(wcard(fvBD.name,%22keep%22),not(eq(fvBD.descr,%22hide%22)))")
        .await;
    c.write(
        "uni/tn-acme/BD-drop1",
        json!({"fvBD":{"attributes":{"name":"drop1"}}}),
    )
    .await;
    c.write(
        "uni/tn-acme/BD-keep1",
        json!({"fvBD":{"attributes":{"name":"keep1"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id]);
    assert_eq!(entry(&f["imdata"][0]).1["dn"], "uni/tn-acme/BD-keep1");
    c.write(
        "uni/tn-acme/BD-keep1",
        json!({"fvBD":{"attributes":{"descr":"hide"}}}),
    )
    .await;
    assert!(
        ws.quiet(Duration::from_millis(300)).await,
        "filtered out by not(eq(..))"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn xml_subscriptions_get_xml_frames_and_mixed_get_one_per_encoding() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (r, xid) = c.subscribe("/api/class/fvTenant.xml").await;
    assert!(
        r.text
            .starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount=""#),
        "{}",
        &r.text[..80]
    );
    assert!(r.text.contains(&format!("subscriptionId=\"{xid}\"")));
    c.write(
        "uni/tn-xml1",
        json!({"fvTenant":{"attributes":{"name":"xml1"}}}),
    )
    .await;
    let t = ws.frame().await;
    assert!(
        t.starts_with(&format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><imdata subscriptionId="{xid}"><fvTenant "#
        )),
        "{t}"
    );
    assert!(
        t.contains(r#"status="created""#)
            && t.contains(r#"dn="uni/tn-xml1""#)
            && t.contains(r#"rn="""#)
    );
    let (_, jid) = c.subscribe("/api/class/fvTenant.json").await;
    c.write(
        "uni/tn-xml2",
        json!({"fvTenant":{"attributes":{"name":"xml2"}}}),
    )
    .await;
    let mut got = [ws.frame().await, ws.frame().await];
    got.sort();
    assert!(got[0].starts_with('<') && got[0].contains(&xid));
    let j: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(ids(&j), vec![jid]);
    sim.shutdown().await;
}

#[tokio::test]
async fn pushes_go_only_to_the_subscribing_session() {
    let sim = start(cfg(Flavor::Apic)).await;
    let a = Client::login(&sim.base_url()).await;
    let b = Client::login(&sim.base_url()).await;
    let mut wa = a.socket().await;
    let mut wb = b.socket().await;
    let (_, id) = a.subscribe("/api/class/fvTenant.json").await;
    b.write(
        "uni/tn-iso",
        json!({"fvTenant":{"attributes":{"name":"iso"}}}),
    )
    .await;
    assert_eq!(ids(&wa.frame_json().await), vec![id]);
    assert!(wb.quiet(Duration::from_millis(300)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn subtree_children_and_target_subtree_class_pushes() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, sub) = c
        .subscribe("/api/mo/uni/tn-acme.json?query-target=subtree&target-subtree-class=fvAEPg")
        .await;
    let (_, kids) = c
        .subscribe("/api/class/fvTenant.json?query-target=children")
        .await;
    c.write(
        "uni/tn-acme/ap-shop/epg-new",
        json!({"fvAEPg":{"attributes":{"name":"new"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![sub.clone()]);
    assert_eq!(entry(&f["imdata"][0]).0, "fvAEPg");
    // the device-made fvRsBd is not an fvAEPg: no frame
    assert!(ws.quiet(Duration::from_millis(300)).await);
    c.write(
        "uni/tn-acme/BD-kid",
        json!({"fvBD":{"attributes":{"name":"kid"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![kids]);
    assert_eq!(entry(&f["imdata"][0]).1["dn"], "uni/tn-acme/BD-kid");
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_pushes_each_object_of_the_subtree_in_its_own_frame() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    c.write(
        "uni/tn-gone",
        json!({"fvTenant":{"attributes":{"name":"gone"},"children":[{"fvBD":{"attributes":{"name":"b1"}}}]}}),
    )
    .await;
    let (_, id) = c
        .subscribe("/api/mo/uni/tn-gone.json?query-target=subtree")
        .await;
    let r = c.delete("/api/mo/uni/tn-gone.json").await;
    assert_eq!(r.status, 200);
    let mut dns = Vec::new();
    for _ in 0..4 {
        let f = ws.frame_json().await;
        assert_eq!(ids(&f), vec![id.clone()]);
        assert_eq!(f["imdata"].as_array().unwrap().len(), 1);
        let (_, a) = entry(&f["imdata"][0]);
        assert_eq!(a["status"], "deleted");
        dns.push(a["dn"].as_str().unwrap().to_string());
    }
    dns.sort();
    assert_eq!(
        dns,
        vec![
            "uni/tn-gone",
            "uni/tn-gone/BD-b1",
            "uni/tn-gone/BD-b1/rsctx",
            "uni/tn-gone/rsTenantMonPol"
        ]
    );
    assert!(ws.quiet(Duration::from_millis(200)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn closing_the_socket_ends_its_subscriptions() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    ws.close().await;
    sleep_ms(300).await;
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={id}"))
            .await
            .status,
        400
    );
    assert_eq!(
        c.get("/api/class/fvTenant.json?subscription=yes")
            .await
            .status,
        405
    );
    let _ws = c.socket().await;
    c.subscribe("/api/class/fvTenant.json").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn socket_requires_a_valid_token() {
    let sim = start(cfg(Flavor::Apic)).await;
    let url = format!("ws://{}/socketnot-a-token", sim.addr());
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap();
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // a token must not be URL-encoded
    let c = Client::login(&sim.base_url()).await;
    let enc = c
        .token
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url = format!("ws://{}/socket{enc}", sim.addr());
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap();
    assert!(r.is_err(), "an encoded token is not the token");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_socket_replaces_the_first() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut first = c.socket().await;
    let mut second = c.socket().await;
    assert!(
        first.closes(Duration::from_secs(2)).await,
        "one socket per session"
    );
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    c.write(
        "uni/tn-second",
        json!({"fvTenant":{"attributes":{"name":"second"}}}),
    )
    .await;
    assert_eq!(ids(&second.frame_json().await), vec![id]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_socket_is_dropped_not_buffered() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.socket_queue = 2;
    let sim = start(cfg).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let _never_read = c.socket().await;
    c.subscribe("/api/class/fvTenant.json").await;
    let big = "x".repeat(256 * 1024);
    let mut dropped = false;
    for i in 0..200 {
        let body =
            json!({"fvTenant":{"attributes":{"name":format!("slow{i}"),"descr":big}}}).to_string();
        let r = send(http().post(format!("{base}/_sim/write?dn=uni")).body(body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if i % 10 == 9 && stats(&base).await["sockets_dropped_slow"].as_u64().unwrap() > 0 {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the socket of a client that does not read is dropped"
    );
    assert_eq!(stats(&base).await["sockets"], 0);
    assert_eq!(
        c.get("/api/class/fvTenant.json?subscription=yes")
            .await
            .status,
        405
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn push_shapes_match_more_captures() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, a) = c.subscribe("/api/class/vzBrCP.json").await;
    let (_, b) = c
        .subscribe("/api/mo/uni/tn-acme.json?query-target=subtree&target-subtree-class=vzBrCP")
        .await;
    c.write(
        "uni/tn-acme/brc-test",
        json!({"vzBrCP":{"attributes":{"name":"test"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    let mut got = ids(&f);
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
    let cap: serde_json::Value = serde_json::from_str(
        capture("apic-vzbrcp-created-4ids")["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let (_, ours) = entry(&f["imdata"][0]);
    let (_, theirs) = entry(&cap["imdata"][0]);
    for k in keys(&theirs) {
        assert!(ours.get(&k).is_some(), "created vzBrCP lacks {k}");
    }
    // a relation re-pointed: the device resolves tDn/tRn itself
    let (_, r) = c
        .subscribe(
            "/api/class/fvRsBd.json?query-target-filter=wcard(fvRsBd.dn,%22tn-acme/ap-shop%22)",
        )
        .await;
    let epg = "uni/tn-acme/ap-shop/epg-web";
    c.write(
        &format!("{epg}/rsbd"),
        json!({"fvRsBd":{"attributes":{"tnFvBDName":"bd-20"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![r]);
    let (_, ours) = entry(&f["imdata"][0]);
    let cap: serde_json::Value =
        serde_json::from_str(capture("apic-fvrsbd-modified")["body"].as_str().unwrap()).unwrap();
    let theirs = entry(&cap).1;
    for k in keys(&ours) {
        assert!(
            theirs.get(&k).is_some(),
            "modified fvRsBd has {k}, the capture does not"
        );
    }
    assert_eq!(ours["tDn"], "uni/tn-acme/BD-bd-20");
    assert_eq!(ours["tRn"], "BD-bd-20");
    // an EPG deleted: minimal, with pcTag/scope reset as captured
    let (_, e) = c.subscribe(&format!("/api/mo/{epg}.json")).await;
    c.delete(&format!("/api/mo/{epg}.json")).await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![e]);
    let cap: serde_json::Value =
        serde_json::from_str(capture("apic-fvaepg-deleted")["body"].as_str().unwrap()).unwrap();
    assert_eq!(keys(&entry(&f["imdata"][0]).1), keys(&entry(&cap).1));
    sim.shutdown().await;
}
