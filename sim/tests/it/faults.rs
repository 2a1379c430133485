//! The /_sim/ fault-injection API, the truth view, stats, and the churn generator.

use std::time::{Duration, Instant};

use dme_sim::Flavor;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn drop_sockets_keeps_sessions_but_ends_subscriptions() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    assert_eq!(sim_call(&base, "drop-sockets").await["dropped"], 1);
    assert!(ws.closes(Duration::from_secs(2)).await);
    assert_eq!(
        c.get("/api/class/fvTenant.json").await.status,
        200,
        "the session is still valid"
    );
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
    let mut ws = c.socket().await;
    let (_, id2) = c.subscribe("/api/class/fvTenant.json").await;
    c.write(
        "uni/tn-back",
        json!({"fvTenant":{"attributes":{"name":"back"}}}),
    )
    .await;
    assert_eq!(ids(&ws.frame_json().await), vec![id2]);
    // graceful variant sends a close frame
    sim_call(&base, "drop-sockets?mode=close").await;
    assert!(ws.closes(Duration::from_secs(2)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn forgotten_socket_stays_open_while_the_device_answers_405() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    assert_eq!(
        sim_call(&base, "drop-sockets?mode=forget").await["dropped"],
        1
    );
    c.write(
        "uni/tn-unseen",
        json!({"fvTenant":{"attributes":{"name":"unseen"}}}),
    )
    .await;
    assert!(
        ws.quiet(Duration::from_millis(500)).await,
        "no close and no push: the client cannot tell"
    );
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={id}"))
            .await
            .status,
        400
    );
    let r = c.get("/api/class/fvTenant.json?subscription=yes").await;
    assert_eq!(r.status, 405);
    assert_eq!(
        r.text,
        capture("apic-subscribe-without-socket")["body"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        send(http().post(format!("{base}/_sim/drop-sockets?mode=x")))
            .await
            .status,
        400
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn restart_forgets_sessions_and_can_stay_down() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    sim_call(&base, "restart?down_ms=600").await;
    assert!(ws.closes(Duration::from_secs(2)).await);
    let r = send(
        http()
            .post(format!("{base}/api/aaaLogin.json"))
            .body(login_body()),
    )
    .await;
    assert_eq!(r.status, 503, "down for a while");
    sleep_ms(700).await;
    let r = c.get("/api/class/fvTenant.json").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text,
        capture("apic-no-cookie")["body"].as_str().unwrap(),
        "a restarted device does not know the token"
    );
    let c2 = Client::login(&base).await;
    assert_eq!(
        c2.get("/api/mo/uni/tn-acme.json").await.total(),
        1,
        "the tree survives a restart"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_session_by_user() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    assert_eq!(
        sim_call(&base, "expire-session?user=nobody").await["expired"],
        0
    );
    let other = Client::login(&base).await;
    let r = send(
        http()
            .post(format!("{base}/_sim/expire-session"))
            .body(json!({ "token": other.token }).to_string()),
    )
    .await;
    assert_eq!(r.json()["expired"], 1, "by token");
    assert_eq!(other.get("/api/class/fvTenant.json").await.status, 403);
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    assert_eq!(
        sim_call(&base, "expire-session?user=admin").await["expired"],
        1
    );
    assert!(ws.closes(Duration::from_secs(2)).await);
    let r = c.get("/api/class/fvTenant.json").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error().1, "Token was invalid (Error: Token timeout)");
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_subscription_and_fail_refresh() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, a) = c.subscribe("/api/class/fvTenant.json").await;
    let (_, b) = c.subscribe("/api/class/fvBD.json").await;
    assert_eq!(
        sim_call(&base, &format!("expire-subscription?id={a}")).await["expired"],
        1
    );
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={a}"))
            .await
            .status,
        400
    );
    c.write(
        "uni/tn-exp",
        json!({"fvTenant":{"attributes":{"name":"exp"}}}),
    )
    .await;
    assert!(ws.quiet(Duration::from_millis(300)).await);
    // fail the next 2 refreshes
    sim_call(&base, "fail-refresh?n=2").await;
    for _ in 0..2 {
        let r = c
            .get(&format!("/api/subscriptionRefresh.json?id={b}"))
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text,
            capture("apic-refresh-expired")["body"].as_str().unwrap()
        );
    }
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={b}"))
            .await
            .status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_503_and_delay() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    sim_call(&base, "fail-503?n=2").await;
    for _ in 0..2 {
        let r = c.get("/api/class/fvTenant.json").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.error().0, "503");
    }
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    // A storm: every request answers 503 for a while, then the device answers again.
    sim_call(&base, "fail-503?ms=500").await;
    for _ in 0..3 {
        assert_eq!(c.get("/api/class/fvTenant.json").await.status, 503);
    }
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    sim_call(&base, "delay?ms=700&n=1").await;
    let t = Instant::now();
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(680),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    c.get("/api/class/fvTenant.json").await;
    assert!(t.elapsed() < Duration::from_millis(680), "n=1 delays once");
    sim_call(&base, "delay?ms=300").await;
    let t = Instant::now();
    c.get("/api/class/fvTenant.json").await;
    c.get("/api/class/fvTenant.json").await;
    assert!(t.elapsed() >= Duration::from_millis(580));
    sim_call(&base, "delay?ms=0").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn silence_a_subscription() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, quiet) = c.subscribe("/api/class/fvTenant.json").await;
    let (_, loud) = c
        .subscribe("/api/mo/uni.json?query-target=children&target-subtree-class=fvTenant")
        .await;
    assert_eq!(
        sim_call(&base, &format!("silence?id={quiet}")).await["ok"],
        true
    );
    c.write(
        "uni/tn-shh",
        json!({"fvTenant":{"attributes":{"name":"shh"}}}),
    )
    .await;
    assert_eq!(ids(&ws.frame_json().await), vec![loud.clone()]);
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={quiet}"))
            .await
            .status,
        200,
        "refresh still succeeds"
    );
    sim_call(&base, &format!("silence?id={loud}")).await;
    c.write(
        "uni/tn-shh",
        json!({"fvTenant":{"attributes":{"descr":"x"}}}),
    )
    .await;
    assert!(ws.quiet(Duration::from_millis(300)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_batch_and_malformed_frames() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    sim_call(&base, "duplicate?n=1").await;
    c.write(
        "uni/tn-dup",
        json!({"fvTenant":{"attributes":{"name":"dup"}}}),
    )
    .await;
    let a = ws.frame().await;
    let b = ws.frame().await;
    assert_eq!(a, b);
    c.write(
        "uni/tn-dup",
        json!({"fvTenant":{"attributes":{"descr":"once"}}}),
    )
    .await;
    ws.frame().await;
    assert!(
        ws.quiet(Duration::from_millis(200)).await,
        "n=1 duplicates once"
    );
    // batch 3 changes into one frame
    for n in ["b1", "b2", "b3"] {
        c.write(
            &format!("uni/tn-{n}"),
            json!({"fvTenant":{"attributes":{"name":n}}}),
        )
        .await;
        ws.frame().await;
    }
    sim_call(&base, "batch?n=3").await;
    for n in ["b1", "b2", "b3"] {
        c.write(
            &format!("uni/tn-{n}"),
            json!({"fvTenant":{"attributes":{"descr":"batched"}}}),
        )
        .await;
    }
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id.clone()]);
    let items = f["imdata"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let dns: Vec<_> = items
        .iter()
        .map(|e| entry(e).1["dn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dns, vec!["uni/tn-b1", "uni/tn-b2", "uni/tn-b3"]);
    // a lost frame, then a frame without status
    sim_call(&base, "lose?n=1").await;
    c.write(
        "uni/tn-b1",
        json!({"fvTenant":{"attributes":{"descr":"lost"}}}),
    )
    .await;
    assert!(ws.quiet(Duration::from_millis(200)).await);
    sim_call(&base, "strip-status?n=1").await;
    c.write(
        "uni/tn-b1",
        json!({"fvTenant":{"attributes":{"descr":"nostatus"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    let (_, a) = entry(&f["imdata"][0]);
    assert!(a.get("status").is_none() && a["descr"] == "nostatus", "{a}");
    assert_eq!(stats(&base).await["frames_lost"], 1);
    // a malformed frame, then business as usual
    assert_eq!(sim_call(&base, "malformed").await["sent"], 1);
    let bad = ws.frame().await;
    assert!(serde_json::from_str::<serde_json::Value>(&bad).is_err());
    c.write(
        "uni/tn-after",
        json!({"fvTenant":{"attributes":{"name":"after"}}}),
    )
    .await;
    assert_eq!(ids(&ws.frame_json().await), vec![id]);
    sim.shutdown().await;
}

#[tokio::test]
async fn truth_matches_rest_and_stats_lists_subscriptions() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let _ws = c.socket().await;
    let (_, id) = c
        .subscribe("/api/class/fvTenant.json?refresh-timeout=300")
        .await;
    let rest = c
        .get("/api/mo/uni/tn-globex.json?query-target=subtree")
        .await
        .json();
    let truth = send(http().get(format!("{base}/_sim/truth?dn=uni/tn-globex")))
        .await
        .json();
    let mut a: Vec<_> = rest["imdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let mut b: Vec<_> = truth["imdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let s = stats(&base).await;
    assert_eq!(s["flavor"], "apic");
    assert_eq!(s["sockets"], 1);
    assert_eq!(s["sessions"].as_array().unwrap().len(), 1);
    let sub = &s["subscriptions"][0];
    assert_eq!(sub["id"], id.as_str());
    assert_eq!(sub["lifetime_s"], 300);
    assert!(sub["expires_in_ms"].as_u64().unwrap() > 290_000);
    assert!(s["objects"].as_u64().unwrap() >= 400);
    let r = send(http().post(format!("{base}/_sim/nope"))).await;
    assert_eq!(r.status, 404);
    let r = send(http().post(format!("{base}/_sim/fail-503?n=x"))).await;
    assert_eq!(r.status, 400);
    // parameters as a JSON body work too
    let r = send(
        http()
            .post(format!("{base}/_sim/fail-refresh"))
            .body(r#"{"n":1}"#),
    )
    .await;
    assert_eq!(r.json()["n"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_write_and_delete_push_like_rest() {
    let sim = start(cfg(Flavor::Nxos)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/mo/sys/intf/phys-[eth1/3].json").await;
    let r = send(
        http()
            .post(format!("{base}/_sim/write?dn=sys/intf/phys-[eth1/3]"))
            .body(r#"{"l1PhysIf":{"attributes":{"descr":"test"}}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id]);
    let (cls, a) = entry(&f["imdata"][0]);
    assert_eq!(cls, "l1PhysIf");
    let cap: serde_json::Value =
        serde_json::from_str(capture("nxos-l1physif-modified")["body"].as_str().unwrap()).unwrap();
    assert_eq!(keys(&a), keys(&entry(&cap["imdata"][0]).1));
    let r = send(http().post(format!("{base}/_sim/delete?dn=sys/intf/phys-[eth1/3]"))).await;
    assert_eq!(r.json()["changes"], 2);
    assert_eq!(
        entry(&ws.frame_json().await["imdata"][0]).1["status"],
        "deleted"
    );
    sim.shutdown().await;
}

fn mod_ts(f: &serde_json::Value) -> Vec<String> {
    f["imdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| entry(e).1["modTs"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn churn_changes_realistic_things_with_increasing_mod_ts() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.churn = 60.0;
    let sim = start(cfg).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    for cls in [
        "faultInst",
        "ethpmPhysIf",
        "l1PhysIf",
        "fvAEPg",
        "fvBD",
        "fvRsBd",
        "fvCEp",
    ] {
        c.subscribe(&format!("/api/class/{cls}.json?page-size=1"))
            .await;
    }
    let mut classes = std::collections::BTreeSet::new();
    let mut statuses = std::collections::BTreeSet::new();
    let mut last = String::new();
    for _ in 0..120 {
        let f = ws.frame_json().await;
        for ts in mod_ts(&f) {
            assert!(ts >= last, "modTs goes forward: {ts} after {last}");
            assert!(ts.ends_with("+00:00") && ts.len() == 29, "{ts}");
            last = ts;
        }
        for e in f["imdata"].as_array().unwrap() {
            let (cls, a) = entry(e);
            classes.insert(cls);
            statuses.insert(a["status"].as_str().unwrap().to_string());
        }
    }
    assert!(classes.len() >= 4, "{classes:?}");
    assert!(
        statuses.contains("created") && statuses.contains("modified"),
        "{statuses:?}"
    );
    sim_call(&base, "churn?rate=0").await;
    sleep_ms(100).await;
    while let Next::Text(_) = ws.next(Duration::from_millis(150)).await {}
    assert!(
        ws.quiet(Duration::from_millis(400)).await,
        "churn stops at rate 0"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn churn_nxos_flaps_bgp_and_links() {
    let mut cfg = cfg(Flavor::Nxos);
    cfg.churn = 80.0;
    let sim = start(cfg).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    for cls in ["bgpPeerEntry", "ethpmPhysIf", "l1PhysIf", "l2BD"] {
        c.subscribe(&format!("/api/class/{cls}.json?page-size=1"))
            .await;
    }
    let mut classes = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let f = ws.frame_json().await;
        for e in f["imdata"].as_array().unwrap() {
            classes.insert(entry(e).0);
        }
        if classes.len() == 4 {
            break;
        }
    }
    assert_eq!(classes.len(), 4, "{classes:?}");
    sim.shutdown().await;
}

/// A batched frame lists only ids whose queries match every object in it: a change of another
/// class goes in a frame of its own (a device lists, for each object, the subscriptions it
/// matches; mixing them would hand a subscription objects it never asked for).
#[tokio::test]
async fn batched_frames_never_mix_subscriptions() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    let (_, tenants) = c.subscribe("/api/class/fvTenant.json").await;
    let (_, bds) = c.subscribe("/api/class/fvBD.json").await;
    let objs = [
        ("uni/tn-mix", "fvTenant"),
        ("uni/tn-mix/BD-b1", "fvBD"),
        ("uni/tn-mix2", "fvTenant"),
    ];
    for (dn, class) in objs {
        c.write(dn, json!({class: {"attributes": {}}})).await;
    }
    while !ws.quiet(Duration::from_millis(300)).await {}
    sim_call(&base, "batch?n=3").await;
    for (dn, class) in objs {
        c.write(dn, json!({class: {"attributes": {"descr": "batched"}}}))
            .await;
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let f = ws.frame_json().await;
        let classes: Vec<String> = f["imdata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| entry(e).0)
            .collect();
        let want = if ids(&f) == vec![tenants.clone()] {
            "fvTenant"
        } else {
            assert_eq!(ids(&f), vec![bds.clone()], "{f}");
            "fvBD"
        };
        assert!(classes.iter().all(|c| c == want), "{f}");
        seen.push((want, classes.len()));
    }
    // In the order of the changes: a frame holds a run of changes with the same ids.
    assert_eq!(seen, vec![("fvTenant", 1), ("fvBD", 1), ("fvTenant", 1)]);
    sim.shutdown().await;
}

/// Batched changes keep their order per session: two changes of one object that match
/// different sets of subscriptions (a filter) go out in the order they happened.
#[tokio::test]
async fn batched_frames_keep_the_order_of_changes() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    c.write("uni/tn-ord", json!({"fvTenant": {"attributes": {}}}))
        .await;
    c.write("uni/tn-ord/BD-b1", json!({"fvBD": {"attributes": {}}}))
        .await;
    let (_, filtered) = c
        .subscribe("/api/class/fvBD.json?query-target-filter=eq(fvBD.descr,\"x\")")
        .await;
    let (_, all) = c.subscribe("/api/class/fvBD.json").await;
    assert!(filtered < all, "ids sort {filtered} before {all}");
    while !ws.quiet(Duration::from_millis(300)).await {}
    sim_call(&base, "batch?n=2").await;
    for d in ["y", "x"] {
        c.write(
            "uni/tn-ord/BD-b1",
            json!({"fvBD": {"attributes": {"descr": d}}}),
        )
        .await;
    }
    let first = ws.frame_json().await;
    let second = ws.frame_json().await;
    assert_eq!(ids(&first), vec![all.clone()], "{first}");
    assert_eq!(entry(&first["imdata"][0]).1["descr"], "y");
    assert_eq!(ids(&second), vec![filtered, all], "{second}");
    assert_eq!(entry(&second["imdata"][0]).1["descr"], "x");
    sim.shutdown().await;
}

#[tokio::test]
async fn refuse_sockets_fails_the_upgrade_but_not_the_api() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    assert_eq!(sim_call(&base, "refuse-sockets?n=2").await["n"], 2);
    let url = format!("{}/socket{}", base.replacen("http://", "ws://", 1), c.token);
    for _ in 0..2 {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 403)
            }
            other => panic!("expected a refused upgrade, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(
        c.get("/api/class/fvTenant.json").await.status,
        200,
        "the HTTP API keeps working"
    );
    let s = stats(&base).await;
    assert_eq!(s["sockets_refused"], 2);
    assert_eq!(s["faults"]["refuse_sockets"], 0);
    let _ws = c.socket().await;
    sim.shutdown().await;
}
