//! Benchmark: one frame of 50,000 objects through the engine natively, sliced as in a browser:
//! the frame is handed in, then `handle_backlog` runs until the backlog is empty, and every
//! `Deliver` is drained. It isolates the engine's share of the browser burst figure, so that a
//! change in it can be compared commit to commit (time, or instructions under callgrind).
//! `cargo test --release --test bench_burst -- --ignored --nocapture`.

use std::time::Instant;

use dme_events::engine::{Action, Auth, Config, Engine, Event, SubOptions, TokenTransport};
use dme_events::protocol::{BaseUrl, Query};

const OBJECTS: usize = 50_000;

/// A deterministic generator shaped like the browser bench's (`bench/page/gen.js`): six
/// classes; 30 % `created` with about 25 attributes, 62 % sparse `modified`, 8 % `deleted`.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn frame(id: &str, n: usize) -> String {
    const CLASSES: [&str; 6] = [
        "faultInst",
        "ethpmPhysIf",
        "fvAEPg",
        "fvCEp",
        "fvBD",
        "l1PhysIf",
    ];
    const WORDS: [&str; 8] = [
        "up", "down", "raised", "cleared", "minor", "enabled", "regular", "no",
    ];
    let mut g = Gen(11);
    let mut s = format!(r#"{{"subscriptionId":["{id}"],"imdata":["#);
    for k in 0..n {
        if k > 0 {
            s.push(',');
        }
        let cls = CLASSES[(g.next() % 6) as usize];
        let i = g.next() % 5000;
        let ts = format!(
            "2024-01-01T00:{:02}:{:02}.{:03}+00:00",
            k / 3600 % 60,
            k / 60 % 60,
            k % 1000
        );
        s.push_str(&format!(
            r#"{{"{cls}":{{"attributes":{{"dn":"uni/tn-t{}/x-{cls}{i}","rn":"","childAction":"","modTs":"{ts}""#,
            i % 50
        ));
        let u = g.next() % 100;
        if u < 30 {
            s.push_str(r#","status":"created""#);
            for p in 0..20 {
                let v = if p % 3 == 0 {
                    (g.next() % 100_000).to_string()
                } else {
                    WORDS[(g.next() % 8) as usize].to_owned()
                };
                s.push_str(&format!(r#","{}Prop{p}":"{v}""#, &cls[..4]));
            }
            s.push_str(&format!(r#","descr":"generated {i}""#));
        } else if u < 92 {
            s.push_str(&format!(
                r#","status":"modified","operSt":"{}","lastChange":"{ts}""#,
                WORDS[(g.next() % 8) as usize]
            ));
        } else {
            s.push_str(r#","status":"deleted""#);
        }
        s.push_str("}}}");
    }
    s.push_str("]}");
    s
}

fn http(a: Option<Action>) -> dme_events::engine::HttpRequest {
    match a {
        Some(Action::Http(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Logged in, socket open, one subscription with id "1"; events drained.
fn ready() -> (Engine, dme_events::engine::SocketId) {
    let mut cfg = Config::apic(
        BaseUrl::parse("https://dev").unwrap(),
        Auth::password("admin", "pw"),
    );
    cfg.token_transport = TokenTransport::CookieHeader;
    let mut e = Engine::new(cfg, 0);
    let login = http(e.poll_action());
    e.handle_http_response(
        login.id,
        200,
        r#"{"imdata":[{"aaaLogin":{"attributes":{"token":"T1","refreshTimeoutSeconds":"600"}}}]}"#
            .into(),
        10,
    );
    let Some(Action::OpenSocket { id: sock, .. }) = e.poll_action() else {
        panic!("expected the socket")
    };
    e.handle_socket_open(sock, 20);
    e.subscribe(Query::class("fvCEp"), SubOptions::default(), 30);
    let sub = http(e.poll_action());
    e.handle_http_response(
        sub.id,
        200,
        r#"{"subscriptionId":"1","imdata":[]}"#.into(),
        40,
    );
    while e.poll_event().is_some() {}
    while e.poll_action().is_some() {}
    (e, sock)
}

#[test]
#[ignore = "benchmark: run by hand"]
fn burst_of_50000_objects_through_the_engine() {
    let text = frame("1", OBJECTS);
    let mut best = f64::MAX;
    let runs: usize = std::env::var("BURST_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for _ in 0..runs {
        let (mut e, sock) = ready();
        let t0 = Instant::now();
        let mut now = 100;
        let mut delivered = 0;
        let mut slices = 0;
        e.handle_socket_text(sock, text.clone(), now);
        loop {
            while let Some(ev) = e.poll_event() {
                if let Event::Deliver { mos, .. } = ev {
                    delivered += mos.len();
                }
            }
            while e.poll_action().is_some() {}
            let _ = e.poll_timeout();
            if !e.has_backlog() {
                break;
            }
            now += 1;
            slices += 1;
            e.handle_backlog(now);
        }
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        best = best.min(ms);
        assert_eq!(delivered, OBJECTS);
        println!("burst: {OBJECTS} objects, {slices} slices, {ms:.1} ms");
    }
    println!("burst: best {best:.1} ms");
}
