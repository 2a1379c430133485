//! Single decisions: one input (often driven by hand, without the fake device) and the
//! engine's answer.

use super::*;

#[test]
fn headers_follow_the_token_transport_and_gui_token() {
    let mut cfg = apic_config(20);
    cfg.gui_token = true;
    let mut e = Engine::new(cfg, 0);
    let login = http(e.poll_action());
    assert!(login
        .url
        .ends_with("/api/aaaLogin.json?gui-token-request=yes"));
    assert!(login.headers.is_empty());
    e.handle_http_response(login.id, 200, LOGIN_OK.into(), 10);
    let Some(Action::OpenSocket { id, .. }) = e.poll_action() else {
        panic!()
    };
    e.handle_socket_open(id, 20);
    e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let sub = http(e.poll_action());
    assert_eq!(
        sub.url,
        "http://dev/api/class/fvTenant.json?refresh-timeout=900&subscription=yes"
    );
    assert!(sub
        .headers
        .contains(&("Cookie".into(), "APIC-cookie=T1".into())));
    assert!(sub
        .headers
        .contains(&("APIC-challenge".into(), "U1".into())));
    assert!(!format!("{sub:?}").contains("T1"));

    let mut cfg = apic_config(21);
    cfg.token_transport = TokenTransport::CookieJar;
    let mut e = Engine::new(cfg, 0);
    up(&mut e);
    e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    assert!(
        http(e.poll_action()).headers.is_empty(),
        "the jar carries the cookie"
    );
}

#[test]
fn pushes_that_beat_the_subscribe_answer_are_kept() {
    let mut e = Engine::new(apic_config(22), 0);
    let sock = up(&mut e);
    let h = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let sub = http(e.poll_action());
    let frame = r#"{"subscriptionId":["72057598349803562"],"imdata":[{"fvTenant":{"attributes":{"dn":"uni/tn-x","status":"created","modTs":"2024-01-01T00:00:01.000+00:00"}}}]}"#;
    e.handle_socket_message(sock, frame, 40);
    e.handle_http_response(
        sub.id,
        200,
        r#"{"totalCount":"0","subscriptionId":"72057598349803562","imdata":[]}"#.into(),
        50,
    );
    let evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    let pos_sub = evs
        .iter()
        .position(|e| matches!(e, Event::Subscribed { .. }))
        .unwrap();
    let pos_del = evs
        .iter()
        .position(|e| matches!(e, Event::Deliver { handle, mos } if *handle == h && mos[0].dn == "uni/tn-x"))
        .expect("the early push is delivered");
    assert!(pos_sub < pos_del);
}

/// Found by the chaos suite: many classes (`ethpmPhysIf` among them) carry `modTs: "never"`
/// in a snapshot, while a push carries a timestamp. A push that beat the subscribe answer was
/// compared with the snapshot's `modTs` as text ("2026-…" sorts before "never") and dropped: the
/// store kept the old value with no gap. A push for the new id can only describe a change made
/// after the subscription existed, so it is applied, in order, whatever the timestamps say.
#[test]
fn early_pushes_are_applied_in_store_mode_whatever_the_modts() {
    for (held, pushed) in [
        ("never", "2026-11-23T04:27:55.100+00:00"),
        ("never", "never"),
        (
            "2026-11-23T04:27:55.100+00:00",
            "2026-11-23T04:27:55.100+00:00",
        ),
    ] {
        let mut e = Engine::new(apic_config(24), 0);
        let sock = up(&mut e);
        let opts = SubOptions {
            store: true,
            ..SubOptions::default()
        };
        let h = e.subscribe(Query::class("ethpmPhysIf"), opts, 30);
        let sub = http(e.poll_action());
        let dn = "topology/pod-1/node-101/sys/phys-[eth1/15]/phys";
        let frame = format!(
            r#"{{"subscriptionId":["72057598349803562"],"imdata":[{{"ethpmPhysIf":{{"attributes":{{"dn":"{dn}","status":"modified","modTs":"{pushed}","operSt":"down","lastLinkStChg":"2026-11-23T04:27:55.100+00:00"}}}}}}]}}"#
        );
        e.handle_socket_message(sock, &frame, 40);
        let answer = format!(
            r#"{{"totalCount":"1","subscriptionId":"72057598349803562","imdata":[{{"ethpmPhysIf":{{"attributes":{{"dn":"{dn}","modTs":"{held}","operSt":"up","lastLinkStChg":"2026-11-16T17:47:58.643+00:00"}}}}}}]}}"#
        );
        e.handle_http_response(sub.id, 200, answer, 50);
        let mo = e.store(h).and_then(|s| s.get(dn)).expect("held");
        assert_eq!(
            (mo.get("operSt"), mo.get("lastLinkStChg")),
            (Some("down"), Some("2026-11-23T04:27:55.100+00:00")),
            "snapshot modTs {held}, push modTs {pushed}"
        );
        let delivered = std::iter::from_fn(|| e.poll_event()).any(|ev| {
            matches!(&ev, Event::Deliver { handle, mos } if *handle == h && mos.iter().any(|m| m.get("operSt") == Some("down")))
        });
        assert!(delivered, "the change is delivered (snapshot modTs {held})");
    }
}

/// Found by the chaos suite (schedule 167): a make-before-break rotation began while a
/// subscribe was in flight; that answer arrived before the rotation's login answer and the
/// engine took "no subscription left on an old id" for "rotation done". The login answer then
/// switched to the new session and socket anyway, with `rotating` cleared, so nothing moved to
/// the new socket: the subscriptions were neither refreshed nor resubscribed, and lapsed at the
/// device with no gap until the next rotation.
#[test]
fn a_rotation_that_starts_while_a_subscribe_is_in_flight_still_moves_every_subscription() {
    let mut e = Engine::new(apic_config(31), 0);
    let login = http(e.poll_action());
    let body = r#"{"totalCount":"1","imdata":[{"aaaLogin":{"attributes":{"token":"T1","refreshTimeoutSeconds":"600","maximumLifetimeSeconds":"240"}}}]}"#;
    e.handle_http_response(login.id, 200, body.into(), 10);
    let Some(Action::OpenSocket { id: sock, .. }) = e.poll_action() else {
        panic!()
    };
    e.handle_socket_open(sock, 20);
    let rotates_at = e.session_info().unwrap().rotates_at.unwrap();
    e.handle_timeout(rotates_at - 500);
    assert!(e.poll_action().is_none());
    let h = e.subscribe(
        Query::class("fvTenant"),
        SubOptions::default(),
        rotates_at - 400,
    );
    let sub = http(e.poll_action());
    e.handle_timeout(rotates_at);
    let rotation = http(e.poll_action());
    assert!(rotation.url.contains("aaaLogin"), "{}", rotation.url);
    // The subscribe answers first, then the rotation's login.
    e.handle_http_response(
        sub.id,
        200,
        r#"{"totalCount":"0","subscriptionId":"72057598349803562","imdata":[]}"#.into(),
        rotates_at + 10,
    );
    assert_eq!(
        e.stats().session_rotations,
        0,
        "the rotation is not done yet"
    );
    let body2 = r#"{"totalCount":"1","imdata":[{"aaaLogin":{"attributes":{"token":"T2","refreshTimeoutSeconds":"600","maximumLifetimeSeconds":"240"}}}]}"#;
    e.handle_http_response(rotation.id, 200, body2.into(), rotates_at + 20);
    let new_sock = loop {
        match e.poll_action() {
            Some(Action::OpenSocket { id, url }) => {
                assert!(url.contains("socketT2"));
                break id;
            }
            Some(_) => continue,
            None => panic!("the rotation opens the new session's socket"),
        }
    };
    e.handle_socket_open(new_sock, rotates_at + 30);
    let moved = std::iter::from_fn(|| e.poll_action()).any(|a| {
        matches!(&a, Action::Http(r) if r.url.contains("/api/class/fvTenant.json") && r.url.contains("subscription=yes"))
    });
    assert!(moved, "the subscription is resubscribed on the new session");
    let info = e.subscription_info(h).unwrap();
    assert_ne!(
        info.state,
        dme_events::engine::SubState::Active,
        "until the new answer"
    );
}

#[test]
fn frames_fan_out_once_per_subscription_and_unknown_ids_are_counted() {
    let mut e = Engine::new(apic_config(23), 0);
    let sock = up(&mut e);
    let a = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let b = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let ra = http(e.poll_action());
    let rb = http(e.poll_action());
    e.handle_http_response(
        ra.id,
        200,
        r#"{"subscriptionId":"11","imdata":[]}"#.into(),
        40,
    );
    e.handle_http_response(
        rb.id,
        200,
        r#"{"subscriptionId":"12","imdata":[]}"#.into(),
        40,
    );
    while e.poll_event().is_some() {}
    let mo = r#"{"fvTenant":{"attributes":{"dn":"uni/tn-x","status":"modified","descr":"d"}}}"#;
    let frame = format!(
        r#"{{"subscriptionId":["11","12","99"],"imdata":[{mo},{mo},{{"fvBD":{{"attributes":{{"dn":"uni/tn-x/BD-b","status":"deleted"}}}}}}]}}"#
    );
    e.handle_socket_message(sock, &frame, 50);
    let evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    let delivered: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { handle, mos } => Some((*handle, mos.len())),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        vec![(a, 2), (b, 2)],
        "every entry, the repeat once, each sub once"
    );
    assert_eq!(e.stats().unknown_id_frames, 1);
    e.handle_socket_message(sock, "{not json", 60);
    assert!(matches!(e.poll_event(), Some(Event::Error(err)) if err.code() == "PROTOCOL"));
    assert_eq!(e.stats().malformed_frames, 1);
    // After unsubscribe, late pushes for its id are dropped.
    assert!(e.unsubscribe(a, 70));
    let frame = format!(r#"{{"subscriptionId":["11"],"imdata":[{mo}]}}"#);
    e.handle_socket_message(sock, &frame, 80);
    assert!(!std::iter::from_fn(|| e.poll_event()).any(|e| matches!(e, Event::Deliver { .. })));
    assert_eq!(e.stats().unknown_id_frames, 2);
}

#[test]
fn a_stale_token_403_is_retried_not_escalated() {
    let mut cfg = apic_config(24);
    cfg.heartbeat_idle_ms = u64::MAX / 4;
    let mut e = Engine::new(cfg, 0);
    up(&mut e);
    let h = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let sub = http(e.poll_action());
    e.handle_http_response(
        sub.id,
        200,
        r#"{"subscriptionId":"11","imdata":[]}"#.into(),
        40,
    );
    // Time for the session refresh (<= 300 s) and the subscription refresh (<= 300 s).
    let mut refresh = None;
    let mut aaa = None;
    let mut now = 40;
    let mut guard = 0;
    while refresh.is_none() || aaa.is_none() {
        guard += 1;
        assert!(guard < 10_000, "stuck at {now}: {:?}", e.poll_timeout());
        now = e.poll_timeout().unwrap();
        e.handle_timeout(now);
        while let Some(a) = e.poll_action() {
            if let Action::Http(r) = a {
                if r.url.contains("aaaRefresh") {
                    aaa = Some(r);
                } else if r.url.contains("subscriptionRefresh") {
                    refresh = Some(r);
                }
            }
        }
    }
    let (aaa, refresh) = (aaa.unwrap(), refresh.unwrap());
    e.handle_http_response(aaa.id, 200, LOGIN_OK.replace("T1", "T2"), now + 1);
    // The refresh went out with T1 and the device had already switched to T2.
    e.handle_http_response(
        refresh.id,
        403,
        r#"{"imdata":[{"error":{"attributes":{"code":"403","text":"Token was invalid (Error: Token timeout)"}}}]}"#.into(),
        now + 2,
    );
    // The retry goes out at once, or at its slot under the rate cap.
    let again = match e.poll_action() {
        Some(a) => http(Some(a)),
        None => {
            let t = e.poll_timeout().unwrap();
            assert!(t <= now + 200, "{t} vs {now}");
            e.handle_timeout(t);
            http(e.poll_action())
        }
    };
    assert!(again.url.contains("subscriptionRefresh"));
    assert!(again
        .headers
        .contains(&("Cookie".into(), "APIC-cookie=T2".into())));
    assert_eq!(e.subscription_info(h).unwrap().state, SubState::Active);
    assert_eq!(e.stats().logins, 1);
}

#[test]
fn per_subscription_refresh_timeout_override_and_opt_out() {
    let mut sim = Sim::new(apic_config(25), DeviceCfg::apic());
    let long = sim.subscribe(
        Query::class("fvTenant"),
        SubOptions {
            refresh_timeout: Some(1800),
            ..SubOptions::default()
        },
    );
    let short = sim.subscribe(
        Query::class("fvBD"),
        SubOptions {
            no_refresh_timeout: true,
            ..SubOptions::default()
        },
    );
    sim.run_for(30 * MIN);
    assert_eq!(
        sim.engine.subscription_info(long).unwrap().lifetime_secs,
        1800
    );
    assert_eq!(
        sim.engine.subscription_info(short).unwrap().lifetime_secs,
        60
    );
    assert_eq!(sim.subscribe_sends.len(), 2);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert!(sim.dev.max_refresh_gap_ratio < 1.0 / 3.0);
    assert_clean(&sim);
}

#[test]
fn unsubscribe_stops_refreshing() {
    let mut sim = Sim::new(apic_config(26), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert!(sim.engine.unsubscribe(h, sim.now));
    let before = sim.refresh_sends.len();
    sim.run_for(HOUR);
    assert_eq!(sim.refresh_sends.len(), before);
    assert!(
        sim.dev.subs.values().all(|s| s.expires_at < sim.now),
        "the device let it lapse"
    );
    assert!(sim.engine.subscription_info(h).is_none());
    assert!(!sim.engine.unsubscribe(h, sim.now));
}

#[test]
fn a_frozen_tab_catches_up_when_visible_again() {
    let mut sim = Sim::new(apic_config(27), DeviceCfg::apic());
    for _ in 0..20 {
        sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    }
    sim.run_for(10 * MIN);
    let _ = sim.engine.poll_timeout();
    // A background tab: no timer fires for four minutes.
    sim.now += 4 * MIN;
    let sends = sim.refresh_sends.len();
    let aaa = sim.dev.aaa_refreshes;
    sim.engine.handle_visibility(true, sim.now);
    sim.run_for(5 * SEC);
    assert!(
        sim.refresh_sends.len() > sends,
        "overdue refreshes went out at once"
    );
    assert!(
        sim.dev.aaa_refreshes > aaa,
        "the overdue session refresh too"
    );
    assert!(
        sim.max_refreshes_in_window(1_000) <= 5,
        "still within the cap"
    );
    sim.run_for(HOUR);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert!(sim.engine.stats().heartbeats >= 1);
    assert!(live(&sim));
    assert_clean(&sim);
}

#[test]
fn a_wall_clock_jump_triggers_verification() {
    let mut cfg = apic_config(28);
    cfg.heartbeat_idle_ms = 10 * MIN;
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.engine.handle_wall_clock(1_700_000_000_000, sim.now);
    let before = sim.engine.stats().heartbeats;
    sim.engine
        .handle_wall_clock(1_700_000_000_000 + 5_000, sim.now + 5_000);
    assert_eq!(sim.engine.stats().heartbeats, before, "no jump");
    sim.engine
        .handle_wall_clock(1_700_000_000_000 + 3_600_000, sim.now + 6_000);
    assert_eq!(sim.engine.stats().heartbeats, before + 1, "jump: verify");
    assert!(matches!(
        sim.engine.state(),
        ConnectionState::Degraded {
            reason: dme_events::engine::DegradedReason::Verifying
        }
    ));
    sim.run_for(MIN);
    assert!(live(&sim), "the verification succeeded");
    assert_clean(&sim);
}

#[test]
fn long_throttling_never_lets_short_subscriptions_lapse() {
    let mut dev = DeviceCfg::apic();
    dev.supports_refresh_timeout = false;
    let mut sim = Sim::new(apic_config(29), dev);
    let handles: Vec<_> = (0..10)
        .map(|_| sim.subscribe(Query::class("fvTenant"), SubOptions::default()))
        .collect();
    sim.run_for(MIN);
    // Refreshes are refused with 503 for 25 s at a time, then accepted for a minute.
    for _ in 0..5 {
        sim.dev.faults.throttle_refresh = true;
        sim.run_for(25 * SEC);
        sim.dev.faults.throttle_refresh = false;
        sim.run_for(MIN);
    }
    sim.run_for(5 * MIN);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    for h in handles {
        assert!(sim.gaps(h).is_empty(), "{:?}", sim.gaps(h));
    }
    assert!(sim.max_refreshes_in_window(1_000) <= 5);
    assert_clean(&sim);
}

/// The refresh answers among the events, in order.
fn refreshed(sim: &Sim) -> Vec<(SubHandle, Result<(), EngineError>)> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Refreshed { handle, result } => Some((*handle, result.clone())),
            _ => None,
        })
        .collect()
}

/// Every `Engine::refresh` call gets exactly one `Refreshed`: calls made while a refresh is on
/// its way share its outcome, a refusal by the device answers with the device's error, and a
/// call the engine cannot carry out is answered at once.
#[test]
fn each_refresh_call_is_answered_by_one_refreshed_event() {
    let mut sim = Sim::new(apic_config(40), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(10 * SEC);
    assert!(all_active(&sim));
    let before = sim.engine.subscription_info(h).unwrap().counters;

    sim.engine.refresh(h, sim.now);
    sim.engine.refresh(h, sim.now);
    sim.pump();
    assert!(refreshed(&sim).is_empty(), "answered only by the device");
    sim.run_for(SEC);
    assert_eq!(refreshed(&sim), vec![(h, Ok(())), (h, Ok(()))]);
    let after = sim.engine.subscription_info(h).unwrap().counters;
    assert_eq!(
        after.refreshes,
        before.refreshes + 1,
        "one request for both"
    );

    sim.events.clear();
    sim.dev.faults.throttle_refresh = true;
    sim.engine.refresh(h, sim.now);
    sim.run_for(SEC);
    let answers = refreshed(&sim);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].1.as_ref().unwrap_err().code(), "THROTTLED");
    sim.dev.faults.throttle_refresh = false;
    sim.run_for(MIN);
    assert_eq!(refreshed(&sim).len(), 1, "later refreshes answer no call");

    sim.events.clear();
    let unknown = SubHandle(999);
    sim.engine.refresh(unknown, sim.now);
    sim.pump();
    assert_eq!(
        refreshed(&sim),
        vec![(unknown, Err(EngineError::UnknownHandle))]
    );

    sim.events.clear();
    sim.engine.refresh(h, sim.now);
    sim.engine.close(sim.now);
    sim.pump();
    assert_eq!(refreshed(&sim), vec![(h, Err(EngineError::Closed))]);
    sim.engine.refresh(h, sim.now);
    sim.pump();
    assert_eq!(refreshed(&sim).len(), 2);
    assert_clean(&sim);
}

/// The timer table is visible: the next deadline is named, and firing it does what its name
/// says. A quiet connection with one subscription wakes for the heartbeat first (30 s idle, long
/// before the planned refresh); the heartbeat is that subscription's refresh, after which the
/// next deadline is the request's own timeout.
#[test]
fn the_next_timer_is_named_and_does_what_it_says() {
    let mut e = Engine::new(apic_config(41), 0);
    up(&mut e);
    let h = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let sub = http(e.poll_action());
    e.handle_http_response(
        sub.id,
        200,
        r#"{"totalCount":"0","subscriptionId":"72057598349803562","imdata":[]}"#.into(),
        50,
    );
    let planned = e.subscription_info(h).unwrap().next_refresh_at.unwrap();
    let (timer, at) = e.next_timer().unwrap();
    assert_eq!((timer, at), (Timer::Heartbeat, 50 + 30 * SEC));
    assert!(at < planned);
    assert_eq!(e.poll_timeout(), Some(at));
    while e.poll_action().is_some() {}
    e.handle_timeout(at);
    let refresh = http(e.poll_action());
    assert!(refresh
        .url
        .contains("/api/subscriptionRefresh.json?id=72057598349803562"));
    assert_eq!(e.next_timer(), Some((Timer::RequestTimeout, at + 31 * SEC)));
    e.handle_http_response(refresh.id, 200, r#"{"imdata":[]}"#.into(), at + 10);
    assert_eq!(e.next_timer(), Some((Timer::Heartbeat, at + 10 + 30 * SEC)));
}
