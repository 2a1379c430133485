//! A socket that will not open (a proxy refusing upgrades, a runtime without WebSocket): the
//! session is kept and checked, never replaced by a login per attempt, and the error says why.

use super::*;
use dme_events::engine::SocketFailure;

fn socket_failures(sim: &Sim) -> Vec<SocketFailure> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Error(EngineError::SocketFailed(f)) => Some(*f),
            _ => None,
        })
        .collect()
}

#[test]
fn a_minute_without_a_socket_costs_one_login_and_leaves_one_session() {
    let mut sim = Sim::new(apic_config(41), DeviceCfg::apic());
    sim.dev.faults.refuse_sockets = true;
    let h = sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    println!(
        "a minute of refused sockets: {} socket attempts, {} logins, {} aaaRefresh, {} sessions at the device",
        sim.socket_opens,
        sim.dev.logins,
        sim.dev.aaa_refreshes,
        sim.dev.sessions.len()
    );
    assert!(
        sim.socket_opens >= 5,
        "it kept trying: {}",
        sim.socket_opens
    );
    assert_eq!(sim.dev.logins, 1, "one login for the whole minute");
    assert_eq!(sim.engine.stats().logins, 1);
    assert_eq!(sim.dev.sessions.len(), 1, "no session left behind");
    assert_eq!(
        sim.count_events(|e| matches!(e, Event::LoggedIn(_))),
        1,
        "a checked session is the same session"
    );
    let first = sim.events.iter().find_map(|(_, e)| match e {
        Event::LoggedIn(i) => Some(i.rotates_at),
        _ => None,
    });
    assert_eq!(
        first,
        Some(sim.engine.session_info().unwrap().rotates_at),
        "its rotation stays planned from its login"
    );
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Pending
    );
    // The device accepts sockets again: the kept session serves at once.
    sim.dev.faults.refuse_sockets = false;
    sim.engine.handle_online(true, sim.now);
    sim.run_for(MIN);
    assert!(live(&sim), "{:?}", sim.engine.state());
    assert_eq!(
        sim.engine.subscription_info(h).unwrap().state,
        SubState::Active
    );
    assert_eq!(sim.dev.logins, 1);
    assert_eq!(sim.dev.sessions.len(), 1);
    assert_clean(&sim);
}

#[test]
fn a_refused_socket_error_carries_its_cause_and_no_token() {
    let mut sim = Sim::new(apic_config(42), DeviceCfg::apic());
    sim.dev.faults.refuse_sockets = true;
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(10 * SEC);
    let fs = socket_failures(&sim);
    assert!(!fs.is_empty());
    for f in &fs {
        assert_eq!(
            *f,
            SocketFailure {
                close_code: Some(1006),
                http_works: Some(true)
            }
        );
    }
    let text = EngineError::SocketFailed(fs[0]).to_string();
    assert!(
        text.contains("1006") && text.contains("answers over HTTP"),
        "{text}"
    );
    let token = sim.engine_token.clone().unwrap();
    assert!(!text.contains(&token) && !format!("{:?}", fs[0]).contains(&token));

    // The network goes down: the socket and the session check both fail, and the error says so.
    let mut sim = Sim::new(apic_config(43), DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    sim.dev.faults.network_down = true;
    sim.device_drops_socket();
    sim.run_for(10 * SEC);
    let fs = socket_failures(&sim);
    assert!(!fs.is_empty());
    assert!(fs.iter().all(|f| f.http_works == Some(false)), "{fs:?}");
}

#[test]
fn a_session_the_device_forgot_is_replaced_by_one_login() {
    let mut sim = Sim::new(apic_config(44), DeviceCfg::apic());
    sim.subscribe(Query::class("fvTenant"), SubOptions::default());
    sim.run_for(MIN);
    assert_eq!(sim.dev.logins, 1);
    // The device forgets the session and, for a while, refuses every socket.
    sim.dev.faults.refuse_sockets = true;
    let sid = *sim.dev.sessions.keys().next().unwrap();
    sim.dev.kill_session(sid);
    sim.run_for(MIN);
    assert_eq!(
        sim.dev.logins, 2,
        "one login replaced the forgotten session"
    );
    assert_eq!(sim.dev.sessions.len(), 1);
    sim.dev.faults.refuse_sockets = false;
    sim.engine.handle_online(true, sim.now);
    sim.run_for(MIN);
    assert!(live(&sim), "{:?}", sim.engine.state());
    assert_eq!(sim.dev.logins, 2);
    assert_clean(&sim);
}

const NO_SOCKET_405: &str = r#"{"totalCount":"1","imdata":[{"error":{"attributes":{"code":"405","text":"Subscription request failed, unable to locate opened web socket. Please re-login to the application"}}}]}"#;

fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

/// Runs the engine's timers until it asks for something.
fn until_action(e: &mut Engine) -> Vec<Action> {
    for _ in 0..100 {
        let t = e.poll_timeout().expect("a timer is armed");
        e.handle_timeout(t);
        let a = drain(e);
        if !a.is_empty() {
            return a;
        }
    }
    panic!("the engine asked for nothing");
}

fn path(a: &Action) -> &str {
    match a {
        Action::Http(r) => r.url.strip_prefix(HOST).unwrap_or(&r.url),
        _ => "",
    }
}

#[test]
fn a_session_replaced_by_a_login_is_logged_out_first() {
    let mut e = Engine::new(apic_config(45), 0);
    let sock = up(&mut e);
    let h = e.subscribe(Query::class("fvTenant"), SubOptions::default(), 30);
    // The device keeps losing the socket: 405 twice, and the second time the engine logs in anew.
    for round in 0..2 {
        let sub = drain(&mut e)
            .into_iter()
            .find(|a| path(a).contains("subscription=yes"))
            .map(|a| http(Some(a)))
            .unwrap_or_else(|| panic!("round {round}: no subscribe"));
        e.handle_http_response(sub.id, 405, NO_SOCKET_405.into(), 40);
        let closed = drain(&mut e);
        assert!(
            matches!(closed[..], [Action::CloseSocket { .. }]),
            "{closed:?}"
        );
        if round == 0 {
            let a = until_action(&mut e);
            let Some(Action::OpenSocket { id, .. }) = a.first() else {
                panic!("the same session opens a new socket first: {a:?}")
            };
            assert_ne!(*id, sock);
            let now = e.poll_timeout().unwrap_or(0).max(5_000);
            e.handle_socket_open(*id, now);
            e.handle_timeout(now);
        }
    }
    let a = until_action(&mut e);
    assert_eq!(a.len(), 1, "the logout alone goes first: {a:?}");
    let logout = http(a.into_iter().next());
    assert!(
        logout.url.ends_with("/api/aaaLogout.json"),
        "{}",
        logout.url
    );
    assert!(
        logout
            .headers
            .contains(&("Cookie".to_owned(), "APIC-cookie=T1".to_owned())),
        "the replaced session's token"
    );
    let t = e.poll_timeout().unwrap_or(0);
    e.handle_http_response(
        logout.id,
        200,
        r#"{"totalCount":"0","imdata":[]}"#.into(),
        t,
    );
    let login = http(drain(&mut e).into_iter().next());
    assert!(login.url.contains("/api/aaaLogin.json"), "{}", login.url);
    assert_eq!(
        e.subscription_info(h).unwrap().state,
        SubState::Pending,
        "still waiting for the new session"
    );
}
