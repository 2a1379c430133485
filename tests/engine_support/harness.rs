//! The simulated-time harness: it carries the engine's actions to the fake device and the
//! device's answers and pushes back with a latency, checks every event against the gap rules,
//! and moves time from event to event, so a simulated day takes milliseconds.

use std::collections::{BTreeMap, BTreeSet};

use dme_events::engine::{
    Action, Auth, Config, Engine, Event, GapReason, HttpRequest, Method, Pulled, RequestId,
    SocketId, SubHandle, TokenTransport, TransportFailure,
};
use dme_events::protocol::{BaseUrl, Mo, Query, Status};

use super::device::*;

#[derive(Debug)]
enum Ev {
    Arrive(HttpRequest),
    Answer(RequestId, u16, String),
    Fail(RequestId, TransportFailure),
    SockArrive(SocketId, String),
    SockOpen(SocketId),
    SockMsg(SocketId, String),
    SockClosed(SocketId),
}

/// Per-handle checker of the gap rules.
#[derive(Default, Debug, Clone)]
pub struct SubTrack {
    pub in_gap: bool,
    pub subscribed: bool,
    pub gaps: Vec<GapReason>,
    pub delivered: u64,
    pub failed: bool,
    /// The consumer's view in store mode: first snapshot plus every delivery applied.
    pub view: BTreeMap<String, Mo>,
    /// Pull-mode subscription: gaps and data come through the pull queue, `Subscribed` through
    /// the events, so the order between the two is checked by counting.
    pub pull: bool,
    pub subs_seen: u64,
    pub gap_mark: Option<u64>,
}

pub struct Sim {
    pub engine: Engine,
    pub dev: Device,
    pub now: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    pub latency: u64,
    pub events: Vec<(u64, Event)>,
    pub keep_events: bool,
    cancelled: BTreeSet<RequestId>,
    pending_req: BTreeMap<RequestId, HttpRequest>,
    /// Sockets the engine opened and the network knows as open.
    open_socks: BTreeSet<SocketId>,
    pub engine_token: Option<String>,
    pub stale_token_requests: u64,
    pub violations: Vec<String>,
    pub tracks: BTreeMap<SubHandle, SubTrack>,
    pub refresh_sends: Vec<u64>,
    pub subscribe_sends: Vec<u64>,
    pub socket_opens: u64,
    pub store_mode: BTreeSet<SubHandle>,
    /// Device-to-client delay of pushes (default half the HTTP round trip). Shorter than the
    /// HTTP path, a push for a new subscription can beat the subscribe's answer.
    pub push_latency: Option<u64>,
    /// Read the pull queue like a consumer (off to let it fill up).
    pub drain_pull: bool,
    /// Hosts that do not answer (a controller that is down).
    pub dead_hosts: Vec<String>,
}

pub fn base() -> BaseUrl {
    BaseUrl::parse(HOST).unwrap()
}

pub fn apic_config(seed: u64) -> Config {
    let mut c = Config::apic(base(), Auth::password("admin", "pw"));
    c.token_transport = TokenTransport::CookieHeader;
    c.seed = seed;
    c
}

pub fn nxos_config(seed: u64) -> Config {
    let mut c = Config::nxos(base(), Auth::password("admin", "pw"));
    c.token_transport = TokenTransport::CookieHeader;
    c.seed = seed;
    c
}

impl Sim {
    pub fn new(cfg: Config, dev: DeviceCfg) -> Sim {
        let now = 1_000;
        Sim {
            engine: Engine::new(cfg, now),
            dev: Device::new(dev),
            now,
            queue: BTreeMap::new(),
            seq: 0,
            latency: 20,
            events: Vec::new(),
            keep_events: true,
            cancelled: BTreeSet::new(),
            pending_req: BTreeMap::new(),
            open_socks: BTreeSet::new(),
            engine_token: None,
            stale_token_requests: 0,
            violations: Vec::new(),
            tracks: BTreeMap::new(),
            refresh_sends: Vec::new(),
            subscribe_sends: Vec::new(),
            socket_opens: 0,
            store_mode: BTreeSet::new(),
            dead_hosts: Vec::new(),
            drain_pull: true,
            push_latency: None,
        }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    /// Drains the engine's actions and events.
    pub fn pump(&mut self) {
        loop {
            let mut any = false;
            while let Some(a) = self.engine.poll_action() {
                any = true;
                self.action(a);
            }
            while let Some(e) = self.engine.poll_event() {
                any = true;
                self.check_event(&e);
                if self.keep_events {
                    self.events.push((self.now, e));
                }
            }
            // A burst is delivered in slices; the harness resumes it at once (no event loop).
            if self.engine.has_backlog() {
                self.engine.handle_backlog(self.now);
                continue;
            }
            while self.drain_pull {
                let Some(p) = self.engine.next_pulled() else {
                    break;
                };
                any = true;
                let e = match p {
                    Pulled::Mos { handle, mos } => Event::Deliver { handle, mos },
                    Pulled::Gap { handle, reason } => Event::Gap { handle, reason },
                };
                self.check_event(&e);
                if self.keep_events {
                    self.events.push((self.now, e));
                }
            }
            if !any {
                break;
            }
        }
    }

    fn action(&mut self, a: Action) {
        let half = self.latency / 2;
        match a {
            Action::Http(req) => {
                // A logout may carry the token of the session it ends (one a rotation retired).
                let logout = req.url.contains("/api/aaaLogout");
                if let Some(tok) = Device::token_of(&req).filter(|_| !logout) {
                    if self.engine_token.as_deref() != Some(tok) {
                        self.stale_token_requests += 1;
                    }
                }
                let path = req.url.get(HOST.len()..).unwrap_or("");
                if path.starts_with("/api/subscriptionRefresh") {
                    self.refresh_sends.push(self.now);
                } else if path.ends_with("subscription=yes") {
                    self.subscribe_sends.push(self.now);
                }
                let dead = self
                    .dead_hosts
                    .iter()
                    .any(|h| req.url.starts_with(h.as_str()));
                if self.dev.faults.network_down || dead {
                    let id = req.id;
                    self.push(self.now + half, Ev::Fail(id, TransportFailure::Network));
                } else {
                    self.push(self.now + half, Ev::Arrive(req));
                }
            }
            Action::CancelHttp(id) => {
                self.cancelled.insert(id);
            }
            Action::OpenSocket { id, url } => {
                self.socket_opens += 1;
                let host = url.replacen("ws://", "http://", 1);
                if self.dead_hosts.iter().any(|h| host.starts_with(h.as_str())) {
                    self.push(self.now + half, Ev::SockClosed(id));
                    return;
                }
                self.push(self.now + half, Ev::SockArrive(id, url));
            }
            Action::CloseSocket { id } => {
                self.dev.close_socket(id);
                if self.open_socks.remove(&id) {
                    self.push(self.now + half, Ev::SockClosed(id));
                }
            }
        }
    }

    fn check_event(&mut self, e: &Event) {
        let pull = match e {
            Event::Subscribed { handle, .. }
            | Event::Deliver { handle, .. }
            | Event::Gap { handle, .. } => self.tracks.get(handle).is_some_and(|t| t.pull),
            _ => false,
        };
        if pull {
            return self.check_pull_event(e);
        }
        match e {
            Event::Subscribed {
                handle, initial, ..
            } => {
                let t = self.tracks.entry(*handle).or_default();
                if t.subscribed && !t.in_gap {
                    self.violations.push(format!(
                        "{handle:?}: resubscribed at {} without a gap",
                        self.now
                    ));
                }
                if !t.subscribed {
                    t.view = initial.iter().map(|m| (m.dn.clone(), m.clone())).collect();
                }
                t.subscribed = true;
                t.in_gap = false;
            }
            Event::Deliver { handle, mos } => {
                let t = self.tracks.entry(*handle).or_default();
                if t.in_gap {
                    self.violations
                        .push(format!("{handle:?}: data during a gap at {}", self.now));
                }
                t.delivered += mos.len() as u64;
                apply_to_view(&mut t.view, mos);
            }
            Event::Gap { handle, reason } => {
                let t = self.tracks.entry(*handle).or_default();
                if t.in_gap {
                    self.violations.push(format!(
                        "{handle:?}: second gap ({reason:?}) at {}",
                        self.now
                    ));
                }
                if !t.subscribed {
                    self.violations.push(format!(
                        "{handle:?}: gap before any subscribe at {}",
                        self.now
                    ));
                }
                t.in_gap = true;
                t.gaps.push(*reason);
            }
            Event::SubscribeFailed { handle, .. } => {
                self.tracks.entry(*handle).or_default().failed = true;
            }
            _ => {}
        }
    }

    fn check_pull_event(&mut self, e: &Event) {
        let now = self.now;
        match e {
            Event::Subscribed {
                handle, initial, ..
            } => {
                let t = self.tracks.get_mut(handle).unwrap();
                if !t.subscribed {
                    t.view = initial.iter().map(|m| (m.dn.clone(), m.clone())).collect();
                }
                t.subscribed = true;
                t.subs_seen += 1;
            }
            Event::Gap { handle, reason } => {
                // Gap and data share one routing path with event-mode subscriptions, whose order
                // is checked exactly; here only what the split queues allow.
                let t = self.tracks.get_mut(handle).unwrap();
                if t.subs_seen == 0 {
                    self.violations.push(format!(
                        "{handle:?}: pulled gap ({reason:?}) before any subscribe at {now}"
                    ));
                }
                t.gap_mark = Some(t.subs_seen);
                t.gaps.push(*reason);
            }
            Event::Deliver { handle, mos } => {
                let t = self.tracks.get_mut(handle).unwrap();
                t.gap_mark = None;
                t.delivered += mos.len() as u64;
                apply_to_view(&mut t.view, mos);
            }
            _ => {}
        }
    }

    fn process(&mut self, ev: Ev) {
        let half = self.latency / 2;
        match ev {
            Ev::Arrive(req) => {
                if self.dev.faults.network_down {
                    self.push(self.now + half, Ev::Fail(req.id, TransportFailure::Network));
                    return;
                }
                let (status, body) = self.dev.http(&req, self.now);
                // A logout closes the session's socket.
                self.notify_device_closes();
                let id = req.id;
                self.pending_req.insert(id, req);
                self.push(self.now + half, Ev::Answer(id, status, body));
            }
            Ev::Answer(id, status, body) => {
                let req = self.pending_req.remove(&id);
                if self.cancelled.remove(&id) {
                    return;
                }
                if status == 200 {
                    if let Some(r) = &req {
                        let path = r.url.get(HOST.len()..).unwrap_or("");
                        if path.starts_with("/api/aaaLogin") || path.starts_with("/api/aaaRefresh")
                        {
                            if let Some(tok) = body
                                .split("\"token\":\"")
                                .nth(1)
                                .and_then(|x| x.split('"').next())
                            {
                                self.engine_token = Some(tok.to_owned());
                            }
                        }
                    }
                }
                self.engine.handle_http_response(id, status, body, self.now);
            }
            Ev::Fail(id, why) => {
                if self.cancelled.remove(&id) {
                    return;
                }
                self.engine.handle_http_failure(id, why, self.now);
            }
            Ev::SockArrive(id, url) => {
                if self.dev.open_socket(id, &url, self.now) {
                    self.open_socks.insert(id);
                    self.push(self.now + half, Ev::SockOpen(id));
                } else {
                    self.push(self.now + half, Ev::SockClosed(id));
                }
            }
            Ev::SockOpen(id) => self.engine.handle_socket_open(id, self.now),
            Ev::SockMsg(id, text) => {
                if self.open_socks.contains(&id) && !self.dev.faults.mute_socket {
                    self.engine.handle_socket_message(id, &text, self.now)
                }
            }
            Ev::SockClosed(id) => {
                self.open_socks.remove(&id);
                self.engine.handle_socket_closed(id, Some(1006), self.now)
            }
        }
    }

    fn notify_device_closes(&mut self) {
        for s in std::mem::take(&mut self.dev.notify_closed) {
            if self.open_socks.remove(&s) {
                let at = self.now + self.latency / 2;
                self.push(at, Ev::SockClosed(s));
            }
        }
    }

    /// Runs the world until `t`.
    pub fn run_until(&mut self, t: u64) {
        let mut same = 0u32;
        let mut last = u64::MAX;
        loop {
            self.pump();
            let te = self.engine.poll_timeout().unwrap_or(u64::MAX);
            let tq = self.queue.keys().next().map(|k| k.0).unwrap_or(u64::MAX);
            let td = self.dev.next_deadline().unwrap_or(u64::MAX);
            let next = te.min(tq).min(td);
            if next > t {
                self.now = self.now.max(t);
                break;
            }
            self.now = self.now.max(next);
            if td <= tq && td <= te {
                self.dev.tick(self.now);
                self.notify_device_closes();
            } else if tq <= te {
                let key = *self.queue.keys().next().unwrap();
                let ev = self.queue.remove(&key).unwrap();
                self.process(ev);
            } else {
                if te == last {
                    same += 1;
                    assert!(
                        same < 10_000,
                        "the engine asks for the same wake-up {te} forever (now {}, state {:?})",
                        self.now,
                        self.engine.state()
                    );
                } else {
                    same = 0;
                    last = te;
                }
                self.engine.handle_timeout(self.now);
            }
        }
        self.pump();
    }

    pub fn run_for(&mut self, ms: u64) {
        let t = self.now + ms;
        self.run_until(t);
    }

    /// A change at the device, pushed to every socket with a matching subscription.
    pub fn change(&mut self, mo: Mo) {
        let frames = self.dev.change(mo, self.now);
        for (sock, text) in frames {
            if self.open_socks.contains(&sock) {
                let at = self.now + self.push_latency.unwrap_or(self.latency / 2);
                self.push(at, Ev::SockMsg(sock, text));
            }
        }
    }

    /// The device closes a socket (restart, failover).
    pub fn device_drops_socket(&mut self) {
        let socks: Vec<SocketId> = self.open_socks.iter().copied().collect();
        for s in socks {
            self.device_drops(s);
        }
    }

    /// The device closes this one socket.
    pub fn device_drops(&mut self, s: SocketId) {
        self.dev.drop_socket(s);
        if self.open_socks.remove(&s) {
            let at = self.now + self.latency / 2;
            self.push(at, Ev::SockClosed(s));
        }
    }

    /// The socket dies without a close event and the device forgets it.
    pub fn socket_dies_silently(&mut self) {
        let socks: Vec<SocketId> = self.open_socks.iter().copied().collect();
        for s in socks {
            self.dev.drop_socket(s);
        }
    }

    pub fn subscribe(&mut self, q: Query, opts: dme_events::engine::SubOptions) -> SubHandle {
        let store = opts.store;
        let pull = opts.pull;
        let h = self.engine.subscribe(q, opts, self.now);
        if store {
            self.store_mode.insert(h);
        }
        self.tracks.entry(h).or_default().pull = pull;
        self.pump();
        h
    }

    pub fn gaps(&self, h: SubHandle) -> Vec<GapReason> {
        self.tracks
            .get(&h)
            .map(|t| t.gaps.clone())
            .unwrap_or_default()
    }

    /// The gaps of `h` with the simulated time each was reported.
    pub fn timed_gaps(&self, h: SubHandle) -> Vec<(u64, GapReason)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Gap { handle, reason } if *handle == h => Some((*t, *reason)),
                _ => None,
            })
            .collect()
    }

    pub fn count_events(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// The largest number of subscription refreshes sent in any window of `w` ms.
    pub fn max_refreshes_in_window(&self, w: u64) -> usize {
        max_in_window(&self.refresh_sends, w)
    }

    /// Every active subscription of the engine is alive at the device.
    pub fn check_alive(&mut self) {
        for h in self.engine.handles() {
            let info = self.engine.subscription_info(h).unwrap();
            if info.state != dme_events::engine::SubState::Active {
                continue;
            }
            let id = info.subscription_id.clone().unwrap();
            match self.dev.subs.get(&id) {
                Some(s) if s.expires_at >= self.now => {}
                _ => self.violations.push(format!(
                    "{h:?} (id {id}) is not alive at the device at {}",
                    self.now
                )),
            }
        }
    }
}

pub fn max_in_window(times: &[u64], w: u64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] >= times[lo] + w {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

pub fn tenant(name: &str, status: Status) -> Mo {
    Mo::new("fvTenant", format!("uni/tn-{name}"), status)
}

pub fn method_of(a: &Action) -> Option<Method> {
    match a {
        Action::Http(r) => Some(r.method),
        _ => None,
    }
}

/// What a consumer holds after a delivery: deletes remove, everything else replaces.
fn apply_to_view(view: &mut BTreeMap<String, Mo>, mos: &[Mo]) {
    for m in mos {
        if m.status == Status::Deleted {
            view.remove(&m.dn);
        } else {
            view.insert(m.dn.clone(), m.clone());
        }
    }
}
