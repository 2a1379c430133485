//! Benchmark figure 6 (scale): 1,000 subscriptions on one socket over two simulated hours,
//! driven natively through the engine test harness (`tests/engine_support`) with simulated time.
//! Not part of the test suite; `scripts/bench.sh` runs it with
//! `cargo test --release --test bench_scale -- --ignored --nocapture` and it writes
//! `target/bench/scale.json` for the report.

#[path = "../tests/engine_support/mod.rs"]
mod support;

use std::time::Instant;

use dme_events::engine::SubOptions;
use dme_events::protocol::{Query, Status};
use support::*;

const SEC: u64 = 1_000;
const HOUR: u64 = 3_600 * SEC;

#[test]
#[ignore = "benchmark: run by scripts/bench.sh"]
fn scale_1000_subscriptions_two_hours() {
    let started = Instant::now();
    let cfg = apic_config(7);
    let cap = cfg.refresh_rate_cap;
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    sim.keep_events = false;
    sim.dev.objects.insert(
        "uni/tn-a".into(),
        tenant("a", Status::Snapshot).with("name", "a"),
    );
    for _ in 0..1000 {
        sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    }
    let start = sim.now;
    for quarter in 0..8 {
        sim.run_until(start + (quarter + 1) * HOUR / 4);
        sim.check_alive();
        sim.change(tenant("a", Status::Modified).with("descr", format!("q{quarter}")));
    }
    let st = sim.engine.stats();
    let max_per_sec = sim.max_refreshes_in_window(SEC);
    let secs = (sim.now - start) as f64 / 1000.0;
    let json = format!(
        "{{\"subscriptions\":1000,\"hours\":2,\"refreshes\":{},\"maxRefreshesPerSec\":{},\
         \"meanRefreshesPerSec\":{:.3},\"cap\":{},\"expiries\":{},\"lapsed\":{},\"gaps\":{},\
         \"violations\":{},\"wallMs\":{}}}",
        sim.dev.refreshes,
        max_per_sec,
        sim.dev.refreshes as f64 / secs,
        cap,
        st.total.expiries,
        sim.dev.lapsed_refreshes,
        st.total.gaps,
        sim.violations.len(),
        started.elapsed().as_millis()
    );
    eprintln!("{json}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("scale.json"), &json).unwrap();
    assert!(max_per_sec as f64 <= cap, "rate cap held");
    assert_eq!(st.total.expiries, 0);
    assert_eq!(sim.dev.lapsed_refreshes, 0);
}
