//! Scenario tests of the engine against a fake device, in simulated time.
//!
//! `cargo test -p dme-events --test engine -- --nocapture` shows the figures of the long runs.

#[path = "engine_support/mod.rs"]
mod support;

use std::time::Instant;

use dme_events::engine::{
    Action, Auth, Config, ConnectionState, Engine, EngineError, Event, GapReason, Pulled, SocketId,
    SubHandle, SubOptions, SubState, TokenTransport,
};
use dme_events::protocol::{Mo, Query, Status};
use support::*;

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;

fn live(sim: &Sim) -> bool {
    *sim.engine.state() == ConnectionState::Live
}

fn all_active(sim: &Sim) -> bool {
    sim.engine
        .handles()
        .iter()
        .all(|h| sim.engine.subscription_info(*h).unwrap().state == SubState::Active)
}

fn assert_clean(sim: &Sim) {
    assert!(
        sim.violations.is_empty(),
        "violations: {:#?}",
        &sim.violations[..sim.violations.len().min(10)]
    );
}

/// The headline: a 24-hour APIC session with 1,000 subscriptions, the rate cap held, zero
/// expiries, aaaRefresh every few minutes and one make-before-break rotation.
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
    // The rotation is the only disruption: one gap per subscription.
    for h in &handles {
        assert_eq!(sim.gaps(*h), vec![GapReason::Rotation]);
    }
    assert!(live(&sim));
    assert_eq!(sim.dev.sessions.len(), 1, "the old session was let go");
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
    assert_eq!(sim.gaps(h), vec![GapReason::Rotation]);
    let drops = sim.engine.stats().per_subscription[&h].drops;
    assert!(
        drops >= 1,
        "the overlap really happened and was filtered: {drops}"
    );
    assert_clean(&sim);
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

// ------------------------------------------------------------------------------------------
// Hand-driven tests of single decisions

fn http(a: Option<Action>) -> dme_events::engine::HttpRequest {
    match a {
        Some(Action::Http(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

const LOGIN_OK: &str = r#"{"totalCount":"1","imdata":[{"aaaLogin":{"attributes":{"token":"T1","refreshTimeoutSeconds":"600","urlToken":"U1"}}}]}"#;

/// Logs in and opens the socket by hand; returns the socket id.
fn up(e: &mut Engine) -> SocketId {
    let login = http(e.poll_action());
    e.handle_http_response(login.id, 200, LOGIN_OK.into(), 10);
    let Some(Action::OpenSocket { id, url }) = e.poll_action() else {
        panic!()
    };
    assert!(url.starts_with("ws://dev/socketT1"));
    e.handle_socket_open(id, 20);
    id
}

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

// ------------------------------------------------------------------------------------------
// Bursts in slices

/// Two subscriptions with ids 11 and 12 (the second in store mode), events drained.
fn two_subs(
    cfg: dme_events::engine::Config,
) -> (
    Engine,
    SocketId,
    dme_events::engine::SubHandle,
    dme_events::engine::SubHandle,
) {
    let mut e = Engine::new(cfg, 0);
    let sock = up(&mut e);
    let a = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    let b = e.subscribe(
        Query::class("fvTenant"),
        SubOptions {
            store: true,
            ..SubOptions::default()
        },
        30,
    );
    for (id, r) in [("11", http(e.poll_action())), ("12", http(e.poll_action()))] {
        e.handle_http_response(
            r.id,
            200,
            format!(r#"{{"subscriptionId":"{id}","imdata":[]}}"#),
            40,
        );
    }
    while e.poll_event().is_some() {}
    (e, sock, a, b)
}

/// A push of `n` objects `uni/tn-<prefix><k>` (created, with padding so a large `n` streams).
fn burst(ids: &str, prefix: &str, n: usize) -> String {
    let mut s = format!(r#"{{"subscriptionId":[{ids}],"imdata":["#);
    for k in 0..n {
        if k > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"fvTenant":{{"attributes":{{"dn":"uni/tn-{prefix}{k}","status":"created","seq":"{k}","descr":"{}"}}}}}}"#,
            "d".repeat(60)
        ));
    }
    s.push_str("]}");
    s
}

/// Every `Deliver` of `h` in order: the dns.
fn delivered(evs: &[Event], h: dme_events::engine::SubHandle) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Deliver { handle, mos } if *handle == h => Some(mos),
            _ => None,
        })
        .flatten()
        .map(|m| m.dn.clone())
        .collect()
}

fn dns(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|k| format!("uni/tn-{prefix}{k}")).collect()
}

#[test]
fn a_burst_is_delivered_in_slices_in_order_with_later_frames_behind_it() {
    let mut cfg = apic_config(40);
    cfg.slice_objects = 1000;
    let (mut e, sock, a, b) = two_subs(cfg);
    let big = burst(r#""11","12""#, "big", 10_500);
    assert!(big.len() > dme_events::protocol::STREAM_BYTES);
    e.handle_socket_message(sock, &big, 50);
    assert!(e.has_backlog());
    // Small frames arriving meanwhile wait behind the burst.
    e.handle_socket_message(sock, &burst(r#""11""#, "late", 3), 51);
    e.handle_socket_message(sock, &burst(r#""12""#, "later", 2), 52);
    let mut evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    let first: Vec<usize> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { mos, .. } => Some(mos.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        first,
        vec![1000; 4],
        "the burst's own input reads only its envelope; each later input delivers one slice"
    );
    let mut rounds = 0;
    while e.has_backlog() {
        e.handle_backlog(60 + rounds);
        let step: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
        let per_sub_max = [a, b].map(|h| {
            step.iter()
                .filter_map(|e| match e {
                    Event::Deliver { handle, mos } if *handle == h => Some(mos.len()),
                    _ => None,
                })
                .sum::<usize>()
        });
        assert!(per_sub_max.iter().all(|n| *n <= 1000), "{per_sub_max:?}");
        evs.extend(step);
        rounds += 1;
    }
    assert_eq!(
        rounds, 9,
        "11 slices in all, 2 of them taken by later inputs"
    );
    let mut want_a = dns("big", 10_500);
    want_a.extend(dns("late", 3));
    let mut want_b = dns("big", 10_500);
    want_b.extend(dns("later", 2));
    assert_eq!(delivered(&evs, a), want_a);
    assert_eq!(delivered(&evs, b), want_b);
    assert_eq!(e.store(b).unwrap().len(), 10_502);
    assert!(!evs.iter().any(|e| matches!(e, Event::Error(_))));
    let c = e.subscription_info(a).unwrap().counters;
    assert_eq!((c.frames, c.mos), (2, 10_503), "a sliced frame counts once");
}

#[test]
fn a_socket_close_during_a_burst_delivers_the_rest_then_one_gap() {
    let mut cfg = apic_config(41);
    cfg.slice_objects = 500;
    let (mut e, sock, a, b) = two_subs(cfg);
    e.handle_socket_message(sock, &burst(r#""11","12""#, "x", 4000), 50);
    assert!(e.has_backlog());
    e.handle_socket_closed(sock, Some(1006), 60);
    assert!(!e.has_backlog());
    let evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    for h in [a, b] {
        assert_eq!(delivered(&evs, h), dns("x", 4000));
        let gaps: Vec<usize> = evs
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Event::Gap { handle, .. } if *handle == h))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(gaps.len(), 1, "exactly one gap");
        let last_data = evs
            .iter()
            .rposition(|e| matches!(e, Event::Deliver { handle, .. } if *handle == h))
            .unwrap();
        assert!(
            last_data < gaps[0],
            "the data received first comes before the gap"
        );
    }
}

#[test]
fn closing_during_a_burst_stops_delivery_at_once() {
    let mut cfg = apic_config(42);
    cfg.slice_objects = 500;
    let (mut e, sock, a, b) = two_subs(cfg);
    e.handle_socket_message(sock, &burst(r#""11","12""#, "x", 4000), 50);
    e.handle_backlog(52);
    while e.poll_event().is_some() {}
    // Unsubscribing one: it gets nothing more, the other gets everything.
    assert!(e.unsubscribe(a, 55));
    let mut evs = Vec::new();
    while e.has_backlog() {
        e.handle_backlog(60);
        evs.extend(std::iter::from_fn(|| e.poll_event()));
    }
    assert!(delivered(&evs, a).is_empty());
    assert_eq!(delivered(&evs, b).len(), 3500);

    // Closing the engine drops the backlog.
    e.handle_socket_message(sock, &burst(r#""12""#, "y", 4000), 70);
    assert!(e.has_backlog());
    while e.poll_event().is_some() {}
    e.close(80);
    assert!(!e.has_backlog());
    e.handle_backlog(90);
    assert!(!std::iter::from_fn(|| e.poll_event()).any(|e| matches!(e, Event::Deliver { .. })));
}

#[test]
fn a_burst_with_a_broken_entry_and_repeats_reports_one_error_and_dedups_across_slices() {
    let mut cfg = apic_config(43);
    cfg.slice_objects = 300;
    let (mut e, sock, a, _) = two_subs(cfg);
    let mut frame = burst(r#""11""#, "z", 3000);
    // Entry 1500 repeats entry 10 exactly (a repeat in another slice); entry 2000 is broken.
    let entry = |k: usize| {
        format!(
            r#"{{"fvTenant":{{"attributes":{{"dn":"uni/tn-z{k}","status":"created","seq":"{k}","descr":"{}"}}}}}}"#,
            "d".repeat(60)
        )
    };
    frame = frame.replacen(&entry(1500), &entry(10), 1);
    frame = frame.replacen(&entry(2000), r#"{"fvTenant":{"attributes":{"dn":tru}}}"#, 1);
    e.handle_socket_message(sock, &frame, 50);
    let mut evs: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    while e.has_backlog() {
        e.handle_backlog(60);
        evs.extend(std::iter::from_fn(|| e.poll_event()));
    }
    let got = delivered(&evs, a);
    let want: Vec<String> = (0..3000)
        .filter(|k| *k != 1500 && *k != 2000)
        .map(|k| format!("uni/tn-z{k}"))
        .collect();
    assert_eq!(got, want);
    let errors: Vec<&Event> = evs
        .iter()
        .filter(|e| matches!(e, Event::Error(_)))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(e.stats().malformed_frames, 1);
}
