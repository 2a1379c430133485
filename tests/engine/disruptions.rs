//! Disruptions and recovery end to end: every loss gives each subscription exactly one gap,
//! then the truth again.

use super::*;

#[test]
fn expired_subscription_is_resubscribed_alone_with_one_gap() {
    let mut sim = Sim::new(apic_config(4), DeviceCfg::apic());
    let a = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    let b = sim.subscribe(Query::class("fvBD"), SubOptions::default());
    sim.run_for(MIN);
    let id = sim
        .engine
        .subscription_info(a)
        .unwrap()
        .subscription_id
        .unwrap();
    sim.dev.subs.remove(&id);
    sim.engine.refresh(a, sim.now);
    sim.run_for(MIN);
    assert_eq!(sim.gaps(a), vec![GapReason::Expired]);
    assert!(sim.gaps(b).is_empty());
    let info = sim.engine.subscription_info(a).unwrap();
    assert_eq!(info.state, SubState::Active);
    assert_ne!(info.subscription_id.unwrap(), id, "a new id");
    assert_eq!(sim.engine.stats().total.expiries, 1);
    assert_clean(&sim);
}

#[test]
fn socket_not_found_rebuilds_socket_and_every_subscription() {
    let mut sim = Sim::new(apic_config(5), DeviceCfg::apic());
    let a = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    let b = sim.subscribe(Query::class("fvBD"), SubOptions::default());
    sim.run_for(MIN);
    let opens = sim.socket_opens;
    // The device forgets our socket (but the browser never hears of it); a new subscribe gets 405.
    sim.socket_dies_silently();
    let c = sim.subscribe(Query::class("fvAEPg"), SubOptions::default());
    sim.run_for(MIN);
    assert!(sim.socket_opens > opens, "a new socket");
    assert_eq!(sim.gaps(a), vec![GapReason::SocketRebuilt]);
    assert_eq!(sim.gaps(b), vec![GapReason::SocketRebuilt]);
    assert!(sim.gaps(c).is_empty(), "never had data, no gap");
    assert!(all_active(&sim));
    assert_eq!(sim.dev.subs.len(), 3);
    assert_clean(&sim);
}

/// A 503 storm hits every request in flight at once: that is one throttling episode, and the
/// pause must grow once, not once per failed request (8 subscribes answered 503 together used
/// to push the pause to the 60 s cap).
#[test]
fn simultaneous_503s_count_as_one_throttling_step() {
    let mut sim = Sim::new(apic_config(16), DeviceCfg::apic());
    sim.run_for(SEC);
    sim.dev.faults.throttle_subscribe = true;
    let classes = [
        "fvTenant",
        "fvBD",
        "fvAEPg",
        "fvCtx",
        "vzBrCP",
        "faultInst",
        "fvAp",
        "l1PhysIf",
    ];
    for c in classes {
        sim.subscribe(Query::class(c), SubOptions::default());
    }
    sim.run_for(SEC / 2);
    assert!(
        sim.engine.stats().subscribe_requests >= classes.len() as u64,
        "all went out together"
    );
    sim.dev.faults.throttle_subscribe = false;
    sim.run_for(5 * SEC);
    assert!(all_active(&sim), "back within a few seconds, not a minute");
    assert!(live(&sim));
    assert_clean(&sim);
}

#[test]
fn throttled_refreshes_back_off_without_expiry() {
    let mut sim = Sim::new(apic_config(6), DeviceCfg::apic());
    let opts = SubOptions {
        refresh_timeout: Some(60),
        ..SubOptions::default()
    };
    let h = sim.subscribe(Query::class("fvTenant"), opts);
    sim.run_for(MIN);
    sim.dev.faults.throttle_refresh = true;
    let sends = sim.refresh_sends.len();
    sim.run_for(15 * SEC);
    let during = sim.refresh_sends.len() - sends;
    assert!(during <= 6, "backed off: {during} refreshes in 15 s");
    assert!(
        matches!(
            sim.engine.state(),
            ConnectionState::Degraded {
                reason: dme_events::engine::DegradedReason::Throttled
            }
        ) || live(&sim)
    );
    sim.dev.faults.throttle_refresh = false;
    sim.run_for(5 * MIN);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
    assert!(
        sim.gaps(h).is_empty(),
        "no gap: throttling is not a disruption"
    );
    assert!(live(&sim));
    assert!(sim.engine.stats().total.refresh_failures > 0);
    assert_clean(&sim);
}

#[test]
fn token_timeout_relogs_in_and_resubscribes() {
    let mut sim = Sim::new(apic_config(7), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    // The session dies at the device without the socket closing (strict worst case).
    let sid = *sim.dev.sessions.keys().next().unwrap();
    let s = sim.dev.sessions.remove(&sid).unwrap();
    sim.dev.tokens.remove(&s.token);
    sim.run_for(6 * MIN);
    assert!(
        sim.gaps(h).first() == Some(&GapReason::Relogin),
        "{:?}",
        sim.gaps(h)
    );
    assert_eq!(sim.gaps(h).len(), 1);
    assert_eq!(sim.engine.stats().logins, 2);
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_eq!(sim.stale_token_requests, 0);
    assert_clean(&sim);
}

#[test]
fn socket_close_reconnects_with_one_gap() {
    let mut sim = Sim::new(apic_config(8), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.device_drops_socket();
    sim.run_for(10);
    assert!(matches!(
        sim.engine.state(),
        ConnectionState::Reconnecting { attempt: 1, .. }
    ));
    sim.run_for(MIN);
    assert_eq!(sim.gaps(h), vec![GapReason::Reconnect]);
    assert!(live(&sim));
    assert_eq!(
        sim.engine.stats().logins,
        1,
        "the session survived; only the socket was new"
    );
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_clean(&sim);
}

#[test]
fn silent_socket_death_is_found_by_the_heartbeat() {
    let mut sim = Sim::new(apic_config(9), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.socket_dies_silently();
    // Refreshes of a 900 s subscription come every ~5 min; the idle heartbeat comes sooner.
    sim.run_for(2 * MIN);
    assert!(sim.engine.stats().heartbeats >= 1);
    assert_eq!(sim.gaps(h).len(), 1, "{:?}", sim.gaps(h));
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_clean(&sim);
}

#[test]
fn reconnect_backoff_is_capped_exponential_with_full_jitter_and_a_retry_cap() {
    let mut cfg = apic_config(11);
    cfg.max_reconnect_attempts = Some(12);
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.dev.faults.network_down = true;
    sim.device_drops_socket();
    sim.run_for(2 * HOUR);
    let mut delays = Vec::new();
    for (t, e) in &sim.events {
        if let Event::State(ConnectionState::Reconnecting { attempt, next_at }) = e {
            if next_at > t {
                delays.push((*attempt, next_at - t));
            }
        }
    }
    assert!(delays.len() >= 8, "{delays:?}");
    for (n, d) in &delays {
        let ceiling = (1000u64 << (n - 1)).min(60_000);
        assert!(*d <= ceiling, "attempt {n} waited {d} > {ceiling}");
    }
    let late: Vec<u64> = delays
        .iter()
        .filter(|(n, _)| *n >= 8)
        .map(|x| x.1)
        .collect();
    assert!(late.iter().any(|d| *d > 1_000), "it grows: {late:?}");
    match sim.engine.state() {
        ConnectionState::Failed { reason } => assert_eq!(reason, &EngineError::RetryCap(12)),
        s => panic!("{s:?}"),
    }
}

#[test]
fn network_outage_then_recovery_reconciles_the_store() {
    let mut sim = Sim::new(apic_config(12), DeviceCfg::apic());
    for n in ["a", "b", "c"] {
        sim.dev.objects.insert(
            format!("uni/tn-{n}"),
            tenant(n, Status::Snapshot).with("descr", "0"),
        );
    }
    let opts = SubOptions {
        store: true,
        ..SubOptions::default()
    };
    let h = sim.subscribe(Query::class("fvTenant"), opts);
    sim.run_for(MIN);
    sim.change(tenant("a", Status::Modified).with("descr", "1"));
    sim.run_for(SEC);
    assert_eq!(
        sim.engine
            .store(h)
            .unwrap()
            .get("uni/tn-a")
            .unwrap()
            .get("descr"),
        Some("1")
    );
    // Outage: the socket dies, changes happen that nobody hears.
    sim.dev.faults.network_down = true;
    sim.device_drops_socket();
    sim.change(tenant("b", Status::Deleted));
    sim.change(tenant("c", Status::Modified).with("descr", "2"));
    sim.change(tenant("d", Status::Created).with("descr", "new"));
    sim.run_for(30 * SEC);
    sim.dev.faults.network_down = false;
    sim.engine.handle_online(true, sim.now);
    sim.run_for(2 * MIN);
    assert_eq!(sim.gaps(h), vec![GapReason::Reconnect]);
    let truth = sim.dev.truth(&Query::class("fvTenant").target);
    let held: Vec<String> = sim
        .engine
        .store(h)
        .unwrap()
        .iter()
        .map(|m| m.dn.clone())
        .collect();
    assert_eq!(held, truth.keys().cloned().collect::<Vec<_>>());
    for m in sim.engine.store(h).unwrap().iter() {
        assert_eq!(m.get("descr"), truth[&m.dn].get("descr"));
    }
    // The consumer that applied every delivery converged too.
    let view = &sim.tracks[&h].view;
    assert_eq!(
        view.keys().collect::<Vec<_>>(),
        truth.keys().collect::<Vec<_>>()
    );
    for (dn, m) in view {
        assert_eq!(m.get("descr"), truth[dn].get("descr"), "{dn}");
    }
    let deliveries: Vec<(String, Status)> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Deliver { mos, .. } => Some(
                mos.iter()
                    .map(|m| (m.dn.clone(), m.status))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(deliveries.contains(&("uni/tn-b".into(), Status::Deleted)));
    assert!(deliveries.contains(&("uni/tn-c".into(), Status::Modified)));
    assert!(deliveries.contains(&("uni/tn-d".into(), Status::Created)));
    assert_clean(&sim);
}

#[test]
fn clock_jump_assumes_dead_and_verifies() {
    let mut sim = Sim::new(apic_config(14), DeviceCfg::apic());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    let _ = sim.engine.poll_timeout();
    // The laptop sleeps for two hours: the session dies at the device, and nobody tells the
    // engine (no close event reaches a sleeping machine).
    sim.now += 2 * HOUR;
    let sid = *sim.dev.sessions.keys().next().unwrap();
    sim.dev.kill_session(sid);
    sim.dev.notify_closed.clear();
    sim.engine.handle_timeout(sim.now);
    sim.run_for(MIN);
    assert_eq!(sim.gaps(h).len(), 1, "{:?}", sim.gaps(h));
    assert_eq!(sim.engine.stats().logins, 2);
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert!(live(&sim));
    assert_clean(&sim);
}

#[test]
fn failover_to_the_next_controller() {
    let mut cfg = apic_config(15);
    cfg.urls = vec![
        dme_events::protocol::BaseUrl::parse("http://dead").unwrap(),
        dme_events::protocol::BaseUrl::parse("http://dev").unwrap(),
    ];
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.dead_hosts.push("http://dead".into());
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert!(live(&sim));
    assert_eq!(sim.engine.current_url().to_string(), "http://dev");
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    // Now "dev" goes down and "dead" comes back: everything moves there.
    sim.dead_hosts = vec!["http://dev".into()];
    sim.device_drops_socket();
    sim.run_for(2 * MIN);
    assert_eq!(sim.engine.current_url().to_string(), "http://dead");
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_eq!(sim.gaps(h).len(), 1);
    assert_clean(&sim);
}

#[test]
fn rotation_overlap_is_deduplicated() {
    let mut dev = DeviceCfg::apic();
    dev.max_lifetime_secs = Some(2 * 3600);
    let mut sim = Sim::new(apic_config(16), dev);
    sim.push_latency = Some(1);
    sim.dev
        .objects
        .insert("uni/tn-a".into(), tenant("a", Status::Snapshot));
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    let rotates_at = sim.engine.session_info().unwrap().rotates_at.unwrap();
    assert!(rotates_at < 2 * HOUR && rotates_at > HOUR + 50 * MIN);
    // A change every 10 s, then every 1 ms across the rotation window.
    let mut n = 0;
    while sim.now < rotates_at + 3 * SEC {
        n += 1;
        sim.change(tenant("a", Status::Modified).with("descr", format!("v{n}")));
        let step = if sim.now + SEC >= rotates_at {
            1
        } else {
            (rotates_at - SEC - sim.now).clamp(10, 10 * SEC)
        };
        sim.run_for(step);
    }
    sim.run_for(10 * SEC);
    assert_eq!(sim.engine.stats().session_rotations, 1);
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for (_, e) in &sim.events {
        if let Event::Deliver { mos, .. } = e {
            for m in mos {
                *seen
                    .entry(m.get("descr").unwrap_or("").to_owned())
                    .or_default() += 1;
            }
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates across the rotation: {dups:?}");
    let missing: Vec<_> = (1..=n)
        .map(|i| format!("v{i}"))
        .filter(|v| !seen.contains_key(v))
        .collect();
    assert!(missing.is_empty(), "lost across the rotation: {missing:?}");
    assert_eq!(sim.gaps(h), vec![], "a planned rotation is no disruption");
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::Subscribed { .. })),
        1,
        "no snapshot is delivered again"
    );
    let drops = sim.engine.stats().per_subscription[&h].drops;
    assert!(
        drops >= 1,
        "the overlap really happened and was filtered: {drops}"
    );
    assert_clean(&sim);
}

/// A 503 storm longer than a subscription's lifetime: the device drops the subscription at its
/// lifetime and tells nobody, and pushes nothing more for it. The engine must not show it as
/// live meanwhile: it expires the subscription itself, with one `Expired` gap within the
/// lifetime plus one request timeout, and once the device answers again it resubscribes and the
/// reconciliation makes the store (and the consumer's view) equal to the device again.
#[test]
fn a_503_storm_longer_than_the_lifetime_expires_the_subscription_in_the_engine() {
    let mut sim = Sim::new(apic_config(42), DeviceCfg::apic());
    for n in ["a", "b"] {
        sim.dev.objects.insert(
            format!("uni/tn-{n}"),
            tenant(n, Status::Snapshot).with("descr", "0"),
        );
    }
    let opts = SubOptions {
        store: true,
        refresh_timeout: Some(60),
        ..SubOptions::default()
    };
    let h = sim.subscribe(Query::class("fvTenant"), opts);
    sim.run_for(MIN);
    assert!(all_active(&sim));
    let start = sim.now;
    sim.dev.faults.throttle_refresh = true;
    sim.dev.faults.throttle_subscribe = true;
    let mut changed = false;
    while sim.now < start + 3 * MIN {
        sim.run_for(SEC);
        let info = sim.engine.subscription_info(h).unwrap();
        if info.state == SubState::Active {
            assert!(
                info.expires_at.unwrap() > sim.now,
                "shown as active {} ms past its expiry",
                sim.now - info.expires_at.unwrap()
            );
        } else if !changed {
            // Changes the device makes after it dropped the subscription reach nobody.
            sim.change(tenant("a", Status::Modified).with("descr", "1"));
            sim.change(tenant("b", Status::Deleted));
            sim.change(tenant("c", Status::Created).with("descr", "new"));
            changed = true;
        }
    }
    assert!(
        changed,
        "the subscription left the active state during the storm"
    );
    let gaps = sim.timed_gaps(h);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].1, GapReason::Expired);
    assert!(
        gaps[0].0 <= start + 60 * SEC + 30 * SEC,
        "the gap came {} ms into the storm",
        gaps[0].0 - start
    );
    sim.dev.faults.throttle_refresh = false;
    sim.dev.faults.throttle_subscribe = false;
    sim.run_for(MIN);
    assert_eq!(sim.gaps(h), vec![GapReason::Expired]);
    assert!(all_active(&sim));
    let truth = sim.dev.truth(&Query::class("fvTenant").target);
    let held: Vec<(String, Option<String>)> = sim
        .engine
        .store(h)
        .unwrap()
        .iter()
        .map(|m| (m.dn.clone(), m.get("descr").map(str::to_owned)))
        .collect();
    let want: Vec<(String, Option<String>)> = truth
        .values()
        .map(|m| (m.dn.clone(), m.get("descr").map(str::to_owned)))
        .collect();
    assert_eq!(held, want);
    let view: Vec<(String, Option<String>)> = sim.tracks[&h]
        .view
        .values()
        .map(|m| (m.dn.clone(), m.get("descr").map(str::to_owned)))
        .collect();
    assert_eq!(view, want);
    assert_clean(&sim);
}

/// The socket stays open and quiet while every refresh, the heartbeats among them, is answered
/// 503: nothing closes, nothing times out, and the device dropped the subscription at its
/// lifetime all the same. The engine expires it itself (one `Expired` gap, within the lifetime
/// plus one request timeout, on the same socket) and makes it again once the device answers.
#[test]
fn heartbeats_answered_503_on_an_open_socket_still_expire_the_subscription() {
    let mut sim = Sim::new(apic_config(43), DeviceCfg::apic());
    sim.dev.objects.insert(
        "uni/tn-a".into(),
        tenant("a", Status::Snapshot).with("descr", "0"),
    );
    let opts = SubOptions {
        store: true,
        refresh_timeout: Some(120),
        ..SubOptions::default()
    };
    let h = sim.subscribe(Query::class("fvTenant"), opts);
    sim.run_for(MIN);
    assert!(all_active(&sim));
    let opens = sim.socket_opens;
    let start = sim.now;
    let refreshes = sim.refresh_sends.len();
    sim.dev.faults.throttle_refresh = true;
    sim.dev.faults.throttle_subscribe = true;
    sim.run_for(150 * SEC);
    // Every 30 s of silence sends a heartbeat: far more refreshes than the plan's one per 40 s.
    let sent = sim.refresh_sends.len() - refreshes;
    assert!(sent >= 5, "heartbeats and retries went out: {sent}");
    assert_eq!(sim.socket_opens, opens, "the socket looked open all along");
    let gaps = sim.timed_gaps(h);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].1, GapReason::Expired);
    let lifetime_plus_timeout = 120 * SEC + apic_config(43).request_timeout_ms;
    assert!(
        gaps[0].0 <= start + lifetime_plus_timeout,
        "the gap came {} ms into the storm",
        gaps[0].0 - start
    );
    assert_ne!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    sim.change(tenant("a", Status::Modified).with("descr", "unseen"));
    let end = sim.now;
    sim.dev.faults.throttle_refresh = false;
    sim.dev.faults.throttle_subscribe = false;
    let mut guard = 0;
    while !all_active(&sim) {
        sim.run_for(100);
        guard += 1;
        assert!(guard < 1_200, "not made again within two minutes");
    }
    assert!(
        sim.now - end <= 60 * SEC,
        "made again {} ms after the device answered",
        sim.now - end
    );
    sim.run_for(SEC);
    assert_eq!(sim.gaps(h), vec![GapReason::Expired]);
    assert_eq!(
        sim.engine
            .store(h)
            .unwrap()
            .get("uni/tn-a")
            .unwrap()
            .get("descr"),
        Some("unseen")
    );
    assert_eq!(sim.socket_opens, opens, "the same socket throughout");
    assert_clean(&sim);
}
