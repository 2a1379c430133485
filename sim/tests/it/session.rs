//! Sessions: login (JSON, XML), cookies, urlToken/APIC-challenge, DevCookie, aaaRefresh,
//! logout, idle timeout, maximum lifetime, throttling, and the verbatim error answers.

use std::time::Duration;

use dme_sim::Flavor;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn login_json_shape_cookie_and_token_chars() {
    let sim = start(cfg(Flavor::Apic)).await;
    let r = send(
        http()
            .post(format!("{}/api/aaaLogin.json", sim.base_url()))
            .body(login_body()),
    )
    .await;
    assert_eq!(r.status, 200);
    let cap = capture("apic-login-2.0");
    let cap_body: serde_json::Value = serde_json::from_str(cap["body"].as_str().unwrap()).unwrap();
    let v = r.json();
    assert_eq!(keys(&v), keys(&cap_body), "envelope keys");
    assert_eq!(v["totalCount"], "1");
    let ours = r.attrs(0);
    let theirs = &cap_body["imdata"][0]["aaaLogin"]["attributes"];
    for k in keys(theirs) {
        assert!(ours.get(&k).is_some(), "login lacks {k}");
    }
    for (k, val) in ours.as_object().unwrap() {
        assert!(val.is_string(), "{k} is not a string");
    }
    assert!(
        ours.get("urlToken").is_none(),
        "urlToken only with gui-token-request"
    );
    assert_eq!(ours["refreshTimeoutSeconds"], "600");
    assert_eq!(ours["maximumLifetimeSeconds"], "86400");
    let token = ours["token"].as_str().unwrap();
    assert!(
        token.contains('+') || token.contains('/'),
        "token is base64 with + or /: {token}"
    );
    assert!(token.ends_with('='), "token is padded base64");
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        vec![format!("APIC-cookie={token}; path=/; HttpOnly").as_str()]
    );
    assert!(
        !cookies[0].contains("Secure"),
        "plain http must not set Secure"
    );
    // children as on a device
    assert!(v["imdata"][0]["aaaLogin"]["children"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    sim.shutdown().await;
}

#[tokio::test]
async fn login_xml_body_and_answer() {
    let sim = start(cfg(Flavor::Apic)).await;
    let r = send(
        http()
            .post(format!("{}/api/aaaLogin.xml", sim.base_url()))
            .body(format!("<aaaUser name='{USER}' pwd='{PWD}'/>")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.starts_with(
            r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1"><aaaLogin "#
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains(" token=\""));
    assert!(r.headers.get("set-cookie").is_some());
    // the XML token works for JSON calls
    let i = r.text.find(" token=\"").unwrap() + 8;
    let token = &r.text[i..i + r.text[i..].find('"').unwrap()];
    let q = send(
        http()
            .get(format!("{}/api/class/fvTenant.json", sim.base_url()))
            .header("Cookie", format!("APIC-cookie={token}")),
    )
    .await;
    assert_eq!(q.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_401_verbatim_json_and_xml() {
    let sim = start(cfg(Flavor::Apic)).await;
    let r = send(
        http()
            .post(format!("{}/api/aaaLogin.json", sim.base_url()))
            .body(r#"{"aaaUser":{"attributes":{"name":"admin","pwd":"wrong"}}}"#),
    )
    .await;
    let cap = capture("apic-login-bad-credentials-json");
    assert_eq!(r.status, 401);
    assert_eq!(r.text, cap["body"].as_str().unwrap());
    let r = send(
        http()
            .post(format!("{}/api/aaaLogin.xml", sim.base_url()))
            .body("<aaaUser name='admin' pwd='nope'/>"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r
        .text
        .starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1">"#));
    assert!(r.text.contains(r#"<error code="401" text="Username or password is incorrect - FAILED local authentication"/>"#), "{}", r.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn no_or_invalid_cookie_403_verbatim() {
    let sim = start(cfg(Flavor::Apic)).await;
    let cap = capture("apic-no-cookie");
    for rb in [
        http().get(format!("{}/api/class/fvTenant.json", sim.base_url())),
        http()
            .get(format!("{}/api/class/fvTenant.json", sim.base_url()))
            .header("Cookie", "APIC-cookie=bogus+/="),
        http().get(format!("{}/api/aaaRefresh.json", sim.base_url())),
        http().get(format!(
            "{}/api/subscriptionRefresh.json?id=1",
            sim.base_url()
        )),
    ] {
        let r = send(rb).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.text, cap["body"].as_str().unwrap());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn nxos_login_has_no_maximum_lifetime() {
    let sim = start(cfg(Flavor::Nxos)).await;
    let c = Client::login(&sim.base_url()).await;
    let r = send(
        http()
            .post(format!("{}/api/aaaLogin.json", sim.base_url()))
            .body(login_body()),
    )
    .await;
    let a = r.attrs(0);
    assert!(a.get("maximumLifetimeSeconds").is_none());
    let cap = capture("nxos-login-doc");
    let cap_body: serde_json::Value = serde_json::from_str(cap["body"].as_str().unwrap()).unwrap();
    for k in keys(&cap_body["aaaLogin"]["attributes"]) {
        assert!(a.get(&k).is_some(), "nxos login lacks {k}");
    }
    assert_eq!(c.get("/api/mo/sys.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn gui_token_request_enforces_challenge() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let mut c = Client::login_with(&base, "?gui-token-request=yes").await;
    let ut = c.url_token.clone().expect("urlToken");
    assert!(!ut.is_empty());
    // header present (the helper sends it)
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    // query form
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json?challenge={ut}"))
            .header("Cookie", format!("APIC-cookie={}", c.token)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // missing
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header("Cookie", format!("APIC-cookie={}", c.token)),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error().0, "403");
    // wrong
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header("Cookie", format!("APIC-cookie={}", c.token))
            .header("APIC-challenge", "nope"),
    )
    .await;
    assert_eq!(r.status, 403);
    // aaaRefresh answers an empty urlToken; the old one stays valid with the new token
    let r = c.get("/api/aaaRefresh.json").await;
    assert_eq!(r.status, 200);
    let a = r.attrs(0);
    assert_eq!(a["urlToken"], "");
    c.token = a["token"].as_str().unwrap().to_string();
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn devcookie_header_and_duplicated_tokens() {
    let sim = start(cfg(Flavor::Apic)).await;
    let base = sim.base_url();
    let c = Client::login(&base).await;
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header("DevCookie", &c.token),
    )
    .await;
    assert_eq!(r.status, 200);
    // both, different: one valid is accepted, no crash
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header("Cookie", format!("APIC-cookie={}", c.token))
            .header("DevCookie", "stale+token="),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header(
                "Cookie",
                format!("APIC-cookie=old; APIC-cookie={}", c.token),
            ),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        http()
            .get(format!("{base}/api/class/fvTenant.json"))
            .header("DevCookie", "x")
            .header("Cookie", "APIC-cookie=y"),
    )
    .await;
    assert_eq!(r.status, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_issues_new_token_old_one_has_grace_socket_survives() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.token_grace = Duration::from_millis(800);
    let sim = start(cfg).await;
    let mut c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let (_, id) = c.subscribe("/api/class/fvTenant.json").await;
    let old = c.clone();
    let r = c.get("/api/aaaRefresh.json").await;
    assert_eq!(r.status, 200);
    let a = r.attrs(0);
    let new = a["token"].as_str().unwrap().to_string();
    assert_ne!(new, c.token);
    let cookie = r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with(&format!("APIC-cookie={new};")));
    c.token = new;
    assert_eq!(
        old.get("/api/class/fvTenant.json").await.status,
        200,
        "old token within grace"
    );
    sleep_ms(1300).await;
    let r = old.get("/api/class/fvTenant.json").await;
    assert_eq!(r.status, 403);
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    // the socket opened with the old token still carries this session's pushes
    c.write(
        "uni/tn-refreshed",
        json!({"fvTenant":{"attributes":{"name":"refreshed"}}}),
    )
    .await;
    let f = ws.frame_json().await;
    assert_eq!(ids(&f), vec![id]);
    assert_eq!(
        c.get(&format!("/api/subscriptionRefresh.json?id={}", ids(&f)[0]))
            .await
            .status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_timeout_403_token_timeout_and_socket_closes() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.idle_timeout = Some(Duration::from_millis(1600));
    let sim = start(cfg).await;
    let c = Client::login(&sim.base_url()).await;
    let kept = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    sleep_ms(900).await;
    // aaaRefresh keeps a session alive; plain requests do not
    let r = kept.get("/api/aaaRefresh.json").await;
    assert_eq!(r.status, 200);
    let mut kept = kept;
    kept.token = r.attrs(0)["token"].as_str().unwrap().to_string();
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    assert!(
        ws.closes(Duration::from_secs(3)).await,
        "socket closes when the session times out"
    );
    let r = c.get("/api/class/fvTenant.json").await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text,
        capture("apic-token-timeout")["body"].as_str().unwrap()
    );
    assert_eq!(kept.get("/api/class/fvTenant.json").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn maximum_lifetime_ends_the_session() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.max_lifetime = Some(Duration::from_millis(1500));
    let sim = start(cfg).await;
    let mut c = Client::login(&sim.base_url()).await;
    let r = c.get("/api/aaaLogin.json").await;
    assert_ne!(r.status, 200, "aaaLogin is POST only");
    let login = send(
        http()
            .post(format!("{}/api/aaaLogin.json", sim.base_url()))
            .body(login_body()),
    )
    .await;
    assert_eq!(login.attrs(0)["maximumLifetimeSeconds"], "1");
    let mut ws = c.socket().await;
    sleep_ms(400).await;
    let r = c.get("/api/aaaRefresh.json").await;
    assert_eq!(r.status, 200);
    c.token = r.attrs(0)["token"].as_str().unwrap().to_string();
    sleep_ms(1400).await;
    let r = c.get("/api/aaaRefresh.json").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error().1, "Token was invalid (Error: Token timeout)");
    assert!(ws.closes(Duration::from_secs(2)).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn logout_closes_the_socket() {
    let sim = start(cfg(Flavor::Apic)).await;
    let c = Client::login(&sim.base_url()).await;
    let mut ws = c.socket().await;
    let r = c
        .post(
            "/api/aaaLogout.json",
            r#"{"aaaUser":{"attributes":{"name":"admin"}}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(ws.closes(Duration::from_secs(3)).await);
    assert_eq!(c.get("/api/class/fvTenant.json").await.status, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn login_and_refresh_throttled_with_503() {
    let mut cfg = cfg(Flavor::Apic);
    cfg.throttle_per_sec = 2.0;
    let sim = start(cfg).await;
    let base = sim.base_url();
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = send(
            http()
                .post(format!("{base}/api/aaaLogin.json"))
                .body(login_body()),
        )
        .await;
        if r.status == 503 {
            assert_eq!(r.error().0, "503");
        }
        codes.push(r.status);
    }
    assert!(codes.contains(&200) && codes.contains(&503), "{codes:?}");
    sleep_ms(1100).await;
    let c = Client::login(&base).await;
    // refreshes count too
    let mut saw = false;
    for _ in 0..5 {
        if c.get("/api/aaaRefresh.json").await.status == 503 {
            saw = true;
        }
    }
    assert!(saw, "aaaRefresh is throttled");
    // queries are not
    for _ in 0..5 {
        assert_eq!(c.get("/api/class/fvTenant.json").await.status, 200);
    }
    sim.shutdown().await;
}
