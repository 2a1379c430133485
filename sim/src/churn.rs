//! The activity generator: seeded, bounded, realistic changes (faults raised and cleared,
//! links flapping, descriptions edited, EPGs/BDs/VLANs created and deleted, BGP peers flapping).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::mit::auto_children;
use crate::mit::{Attrs, Change};
use crate::seed::fault_attrs;
use crate::state::State;
use crate::util::{iso_ms, now_ms, parent_dn};
use crate::{Flavor, Sim};

/// At most this many objects created by churn exist at once (per kind).
const MAX_CREATED: usize = 40;

pub async fn run(sim: Arc<Sim>) {
    let mut rng = StdRng::seed_from_u64(sim.cfg.seed ^ 0x00c0_ffee_5eed);
    let mut stop = sim.shutdown_signal();
    let mut rate_rx = sim.churn_rate.subscribe();
    let mut acc = 0.0f64;
    let mut last = Instant::now();
    let mut iv = tokio::time::interval(Duration::from_millis(20));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        let rate = *rate_rx.borrow_and_update();
        if rate <= 0.0 {
            acc = 0.0;
            tokio::select! {
                _ = rate_rx.changed() => { last = Instant::now(); continue; }
                _ = crate::stopped(&mut stop) => return,
            }
        }
        tokio::select! {
            _ = iv.tick() => {}
            _ = crate::stopped(&mut stop) => return,
            _ = rate_rx.changed() => {}
        }
        let now = Instant::now();
        acc += rate * now.saturating_duration_since(last).as_secs_f64();
        last = now;
        let mut done = 0;
        while acc >= 1.0 && done < 200 {
            acc -= 1.0;
            done += 1;
            n += 1;
            let mut st = sim.lock();
            let changes = step(&sim, &mut st, &mut rng, n);
            st.dispatch(&sim.cat, changes, now);
        }
        if acc > 200.0 {
            acc = 0.0;
        }
    }
}

fn pick(st: &State, class: &str, rng: &mut StdRng) -> Option<String> {
    let n = st.mit.class_count(class);
    if n == 0 {
        return None;
    }
    st.mit.class_nth(class, rng.random_range(0..n))
}

fn set(st: &mut State, sim: &Sim, dn: &str, kv: &[(&str, String)]) -> Option<Change> {
    let class = st.mit.get(dn)?.class.clone();
    let attrs: Attrs = kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let t = sim.cat.get(&class).map(|c| c.template.clone());
    let st2 = &mut *st;
    st2.mit
        .upsert(dn, &class, &attrs, t.as_ref(), &mut st2.clock)
}

fn create(st: &mut State, sim: &Sim, dn: &str, class: &str, kv: &[(&str, String)]) -> Vec<Change> {
    let attrs: Attrs = kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let t = sim.cat.get(class).map(|c| c.template.clone());
    let mut out = Vec::new();
    let st2 = &mut *st;
    if let Some(c) = st2
        .mit
        .upsert(dn, class, &attrs, t.as_ref(), &mut st2.clock)
    {
        out.push(c);
    }
    for (adn, aclass, aattrs) in auto_children(sim.cfg.flavor, class, dn) {
        let t = sim.cat.get(&aclass).map(|c| c.template.clone());
        if let Some(c) = st2
            .mit
            .upsert(&adn, &aclass, &aattrs, t.as_ref(), &mut st2.clock)
        {
            out.push(c);
        }
    }
    out
}

/// One unit of activity; returns its changes (often one, sometimes a few).
pub fn step(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let roll = rng.random_range(0..100);
    let out = match sim.cfg.flavor {
        Flavor::Apic => match roll {
            0..=29 => link_flap(sim, st, rng),
            30..=54 => fault_step(sim, st, rng),
            55..=69 => descr(sim, st, rng, n),
            70..=84 => epg_churn(sim, st, rng, n),
            85..=94 => bd_churn(sim, st, rng, n),
            _ => cep_move(sim, st, rng),
        },
        Flavor::Nxos => match roll {
            0..=29 => link_flap(sim, st, rng),
            30..=49 => descr(sim, st, rng, n),
            50..=74 => bgp_flap(sim, st, rng),
            75..=89 => vlan_churn(sim, st, rng, n),
            _ => vlan_rename(sim, st, rng, n),
        },
    };
    if out.is_empty() {
        // Fall back to something that always works.
        return descr(sim, st, rng, n);
    }
    out
}

fn link_flap(sim: &Sim, st: &mut State, rng: &mut StdRng) -> Vec<Change> {
    let Some(dn) = pick(st, "ethpmPhysIf", rng) else {
        return Vec::new();
    };
    let up = st
        .mit
        .get(&dn)
        .and_then(|m| m.attrs.get("operSt"))
        .map(String::as_str)
        == Some("up");
    let ts = iso_ms(now_ms());
    let mut out = Vec::new();
    let kv = if up {
        vec![
            ("operSt", "down".to_string()),
            ("operStQual", "link-failure".into()),
            ("operSpeed", "inherit".into()),
            ("lastLinkStChg", ts.clone()),
        ]
    } else {
        vec![
            ("operSt", "up".to_string()),
            ("operStQual", "none".into()),
            ("operSpeed", "10G".into()),
            ("lastLinkStChg", ts.clone()),
        ]
    };
    out.extend(set(st, sim, &dn, &kv));
    if sim.cfg.flavor == Flavor::Apic {
        let port = parent_dn(&dn).to_string();
        let fdn = format!("{port}/fault-F1678");
        if up && !st.mit.contains(&fdn) {
            let descr = format!("Port is down, reason:linkFailure, used by:EPG, lastLinkStChg:{ts}, operStQual:link-failure");
            let a = fault_attrs(
                "F1678",
                "interface-physical-down",
                &descr,
                "ethpm-if-port-down-infra-epg",
                "minor",
                "port-down",
                "soaking",
                &ts,
            );
            let kv: Vec<(&str, String)> = a.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            out.extend(create(st, sim, &fdn, "faultInst", &kv));
        } else if !up && st.mit.contains(&fdn) {
            out.extend(set(
                st,
                sim,
                &fdn,
                &[
                    ("lc", "raised-clearing".into()),
                    ("prevSeverity", "minor".into()),
                    ("severity", "cleared".into()),
                    ("lastTransition", ts),
                ],
            ));
        }
    }
    out
}

fn fault_step(sim: &Sim, st: &mut State, rng: &mut StdRng) -> Vec<Change> {
    let Some(dn) = pick(st, "faultInst", rng) else {
        return Vec::new();
    };
    let Some(mo) = st.mit.get(&dn) else {
        return Vec::new();
    };
    let lc = mo.attrs.get("lc").cloned().unwrap_or_default();
    let sev = mo
        .attrs
        .get("severity")
        .cloned()
        .unwrap_or_else(|| "minor".into());
    let orig = mo
        .attrs
        .get("origSeverity")
        .cloned()
        .unwrap_or_else(|| "minor".into());
    let occur: u64 = mo
        .attrs
        .get("occur")
        .and_then(|o| o.parse().ok())
        .unwrap_or(1);
    let ts = iso_ms(now_ms());
    match lc.as_str() {
        "soaking" => set(
            st,
            sim,
            &dn,
            &[("lc", "raised".into()), ("lastTransition", ts)],
        )
        .into_iter()
        .collect(),
        "raised" => {
            if rng.random_bool(0.4) {
                let new = if sev == "major" { "minor" } else { "major" };
                set(
                    st,
                    sim,
                    &dn,
                    &[
                        ("prevSeverity", sev.clone()),
                        ("severity", new.into()),
                        ("highestSeverity", "major".into()),
                        ("lastTransition", ts),
                        ("occur", (occur + 1).to_string()),
                    ],
                )
                .into_iter()
                .collect()
            } else {
                set(
                    st,
                    sim,
                    &dn,
                    &[
                        ("lc", "raised-clearing".into()),
                        ("prevSeverity", sev),
                        ("severity", "cleared".into()),
                        ("lastTransition", ts),
                    ],
                )
                .into_iter()
                .collect()
            }
        }
        "raised-clearing" => {
            if rng.random_bool(0.3) {
                // It came back before clearing.
                set(
                    st,
                    sim,
                    &dn,
                    &[
                        ("lc", "raised".into()),
                        ("prevSeverity", "cleared".into()),
                        ("severity", orig),
                        ("lastTransition", ts),
                        ("occur", (occur + 1).to_string()),
                    ],
                )
                .into_iter()
                .collect()
            } else {
                set(
                    st,
                    sim,
                    &dn,
                    &[("lc", "retaining".into()), ("lastTransition", ts)],
                )
                .into_iter()
                .collect()
            }
        }
        "retaining" => {
            let st2 = &mut *st;
            st2.mit.delete(&dn, &mut st2.clock)
        }
        _ => set(
            st,
            sim,
            &dn,
            &[("lc", "raised".into()), ("lastTransition", ts)],
        )
        .into_iter()
        .collect(),
    }
}

fn descr(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let Some(dn) = pick(st, "l1PhysIf", rng) else {
        return Vec::new();
    };
    let words = [
        "uplink",
        "to-server",
        "to-storage",
        "vpc-peer",
        "backup",
        "spare",
        "camera",
        "printer",
        "esx",
    ];
    let d = if rng.random_bool(0.2) {
        String::new()
    } else {
        format!("{}-{}", words[rng.random_range(0..words.len())], n % 1000)
    };
    let mut kv = vec![("descr", d)];
    if sim.cfg.flavor == Flavor::Nxos && rng.random_bool(0.1) {
        let cur = st
            .mit
            .get(&dn)
            .and_then(|m| m.attrs.get("adminSt"))
            .cloned()
            .unwrap_or_default();
        kv.push((
            "adminSt",
            if cur == "up" {
                "down".into()
            } else {
                "up".into()
            },
        ));
    }
    set(st, sim, &dn, &kv).into_iter().collect()
}

fn count_prefix(st: &State, class: &str, marker: &str) -> Vec<String> {
    st.mit
        .class_dns(class)
        .into_iter()
        .filter(|d| d.contains(marker))
        .collect()
}

fn epg_churn(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let mine = count_prefix(st, "fvAEPg", "/epg-churn-");
    if mine.len() >= MAX_CREATED || (!mine.is_empty() && rng.random_bool(0.45)) {
        let dn = &mine[rng.random_range(0..mine.len())];
        let st2 = &mut *st;
        return st2.mit.delete(dn, &mut st2.clock);
    }
    let Some(ap) = pick(st, "fvAp", rng) else {
        return Vec::new();
    };
    let name = format!("churn-{n}");
    let dn = format!("{ap}/epg-{name}");
    let tag = rng.random_range(16_386..65_000).to_string();
    create(
        st,
        sim,
        &dn,
        "fvAEPg",
        &[("name", name), ("pcTag", tag), ("uid", "15374".into())],
    )
}

fn bd_churn(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let mine = count_prefix(st, "fvBD", "/BD-churn-");
    if mine.len() >= MAX_CREATED || (!mine.is_empty() && rng.random_bool(0.45)) {
        let dn = &mine[rng.random_range(0..mine.len())];
        let st2 = &mut *st;
        return st2.mit.delete(dn, &mut st2.clock);
    }
    let Some(t) = pick(st, "fvTenant", rng) else {
        return Vec::new();
    };
    let name = format!("churn-{n}");
    create(
        st,
        sim,
        &format!("{t}/BD-{name}"),
        "fvBD",
        &[("name", name), ("uid", "15374".into())],
    )
}

fn cep_move(sim: &Sim, st: &mut State, rng: &mut StdRng) -> Vec<Change> {
    let Some(dn) = pick(st, "fvCEp", rng) else {
        return Vec::new();
    };
    let ip = format!(
        "10.{}.{}.{}",
        rng.random_range(1..250),
        rng.random_range(0..250),
        rng.random_range(2..250)
    );
    let encap = format!("vlan-{}", rng.random_range(100..4000));
    set(st, sim, &dn, &[("ip", ip), ("encap", encap)])
        .into_iter()
        .collect()
}

fn bgp_flap(sim: &Sim, st: &mut State, rng: &mut StdRng) -> Vec<Change> {
    let Some(dn) = pick(st, "bgpPeerEntry", rng) else {
        return Vec::new();
    };
    let Some(mo) = st.mit.get(&dn) else {
        return Vec::new();
    };
    let cur = mo.attrs.get("operSt").cloned().unwrap_or_default();
    let num = |k: &str| -> u64 { mo.attrs.get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let (drop_, est, att) = (num("connDrop"), num("connEst"), num("connAttempts"));
    let ts = iso_ms(now_ms());
    let (next, mut kv): (&str, Vec<(&str, String)>) = match cur.as_str() {
        "established" => (
            "idle",
            vec![
                ("connDrop", (drop_ + 1).to_string()),
                ("lastFlapTs", ts),
                ("stReason", "hold-timer-expired".into()),
            ],
        ),
        "idle" => ("active", vec![("connAttempts", (att + 1).to_string())]),
        _ => (
            "established",
            vec![
                ("connEst", (est + 1).to_string()),
                ("lastFlapTs", ts),
                ("stReason", "none".into()),
            ],
        ),
    };
    kv.push(("operSt", next.into()));
    kv.push(("prevOperSt", cur.clone()));
    let mut out: Vec<Change> = set(st, sim, &dn, &kv).into_iter().collect();
    if next == "idle" || cur == "idle" || next == "established" {
        // Keep the domain's established-peer count true.
        let dom = parent_dn(parent_dn(&dn)).to_string();
        let est = st
            .mit
            .subtree(&dom)
            .iter()
            .filter(|d| {
                st.mit.get(d).is_some_and(|m| {
                    m.class == "bgpPeerEntry"
                        && m.attrs.get("operSt").map(String::as_str) == Some("established")
                })
            })
            .count();
        out.extend(set(st, sim, &dom, &[("numEstPeers", est.to_string())]));
    }
    out
}

fn vlan_churn(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let mine: Vec<String> = st
        .mit
        .class_dns("l2BD")
        .into_iter()
        .filter(|d| d.starts_with("sys/bd/bd-[vlan-40") || d.starts_with("sys/bd/bd-[vlan-39"))
        .collect();
    if mine.len() >= MAX_CREATED || (!mine.is_empty() && rng.random_bool(0.45)) {
        let dn = &mine[rng.random_range(0..mine.len())];
        let st2 = &mut *st;
        return st2.mit.delete(dn, &mut st2.clock);
    }
    let v = 3970 + (n % 120);
    let enc = format!("vlan-{v}");
    let dn = format!("sys/bd/bd-[{enc}]");
    if st.mit.contains(&dn) {
        return Vec::new();
    }
    create(
        st,
        sim,
        &dn,
        "l2BD",
        &[
            ("fabEncap", enc),
            ("name", format!("CHURN{v}")),
            ("id", v.to_string()),
        ],
    )
}

fn vlan_rename(sim: &Sim, st: &mut State, rng: &mut StdRng, n: u64) -> Vec<Change> {
    let Some(dn) = pick(st, "l2BD", rng) else {
        return Vec::new();
    };
    let name = format!(
        "VLAN-{}-{}",
        ["web", "app", "db", "mgmt", "vmotion"][rng.random_range(0..5)],
        n % 1000
    );
    set(st, sim, &dn, &[("name", name)]).into_iter().collect()
}
