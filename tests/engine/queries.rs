//! Queries and writes on the engine's session (`Engine::call`): the current token, a token
//! replaced in flight, one re-login after a token timeout, the 503 pause, failover, abort and
//! the deadline.

use dme_events::engine::{
    CallHandle, CallRequest, HttpRequest, Method, RequestId, TransportFailure,
};

use super::*;

fn get(path: &str) -> CallRequest {
    CallRequest {
        method: Method::Get,
        path: path.into(),
        body: None,
        timeout_ms: None,
    }
}

fn answers(sim: &Sim, call: CallHandle) -> Vec<Result<usize, String>> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Answered { call: c, result } if *c == call => Some(
                result
                    .as_ref()
                    .map(|r| r.mos.len())
                    .map_err(|e| e.code().to_owned()),
            ),
            _ => None,
        })
        .collect()
}

fn answer(e: &mut Engine) -> Option<(CallHandle, Result<usize, String>)> {
    std::iter::from_fn(|| e.poll_event()).find_map(|ev| match ev {
        Event::Answered { call, result } => Some((
            call,
            result.map(|r| r.mos.len()).map_err(|e| e.code().to_owned()),
        )),
        _ => None,
    })
}

/// Runs the engine's timers from `from` until it sends a request whose URL contains `part`;
/// returns the request and when it went out. Fails once past `limit` with nothing sent.
fn next_sent(e: &mut Engine, from: u64, part: &str, limit: u64) -> (HttpRequest, u64) {
    let mut now = from;
    loop {
        now = e.poll_timeout().expect("a timer").max(now);
        e.handle_timeout(now);
        if let Some(r) = std::iter::from_fn(|| e.poll_action()).find_map(|a| match a {
            Action::Http(r) if r.url.contains(part) => Some(r),
            _ => None,
        }) {
            return (r, now);
        }
        assert!(now < limit, "nothing sent to {part} by {now}");
    }
}

/// The device answers request `id` with an empty query result at `at`.
fn answer_empty(e: &mut Engine, id: RequestId, at: u64) {
    e.handle_http_response(id, 200, r#"{"totalCount":"0","imdata":[]}"#.into(), at);
}

fn cookie(r: &HttpRequest) -> Option<&str> {
    r.headers
        .iter()
        .find(|(k, _)| k == "Cookie")
        .map(|(_, v)| v.as_str())
}

fn with_tenants(sim: &mut Sim, n: usize) {
    for i in 0..n {
        let t = tenant(&format!("t{i}"), Status::Snapshot);
        sim.dev.objects.insert(t.dn.clone(), t);
    }
}

#[test]
fn a_call_waits_for_the_session_and_carries_its_token() {
    let mut e = Engine::new(apic_config(40), 0);
    let login = http(e.poll_action());
    let call = e.call(get("/api/class/fvTenant.json"), 5);
    assert!(
        e.poll_action().is_none(),
        "nothing goes out before the login"
    );
    e.handle_http_response(login.id, 200, LOGIN_OK.into(), 10);
    let reqs: Vec<HttpRequest> = std::iter::from_fn(|| e.poll_action())
        .filter_map(|a| match a {
            Action::Http(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].url, "http://dev/api/class/fvTenant.json");
    assert_eq!(cookie(&reqs[0]), Some("APIC-cookie=T1"));
    e.handle_http_response(
        reqs[0].id,
        200,
        r#"{"totalCount":"1","imdata":[{"fvTenant":{"attributes":{"dn":"uni/tn-a","name":"a"}}}]}"#
            .into(),
        20,
    );
    assert_eq!(answer(&mut e), Some((call, Ok(1))));
    // No socket is needed: the call went out while the socket was still opening.
}

#[test]
fn a_replaced_token_403_is_sent_again_without_a_login() {
    let mut cfg = apic_config(42);
    // The request must still be out when the keepalive goes, minutes later.
    cfg.request_timeout_ms = 20 * MIN;
    let mut e = Engine::new(cfg, 0);
    up(&mut e);
    let mut req = get("/api/class/fvTenant.json");
    req.timeout_ms = Some(20 * MIN);
    let call = e.call(req, 30);
    let first = http(e.poll_action());
    assert_eq!(cookie(&first), Some("APIC-cookie=T1"));
    // The keepalive rotates the token while the call is out.
    let (refresh, t) = next_sent(&mut e, 0, "aaaRefresh", 10 * MIN);
    e.handle_http_response(
        refresh.id,
        200,
        LOGIN_OK.replace("\"T1\"", "\"T2\""),
        t + 10,
    );
    e.handle_http_response(
        first.id,
        403,
        r#"{"imdata":[{"error":{"attributes":{"code":"403","text":"Token was invalid (Error: Token timeout)"}}}]}"#.into(),
        t + 20,
    );
    let again = std::iter::from_fn(|| e.poll_action())
        .find_map(|a| match a {
            Action::Http(r) if r.url.contains("fvTenant") => Some(r),
            _ => None,
        })
        .expect("sent again");
    assert_eq!(again.url, first.url);
    assert_eq!(cookie(&again), Some("APIC-cookie=T2"));
    answer_empty(&mut e, again.id, t + 30);
    assert_eq!(answer(&mut e), Some((call, Ok(0))));
}

#[test]
fn a_token_timeout_logs_in_once_and_the_call_goes_again() {
    let mut sim = Sim::new(apic_config(43), DeviceCfg::apic());
    with_tenants(&mut sim, 2);
    sim.run_for(5 * SEC);
    let logins = sim.dev.logins;
    let sid = *sim.dev.sessions.keys().next().unwrap();
    sim.dev.kill_session(sid);
    let call = sim.engine.call(get("/api/class/fvTenant.json"), sim.now);
    sim.run_for(30 * SEC);
    assert_eq!(answers(&sim, call), vec![Ok(2)]);
    assert_eq!(sim.dev.logins, logins + 1, "one re-login");
    assert!(live(&sim));
}

#[test]
fn a_second_token_timeout_after_the_relogin_is_the_calls_error() {
    let mut e = Engine::new(apic_config(44), 0);
    up(&mut e);
    let expired = r#"{"imdata":[{"error":{"attributes":{"code":"403","text":"Token was invalid (Error: Token timeout)"}}}]}"#;
    let call = e.call(get("/api/class/fvTenant.json"), 30);
    let first = http(e.poll_action());
    e.handle_http_response(first.id, 403, expired.into(), 40);
    // The session is expired: the engine logs in again after its backoff.
    let (login, now) = next_sent(&mut e, 40, "aaaLogin", 120 * SEC);
    e.handle_http_response(login.id, 200, LOGIN_OK.replace("\"T1\"", "\"T3\""), now + 1);
    let again = std::iter::from_fn(|| e.poll_action())
        .find_map(|a| match a {
            Action::Http(r) if r.url.contains("fvTenant") => Some(r),
            _ => None,
        })
        .expect("the call goes again on the new session");
    assert_eq!(cookie(&again), Some("APIC-cookie=T3"));
    e.handle_http_response(again.id, 403, expired.into(), now + 2);
    assert_eq!(answer(&mut e), Some((call, Err("SESSION_EXPIRED".into()))));
}

#[test]
fn a_503_waits_for_the_throttling_pause() {
    let mut e = Engine::new(apic_config(45), 0);
    up(&mut e);
    let call = e.call(get("/api/class/fvTenant.json"), 30);
    let first = http(e.poll_action());
    e.handle_http_response(first.id, 503, String::new(), 40);
    assert!(
        !std::iter::from_fn(|| e.poll_action()).any(|a| matches!(a, Action::Http(_))),
        "nothing during the pause"
    );
    let (again, now) = next_sent(&mut e, 0, "fvTenant", 30 * SEC);
    assert!(
        now >= 40 + 500,
        "sent again after at least half a backoff step, at {now}"
    );
    answer_empty(&mut e, again.id, now + 5);
    assert_eq!(answer(&mut e), Some((call, Ok(0))));
}

#[test]
fn a_call_moves_with_the_failover_to_the_next_controller() {
    let mut cfg = apic_config(46);
    cfg.urls = vec![
        dme_events::protocol::BaseUrl::parse("http://dev").unwrap(),
        dme_events::protocol::BaseUrl::parse("http://dead").unwrap(),
    ];
    cfg.request_timeout_ms = 120 * SEC;
    let mut sim = Sim::new(cfg, DeviceCfg::apic());
    with_tenants(&mut sim, 4);
    sim.run_for(5 * SEC);
    assert_eq!(sim.engine.current_url().to_string(), "http://dev");
    // "dev" goes dark and "dead" comes back: the call sent to "dev" is lost, and answered by
    // the other controller once the engine moved there.
    sim.dead_hosts = vec!["http://dev".into()];
    let call = sim.engine.call(get("/api/class/fvTenant.json"), sim.now);
    sim.device_drops_socket();
    sim.run_for(100 * SEC);
    assert_eq!(sim.engine.current_url().to_string(), "http://dead");
    assert_eq!(answers(&sim, call), vec![Ok(4)]);
}

#[test]
fn abort_cancels_the_request_and_answers_aborted() {
    let mut e = Engine::new(apic_config(47), 0);
    up(&mut e);
    let call = e.call(get("/api/class/fvTenant.json"), 30);
    let req = http(e.poll_action());
    assert!(e.cancel_call(call, 40));
    assert_eq!(e.poll_action(), Some(Action::CancelHttp(req.id)));
    assert_eq!(answer(&mut e), Some((call, Err("ABORTED".into()))));
    assert!(!e.cancel_call(call, 50), "answered once");
    // A late answer changes nothing.
    e.handle_http_response(req.id, 200, r#"{"totalCount":"0","imdata":[]}"#.into(), 60);
    assert_eq!(answer(&mut e), None);
}

#[test]
fn a_call_fails_as_timeout_at_its_deadline() {
    // Out and never answered.
    let mut e = Engine::new(apic_config(48), 0);
    up(&mut e);
    let mut req = get("/api/class/fvTenant.json");
    req.timeout_ms = Some(5 * SEC);
    let call = e.call(req, 30);
    let out = http(e.poll_action());
    let t = e.poll_timeout().unwrap();
    assert_eq!(t, 30 + 5 * SEC);
    e.handle_timeout(t);
    assert!(std::iter::from_fn(|| e.poll_action()).any(|a| a == Action::CancelHttp(out.id)));
    assert_eq!(answer(&mut e), Some((call, Err("TIMEOUT".into()))));

    // Waiting for a login that never comes.
    let mut e = Engine::new(apic_config(49), 0);
    let _login = http(e.poll_action());
    let mut req = get("/api/class/fvTenant.json");
    req.timeout_ms = Some(2 * SEC);
    let call = e.call(req, 10);
    e.handle_timeout(10 + 2 * SEC);
    assert_eq!(answer(&mut e), Some((call, Err("TIMEOUT".into()))));
}

#[test]
fn lost_answers_are_retried_within_the_deadline() {
    let mut e = Engine::new(apic_config(50), 0);
    up(&mut e);
    let call = e.call(get("/api/class/fvTenant.json"), 30);
    let first = http(e.poll_action());
    e.handle_http_failure(first.id, TransportFailure::Network, 40);
    let (again, now) = next_sent(&mut e, 0, "fvTenant", 30 * SEC);
    assert!(now >= 140, "after a backoff");
    answer_empty(&mut e, again.id, now + 1);
    assert_eq!(answer(&mut e), Some((call, Ok(0))));
}

#[test]
fn device_refusals_are_the_calls_error_and_close_answers_every_call() {
    let mut e = Engine::new(apic_config(51), 0);
    up(&mut e);
    let call = e.call(get("/api/class/fvTenantt.json"), 30);
    let req = http(e.poll_action());
    e.handle_http_response(
        req.id,
        400,
        r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"122","text":"Request failed, unresolved class for fvTenantt"}}}]}"#.into(),
        40,
    );
    let err = std::iter::from_fn(|| e.poll_event())
        .find_map(|ev| match ev {
            Event::Answered { call: c, result } if c == call => Some(result.unwrap_err()),
            _ => None,
        })
        .unwrap();
    assert_eq!(err.code(), "UNKNOWN_CLASS");
    let EngineError::Device(d) = err else {
        panic!()
    };
    assert_eq!((d.http_status, d.code.as_deref()), (400, Some("122")));

    let pending = e.call(get("/api/class/fvTenant.json"), 50);
    e.close(60);
    assert_eq!(answer(&mut e), Some((pending, Err("CLOSED".into()))));
    let after = e.call(get("/api/class/fvTenant.json"), 70);
    assert_eq!(answer(&mut e), Some((after, Err("CLOSED".into()))));
}

#[test]
fn a_503_before_the_socket_opens_still_ends_with_the_pause() {
    let mut e = Engine::new(apic_config(52), 0);
    let login = http(e.poll_action());
    e.handle_http_response(login.id, 200, LOGIN_OK.into(), 10);
    // The socket is asked for and never opens within this test's time.
    let call = e.call(get("/api/class/fvTenant.json"), 20);
    let first = std::iter::from_fn(|| e.poll_action())
        .find_map(|a| match a {
            Action::Http(r) if r.url.contains("fvTenant") => Some(r),
            _ => None,
        })
        .expect("sent");
    e.handle_http_response(first.id, 503, String::new(), 30);
    let (timer, at) = e.next_timer().expect("a wake");
    assert!(
        at < 25 * SEC,
        "woken for the pause, not the deadline: {timer:?} at {at}"
    );
    let (again, now) = next_sent(&mut e, 30, "fvTenant", 10 * SEC);
    answer_empty(&mut e, again.id, now + 1);
    assert_eq!(answer(&mut e), Some((call, Ok(0))));
}
