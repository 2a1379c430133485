//! The simulator's mutable state: the tree, sessions, sockets, subscriptions and fault knobs,
//! behind one lock; every change is told the time (`now`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc;

use crate::catalog::Catalog;
use crate::mit::{Change, Mit, ModClock};
use crate::query::Query;
use crate::render::Format;
use crate::{Flavor, SimConfig};

mod session;
mod socket;
mod subs;

pub use session::b64;

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
    pub format: Format,
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

impl Faults {
    /// The delay for the next REST request (ms, 0 for none), counting down a limited delay.
    pub fn take_delay(&mut self) -> u64 {
        let d = self.delay_ms;
        if d == 0 {
            return 0;
        }
        match &mut self.delay_n {
            Some(0) => {
                self.delay_ms = 0;
                self.delay_n = None;
                0
            }
            Some(n) => {
                *n -= 1;
                d
            }
            None => d,
        }
    }
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

    pub fn restart(&mut self, now: Instant) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in ids {
            self.end_session(sid, EndReason::Restart, now);
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
            self.end_session(sid, EndReason::Timeout, now);
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
                self.deliver(cat, &v, now);
            }
        }
    }
}

/// Durations from configuration are capped (10 years) so `Instant` arithmetic cannot overflow.
pub fn cap(d: Duration) -> Duration {
    d.min(Duration::from_secs(10 * 365 * 86_400))
}
