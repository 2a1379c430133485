//! Large frames delivered in slices: order, de-duplication and gaps across slices.

use super::*;

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
