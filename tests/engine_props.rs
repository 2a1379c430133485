//! Property tests: random interleavings of user commands, device changes and faults, in
//! simulated time. Whatever happens, the engine must not panic, must use exactly one current
//! token, must signal every disruption with exactly one gap per subscription before new data,
//! and, once the faults stop, must converge: every subscription live at the device, every store
//! (and every consumer view built from the deliveries) equal to the device's truth.

#![cfg(not(target_arch = "wasm32"))]

#[path = "engine_support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use dme_events::engine::{ConnectionState, SubHandle, SubOptions, SubState};
use dme_events::protocol::{Mo, Query, Status};
use proptest::prelude::*;
use support::*;

const CLASSES: [&str; 3] = ["fvTenant", "fvBD", "fvAEPg"];

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Subscribe {
        class: usize,
        store: bool,
        pull: bool,
    },
    Unsubscribe(usize),
    Refresh(usize),
    Change {
        class: usize,
        obj: u8,
        kind: u8,
        val: u8,
    },
    DropSocket,
    SilentDeath,
    KillSession,
    ExpireOne(usize),
    NetDown(u64),
    ThrottleRefresh(u64),
    ThrottleSubscribe(u64),
    ClockJump(u64),
    Visible,
    Online,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..90_000).prop_map(Op::Advance),
        3 => (0usize..3, any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(class, store, pull)| Op::Subscribe { class, store, pull }),
        1 => (0usize..8).prop_map(Op::Unsubscribe),
        1 => (0usize..8).prop_map(Op::Refresh),
        6 => (0usize..2, 0u8..5, 0u8..3, any::<u8>())
            .prop_map(|(class, obj, kind, val)| Op::Change { class, obj, kind, val }),
        1 => Just(Op::DropSocket),
        1 => Just(Op::SilentDeath),
        1 => Just(Op::KillSession),
        1 => (0usize..8).prop_map(Op::ExpireOne),
        1 => (1u64..300_000).prop_map(Op::NetDown),
        1 => (1u64..60_000).prop_map(Op::ThrottleRefresh),
        1 => (1u64..60_000).prop_map(Op::ThrottleSubscribe),
        1 => (20_000u64..7_200_000).prop_map(Op::ClockJump),
        1 => Just(Op::Visible),
        1 => Just(Op::Online),
    ]
}

fn object(class: usize, obj: u8) -> Mo {
    match class {
        0 => Mo::new("fvTenant", format!("uni/tn-t{obj}"), Status::Created),
        _ => Mo::new("fvBD", format!("uni/tn-t0/BD-b{obj}"), Status::Created),
    }
}

/// Attributes that matter for equality (pushes carry `rn:""`, snapshots the real rn).
fn essence(m: &Mo) -> (String, BTreeMap<String, String>) {
    let mut a = m.attributes.clone();
    a.remove("rn");
    a.remove("status");
    (m.class_name.clone(), a)
}

fn run(ops: Vec<Op>, seed: u64, nxos: bool) -> Result<(), TestCaseError> {
    let (cfg, dev) = if nxos {
        (nxos_config(seed), DeviceCfg::nxos())
    } else {
        // A short hard lifetime, so that make-before-break rotations meet the faults too.
        let mut dev = DeviceCfg::apic();
        dev.max_lifetime_secs = Some(1_800);
        (apic_config(seed), dev)
    };
    let mut sim = Sim::new(cfg, dev);
    sim.keep_events = std::env::var("DBG").is_ok();
    let mut handles: Vec<SubHandle> = Vec::new();
    let mut pull_handles: Vec<SubHandle> = Vec::new();
    for op in ops {
        match op {
            Op::Advance(ms) => sim.run_for(ms),
            Op::Subscribe { class, store, pull } => {
                let opts = SubOptions {
                    store,
                    pull,
                    ..SubOptions::default()
                };
                let h = sim.subscribe(Query::class(CLASSES[class]), opts);
                handles.push(h);
                if pull {
                    pull_handles.push(h);
                }
            }
            Op::Unsubscribe(i) => {
                if !handles.is_empty() {
                    let h = handles.remove(i % handles.len());
                    sim.pump();
                    sim.engine.unsubscribe(h, sim.now);
                    sim.tracks.remove(&h);
                }
            }
            Op::Refresh(i) => {
                if !handles.is_empty() {
                    let h = handles[i % handles.len()];
                    sim.engine.refresh(h, sim.now);
                }
            }
            Op::Change {
                class,
                obj,
                kind,
                val,
            } => {
                let mut m = object(class, obj);
                let exists = sim.dev.objects.contains_key(&m.dn);
                m.status = match (kind, exists) {
                    (_, false) => Status::Created,
                    (0, true) => Status::Deleted,
                    _ => Status::Modified,
                };
                if m.status != Status::Deleted {
                    m = m.with("descr", format!("v{val}"));
                    if kind == 2 {
                        m = m.with("nameAlias", format!("a{val}"));
                    }
                }
                sim.change(m);
            }
            Op::DropSocket => sim.device_drops_socket(),
            Op::SilentDeath => sim.socket_dies_silently(),
            Op::KillSession => {
                if let Some(&sid) = sim.dev.sessions.keys().next() {
                    sim.dev.kill_session(sid);
                }
            }
            Op::ExpireOne(i) => {
                let mut ids: Vec<String> = sim.dev.subs.keys().cloned().collect();
                ids.sort();
                if let Some(id) = ids.get(i).cloned() {
                    sim.dev.subs.remove(&id);
                }
            }
            Op::NetDown(ms) => {
                sim.dev.faults.network_down = true;
                sim.engine.handle_online(false, sim.now);
                sim.run_for(ms);
                sim.dev.faults.network_down = false;
                sim.engine.handle_online(true, sim.now);
            }
            Op::ThrottleRefresh(ms) => {
                sim.dev.faults.throttle_refresh = true;
                sim.run_for(ms);
                sim.dev.faults.throttle_refresh = false;
            }
            Op::ThrottleSubscribe(ms) => {
                sim.dev.faults.throttle_subscribe = true;
                sim.run_for(ms);
                sim.dev.faults.throttle_subscribe = false;
            }
            Op::ClockJump(ms) => {
                let _ = sim.engine.poll_timeout();
                sim.now += ms;
                sim.dev.tick(sim.now);
                sim.dev.notify_closed.clear();
                sim.engine.handle_timeout(sim.now);
            }
            Op::Visible => sim.engine.handle_visibility(true, sim.now),
            Op::Online => sim.engine.handle_online(true, sim.now),
        }
        sim.pump();
    }
    // Faults stop; the engine must converge.
    sim.run_for(15 * 60_000);
    // Let a rotation or resubscribe that happens to be under way finish.
    for _ in 0..120 {
        let settled = handles.iter().all(|h| {
            sim.engine
                .subscription_info(*h)
                .is_some_and(|i| i.state == SubState::Active)
        });
        if settled && sim.engine.state() == &ConnectionState::Live {
            break;
        }
        sim.run_for(1_000);
    }
    prop_assert!(
        sim.violations.is_empty(),
        "violations: {:?}",
        &sim.violations
    );
    prop_assert_eq!(sim.stale_token_requests, 0, "one current token");
    prop_assert_eq!(sim.engine.state(), &ConnectionState::Live);
    sim.check_alive();
    prop_assert!(sim.violations.is_empty(), "{:?}", &sim.violations);
    for &h in &handles {
        let info = sim.engine.subscription_info(h).unwrap();
        if info.state != SubState::Active && sim.keep_events {
            for (t, e) in sim.events.iter().rev().take(40).rev() {
                eprintln!("{t}: {e:?}");
            }
            eprintln!(
                "now {} info {info:?} timeout {:?}",
                sim.now,
                sim.engine.poll_timeout()
            );
        }
        prop_assert_eq!(info.state, SubState::Active, "{:?}", h);
        if let Some(store) = sim.engine.store(h) {
            let class = sim
                .engine
                .store(h)
                .and_then(|s| s.iter().next().map(|m| m.class_name.clone()));
            let _ = class;
            let target = {
                // The class of this handle's query, from the device subscription.
                let id = info.subscription_id.clone().unwrap();
                sim.dev.subs[&id].target.clone()
            };
            let truth = sim.dev.truth(&target);
            let held: BTreeMap<String, _> =
                store.iter().map(|m| (m.dn.clone(), essence(m))).collect();
            let want: BTreeMap<String, _> =
                truth.values().map(|m| (m.dn.clone(), essence(m))).collect();
            prop_assert_eq!(&held, &want, "store of {:?}", h);
            {
                let view: BTreeMap<String, _> = sim.tracks[&h]
                    .view
                    .values()
                    .map(|m| (m.dn.clone(), essence(m)))
                    .collect();
                prop_assert_eq!(&view, &want, "consumer view of {:?}", h);
            }
        }
    }
    // Counters agree with what was observed.
    let st = sim.engine.stats();
    for &h in &handles {
        prop_assert_eq!(
            st.per_subscription[&h].gaps,
            sim.tracks[&h].gaps.len() as u64,
            "gap counter of {:?}",
            h
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn apic_random_interleavings(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        run(ops, seed, false)?;
    }

    #[test]
    fn nxos_random_interleavings(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        run(ops, seed, true)?;
    }
}

#[test]
fn regression_subscribing_at_the_end() {
    use Op::*;
    let ops = vec![
        Advance(1),
        Advance(16747),
        Advance(87721),
        Advance(51671),
        Advance(30202),
        ThrottleRefresh(28546),
        ThrottleSubscribe(42380),
        Advance(19541),
        Advance(53321),
        Advance(53724),
        Advance(39122),
        Advance(64367),
        Advance(76833),
        Subscribe {
            class: 2,
            store: false,
            pull: true,
        },
        Advance(88870),
        ThrottleSubscribe(27713),
        Advance(62675),
        Advance(76083),
    ];
    run(ops, 1749552840390265312, false).unwrap();
}
