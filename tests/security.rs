//! No session token in any event, error, state, log line or Debug output; hostile frames that
//! carry token-shaped text are refused without echoing it; queries that try to inject
//! parameters or paths are refused; the socket scheme follows the page's.

#[path = "engine_support/mod.rs"]
mod support;

use dme_events::engine::{Action, Auth, Config, Engine, Event, SubOptions, TokenTransport};
use dme_events::protocol::{parse_notification, BaseUrl, Query, Status};
use support::*;

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;

/// The fake device's tokens all end like this (`tk<n>+/AbC=`).
const TOKEN_MARK: &str = "+/AbC=";

fn scan(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN_MARK) && !text.contains("pw-secret"),
        "{what} leaks a credential: {text}"
    );
}

#[test]
fn no_token_in_events_errors_states_or_debug_through_a_troubled_session() {
    let mut sim = Sim::new(apic_config(99), DeviceCfg::apic());
    let a = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    let b = sim.subscribe(
        Query::class("fvBD"),
        SubOptions {
            store: true,
            ..SubOptions::default()
        },
    );
    sim.run_for(MIN);
    sim.change(tenant("acme", Status::Created));
    sim.run_for(10 * SEC);
    // Every kind of trouble: socket dropped, socket dead silently (405), session killed at the
    // device (403 token timeout), throttling, a network outage.
    sim.device_drops_socket();
    sim.run_for(MIN);
    sim.socket_dies_silently();
    sim.subscribe(Query::class("fvAEPg"), SubOptions::default());
    sim.run_for(MIN);
    // The session dies at the device: every later request answers 403 "Token timeout".
    for (_, s) in std::mem::take(&mut sim.dev.sessions) {
        sim.dev.tokens.remove(&s.token);
    }
    sim.run_for(6 * MIN);
    sim.dev.faults.throttle_refresh = true;
    sim.run_for(2 * MIN);
    sim.dev.faults.throttle_refresh = false;
    sim.dev.faults.network_down = true;
    sim.run_for(MIN);
    sim.dev.faults.network_down = false;
    sim.run_for(5 * MIN);
    assert!(sim.engine.stats().logins >= 2, "the scenario re-logged in");
    assert!(!sim.events.is_empty());
    for (_, e) in &sim.events {
        scan("an event", &format!("{e:?}"));
        if let Event::Error(err) | Event::SubscribeFailed { error: err, .. } = e {
            scan("an error message", &err.to_string());
        }
        if let Event::State(dme_events::engine::ConnectionState::Failed { reason }) = e {
            scan("a failure", &reason.to_string());
        }
    }
    scan("stats", &format!("{:?}", sim.engine.stats()));
    scan("state", &format!("{:?}", sim.engine.state()));
    scan("session info", &format!("{:?}", sim.engine.session_info()));
    for h in [a, b] {
        scan(
            "subscription info",
            &format!("{:?}", sim.engine.subscription_info(h)),
        );
    }
    scan(
        "the configuration",
        &format!("{:?}", Auth::password("u", "pw-secret")),
    );
}

#[test]
fn hostile_frames_carrying_token_text_are_refused_without_echoing_it() {
    let frames = [
        r#"{"subscriptionId":["tk7+/AbC="],"imdata":[]}"#.to_string(),
        r#"{"subscriptionId":"tk7+/AbC=","imdata":[]}"#.to_string(),
        format!(r#"{{"subscriptionId":["1"],"imdata":[{{"tk7{TOKEN_MARK}":5}}]}}"#),
        format!(r#"<imdata subscriptionId="tk7{TOKEN_MARK}"><x dn="a"/></imdata>"#),
        format!(r#"{{"subscriptionId":["1"],"imdata":[ tk7{TOKEN_MARK} ]}}"#),
        format!("tk7{TOKEN_MARK}"),
    ];
    for f in &frames {
        match parse_notification(f) {
            Ok(n) => {
                for r in &n.rejected {
                    scan("an entry error", &r.reason);
                }
            }
            Err(e) => scan("a frame error", &e.to_string()),
        }
    }
    // Through the engine too: its error events stay clean.
    let mut sim = Sim::new(apic_config(5), DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    let sock = *sim.dev.sockets.keys().next().expect("an open socket");
    let before = sim.events.len();
    for f in &frames {
        sim.engine.handle_socket_message(sock, f, sim.now);
    }
    sim.pump();
    assert!(
        sim.events[before..]
            .iter()
            .any(|(_, e)| matches!(e, Event::Error(_))),
        "the hostile frames were reported"
    );
    for (_, e) in &sim.events[before..] {
        scan("an event after a hostile frame", &format!("{e:?}"));
    }
}

#[test]
fn queries_that_inject_parameters_or_paths_are_refused() {
    for dn in [
        "uni/tn-a?subscription=no",
        "uni/tn-a&query-target=subtree",
        "uni/tn-a#frag",
        "uni/../../api/aaaLogout",
        "uni/tn-a%3Fx=1",
        "uni/tn-a\r\nHost: evil",
        "uni/tn-a b",
    ] {
        assert!(Query::dn(dn).render().is_err(), "{dn:?}");
    }
    for class in [
        "fvTenant?x=1",
        "fvTenant/../aaaLogin",
        "fvTenant&a",
        "fv Tenant",
        "",
    ] {
        assert!(Query::class(class).render().is_err(), "{class:?}");
    }
    let mut q = Query::class("fvTenant");
    q.options.query_target_filter = Some(r#"eq(fvTenant.name,"a")&subscription=no"#.into());
    assert!(q.render().is_err());
    q.options.query_target_filter = Some(r#"eq(fvTenant.name,"a#b")"#.into());
    assert!(q.render().is_err());
}

#[test]
fn the_socket_scheme_follows_the_page_and_credentials_stay_out_of_urls() {
    assert!(BaseUrl::parse("https://apic1")
        .unwrap()
        .socket("T")
        .starts_with("wss://"));
    assert!(BaseUrl::parse("http://127.0.0.1:8000")
        .unwrap()
        .socket("T")
        .starts_with("ws://"));
    assert!(
        BaseUrl::parse("https://admin:pw@apic1").is_err(),
        "no user info in the device URL"
    );
    // Every request the engine makes keeps the token and password out of its URL; only the socket
    // path carries the token, as the protocol requires. DevCookie only when configured.
    for transport in [
        TokenTransport::CookieJar,
        TokenTransport::CookieHeader,
        TokenTransport::DevCookie,
    ] {
        let mut cfg = Config::apic(
            BaseUrl::parse("https://apic1").unwrap(),
            Auth::password("admin", "pw-secret"),
        );
        cfg.token_transport = transport;
        let mut e = Engine::new(cfg, 0);
        let Some(Action::Http(login)) = e.poll_action() else {
            panic!("login first")
        };
        assert!(!login.url.contains("pw-secret") && !login.url.contains("admin"));
        e.handle_http_response(
            login.id,
            200,
            r#"{"imdata":[{"aaaLogin":{"attributes":{"token":"tk1+/AbC=","refreshTimeoutSeconds":"600"}}}]}"#
                .into(),
            10,
        );
        let Some(Action::OpenSocket { id, url }) = e.poll_action() else {
            panic!("socket next")
        };
        assert_eq!(url, "wss://apic1/sockettk1+/AbC=");
        e.handle_socket_open(id, 20);
        e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
        let Some(Action::Http(sub)) = e.poll_action() else {
            panic!("subscribe")
        };
        scan("a request URL", &sub.url);
        let has = |name: &str| {
            sub.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        assert_eq!(
            has("DevCookie"),
            transport == TokenTransport::DevCookie,
            "{transport:?}"
        );
        assert_eq!(
            has("Cookie"),
            transport == TokenTransport::CookieHeader,
            "{transport:?}"
        );
    }
}

/// Leaks: 10,000 subscribe/close cycles leave the engine holding nothing for them (no handle, no
/// counters entry, no pull-queue entry, no pending refresh), while the device lets the closed
/// subscriptions lapse.
#[test]
fn ten_thousand_subscribe_close_cycles_leave_nothing_behind() {
    let mut sim = Sim::new(apic_config(77), DeviceCfg::apic());
    sim.run_for(SEC);
    let keep = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(SEC);
    for i in 0..10_000u32 {
        let opts = SubOptions {
            store: i % 2 == 0,
            pull: i % 3 == 0,
            ..SubOptions::default()
        };
        let h = sim.subscribe(Query::class("fvBD"), opts);
        // Close some before the answer, some after.
        if i % 2 == 0 {
            sim.run_for(50);
        }
        assert!(sim.engine.unsubscribe(h, sim.now));
        sim.pump();
    }
    // Closed subscriptions are no longer refreshed and lapse at the device after their lifetime
    // (`refresh-timeout` 900 s by default on APIC).
    sim.run_for(16 * MIN);
    assert_eq!(
        sim.engine.handles(),
        vec![keep],
        "only the kept subscription is held"
    );
    assert_eq!(sim.engine.stats().per_subscription.len(), 1);
    assert_eq!(sim.engine.pulled_len(), 0);
    // Nothing inside grows with the subscriptions that ever existed (a slot per handle ever
    // issued was about 450 bytes a cycle in the browser).
    for (what, n) in sim.engine.footprint() {
        assert!(
            n <= 4,
            "the engine's {what} holds {n} entries for one subscription"
        );
    }
    let alive = sim
        .dev
        .subs
        .values()
        .filter(|s| s.expires_at > sim.now)
        .count();
    assert!(
        alive <= 1,
        "closed subscriptions lapsed at the device: {alive} still alive"
    );
    // Refreshes go to the one subscription left (on its schedule, plus the 30 s heartbeat that
    // a quiet connection sends), not to 10,000 ghosts.
    let before = sim.engine.stats().refresh_requests;
    sim.run_for(10 * MIN);
    let per_minute = (sim.engine.stats().refresh_requests - before) as f64 / 10.0;
    assert!(
        per_minute <= 3.0,
        "{per_minute} refreshes a minute for one subscription"
    );
}
