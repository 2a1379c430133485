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
