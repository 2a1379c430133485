//! CORS, static files, robustness against odd input, writes, the upstream proxy, the CLI and
//! the big fabric.

use std::time::Duration;

use dme_sim::Flavor;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn cors_for_loopback_origins_only() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.cors = true;
    let sim = start(cfg).await;
    let base = sim.base_url();
    let r = send(
        http()
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/api/aaaLogin.json"),
            )
            .header("Origin", "http://127.0.0.1:5173")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type,devcookie"),
    )
    .await;
    assert!(r.status == 204 || r.status == 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    let h = r.headers["access-control-allow-headers"].to_str().unwrap();
    assert!(h.contains("DevCookie") && h.contains("APIC-challenge") && h.contains("Content-Type"));
    assert!(r.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("DELETE"));
    let r = send(
        http()
            .post(format!("{base}/api/aaaLogin.json"))
            .header("Origin", "http://localhost:3000")
            .body(login_body()),
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert!(!r.headers["set-cookie"].to_str().unwrap().contains("Secure"));
    let r = send(
        http()
            .post(format!("{base}/_sim/stats"))
            .header("Origin", "http://[::1]:8080"),
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://[::1]:8080"
    );
    for evil in [
        "http://evil.example",
        "http://127.0.0.1.evil.example",
        "null",
    ] {
        let r = send(
            http()
                .get(format!("{base}/api/class/fvTenant.json"))
                .header("Origin", evil),
        )
        .await;
        assert!(
            r.headers.get("access-control-allow-origin").is_none(),
            "{evil}"
        );
    }
    sim.shutdown().await;
    // off by default
    let sim = start(crate::common::cfg(Flavor::Apic)).await;
    let r = send(
        http()
            .get(format!("{}/_sim/stats", sim.base_url()))
            .header("Origin", "http://127.0.0.1:5173"),
    )
    .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn serves_www_and_pkg() {
    let dir = std::env::temp_dir().join(format!("dme-sim-static-{}", std::process::id()));
    let www = dir.join("www");
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(www.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(www.join("app.js"), "export {}").unwrap();
    std::fs::write(pkg.join("dme_events_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("secret.txt"), "no").unwrap();
    let mut cfg = cfg(Flavor::Apic);
    cfg.www_dir = Some(www.clone());
    cfg.pkg_dir = Some(pkg.clone());
    let sim = start(cfg).await;
    let base = sim.base_url();
    let r = send(http().get(format!("{base}/"))).await;
    assert_eq!((r.status, r.text.as_str()), (200, "<h1>demo</h1>"));
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let r = send(http().get(format!("{base}/app.js"))).await;
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let r = send(http().get(format!("{base}/pkg/dme_events_bg.wasm"))).await;
    assert_eq!(r.headers["content-type"], "application/wasm");
    for bad in [
        "/%2e%2e/secret.txt",
        "/pkg/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ] {
        let r = send(http().get(format!("{base}{bad}"))).await;
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
        assert_ne!(r.text, "no");
    }
    assert_eq!(
        send(http().get(format!("{base}/missing.js"))).await.status,
        404
    );
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn odd_input_gets_400_envelopes_never_a_crash() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    for body in [
        "",
        "{",
        "[]",
        "null",
        r#"{"aaaUser":{}}"#,
        r#"{"aaaUser":{"attributes":{"name":5}}}"#,
        "\u{0}\u{1}",
    ] {
        let r = send(http().post(format!("{base}/api/aaaLogin.json")).body(body)).await;
        assert_eq!(r.status, 400, "{body:?}");
        assert_eq!(r.error().0, "400");
    }
    let r = send(
        http()
            .post(format!("{base}/api/aaaLogin.xml"))
            .body("<aaaUser name='x'"),
    )
    .await;
    assert_eq!(r.status, 400);
    for path in [
        "/api/",
        "/api/foo",
        "/api/foo.json",
        "/api/class/.json",
        "/api/mo/.json",
        "/api/class/fvTenant",
        "/api/class/a/b/c/d.json",
        "/api/node/.json",
        "/api/mo/[[[.json",
    ] {
        let r = c.get(path).await;
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
        assert!(
            r.json()["imdata"][0]["error"].is_object(),
            "{path}: {}",
            r.text
        );
    }
    for body in [
        "",
        "{",
        r#"{"fvTenant":{"attributes":{"name":["x"]}}}"#,
        r#"{"noSuchClass":{"attributes":{}}}"#,
        r#"{"fvTenant":{"attributes":{}}}"#,
    ] {
        let r = c.post("/api/mo/uni.json", body).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text);
    }
    let long = "a".repeat(9000);
    let r = c.get(&format!("/api/class/fvTenant.json?x={long}")).await;
    assert!(
        r.status == 414 || r.status == 400 || r.status == 431,
        "{}",
        r.status
    );
    let r = c
        .get(
            "/api/class/fvTenant.json?query-target-filter="
                .to_string()
                .as_str(),
        )
        .await;
    assert_eq!(r.status, 400);
    let deep = format!(
        "{}eq(fvTenant.name,%22x%22){}",
        "not(".repeat(500),
        ")".repeat(500)
    );
    assert_eq!(
        c.get(&format!(
            "/api/class/fvTenant.json?query-target-filter={deep}"
        ))
        .await
        .status,
        400
    );
    let r = send(http().get(format!("{base}/socketabc"))).await;
    assert_eq!(r.status, 400, "a plain GET on the socket path");
    // still alive
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn writes_create_nested_children_and_validate() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = c
        .post(
            "/api/mo/uni.json",
            &json!({"fvTenant":{"attributes":{"name":"nest"},"children":[
                {"fvAp":{"attributes":{"name":"a1"},"children":[{"fvAEPg":{"attributes":{"name":"e1","descr":"x"}}}]}},
                {"fvBD":{"attributes":{"name":"b1"}}}
            ]}})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, r#"{"totalCount":"0","imdata":[]}"#);
    let t = c.get("/api/mo/uni/tn-nest.json?query-target=subtree").await;
    let mut dns: Vec<String> = t.json()["imdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| entry(e).1["dn"].as_str().unwrap().to_string())
        .collect();
    dns.sort();
    assert_eq!(
        dns,
        vec![
            "uni/tn-nest",
            "uni/tn-nest/BD-b1",
            "uni/tn-nest/BD-b1/rsctx",
            "uni/tn-nest/ap-a1",
            "uni/tn-nest/ap-a1/epg-e1",
            "uni/tn-nest/ap-a1/epg-e1/rsbd",
            "uni/tn-nest/rsTenantMonPol"
        ]
    );
    let epg = c
        .get("/api/mo/uni/tn-nest/ap-a1/epg-e1.json")
        .await
        .attrs(0);
    assert_eq!(epg["descr"], "x");
    assert_eq!(epg["configSt"], "applied", "defaults from the catalogue");
    let r = c
        .post(
            "/api/mo/uni/tn-nest.json",
            r#"{"fvTenant":{"attributes":{"descrr":"typo"}}}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .post(
            "/api/mo/uni/tn-none/ap-x.json",
            r#"{"fvAp":{"attributes":{"name":"x"}}}"#,
        )
        .await;
    assert_eq!(r.status, 400, "parent must exist");
    let r = c
        .post(
            "/api/mo/uni/tn-nest.json",
            r#"{"fvTenantt":{"attributes":{}}}"#,
        )
        .await;
    assert_eq!(
        r.error().1,
        "Request failed, unresolved class for fvTenantt"
    );
    // A change as clients post it: the class as the key, the dn and the status inside.
    let r = c
        .post(
            "/api/mo/uni/tn-nest2.json",
            r#"{"fvTenant":{"attributes":{"dn":"uni/tn-nest2","status":"modified"}}}"#,
        )
        .await;
    assert_eq!(
        r.error().1,
        "Invalid request: object uni/tn-nest2 does not exist",
        "modified alone never creates"
    );
    for status in ["created,modified", "modified", "deleted"] {
        let body = format!(
            r#"{{"fvTenant":{{"attributes":{{"dn":"uni/tn-nest2","status":"{status}","descr":"{status}"}}}}}}"#
        );
        let r = c.post("/api/mo/uni/tn-nest2.json", &body).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (200, r#"{"totalCount":"0","imdata":[]}"#)
        );
        let now = c.get("/api/mo/uni/tn-nest2.json").await;
        let want = if status == "deleted" { 0 } else { 1 };
        assert_eq!(now.total(), want, "after {status}");
    }
    // XML write
    let r = c
        .post(
            "/api/mo/uni.xml",
            r#"<fvTenant name="xmlw" descr="a&amp;b"/>"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        c.get("/api/mo/uni/tn-xmlw.json").await.attrs(0)["descr"],
        "a&b"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn upstream_mode_proxies_rest_and_socket() {
    let device = start(cfg(Flavor::Apic)).await;
    let mut pcfg = cfg(Flavor::Apic);
    pcfg.upstream = Some(device.base_url());
    let proxy = start(pcfg).await;
    let base = proxy.base_url();
    // login through the proxy; the device's cookie comes back
    let r = send(
        http()
            .post(format!("{base}/api/aaaLogin.json"))
            .body(login_body()),
    )
    .await;
    assert_eq!(r.status, 200);
    let token = r.attrs(0)["token"].as_str().unwrap().to_string();
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with(&format!("APIC-cookie={token};")));
    let c = Client {
        base: base.clone(),
        http: http(),
        token,
        url_token: None,
    };
    assert_eq!(
        c.get("/api/class/fvTenant.json?subscription=yes")
            .await
            .status,
        405,
        "strict answers pass through"
    );
    let bad = send(
        http()
            .post(format!("{base}/api/aaaLogin.json"))
            .body(r#"{"aaaUser":{"attributes":{"name":"admin","pwd":"x"}}}"#),
    )
    .await;
    assert_eq!(bad.status, 401);
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    c.write(
        "uni/tn-proxied",
        json!({"fvTenant":{"attributes":{"name":"proxied"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id.clone()]);
    let (_, a) = entry(&f["imdata"][0]);
    assert_eq!(a["dn"], "uni/tn-proxied");
    // the device really holds the object and the subscription
    let s = stats(&device.base_url()).await;
    assert_eq!(s["subscriptions"][0]["id"], id.as_str());
    // XML and the device closing the socket pass through too
    assert!(c
        .get("/api/mo/uni/tn-proxied.xml")
        .await
        .text
        .starts_with("<?xml"));
    sim_call(&device.base_url(), "drop-sockets?mode=close").await;
    assert!(ws.closes(Duration::from_secs(3)).await);
    // the proxy's own fault API is off
    assert_eq!(
        send(http().post(format!("{base}/_sim/restart")))
            .await
            .status,
        404
    );
    proxy.shutdown().await;
    device.shutdown().await;
}

#[tokio::test]
async fn cli_help_documents_every_flag_and_exit_after_works() {
    let exe = env!("CARGO_BIN_EXE_dme-sim");
    let out = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--flavor",
        "--bind",
        "--churn",
        "--seed",
        "--objects",
        "--idle-timeout",
        "--max-lifetime",
        "--refresh-timeout",
        "--sub-lifetime",
        "--throttle",
        "--user",
        "--password",
        "--www",
        "--pkg",
        "--upstream",
        "--cors",
        "--exit-after",
        "--token-grace",
        "--max-result",
        "--socket-queue",
        "--tls",
        "--cert",
        "--key",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let child = tokio::process::Command::new(exe)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--exit-after",
            "1.5",
            "--flavor",
            "nxos",
            "--objects",
            "200",
            "--churn",
            "5",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits by itself")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("");
    assert!(
        line.starts_with("dme-sim listening on http://127.0.0.1:"),
        "{text}"
    );
    assert!(out.status.success());
    let bad = std::process::Command::new(exe)
        .args(["--flavor", "ios"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[tokio::test]
async fn big_fabric_flag_reaches_100k_objects() {
    for flavor in [Flavor::Apic, Flavor::Nxos] {
        let mut cfg = cfg(flavor);
        cfg.objects = 100_000;
        let sim = start(cfg).await;
        let s = stats(&sim.base_url()).await;
        assert!(
            s["objects"].as_u64().unwrap() >= 100_000,
            "{flavor:?}: {}",
            s["objects"]
        );
        let c = Client::login(&sim.base_url()).await;
        let cls = if flavor == Flavor::Apic {
            "l1PhysIf"
        } else {
            "l2BD"
        };
        let r = c
            .get(&format!("/api/class/{cls}.json?page-size=10&page=3"))
            .await;
        assert!(r.total() > 1000);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn same_seed_same_fabric() {
    let a = start(cfg(Flavor::Apic)).await;
    let b = start(cfg(Flavor::Apic)).await;
    let mut c3 = cfg(Flavor::Apic);
    c3.seed = 99;
    let c = start(c3).await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v["imdata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}:{}", entry(e).1["dn"], entry(e).1["mac"]))
            .collect()
    };
    let ta = names(
        send(http().get(format!("{}/_sim/truth?class=fvBD", a.base_url())))
            .await
            .json(),
    );
    let tb = names(
        send(http().get(format!("{}/_sim/truth?class=fvBD", b.base_url())))
            .await
            .json(),
    );
    let tc = names(
        send(http().get(format!("{}/_sim/truth?class=fvBD", c.base_url())))
            .await
            .json(),
    );
    assert_eq!(ta, tb);
    assert_ne!(ta, tc);
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn the_binary_serves_a_live_fabric() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let exe = env!("CARGO_BIN_EXE_dme-sim");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "--flavor",
            "apic",
            "--churn",
            "30",
            "--bind",
            "127.0.0.1:0",
            "--exit-after",
            "20",
            "--objects",
            "800",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("prints its URL")
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("dme-sim listening on ")
        .expect("the listening line")
        .to_string();
    let c = Client::login(&base).await;
    let mut ws = c.socket().await;
    for cls in [
        "faultInst",
        "ethpmPhysIf",
        "l1PhysIf",
        "fvAEPg",
        "fvBD",
        "fvCEp",
    ] {
        c.subscribe(&format!("/api/class/{cls}.json?page-size=1"))
            .await;
    }
    let f = ws.frame_json().await;
    assert!(!ids(&f).is_empty());
    sim_call(&base, "restart").await;
    assert!(ws.closes(Duration::from_secs(3)).await);
    child.start_kill().ok();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
