//! The simulator's mutable state: the tree, sessions, sockets, subscriptions, fault knobs, and
//! the push dispatcher.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::catalog::Catalog;
use crate::mit::{Change, Mit, ModClock};
use crate::query::Query;
use crate::render::{push_frame, Enc, Node};
use crate::{Flavor, SimConfig};

pub const TEXT_NO_COOKIE: &str = "Need a valid webtoken cookie (named APIC-Cookie) or a signed request with signature in the cookie APIC-Request-Signature for all REST API requests";
pub const TEXT_TOKEN_TIMEOUT: &str = "Token was invalid (Error: Token timeout)";
pub const TEXT_BAD_LOGIN: &str = "Username or password is incorrect - FAILED local authentication";
pub const TEXT_NO_SOCKET: &str =
    "Subscription request failed, unable to locate opened web socket. Please re-login to the application";
/// At most this many sessions (the oldest is ended to make room).
pub const MAX_SESSIONS: usize = 10_000;
/// At most this many subscriptions in all.
pub const MAX_SUBS: usize = 100_000;
pub const TEXT_SUB_REFRESH: &str = "Subscription refresh timeout";
/// Not captured from a device: our wording.
pub const TEXT_CHALLENGE: &str =
    "Token was invalid (Error: Challenge token is missing or does not match)";
/// Not captured from a device: our wording.
pub const TEXT_THROTTLED: &str = "Service unavailable: too many requests, try again later";

/// What a socket task is told to do.
#[derive(Debug)]
pub enum Out {
    Text(String),
    /// Send a close frame, then end.
    Close(u16, String),
    /// End without a close frame (the TCP connection just goes away).
    Abort,
}

#[derive(Debug)]
pub struct SockRef {
    pub conn: u64,
    pub tx: mpsc::Sender<Out>,
}

#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub user: String,
    pub token: String,
    pub url_token: Option<String>,
    pub created: Instant,
    pub created_unix: i64,
    pub token_expires: Instant,
    pub session_id: String,
    pub socket: Option<SockRef>,
}

#[derive(Debug)]
pub struct Sub {
    pub id: u64,
    pub session: u64,
    pub query: Query,
    pub enc: Enc,
    pub lifetime: Duration,
    pub expires: Instant,
    pub silenced: bool,
    pub pushes: u64,
}

#[derive(Debug, Clone, Copy)]
struct TokenRef {
    session: u64,
    /// Set for a token replaced by aaaRefresh: valid until then.
    grace_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Faults {
    pub fail_refresh: u32,
    pub fail_503: u32,
    pub delay_ms: u64,
    pub delay_n: Option<u32>,
    pub duplicate: u32,
    pub batch: Option<(usize, Vec<Change>, Instant)>,
    pub down_until: Option<Instant>,
    /// The next n frames are lost (never sent).
    pub lose: u32,
    /// The next n frames carry objects without `status`.
    pub strip_status: u32,
    /// The next n socket upgrades are refused before the handshake, as a proxy that does not
    /// pass WebSockets refuses them (the HTTP API keeps working).
    pub refuse_sockets: u32,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub frames_sent: u64,
    pub objects_pushed: u64,
    pub logins: u64,
    pub refreshes: u64,
    pub subscribes: u64,
    pub sockets_opened: u64,
    pub sockets_refused: u64,
    pub sockets_dropped_slow: u64,
    pub frames_lost: u64,
    pub changes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    Timeout,
    Restart,
}

/// How `/_sim/drop-sockets` ends a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropMode {
    Abort,
    Close,
    Forget,
}

pub struct State {
    pub flavor: Flavor,
    pub mit: Mit,
    pub clock: ModClock,
    pub sessions: HashMap<u64, Session>,
    tokens: HashMap<String, TokenRef>,
    dead_tokens: HashMap<String, Instant>,
    pub subs: BTreeMap<u64, Sub>,
    next_sub: u64,
    next_session: u64,
    next_conn: u64,
    throttle: HashMap<IpAddr, Bucket>,
    pub faults: Faults,
    pub counters: Counters,
    /// Sockets the device "forgot" (`/_sim/drop-sockets?mode=forget`): still open on the wire,
    /// no longer attached to their session. Released on restart.
    forgotten: Vec<SockRef>,
    token_rng: StdRng,
    // configuration copied in
    idle: Duration,
    max_life: Option<Duration>,
    token_grace: Duration,
    throttle_rate: f64,
    socket_queue: usize,
}

pub enum AuthErr {
    NoCookie,
    Timeout,
    Challenge,
}

impl AuthErr {
    pub fn text(&self) -> &'static str {
        match self {
            AuthErr::NoCookie => TEXT_NO_COOKIE,
            AuthErr::Timeout => TEXT_TOKEN_TIMEOUT,
            AuthErr::Challenge => TEXT_CHALLENGE,
        }
    }
}

impl State {
    pub fn new(cfg: &SimConfig, mit: Mit, clock: ModClock) -> State {
        State {
            flavor: cfg.flavor,
            mit,
            clock,
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            dead_tokens: HashMap::new(),
            subs: BTreeMap::new(),
            forgotten: Vec::new(),
            next_sub: 0,
            next_session: 1,
            next_conn: 1,
            throttle: HashMap::new(),
            faults: Faults::default(),
            counters: Counters::default(),
            token_rng: StdRng::from_os_rng(),
            idle: cap(cfg
                .idle_timeout
                .unwrap_or(Duration::from_secs(cfg.refresh_timeout))),
            max_life: cfg.effective_max_lifetime().map(cap),
            token_grace: cap(cfg.token_grace),
            throttle_rate: cfg.throttle_per_sec,
            socket_queue: cfg.socket_queue.max(1),
        }
    }

    /// A new opaque token: base64 with `+`, `/` and `=` (like older APIC releases).
    pub fn new_token(&mut self) -> String {
        loop {
            let mut b = [0u8; 94];
            self.token_rng.fill(&mut b[..]);
            let t = b64(&b);
            if (t.contains('+') || t.contains('/')) && !self.tokens.contains_key(&t) {
                return t;
            }
        }
    }

    pub fn new_short_id(&mut self) -> String {
        let mut b = [0u8; 16];
        self.token_rng.fill(&mut b[..]);
        b64(&b)
    }

    pub fn throttle_ok(&mut self, ip: IpAddr, now: Instant) -> bool {
        let rate = self.throttle_rate;
        if rate <= 0.0 {
            return true;
        }
        let cap = rate.max(1.0);
        if self.throttle.len() > 10_000 {
            self.throttle.clear();
        }
        let b = self.throttle.entry(ip).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn login(&mut self, user: &str, gui_token: bool, now: Instant) -> u64 {
        if self.sessions.len() >= MAX_SESSIONS {
            // Bounded: the oldest session makes room.
            if let Some(old) = self
                .sessions
                .values()
                .min_by_key(|s| s.created)
                .map(|s| s.id)
            {
                self.end_session(old, EndReason::Logout);
            }
        }
        let id = self.next_session;
        self.next_session += 1;
        let token = self.new_token();
        let url_token = if gui_token {
            Some(self.new_short_id())
        } else {
            None
        };
        let session_id = self.new_short_id();
        self.tokens.insert(
            token.clone(),
            TokenRef {
                session: id,
                grace_until: None,
            },
        );
        self.sessions.insert(
            id,
            Session {
                id,
                user: user.to_string(),
                token,
                url_token,
                created: now,
                created_unix: crate::util::now_ms() / 1000,
                token_expires: now + self.idle,
                session_id,
                socket: None,
            },
        );
        self.counters.logins += 1;
        id
    }

    /// aaaRefresh: a new token; the old one keeps working for the grace period.
    pub fn refresh_session(&mut self, sid: u64, now: Instant) -> Result<(), AuthErr> {
        let Some(s) = self.sessions.get(&sid) else {
            return Err(AuthErr::NoCookie);
        };
        if let Some(ml) = self.max_life {
            if now >= s.created + ml {
                self.end_session(sid, EndReason::Timeout);
                return Err(AuthErr::Timeout);
            }
        }
        let token = self.new_token();
        let grace = now + self.token_grace;
        let idle = self.idle;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Err(AuthErr::NoCookie);
        };
        let old = std::mem::replace(&mut s.token, token.clone());
        s.token_expires = now + idle;
        if let Some(r) = self.tokens.get_mut(&old) {
            r.grace_until = Some(grace);
        }
        self.tokens.insert(
            token,
            TokenRef {
                session: sid,
                grace_until: None,
            },
        );
        self.counters.refreshes += 1;
        Ok(())
    }

    /// Find the session for the request's tokens (tried in order).
    pub fn auth(
        &mut self,
        tokens: &[String],
        challenge: Option<&str>,
        now: Instant,
    ) -> Result<u64, AuthErr> {
        let mut err = AuthErr::NoCookie;
        for t in tokens {
            if let Some(r) = self.tokens.get(t).copied() {
                if r.grace_until.is_some_and(|g| now > g) {
                    self.tokens.remove(t);
                    self.bury(t.clone(), now);
                    err = AuthErr::Timeout;
                    continue;
                }
                let Some(s) = self.sessions.get(&r.session) else {
                    self.tokens.remove(t);
                    continue;
                };
                let expired =
                    now >= s.token_expires || self.max_life.is_some_and(|ml| now >= s.created + ml);
                if expired {
                    self.end_session(r.session, EndReason::Timeout);
                    err = AuthErr::Timeout;
                    continue;
                }
                if let Some(u) = &s.url_token {
                    if challenge != Some(u.as_str()) {
                        err = AuthErr::Challenge;
                        continue;
                    }
                }
                return Ok(r.session);
            } else if self.dead_tokens.contains_key(t) {
                err = AuthErr::Timeout;
            }
        }
        Err(err)
    }

    fn bury(&mut self, token: String, now: Instant) {
        if self.dead_tokens.len() >= 10_000 {
            self.dead_tokens.clear();
        }
        self.dead_tokens.insert(token, now);
    }

    /// The session a token (current or within its grace) belongs to.
    pub fn session_of_token(&self, token: &str) -> Option<u64> {
        self.tokens.get(token).map(|r| r.session)
    }

    /// Socket lookup for `/socket<token>`: same rules as REST but no challenge.
    pub fn auth_socket(&mut self, token: &str, now: Instant) -> Result<u64, AuthErr> {
        let challenge = self
            .tokens
            .get(token)
            .and_then(|r| self.sessions.get(&r.session))
            .and_then(|s| s.url_token.clone());
        self.auth(&[token.to_string()], challenge.as_deref(), now)
    }

    pub fn end_session(&mut self, sid: u64, why: EndReason) {
        let Some(mut s) = self.sessions.remove(&sid) else {
            return;
        };
        let now = Instant::now();
        let toks: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, r)| r.session == sid)
            .map(|(t, _)| t.clone())
            .collect();
        for t in toks {
            self.tokens.remove(&t);
            if why == EndReason::Timeout {
                self.bury(t, now);
            }
        }
        if let Some(sock) = s.socket.take() {
            let msg = match why {
                EndReason::Restart => Out::Abort,
                _ => Out::Close(1000, String::new()),
            };
            let _ = sock.tx.try_send(msg);
        }
        self.subs.retain(|_, sub| sub.session != sid);
    }

    /// A socket opened for a session: it replaces any previous one.
    pub fn attach_socket(&mut self, sid: u64) -> Option<(u64, mpsc::Receiver<Out>)> {
        let conn = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = mpsc::channel(self.socket_queue);
        let s = self.sessions.get_mut(&sid)?;
        if let Some(old) = s.socket.replace(SockRef { conn, tx }) {
            let _ = old.tx.try_send(Out::Close(1000, String::new()));
        }
        self.counters.sockets_opened += 1;
        Some((conn, rx))
    }

    /// A socket went away: its session's subscriptions go with it.
    pub fn detach_socket(&mut self, sid: u64, conn: u64) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            if s.socket.as_ref().is_some_and(|k| k.conn == conn) {
                s.socket = None;
                self.subs.retain(|_, sub| sub.session != sid);
            }
        }
    }

    pub fn has_open_socket(&self, sid: u64) -> bool {
        self.sessions
            .get(&sid)
            .and_then(|s| s.socket.as_ref())
            .is_some_and(|k| !k.tx.is_closed())
    }

    /// Close sockets (all, or a user's); sessions stay valid. `mode`: abort (no close frame),
    /// close (a close frame), or forget: the connection stays open but the device no longer
    /// knows it, so pushes stop silently and a subscribe answers 405, as after a failover that
    /// the client did not see.
    pub fn drop_sockets(&mut self, user: Option<&str>, mode: DropMode) -> usize {
        let mut n = 0;
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| user.into_iter().all(|u| s.user == u))
            .map(|s| s.id)
            .collect();
        for sid in ids {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(sock) = s.socket.take() {
                    match mode {
                        DropMode::Abort => drop(sock.tx.try_send(Out::Abort)),
                        DropMode::Close => {
                            drop(sock.tx.try_send(Out::Close(1001, "going away".into())))
                        }
                        DropMode::Forget => self.forgotten.push(sock),
                    }
                    n += 1;
                }
            }
            self.subs.retain(|_, sub| sub.session != sid);
        }
        n
    }

    pub fn restart(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in ids {
            self.end_session(sid, EndReason::Restart);
        }
        self.tokens.clear();
        self.dead_tokens.clear();
        self.subs.clear();
        for sock in self.forgotten.drain(..) {
            let _ = sock.tx.try_send(Out::Abort);
        }
        self.throttle.clear();
        self.faults.batch = None;
    }

    pub fn sub_base(&self) -> u64 {
        match self.flavor {
            Flavor::Apic => 72_057_598_349_803_562,
            Flavor::Nxos => 18_374_686_685_813_276_673,
        }
    }

    pub fn add_sub(
        &mut self,
        sid: u64,
        query: Query,
        enc: Enc,
        lifetime: Duration,
        now: Instant,
    ) -> u64 {
        let lifetime = cap(lifetime);
        let id = self.sub_base() + self.next_sub;
        self.next_sub += 1;
        self.subs.insert(
            id,
            Sub {
                id,
                session: sid,
                query,
                enc,
                lifetime,
                expires: now + lifetime,
                silenced: false,
                pushes: 0,
            },
        );
        self.counters.subscribes += 1;
        id
    }

    pub fn refresh_sub(&mut self, sid: u64, id: u64, now: Instant) -> bool {
        match self.subs.get_mut(&id) {
            Some(s) if s.session == sid && s.expires > now => {
                s.expires = now + s.lifetime;
                true
            }
            _ => false,
        }
    }

    /// Periodic housekeeping: expire sessions and subscriptions, flush an old batch.
    pub fn tick(&mut self, cat: &Catalog, now: Instant) {
        self.subs.retain(|_, s| s.expires > now);
        let dead: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| {
                now >= s.token_expires || self.max_life.is_some_and(|ml| now >= s.created + ml)
            })
            .map(|s| s.id)
            .collect();
        for sid in dead {
            self.end_session(sid, EndReason::Timeout);
        }
        let stale: Vec<String> = self
            .tokens
            .iter()
            .filter(|(_, r)| r.grace_until.is_some_and(|g| now > g))
            .map(|(t, _)| t.clone())
            .collect();
        for t in stale {
            self.tokens.remove(&t);
            self.bury(t, now);
        }
        if self.faults.batch.as_ref().is_some_and(|(_, v, at)| {
            !v.is_empty() && now.saturating_duration_since(*at) > Duration::from_secs(1)
        }) {
            if let Some((_, v, _)) = self.faults.batch.take() {
                self.deliver(cat, &v);
            }
        }
    }

    /// Apply pushes for changes that already happened in the tree.
    pub fn dispatch(&mut self, cat: &Catalog, changes: Vec<Change>) {
        self.counters.changes += changes.len() as u64;
        if let Some((n, buf, _)) = &mut self.faults.batch {
            buf.extend(changes);
            if buf.len() >= *n {
                if let Some((_, v, _)) = self.faults.batch.take() {
                    self.deliver(cat, &v);
                }
            }
            return;
        }
        for ch in changes {
            self.deliver(cat, std::slice::from_ref(&ch));
        }
    }

    /// The frames for a group of changes: per session and encoding, consecutive changes that
    /// match the same set of that session's subscriptions go together in one frame listing those
    /// ids, and the frames keep the order of the changes. A change matching several
    /// subscriptions arrives once with all their ids; a frame never lists an id whose query does
    /// not match every object in it; a later change never overtakes an earlier one (filters
    /// make two changes of one object match different sets).
    fn deliver(&mut self, cat: &Catalog, group: &[Change]) {
        let now = Instant::now();
        // (session, xml, ids) -> item indexes, in the order of the group.
        let mut matches: BTreeMap<(u64, bool, usize), Vec<u64>> = BTreeMap::new();
        for sub in self.subs.values() {
            if sub.silenced || sub.expires <= now {
                continue;
            }
            for (i, ch) in group.iter().enumerate() {
                if sub.query.matches(ch, &self.mit, cat) {
                    let ids = matches
                        .entry((sub.session, sub.enc == Enc::Xml, i))
                        .or_default();
                    if !ids.contains(&sub.id) {
                        ids.push(sub.id);
                    }
                }
            }
        }
        // `matches` iterates by session, encoding, then change: runs of one id set become frames.
        // (session, xml, ids) and the indexes of the changes in that frame.
        type Frame = ((u64, bool, Vec<u64>), Vec<usize>);
        let mut plan: Vec<Frame> = Vec::new();
        for ((sid, xml, i), mut ids) in matches {
            ids.sort_unstable();
            let key = (sid, xml, ids);
            match plan.last_mut() {
                Some((k, items)) if *k == key => items.push(i),
                _ => plan.push((key, vec![i])),
            }
        }
        let mut slow = Vec::new();
        for ((sid, xml, ids), mut items) in plan {
            let Some(sess) = self.sessions.get(&sid) else {
                continue;
            };
            let Some(sock) = &sess.socket else { continue };
            items.sort_unstable();
            let enc = if xml { Enc::Xml } else { Enc::Json };
            if self.faults.lose > 0 {
                self.faults.lose -= 1;
                self.counters.frames_lost += 1;
                continue;
            }
            let strip = self.faults.strip_status > 0;
            if strip {
                self.faults.strip_status -= 1;
            }
            let nodes: Vec<Node> = items
                .iter()
                .map(|&i| {
                    let mut attrs = group[i].push_attrs();
                    if strip {
                        attrs.remove("status");
                    }
                    Node {
                        class: group[i].class.clone(),
                        attrs,
                        children: vec![],
                    }
                })
                .collect();
            let id_strs: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let frame = push_frame(enc, &id_strs, &nodes);
            let copies = if self.faults.duplicate > 0 {
                self.faults.duplicate -= 1;
                2
            } else {
                1
            };
            let mut ok = true;
            for _ in 0..copies {
                if sock.tx.try_send(Out::Text(frame.clone())).is_err() {
                    ok = false;
                    break;
                }
                self.counters.frames_sent += 1;
                self.counters.objects_pushed += nodes.len() as u64;
            }
            if ok {
                for id in &ids {
                    if let Some(s) = self.subs.get_mut(id) {
                        s.pushes += 1;
                    }
                }
            } else {
                slow.push(sid);
            }
        }
        for sid in slow {
            // A client that cannot keep up loses its socket rather than growing our memory.
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(sock) = s.socket.take() {
                    let _ = sock.tx.try_send(Out::Abort);
                }
            }
            self.subs.retain(|_, sub| sub.session != sid);
            self.counters.sockets_dropped_slow += 1;
        }
    }

    /// Send one raw (malformed) frame to every open socket; returns how many got it.
    pub fn send_raw(&mut self, text: &str) -> usize {
        let mut n = 0;
        for s in self.sessions.values() {
            if let Some(sock) = &s.socket {
                if sock.tx.try_send(Out::Text(text.to_string())).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    pub fn socket_count(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.socket.is_some())
            .count()
    }

    pub fn users(&self) -> HashSet<String> {
        self.sessions.values().map(|s| s.user.clone()).collect()
    }
}

/// Durations from configuration are capped (10 years) so `Instant` arithmetic cannot overflow.
pub fn cap(d: Duration) -> Duration {
    d.min(Duration::from_secs(10 * 365 * 86_400))
}

/// Standard base64 with padding.
pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64() {
        assert_eq!(super::b64(b"foob"), "Zm9vYg==");
        assert_eq!(super::b64(b"foobar"), "Zm9vYmFy");
    }
}
