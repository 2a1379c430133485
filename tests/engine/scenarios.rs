//! Long runs and a session's life end to end: what a consumer sees over hours of simulated
//! time.

use super::*;

/// The headline: a 24-hour APIC session with 1,000 subscriptions, the rate cap held, zero
/// expiries, aaaRefresh every few minutes and one make-before-break rotation without a gap.
#[test]
fn apic_day_with_1000_subscriptions() {
    let started = Instant::now();
    let mut sim = Sim::new(apic_config(1), DeviceCfg::apic());
    sim.keep_events = false;
    sim.dev.objects.insert(
        "uni/tn-a".into(),
        tenant("a", Status::Snapshot).with("name", "a"),
    );
    let handles: Vec<_> = (0..1000)
        .map(|_| sim.subscribe(Query::class("fvTenant"), SubOptions::default()))
        .collect();
    sim.run_for(2 * MIN);
    assert!(all_active(&sim), "all subscribed within two minutes");
    for hour in 0..24 {
        sim.run_until(1_000 + (hour + 1) * HOUR);
        sim.check_alive();
        // A little life on the fabric.
        sim.change(tenant("a", Status::Modified).with("descr", format!("h{hour}")));
    }
    let elapsed = started.elapsed();
    let st = sim.engine.stats();
    let window = sim.max_refreshes_in_window(1_000);
    eprintln!(
        "24 h x 1000 subscriptions: {} refreshes, max {} refresh requests in any 1 s window (cap 5), \
         {} lapsed at the device, {} engine expiries, {} logins, {} token refreshes, {} rotations, \
         {} gaps, max refresh gap {:.2} of lifetime, {} stale-token requests, wall time {:?}",
        sim.dev.refreshes,
        window,
        sim.dev.lapsed_refreshes,
        st.total.expiries,
        st.logins,
        st.token_refreshes,
        st.session_rotations,
        st.total.gaps,
        sim.dev.max_refresh_gap_ratio,
        sim.stale_token_requests,
        elapsed
    );
    assert_clean(&sim);
    assert!(window <= 5, "rate cap held: {window}");
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert_eq!(sim.dev.unknown_refreshes, 0);
    assert_eq!(st.total.expiries, 0);
    assert!(
        sim.dev.max_refresh_gap_ratio < 1.0 / 3.0,
        "refresh spacing: never later than a third of the lifetime"
    );
    assert!(
        sim.dev.refreshes > 250_000,
        "1000 subs refreshed every ~5 min"
    );
    assert_eq!(st.logins, 2, "the first login and one rotation");
    assert_eq!(st.session_rotations, 1);
    assert!(st.token_refreshes >= 280, "aaaRefresh at most every 5 min");
    assert_eq!(sim.stale_token_requests, 0, "exactly one current token");
    // The planned rotation is no disruption: no gap at all.
    for h in &handles {
        assert_eq!(sim.gaps(*h), vec![]);
    }
    assert!(live(&sim));
    assert_eq!(sim.dev.sessions.len(), 1, "the old session was logged out");
}

/// NX-OS: 100 subscriptions at the 90 s default lifetime (no refresh-timeout) for 6 hours.
#[test]
fn nxos_100_subscriptions() {
    let mut sim = Sim::new(nxos_config(2), DeviceCfg::nxos());
    sim.keep_events = false;
    for i in 0..100 {
        let q = Query::dn(format!("sys/intf/phys-[eth1/{i}]"));
        sim.subscribe(q, SubOptions::default());
    }
    for hour in 0..6 {
        sim.run_until(1_000 + (hour + 1) * HOUR);
        sim.check_alive();
    }
    let st = sim.engine.stats();
    let window = sim.max_refreshes_in_window(1_000);
    eprintln!(
        "NX-OS 6 h x 100: {} refreshes, max {window}/s, {} lapsed, max gap {:.2} of lifetime, {} token refreshes",
        sim.dev.refreshes, sim.dev.lapsed_refreshes, sim.dev.max_refresh_gap_ratio, st.token_refreshes
    );
    assert_clean(&sim);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert!(window <= 5);
    assert!(
        sim.dev.max_refresh_gap_ratio < 0.34,
        "a third of the lifetime at most"
    );
    assert!(sim.dev.refreshes > 100 * 6 * 120 - 100, "every ~30 s");
    assert_eq!(st.logins, 1);
    assert_eq!(st.session_rotations, 0);
    assert_eq!(sim.stale_token_requests, 0);
    for h in sim.engine.handles() {
        assert_eq!(sim.engine.subscription_info(h).unwrap().lifetime_secs, 90);
    }
}

#[test]
fn refresh_timeout_falls_back_on_400() {
    let mut dev = DeviceCfg::apic();
    dev.supports_refresh_timeout = false;
    let mut sim = Sim::new(apic_config(3), dev);
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(10 * MIN);
    let info = sim.engine.subscription_info(h).unwrap();
    assert_eq!(info.state, SubState::Active);
    assert_eq!(info.lifetime_secs, 60);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert!(sim.dev.refreshes >= 30, "every 20 s at most");
    assert!(sim.dev.max_refresh_gap_ratio <= 0.34);
    assert_clean(&sim);
}

#[test]
fn rejected_credentials_fail() {
    let mut dev = DeviceCfg::apic();
    dev.password = "other".into();
    let mut sim = Sim::new(apic_config(10), dev);
    sim.run_for(MIN);
    match sim.engine.state() {
        ConnectionState::Failed { reason } => assert_eq!(reason.code(), "AUTH_REJECTED"),
        s => panic!("{s:?}"),
    }
    assert_eq!(sim.engine.poll_timeout(), None);
}

#[test]
fn store_mode_delivers_full_objects_and_skips_no_ops() {
    let mut sim = Sim::new(apic_config(13), DeviceCfg::apic());
    sim.dev.objects.insert(
        "uni/tn-a".into(),
        tenant("a", Status::Snapshot)
            .with("name", "a")
            .with("descr", "0"),
    );
    let h = sim.subscribe(
        Query::class("fvTenant"),
        SubOptions {
            store: true,
            ..Default::default()
        },
    );
    sim.run_for(MIN);
    sim.events.clear();
    sim.change(tenant("a", Status::Modified).with("descr", "1"));
    sim.run_for(SEC);
    sim.change(tenant("a", Status::Modified).with("descr", "1"));
    sim.run_for(SEC);
    sim.change(tenant("a", Status::Deleted));
    sim.run_for(SEC);
    let delivered: Vec<Mo> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Deliver { handle, mos } if *handle == h => Some(mos.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(delivered.len(), 2, "the repeat changed nothing");
    assert_eq!(delivered[1].status, Status::Deleted);
    assert_eq!(delivered[1].get("name"), Some("a"), "the last full object");
    assert_eq!(delivered[0].status, Status::Modified);
    assert_eq!(
        delivered[0].get("name"),
        Some("a"),
        "full object, not the sparse delta"
    );
    assert_eq!(delivered[0].get("descr"), Some("1"));
}

#[test]
fn pull_queue_overflow_drops_oldest_and_signals_a_gap() {
    let mut cfg = apic_config(17);
    cfg.queue_capacity = 4;
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.drain_pull = false;
    sim.dev
        .objects
        .insert("uni/tn-a".into(), tenant("a", Status::Snapshot));
    let h = sim.subscribe(
        Query::class("fvTenant"),
        SubOptions {
            pull: true,
            ..Default::default()
        },
    );
    sim.run_for(MIN);
    for i in 0..10 {
        sim.change(tenant("a", Status::Modified).with("descr", format!("{i}")));
        sim.run_for(100);
    }
    assert_eq!(sim.engine.pulled_len(), 4);
    assert_eq!(
        sim.engine.next_pulled(),
        Some(Pulled::Gap {
            handle: h,
            reason: GapReason::QueueOverflow
        })
    );
    let mut got = Vec::new();
    while let Some(Pulled::Mos { mos, .. }) = sim.engine.next_pulled() {
        got.push(mos[0].get("descr").unwrap().to_owned());
    }
    assert_eq!(got, vec!["6", "7", "8", "9"]);
    let st = sim.engine.stats();
    assert_eq!(st.per_subscription[&h].drops, 6);
    assert_eq!(st.per_subscription[&h].gaps, 1);
}

#[test]
fn logout_ends_the_session() {
    let mut sim = Sim::new(apic_config(18), DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.engine.logout(sim.now);
    sim.run_for(MIN);
    assert!(sim.dev.sessions.is_empty());
    assert_eq!(sim.engine.state(), &ConnectionState::Closed);
    assert!(sim.count_events(|e| matches!(e, Event::LoggedOut)) == 1);
    assert!(sim.count_events(|e| matches!(e, Event::Closed)) == 1);
    assert_eq!(sim.engine.poll_timeout(), None);
}

#[test]
fn unknown_class_fails_that_subscription_only() {
    let mut sim = Sim::new(apic_config(19), DeviceCfg::apic());
    let bad = sim.subscribe(Query::class("fvTenantt"), SubOptions::default());
    let good = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert_eq!(
        sim.engine.subscription_info(bad).unwrap().state,
        SubState::Failed
    );
    assert!(sim.tracks[&bad].failed);
    assert_eq!(
        sim.engine.subscription_info(good).unwrap().state,
        SubState::Active
    );
    let codes: Vec<&str> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::SubscribeFailed { error, .. } => Some(error.code()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec!["UNKNOWN_CLASS"]);
}

#[test]
fn adopted_token_is_verified_and_fails_when_the_session_ends() {
    let mut dev = Device::new(DeviceCfg::apic());
    let login = dme_events::engine::HttpRequest {
        id: dme_events::engine::RequestId(0),
        method: dme_events::engine::Method::Post,
        url: format!("{HOST}/api/aaaLogin.json"),
        headers: vec![],
        body: Some(dme_events::protocol::login_body("admin", "pw")),
        timeout_ms: 1,
    };
    let (_, body) = dev.http(&login, 1_000);
    let token = dme_events::protocol::parse_login(200, &body).unwrap().token;
    let mut cfg = Config::apic(
        base(),
        Auth::Token {
            token: token.clone(),
            url_token: Some("U".into()),
            user: None,
        },
    );
    cfg.token_transport = TokenTransport::DevCookie;
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.dev = dev;
    sim.engine_token = Some(token);
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert!(live(&sim));
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_eq!(sim.engine.stats().logins, 0);
    assert_eq!(sim.stale_token_requests, 0);
    let sid = *sim.dev.sessions.keys().next().unwrap();
    let s = sim.dev.sessions.remove(&sid).unwrap();
    sim.dev.tokens.remove(&s.token);
    sim.run_for(10 * MIN);
    match sim.engine.state() {
        ConnectionState::Failed { reason } => assert_eq!(reason.code(), "SESSION_EXPIRED"),
        s => panic!("{s:?}"),
    }
}
