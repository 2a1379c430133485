//! A deterministic fake device for the engine tests.
//!
//! The device models the rules of PROTOCOL.md that the engine's decisions depend on: tokens
//! (a new one on every aaaRefresh, the old one dead at once: the strict reading), the idle
//! timeout and the hard lifetime of a session, one socket per session bound at open, 405 for a
//! subscribe without a socket, subscription lifetimes with `refresh-timeout`, 400 for a refresh
//! of a lapsed id, 403 for a dead token, 503 throttling, and pushes listing every matching id.

use std::collections::{BTreeMap, HashMap};

use dme_events::engine::{HttpRequest, SocketId};
use dme_events::protocol::{Mo, Query, Status, Target};

pub const HOST: &str = "http://dev";

#[derive(Clone, Debug)]
pub struct DeviceCfg {
    pub nxos: bool,
    pub refresh_timeout_secs: u64,
    pub max_lifetime_secs: Option<u64>,
    pub default_lifetime_secs: u64,
    pub supports_refresh_timeout: bool,
    /// Logins and aaaRefreshes allowed per second before 503 (APIC default 2).
    pub auth_rate_per_sec: u32,
    pub user: String,
    pub password: String,
}

impl DeviceCfg {
    pub fn apic() -> DeviceCfg {
        DeviceCfg {
            nxos: false,
            refresh_timeout_secs: 600,
            max_lifetime_secs: Some(86_400),
            default_lifetime_secs: 60,
            supports_refresh_timeout: true,
            auth_rate_per_sec: 2,
            user: "admin".into(),
            password: "pw".into(),
        }
    }
    pub fn nxos() -> DeviceCfg {
        DeviceCfg {
            nxos: true,
            max_lifetime_secs: None,
            default_lifetime_secs: 90,
            supports_refresh_timeout: false,
            ..DeviceCfg::apic()
        }
    }
}

#[derive(Debug)]
pub struct DevSession {
    pub token: String,
    pub created: u64,
    pub last_refresh: u64,
    pub socket: Option<SocketId>,
}

#[derive(Debug, Clone)]
pub struct DevSub {
    pub session: u64,
    pub target: Target,
    pub lifetime_ms: u64,
    pub expires_at: u64,
    pub last_refresh: u64,
}

/// Faults the tests switch on and off.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Every request fails at the transport level (network down).
    pub network_down: bool,
    /// Every subscriptionRefresh answers 503.
    pub throttle_refresh: bool,
    /// Every subscribe answers 503.
    pub throttle_subscribe: bool,
    /// Every login answers 401.
    pub reject_login: bool,
    /// Every socket open fails.
    pub refuse_sockets: bool,
    /// Frames are silently dropped (a socket dead without a close event).
    pub mute_socket: bool,
}

pub struct Device {
    pub cfg: DeviceCfg,
    pub sessions: BTreeMap<u64, DevSession>,
    pub tokens: HashMap<String, u64>,
    /// By id. A hash map for speed; everything that iterates it sorts first.
    pub subs: HashMap<String, DevSub>,
    pub objects: BTreeMap<String, Mo>,
    /// Sockets open at the device, by engine socket id, with their session.
    pub sockets: BTreeMap<SocketId, u64>,
    next_session: u64,
    next_token: u64,
    next_sub: u64,
    pub faults: Faults,
    auth_times: Vec<u64>,
    // Counters.
    pub logins: u64,
    pub aaa_refreshes: u64,
    pub refreshes: u64,
    /// Refreshes that found their subscription lapsed: the engine came too late.
    pub lapsed_refreshes: u64,
    /// Refreshes for ids the device never issued or already forgot with its session.
    pub unknown_refreshes: u64,
    pub subscribes: u64,
    pub rejected_tokens: u64,
    pub refresh_times: Vec<u64>,
    /// Sockets the device closed because their session ended (the client sees a close).
    pub notify_closed: Vec<SocketId>,
    /// (subscription id, gap between its consecutive refreshes).
    pub max_refresh_gap_ratio: f64,
}

impl Device {
    pub fn new(cfg: DeviceCfg) -> Device {
        Device {
            cfg,
            sessions: BTreeMap::new(),
            tokens: HashMap::new(),
            subs: HashMap::new(),
            objects: BTreeMap::new(),
            sockets: BTreeMap::new(),
            next_session: 1,
            next_token: 1,
            next_sub: 72_057_598_349_803_562,
            faults: Faults::default(),
            auth_times: Vec::new(),
            logins: 0,
            aaa_refreshes: 0,
            refreshes: 0,
            lapsed_refreshes: 0,
            unknown_refreshes: 0,
            subscribes: 0,
            rejected_tokens: 0,
            refresh_times: Vec::new(),
            notify_closed: Vec::new(),
            max_refresh_gap_ratio: 0.0,
        }
    }

    fn new_token(&mut self) -> String {
        self.next_token += 1;
        // Base64-looking with `+ / =`, as older releases hand out.
        format!("tk{}+/AbC=", self.next_token)
    }

    fn session_dead_at(&self, s: &DevSession) -> u64 {
        let idle = s.last_refresh + self.cfg.refresh_timeout_secs * 1000;
        match self.cfg.max_lifetime_secs {
            Some(m) => idle.min(s.created + m * 1000),
            None => idle,
        }
    }

    /// The next time a session dies on its own (its socket then closes).
    pub fn next_deadline(&self) -> Option<u64> {
        self.sessions
            .values()
            .map(|s| self.session_dead_at(s) + 1)
            .min()
    }

    /// Kills sessions that timed out; returns sockets the device closed.
    pub fn tick(&mut self, t: u64) -> Vec<SocketId> {
        let dead: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| t > self.session_dead_at(s))
            .map(|(k, _)| *k)
            .collect();
        let mut closed = Vec::new();
        for sid in dead {
            closed.extend(self.kill_session(sid));
        }
        closed
    }

    pub fn kill_session(&mut self, sid: u64) -> Option<SocketId> {
        let s = self.sessions.remove(&sid)?;
        self.tokens.remove(&s.token);
        self.subs.retain(|_, d| d.session != sid);
        let sock = s.socket;
        if let Some(k) = sock {
            self.sockets.remove(&k);
            self.notify_closed.push(k);
        }
        sock
    }

    /// Closes a socket from the device side (restart, failover); its subscriptions die.
    pub fn drop_socket(&mut self, sock: SocketId) {
        if let Some(sid) = self.sockets.remove(&sock) {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.socket = None;
            }
            self.subs.retain(|_, d| d.session != sid);
        }
    }

    pub fn token_of(req: &HttpRequest) -> Option<&str> {
        req.headers.iter().find_map(|(k, v)| {
            if k == "Cookie" {
                v.strip_prefix("APIC-cookie=")
            } else if k == "DevCookie" {
                Some(v.as_str())
            } else {
                None
            }
        })
    }

    fn session_of(&mut self, req: &HttpRequest, t: u64) -> Option<u64> {
        let tok = Self::token_of(req)?;
        let sid = *self.tokens.get(tok)?;
        let s = self.sessions.get(&sid)?;
        if t > self.session_dead_at(s) {
            return None;
        }
        Some(sid)
    }

    fn throttled_auth(&mut self, t: u64) -> bool {
        self.auth_times.retain(|&x| x + 1000 > t);
        if self.auth_times.len() as u32 >= self.cfg.auth_rate_per_sec {
            return true;
        }
        self.auth_times.push(t);
        false
    }

    fn login_body(&self, token: &str) -> String {
        let mut a = serde_json::json!({
            "token": token,
            "refreshTimeoutSeconds": self.cfg.refresh_timeout_secs.to_string(),
            "userName": self.cfg.user,
            "version": if self.cfg.nxos { "10.2(3)" } else { "5.2(1g)" },
        });
        if let Some(m) = self.cfg.max_lifetime_secs {
            a["maximumLifetimeSeconds"] = serde_json::Value::String(m.to_string());
        }
        serde_json::json!({"totalCount":"1","imdata":[{"aaaLogin":{"attributes":a}}]}).to_string()
    }

    /// Answers one request at time `t`.
    pub fn http(&mut self, req: &HttpRequest, t: u64) -> (u16, String) {
        let path = req
            .url
            .strip_prefix("http://")
            .and_then(|r| r.find('/').map(|i| &r[i..]))
            .unwrap_or(&req.url)
            .to_owned();
        let (p, _) = path.split_once('?').unwrap_or((&path, ""));
        match p {
            "/api/aaaLogin.json" => {
                if self.throttled_auth(t) {
                    return err(503, "");
                }
                let body = req.body.clone().unwrap_or_default();
                let ok = !self.faults.reject_login
                    && body.contains(&format!("\"name\":\"{}\"", self.cfg.user))
                    && body.contains(&format!("\"pwd\":\"{}\"", self.cfg.password));
                if !ok {
                    return err(
                        401,
                        "Username or password is incorrect - FAILED local authentication",
                    );
                }
                self.logins += 1;
                let sid = self.next_session;
                self.next_session += 1;
                let token = self.new_token();
                self.tokens.insert(token.clone(), sid);
                self.sessions.insert(
                    sid,
                    DevSession {
                        token: token.clone(),
                        created: t,
                        last_refresh: t,
                        socket: None,
                    },
                );
                (200, self.login_body(&token))
            }
            "/api/aaaRefresh.json" => {
                let Some(sid) = self.session_of(req, t) else {
                    self.rejected_tokens += 1;
                    return err(403, "Token was invalid (Error: Token timeout)");
                };
                if self.throttled_auth(t) {
                    return err(503, "");
                }
                self.aaa_refreshes += 1;
                let token = self.new_token();
                let s = self.sessions.get_mut(&sid).unwrap();
                let old = std::mem::replace(&mut s.token, token.clone());
                s.last_refresh = t;
                self.tokens.remove(&old);
                self.tokens.insert(token.clone(), sid);
                (200, self.login_body(&token))
            }
            "/api/aaaLogout.json" => {
                if let Some(sid) = self.session_of(req, t) {
                    self.kill_session(sid);
                }
                (200, r#"{"totalCount":"0","imdata":[]}"#.into())
            }
            "/api/subscriptionRefresh.json" => {
                let Some(sid) = self.session_of(req, t) else {
                    self.rejected_tokens += 1;
                    return err(403, "Token was invalid (Error: Token timeout)");
                };
                if self.faults.throttle_refresh {
                    return err(503, "");
                }
                self.refresh_times.push(t);
                let id = path.split_once("id=").map(|x| x.1).unwrap_or("").to_owned();
                match self.subs.get_mut(&id) {
                    Some(s) if s.session == sid => {
                        if t > s.expires_at {
                            self.lapsed_refreshes += 1;
                            self.subs.remove(&id);
                            return err(400, "Subscription refresh timeout");
                        }
                        let ratio = (t - s.last_refresh) as f64 / s.lifetime_ms as f64;
                        if ratio > 0.4 && std::env::var("DBG").is_ok() {
                            eprintln!(
                                "late refresh of {id} at {t}: last {} lifetime {}",
                                s.last_refresh, s.lifetime_ms
                            );
                        }
                        if ratio > self.max_refresh_gap_ratio {
                            self.max_refresh_gap_ratio = ratio;
                        }
                        s.last_refresh = t;
                        s.expires_at = t + s.lifetime_ms;
                        self.refreshes += 1;
                        (200, r#"{"totalCount":"0","imdata":[]}"#.into())
                    }
                    _ => {
                        self.unknown_refreshes += 1;
                        err(400, "Subscription refresh timeout")
                    }
                }
            }
            _ => self.query(req, &path, t),
        }
    }

    fn query(&mut self, req: &HttpRequest, path: &str, t: u64) -> (u16, String) {
        let Some(sid) = self.session_of(req, t) else {
            self.rejected_tokens += 1;
            return err(403, "Token was invalid (Error: Token timeout)");
        };
        let q = match Query::parse(path) {
            Ok(q) => q,
            Err(_) => return err(400, "Request failed, bad query"),
        };
        if let Target::Class { class, .. } = &q.target {
            if class.ends_with('t') && class.ends_with("tt") {
                return err(
                    400,
                    &format!("Request failed, unresolved class for {class}"),
                );
            }
        }
        let subscribe = q.options.subscription == Some(true);
        let mut sub_id = None;
        if subscribe {
            if self.faults.throttle_subscribe {
                return err(503, "");
            }
            if q.options.refresh_timeout.is_some() && !self.cfg.supports_refresh_timeout {
                return err(
                    400,
                    "Request failed, invalid query parameter refresh-timeout",
                );
            }
            let has_socket = self.sessions.get(&sid).and_then(|s| s.socket).is_some();
            if !has_socket {
                return err(405, "Subscription request failed, unable to locate opened web socket. Please re-login to the application");
            }
            self.subscribes += 1;
            let lifetime_ms = q
                .options
                .refresh_timeout
                .map(u64::from)
                .unwrap_or(self.cfg.default_lifetime_secs)
                * 1000;
            self.next_sub += 1;
            let id = self.next_sub.to_string();
            self.subs.insert(
                id.clone(),
                DevSub {
                    session: sid,
                    target: q.target.clone(),
                    lifetime_ms,
                    expires_at: t + lifetime_ms,
                    last_refresh: t,
                },
            );
            sub_id = Some(id);
        }
        let mos: Vec<serde_json::Value> = self
            .objects
            .values()
            .filter(|m| matches(&q.target, m))
            .map(|m| mo_json(m, ""))
            .collect();
        let mut v = serde_json::json!({"totalCount": mos.len().to_string(), "imdata": mos});
        if let Some(id) = sub_id {
            v["subscriptionId"] = serde_json::Value::String(id);
        }
        (200, v.to_string())
    }

    /// A socket open at time t: bound to the token's session.
    pub fn open_socket(&mut self, id: SocketId, url: &str, t: u64) -> bool {
        if self.faults.refuse_sockets || self.faults.network_down {
            return false;
        }
        let Some(tok) = url
            .strip_prefix("ws://")
            .and_then(|r| r.split_once("/socket"))
            .map(|(_, t)| t)
        else {
            return false;
        };
        let Some(&sid) = self.tokens.get(tok) else {
            return false;
        };
        let dead_at = self.session_dead_at(&self.sessions[&sid]);
        if t > dead_at {
            return false;
        }
        let s = self.sessions.get_mut(&sid).unwrap();
        if let Some(old) = s.socket.replace(id) {
            self.sockets.remove(&old);
        }
        self.sockets.insert(id, sid);
        true
    }

    pub fn close_socket(&mut self, id: SocketId) {
        if let Some(sid) = self.sockets.remove(&id) {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if s.socket == Some(id) {
                    s.socket = None;
                }
            }
            // Subscriptions live on the socket (§7).
            self.subs.retain(|_, d| d.session != sid);
        }
    }

    /// Applies a change to the model and returns the frames to push (socket, text).
    pub fn change(&mut self, mo: Mo, t: u64) -> Vec<(SocketId, String)> {
        let entry = match mo.status {
            Status::Deleted => {
                let Some(old) = self.objects.remove(&mo.dn) else {
                    return Vec::new();
                };
                let mut d = Mo::new(old.class_name.clone(), mo.dn.clone(), Status::Deleted);
                d.attributes
                    .insert("modTs".into(), mo.get("modTs").unwrap_or("").to_owned());
                d
            }
            Status::Created | Status::Snapshot => {
                let mut full = mo.clone();
                full.status = Status::Snapshot;
                self.objects.insert(mo.dn.clone(), full);
                let mut c = mo.clone();
                c.status = Status::Created;
                c
            }
            Status::Modified => {
                let Some(held) = self.objects.get_mut(&mo.dn) else {
                    return Vec::new();
                };
                held.merge(&mo);
                mo.clone()
            }
        };
        let mut per_sock: BTreeMap<SocketId, Vec<String>> = BTreeMap::new();
        for (id, s) in &self.subs {
            if t > s.expires_at || !matches(&s.target, &entry) {
                continue;
            }
            if let Some(sock) = self.sessions.get(&s.session).and_then(|x| x.socket) {
                per_sock.entry(sock).or_default().push(id.clone());
            }
        }
        for ids in per_sock.values_mut() {
            ids.sort();
        }
        let status = entry.status.as_str();
        per_sock
            .into_iter()
            .map(|(sock, ids)| {
                let v =
                    serde_json::json!({"subscriptionId": ids, "imdata": [mo_json(&entry, status)]});
                (sock, v.to_string())
            })
            .collect()
    }

    /// The objects a query would return now (the reference model of a store).
    pub fn truth(&self, target: &Target) -> BTreeMap<String, Mo> {
        self.objects
            .values()
            .filter(|m| matches(target, m))
            .map(|m| (m.dn.clone(), m.clone()))
            .collect()
    }
}

fn matches(target: &Target, m: &Mo) -> bool {
    match target {
        Target::Class { class, .. } => &m.class_name == class,
        Target::Dn { dn } => &m.dn == dn,
    }
}

fn mo_json(m: &Mo, status: &str) -> serde_json::Value {
    let mut a = serde_json::Map::new();
    for (k, v) in &m.attributes {
        a.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    a.insert("status".into(), serde_json::Value::String(status.into()));
    if !status.is_empty() {
        a.insert("rn".into(), serde_json::Value::String(String::new()));
    }
    let mut o = serde_json::Map::new();
    o.insert(m.class_name.clone(), serde_json::json!({ "attributes": a }));
    serde_json::Value::Object(o)
}

fn err(status: u16, text: &str) -> (u16, String) {
    (
        status,
        serde_json::json!({"totalCount":"1","imdata":[{"error":{"attributes":{"code": status.to_string(),"text": text}}}]})
            .to_string(),
    )
}
