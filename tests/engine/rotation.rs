//! The make-before-break rotation before a session's hard lifetime: planned, it is no
//! disruption (no gap, no snapshot again, every change once, the old session logged out); failed
//! part-way, it is one like any other (one gap per subscription, then the truth).

use super::*;

/// A device whose sessions live two hours, with tenants a, b and c.
fn two_hour_sim(cfg: Config) -> Sim {
    let mut dev = DeviceCfg::apic();
    dev.max_lifetime_secs = Some(2 * 3600);
    let mut sim = Sim::new(cfg, dev);
    for n in ["a", "b", "c"] {
        sim.dev.objects.insert(
            format!("uni/tn-{n}"),
            tenant(n, Status::Snapshot).with("descr", "0"),
        );
    }
    sim
}

fn store_opts() -> SubOptions {
    SubOptions {
        store: true,
        ..SubOptions::default()
    }
}

/// (dn, descr) of what a store-mode subscription holds, of its consumer's view, and of the
/// device, in that order.
type Rows = Vec<(String, Option<String>)>;
fn rows<'a>(it: impl Iterator<Item = &'a Mo>) -> Rows {
    it.map(|m| (m.dn.clone(), m.get("descr").map(str::to_owned)))
        .collect()
}
fn held_view_truth(sim: &Sim, h: SubHandle) -> (Rows, Rows, Rows) {
    let truth = sim.dev.truth(&Query::class("fvTenant").target);
    (
        rows(sim.engine.store(h).unwrap().iter()),
        rows(sim.tracks[&h].view.values()),
        rows(truth.values()),
    )
}

/// How many times each `descr` value was delivered to `h`.
fn delivered_values(sim: &Sim, h: SubHandle) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for (_, e) in &sim.events {
        if let Event::Deliver { handle, mos } = e {
            if *handle == h {
                for m in mos {
                    *seen
                        .entry(format!("{}={}", m.dn, m.get("descr").unwrap_or("")))
                        .or_default() += 1;
                }
            }
        }
    }
    seen
}

fn rotates_at(sim: &Sim) -> u64 {
    sim.engine.session_info().unwrap().rotates_at.unwrap()
}

/// Store mode with churn across the rotation: no gap, no second `Subscribed`, every change
/// delivered exactly once, and a difference no push told (a lost push) reported once, as a
/// `Modified`, by the silent reconciliation. The old session is logged out as soon as the move
/// is done, not left to its idle timeout.
#[test]
fn a_planned_rotation_in_store_mode_is_gapless_and_delivers_each_change_once() {
    let mut sim = two_hour_sim(apic_config(61));
    sim.push_latency = Some(1);
    let h = sim.subscribe(Query::class("fvTenant"), store_opts());
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at - 10 * SEC);
    // A change the device made without telling anyone.
    sim.dev.objects.insert(
        "uni/tn-b".into(),
        tenant("b", Status::Snapshot).with("descr", "silent"),
    );
    let mut n = 0;
    while sim.now < at + 3 * SEC {
        n += 1;
        sim.change(tenant("a", Status::Modified).with("descr", format!("v{n}")));
        if n % 50 == 0 {
            let name = format!("x{n}");
            sim.change(tenant(&name, Status::Created).with("descr", "new"));
        }
        if n % 50 == 25 {
            let name = format!("x{}", n - 25);
            sim.change(tenant(&name, Status::Deleted));
        }
        sim.run_for(if sim.now + SEC >= at { 1 } else { 100 });
    }
    sim.run_for(10 * SEC);
    assert_eq!(sim.engine.stats().session_rotations, 1);
    assert_eq!(sim.gaps(h), vec![]);
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::Subscribed { .. })),
        1
    );
    let seen = delivered_values(&sim, h);
    for i in 1..=n {
        assert_eq!(seen.get(&format!("uni/tn-a=v{i}")), Some(&1), "v{i}");
    }
    assert_eq!(seen.get("uni/tn-b=silent"), Some(&1));
    assert!(
        n > 1_000,
        "the churn crossed the overlap at a change per ms: {n}"
    );
    let (held, view, truth) = held_view_truth(&sim, h);
    assert_eq!(held, truth);
    assert_eq!(view, truth);
    assert_eq!(
        sim.dev.sessions.len(),
        1,
        "the retired session was logged out"
    );
    assert_eq!(sim.stale_token_requests, 0);
    assert_clean(&sim);
}

/// Without store mode nothing is delivered again: no snapshot, no repeat.
#[test]
fn a_planned_rotation_without_store_mode_delivers_nothing_again() {
    let mut sim = two_hour_sim(apic_config(62));
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    let p = sim.subscribe(
        Query::class("fvTenant"),
        SubOptions {
            pull: true,
            ..SubOptions::default()
        },
    );
    sim.drain_pull = true;
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at + MIN);
    assert_eq!(sim.engine.stats().session_rotations, 1);
    for s in [h, p] {
        assert_eq!(sim.gaps(s), vec![]);
        assert_eq!(sim.tracks[&s].delivered, 0, "nothing changed, nothing came");
    }
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::Subscribed { .. })),
        2
    );
    let info = sim.engine.subscription_info(h).unwrap();
    assert_eq!(info.state, SubState::Active);
    assert!(info.expires_at.unwrap() > sim.now);
    assert_eq!(sim.dev.sessions.len(), 1);
    assert_clean(&sim);
}

/// The retiring socket closes while subscriptions are still moving: those not yet moved have
/// lost their stream and get one gap each (then the snapshot, the truth); those moved already
/// get none.
#[test]
fn the_old_socket_closing_during_the_move_is_one_gap_for_those_not_moved() {
    let mut cfg = apic_config(63);
    cfg.max_inflight_subscribes = 1;
    let mut sim = two_hour_sim(cfg);
    let handles: Vec<_> = (0..6)
        .map(|_| sim.subscribe(Query::class("fvTenant"), store_opts()))
        .collect();
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at);
    // Until the new session's socket is open and one subscription has moved.
    let subscribes = sim.subscribe_sends.len();
    let mut guard = 0;
    while sim.subscribe_sends.len() < subscribes + 2 {
        sim.run_for(1);
        guard += 1;
        assert!(guard < 60_000, "the move never started");
    }
    // Not moved yet, still live for the consumer: its old id, its old expiry.
    let info = sim.engine.subscription_info(handles[5]).unwrap();
    assert_eq!(info.state, SubState::Active);
    assert!(info.subscription_id.is_some());
    assert!(info.expires_at.unwrap() > sim.now);
    let old = sim
        .dev
        .sessions
        .values()
        .min_by_key(|s| s.created)
        .and_then(|s| s.socket)
        .expect("the old session's socket");
    sim.device_drops(old);
    sim.change(tenant("c", Status::Modified).with("descr", "during"));
    sim.run_for(MIN);
    let gaps: Vec<usize> = handles.iter().map(|h| sim.gaps(*h).len()).collect();
    assert!(gaps.iter().all(|g| *g <= 1), "{gaps:?}");
    assert!(gaps[0] == 0, "the first had moved: {gaps:?}");
    assert!(gaps[5] == 1, "the last had not: {gaps:?}");
    for h in &handles {
        if let Some(g) = sim.gaps(*h).first() {
            assert_eq!(*g, GapReason::Rotation);
        }
        let (held, view, truth) = held_view_truth(&sim, *h);
        assert_eq!(held, truth);
        assert_eq!(view, truth);
    }
    assert!(all_active(&sim));
    assert_clean(&sim);
}

/// The new session's socket will not open: the rotation is abandoned, which is a disruption
/// (one gap each), the retired session is logged out, and once sockets open again everything
/// is made again on the new session.
#[test]
fn a_new_socket_that_will_not_open_is_one_gap() {
    let mut sim = two_hour_sim(apic_config(64));
    let h = sim.subscribe(Query::class("fvTenant"), store_opts());
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at - SEC);
    sim.dev.faults.refuse_sockets = true;
    sim.run_for(20 * SEC);
    sim.change(tenant("a", Status::Modified).with("descr", "meanwhile"));
    sim.dev.faults.refuse_sockets = false;
    sim.run_for(5 * MIN);
    assert_eq!(sim.gaps(h).len(), 1, "{:?}", sim.gaps(h));
    assert!(all_active(&sim));
    let (held, view, truth) = held_view_truth(&sim, h);
    assert_eq!(held, truth);
    assert_eq!(view, truth);
    assert_eq!(sim.dev.sessions.len(), 1, "nothing left behind");
    assert_clean(&sim);
}

/// Logins refused (the device throttles every login and keepalive) from just before the
/// rotation: the old session serves on with no gap while the rotation retries; when it ends,
/// that is one gap, and after the device lets logins in again everything is the truth again.
#[test]
fn a_refused_rotation_login_is_one_gap_when_the_old_session_ends() {
    let mut sim = two_hour_sim(apic_config(65));
    let h = sim.subscribe(Query::class("fvTenant"), store_opts());
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at - SEC);
    let rate = sim.dev.cfg.auth_rate_per_sec;
    sim.dev.cfg.auth_rate_per_sec = 0;
    sim.run_for(2 * MIN);
    assert_eq!(sim.gaps(h), vec![], "the old session still serves");
    assert_eq!(sim.engine.stats().session_rotations, 0);
    // Until the old session is gone at the device (its idle timeout or its hard lifetime).
    let mut guard = 0;
    while sim.gaps(h).is_empty() {
        sim.run_for(SEC);
        guard += 1;
        assert!(guard < 3_600, "the old session never ended");
    }
    sim.change(tenant("b", Status::Deleted));
    sim.dev.cfg.auth_rate_per_sec = rate;
    sim.run_for(10 * MIN);
    assert_eq!(sim.gaps(h).len(), 1, "{:?}", sim.gaps(h));
    assert!(all_active(&sim));
    let (held, view, truth) = held_view_truth(&sim, h);
    assert_eq!(held, truth);
    assert_eq!(view, truth);
    assert_clean(&sim);
}

/// The retry cap reached while the device still holds the session: the engine stops, and logs
/// that session out instead of leaving it behind until its idle timeout.
#[test]
fn the_retry_cap_logs_out_the_session_it_gives_up() {
    let mut cfg = apic_config(66);
    cfg.max_reconnect_attempts = Some(2);
    let mut sim = two_hour_sim(cfg);
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert_eq!(sim.dev.sessions.len(), 1);
    sim.dev.faults.refuse_sockets = true;
    sim.device_drops_socket();
    sim.run_for(10 * MIN);
    assert!(
        matches!(
            sim.engine.state(),
            ConnectionState::Failed {
                reason: EngineError::RetryCap(2)
            }
        ),
        "{:?}",
        sim.engine.state()
    );
    assert_eq!(sim.dev.logins, 1, "the refused sockets cost no login");
    assert_eq!(sim.dev.sessions.len(), 0, "the session was logged out");
    assert_clean(&sim);
}

/// The new subscribes are answered 503 for a while: the move waits and retries while the old
/// id still delivers (and its old expiry is far), so there is still no gap, and a change made
/// meanwhile arrives once.
#[test]
fn a_throttled_move_retries_without_a_gap() {
    let mut sim = two_hour_sim(apic_config(67));
    let h = sim.subscribe(Query::class("fvTenant"), store_opts());
    sim.run_for(MIN);
    let at = rotates_at(&sim);
    sim.run_until(at - SEC);
    sim.dev.faults.throttle_subscribe = true;
    let subscribes = sim.subscribe_sends.len();
    sim.run_for(5 * SEC);
    sim.change(tenant("a", Status::Modified).with("descr", "meanwhile"));
    sim.run_for(5 * SEC);
    assert_eq!(sim.engine.stats().session_rotations, 0, "still moving");
    assert!(
        sim.subscribe_sends.len() > subscribes,
        "the move's subscribe went out and was refused"
    );
    sim.dev.faults.throttle_subscribe = false;
    sim.run_for(MIN);
    assert_eq!(sim.engine.stats().session_rotations, 1);
    assert_eq!(sim.gaps(h), vec![]);
    assert_eq!(
        delivered_values(&sim, h).get("uni/tn-a=meanwhile"),
        Some(&1)
    );
    let (held, view, truth) = held_view_truth(&sim, h);
    assert_eq!(held, truth);
    assert_eq!(view, truth);
    assert_clean(&sim);
}
