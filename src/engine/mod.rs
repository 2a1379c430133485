//! The whole client as a sans-IO state machine.
//!
//! The engine never touches a socket, a clock or a timer. The shell (`src/web/`, or a test)
//! feeds it inputs with the current time, performs the [`Action`]s it asks for, reports what came
//! back, reads [`Event`]s, and wakes it at [`Engine::poll_timeout`]:
//!
//! ```text
//! loop {
//!     while let Some(a) = engine.poll_action() { perform(a) }      // fetch, open/close socket
//!     while let Some(e) = engine.poll_event()  { dispatch(e) }     // callbacks, promises
//!     wait until engine.poll_timeout() or an I/O completion, then
//!     engine.handle_timeout(now) / handle_http_response(..) / handle_socket_message(..) / ...
//! }
//! ```
//!
//! Because time is an input, tests drive a day of session life in milliseconds (see
//! `tests/engine.rs`). `now` is milliseconds of a monotonic clock; it never has to start at 0.
//!
//! [`Engine::new`] starts the first login (or the verification of an adopted token) at once.
//!
//! The surface, in one place:
//! - construction: [`Engine::new`]`(`[`Config`]`, now)` ([`Config::apic`] / [`Config::nxos`],
//!   [`Auth::Password`] / [`Auth::Token`], [`TokenTransport`]);
//! - commands: [`Engine::subscribe`] → [`SubHandle`], [`Engine::refresh`],
//!   [`Engine::unsubscribe`], [`Engine::logout`], [`Engine::close`];
//! - I/O inputs: [`Engine::handle_http_response`], [`Engine::handle_http_failure`],
//!   [`Engine::handle_socket_open`], [`Engine::handle_socket_message`],
//!   [`Engine::handle_socket_closed`], [`Engine::handle_timeout`], [`Engine::handle_visibility`],
//!   [`Engine::handle_online`], [`Engine::handle_wall_clock`], [`Engine::handle_backlog`];
//! - outputs: [`Engine::poll_action`] ([`Action`]), [`Engine::poll_event`] ([`Event`]),
//!   [`Engine::poll_timeout`], [`Engine::next_pulled`] ([`Pulled`], the bounded pull queue),
//!   [`Engine::has_backlog`] (a large frame is being delivered in slices);
//! - inspection: [`Engine::state`], [`Engine::stats`], [`Engine::subscription_info`],
//!   [`Engine::store`], [`Engine::session_info`], [`Engine::handles`], [`Engine::current_url`].
//!
//! Events for one subscription come in this order: `Subscribed` (with the snapshot), then
//! `Deliver`s; on any disruption exactly one `Gap`, then (after the resubscribe) `Subscribed` with
//! the new id and, in store mode, one `Deliver` with the reconciliation; then `Deliver`s again.
//! A resubscribe without a gap never happens, and no data arrives between a gap and the next
//! `Subscribed`.
//!
//! What the engine decides, and why (each rule is documented where it is implemented):
//! - Session: `aaaRefresh` at 40-50 % of `refreshTimeoutSeconds`; a new login, socket and
//!   resubscribe before `maximumLifetimeSeconds` (make-before-break); re-login on a token
//!   timeout.
//! - Socket: opened before any subscribe; reconnect with capped exponential backoff and full
//!   jitter.
//! - Subscriptions: refreshed at 30-33 % of their lifetime, paced under a global rate cap,
//!   escalating on failure (expired → resubscribe one; 405 → rebuild everything; 503 → back off).
//! - Delivery: one parse per frame, fan-out by id, de-duplication, gaps, store-mode
//!   reconciliation.

mod config;
mod error;
mod rng;
mod types;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use crate::protocol::{
    login_body, login_path, logout_body, parse_login, parse_notification, parse_query,
    parse_refresh, subscription_refresh_path, Attributes, BaseUrl, EntryError, ErrorKind,
    LoginInfo, MalformedError, Mo, NotificationReader, Query, ResponseError, Status, Store,
    LOGOUT_PATH, REFRESH_SESSION_PATH,
};

pub use config::{Auth, Config, Flavor, TokenTransport};
pub use error::{EngineError, TransportFailure};
pub use types::{
    Action, ConnectionState, Counters, DegradedReason, Event, GapReason, HttpRequest, Method,
    Pulled, RequestId, SessionInfo, SocketId, Stats, SubHandle, SubOptions, SubState,
    SubscriptionInfo,
};

use crate::vecmap::VecMap;
use rng::Rng;

/// Frames naming an id we do not know yet are kept this many at most while a subscribe is in
/// flight: the device may push for a new subscription before its answer reaches us.
const EARLY_FRAME_LIMIT: usize = 256;
/// After a resubscribe switches ids, pushes already delivered under the old id are recognised
/// and dropped for this long.
const OVERLAP_GRACE_MS: u64 = 5_000;
/// Consecutive requests failing without an answer before the connection is presumed dead.
const FAILURES_BEFORE_RECONNECT: u32 = 3;
/// Fingerprints remembered per subscription during an overlap.
const OVERLAP_LIMIT: usize = 4096;
/// The engine's own deadline for a request exceeds the one it gives the shell by this much, so
/// the shell's timeout report normally comes first.
const DEADLINE_GRACE_MS: u64 = 1_000;
/// A subscription whose subscribe answers could not be read this many times in a row is given up.
const MAX_SUBSCRIBE_RETRIES: u32 = 8;

struct Session {
    token: String,
    url_token: Option<String>,
    refresh_timeout_ms: u64,
    /// When the next `aaaRefresh` is due.
    refresh_at: u64,
    /// When the make-before-break rotation starts (APIC with `maximumLifetimeSeconds`).
    rotate_at: Option<u64>,
    info: SessionInfo,
}

struct Sock {
    id: SocketId,
    open: bool,
    /// Give up on an opening socket after this.
    deadline: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Conn {
    /// Login, token verification or socket opening in progress.
    Attempt,
    /// Socket open (or, during a rotation, the new one opening while the old one serves).
    Up,
    /// Waiting for the next attempt.
    Waiting {
        at: u64,
    },
    LoggingOut,
    Failed(EngineError),
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    Login {
        rotate: bool,
    },
    /// `aaaRefresh` used to verify an adopted (or suspect) token before opening a socket.
    Verify,
    SessionRefresh {
        heartbeat: bool,
    },
    Subscribe {
        handle: SubHandle,
        timeout: Option<u32>,
    },
    Refresh {
        handle: SubHandle,
        heartbeat: bool,
    },
    Logout,
}

struct Pending {
    req: Req,
    sent_at: u64,
    /// Which token the request carried: a 403 for a token that has since been replaced is a
    /// race with `aaaRefresh`, not a dead session.
    epoch: u64,
}

struct Overlap {
    seen: HashSet<u64>,
    /// Set when the new id took over; after this the overlap guard is dropped.
    until: Option<u64>,
}

struct Sub {
    query: Query,
    opts: SubOptions,
    state: SubState,
    device_id: Option<String>,
    /// The full refresh URL for `device_id`, built once per subscribe.
    refresh_url: Option<String>,
    /// During a rotation: the id on the retiring socket, still routed until the new one is up.
    old_id: Option<String>,
    req: Option<RequestId>,
    lifetime_ms: u64,
    /// Key in `refresh_sched`.
    next_refresh: Option<u64>,
    /// Key in `refresh_ready`.
    ready_key: Option<u64>,
    /// Key in `sub_retry`.
    retry_at: Option<u64>,
    queued: bool,
    expires_at: u64,
    heartbeat: bool,
    in_gap: bool,
    reason: GapReason,
    ever: bool,
    store: Option<Store>,
    overlap: Option<Overlap>,
    counters: Counters,
    retries: u32,
    /// Why the subscription failed, while `state` is `Failed`.
    failure: Option<EngineError>,
    /// [`Engine::refresh`] calls waiting for their [`Event::Refreshed`].
    waiters: u32,
}

struct Early {
    at: u64,
    ids: Vec<String>,
    mos: Vec<Mo>,
}

/// A frame received but not yet fully delivered (see [`Engine::has_backlog`]).
struct Inbound {
    reader: NotificationReader,
    /// Fingerprints of the objects handed out so far: repeats are dropped across slices as
    /// within one unsliced frame.
    seen: HashSet<u64>,
    /// The first slice counts the frame in the per-subscription counters.
    counted: bool,
    rejected: usize,
    first_rejected: Option<EntryError>,
    delivered: usize,
}

/// Subscriptions by handle, only the open ones, in handle order. Handles are issued in
/// increasing order and never reused, so a new one always goes at the end and a lookup is a
/// binary search. (A vector indexed by handle was faster still, but kept a slot for every handle
/// ever issued: about 450 bytes per subscribe/close cycle, for the life of the channel.)
#[derive(Default)]
struct Subs {
    v: Vec<(SubHandle, Sub)>,
}

impl Subs {
    fn find(&self, h: &SubHandle) -> Result<usize, usize> {
        self.v.binary_search_by(|(k, _)| k.cmp(h))
    }

    fn slots(&self) -> usize {
        self.v.capacity()
    }

    fn get(&self, h: &SubHandle) -> Option<&Sub> {
        self.find(h).ok().map(|i| &self.v[i].1)
    }

    fn get_mut(&mut self, h: &SubHandle) -> Option<&mut Sub> {
        self.find(h).ok().map(|i| &mut self.v[i].1)
    }

    fn insert(&mut self, h: SubHandle, sub: Sub) {
        match self.find(&h) {
            Ok(i) => self.v[i].1 = sub,
            Err(i) => self.v.insert(i, (h, sub)),
        }
    }

    fn remove(&mut self, h: &SubHandle) -> Option<Sub> {
        let i = self.find(h).ok()?;
        let sub = self.v.remove(i).1;
        // Give memory back after a crowd of subscriptions closed.
        if self.v.capacity() > 16 && self.v.len() < self.v.capacity() / 4 {
            self.v.shrink_to(self.v.len() * 2);
        }
        Some(sub)
    }

    fn iter(&self) -> impl Iterator<Item = (&SubHandle, &Sub)> {
        self.v.iter().map(|(h, s)| (h, s))
    }

    fn keys(&self) -> impl Iterator<Item = &SubHandle> {
        self.iter().map(|(h, _)| h)
    }

    fn values(&self) -> impl Iterator<Item = &Sub> {
        self.iter().map(|(_, s)| s)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Sub> {
        self.v.iter_mut().map(|(_, s)| s)
    }
}

impl std::ops::Index<&SubHandle> for Subs {
    type Output = Sub;
    fn index(&self, h: &SubHandle) -> &Sub {
        self.get(h).expect("a tracked subscription")
    }
}

/// The client state machine. See the module documentation.
pub struct Engine {
    cfg: Config,
    rng: Rng,
    url_idx: usize,
    next_id: u64,
    last_now: u64,

    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    pull: VecDeque<Pulled>,
    pull_overflow: VecMap<SubHandle, ()>,

    session: Option<Session>,
    /// Adopted token waiting for verification (Token auth before the first `aaaRefresh`).
    session_suspect: bool,
    epoch: u64,
    conn: Conn,
    state: ConnectionState,
    attempt: u32,
    attempt_started: u64,
    ever_live: bool,
    sock: Option<Sock>,
    old_sock: Option<SocketId>,
    rotating: bool,
    /// The rotation's login answered and the engine switched to the new session: from here on,
    /// the rotation is done once no subscription is left on an old id. Before it, nothing has
    /// moved yet, whatever the subscriptions look like.
    rotation_switched: bool,
    rotate_failures: u32,
    session_refresh_req: Option<RequestId>,
    session_refresh_failures: u32,

    pending: VecMap<RequestId, Pending>,
    /// Request deadlines in send order. Every request gets the same timeout and time only moves
    /// forward, so this is sorted by construction; answered requests are skipped lazily.
    deadlines: VecDeque<(u64, RequestId)>,

    subs: Subs,
    next_handle: u64,
    ids: HashMap<String, SubHandle>,
    to_subscribe: VecMap<SubHandle, ()>,
    subscribe_inflight: usize,
    sub_retry: BTreeSet<(u64, SubHandle)>,
    refresh_sched: BTreeSet<(u64, SubHandle)>,
    refresh_ready: BTreeSet<(u64, SubHandle)>,
    next_refresh_slot: u64,
    throttle_until: u64,
    throttle_count: u32,
    refresh_timeout_supported: bool,

    last_heard: u64,
    heartbeat_out: bool,
    expected_wake: Option<u64>,
    wall_offset: Option<i64>,
    offline: bool,
    degraded: Option<DegradedReason>,
    consecutive_failures: u32,
    early: VecDeque<Early>,
    /// Frames waiting to be delivered, in arrival order (see [`Engine::has_backlog`]).
    inbox: VecDeque<Inbound>,

    stats: Stats,
    retired: Counters,
}

impl Engine {
    /// Creates the engine and starts connecting at once: the first action is the login (or the
    /// `aaaRefresh` verifying an adopted token).
    pub fn new(mut config: Config, now: u64) -> Engine {
        if let Auth::Token {
            url_token: Some(u), ..
        } = &config.auth
        {
            if !u.is_empty() {
                config.gui_token = true;
            }
        }
        let mut e = Engine {
            rng: Rng::new(config.seed),
            cfg: config,
            url_idx: 0,
            next_id: 1,
            last_now: now,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            pull: VecDeque::new(),
            pull_overflow: VecMap::new(),
            session: None,
            session_suspect: false,
            epoch: 0,
            conn: Conn::Attempt,
            state: ConnectionState::Connecting,
            attempt: 0,
            attempt_started: now,
            ever_live: false,
            sock: None,
            old_sock: None,
            rotating: false,
            rotation_switched: false,
            rotate_failures: 0,
            session_refresh_req: None,
            session_refresh_failures: 0,
            pending: VecMap::new(),
            deadlines: VecDeque::new(),
            subs: Subs::default(),
            next_handle: 1,
            ids: HashMap::new(),
            to_subscribe: VecMap::new(),
            subscribe_inflight: 0,
            sub_retry: BTreeSet::new(),
            refresh_sched: BTreeSet::new(),
            refresh_ready: BTreeSet::new(),
            next_refresh_slot: 0,
            throttle_until: 0,
            throttle_count: 0,
            refresh_timeout_supported: true,
            last_heard: now,
            heartbeat_out: false,
            expected_wake: None,
            wall_offset: None,
            offline: false,
            degraded: None,
            consecutive_failures: 0,
            early: VecDeque::new(),
            inbox: VecDeque::new(),
            stats: Stats::default(),
            retired: Counters::default(),
        };
        if e.cfg.urls.is_empty() {
            e.conn = Conn::Failed(EngineError::InvalidConfig("no controller URL"));
            e.update_state();
            return e;
        }
        if let Auth::Token {
            token, url_token, ..
        } = &e.cfg.auth
        {
            // An adopted token is used as is until aaaRefresh proves it (and tells the timers).
            e.session = Some(Session {
                token: token.clone(),
                url_token: url_token.clone().filter(|u| !u.is_empty()),
                refresh_timeout_ms: crate::protocol::DEFAULT_REFRESH_TIMEOUT_SECS * 1000,
                refresh_at: u64::MAX,
                rotate_at: None,
                info: SessionInfo {
                    user_name: None,
                    version: None,
                    node: None,
                    refresh_timeout_secs: crate::protocol::DEFAULT_REFRESH_TIMEOUT_SECS,
                    maximum_lifetime_secs: None,
                    rotates_at: None,
                    url: e.base().to_string(),
                },
            });
            e.session_suspect = true;
            e.epoch = 1;
        }
        e.start_attempt(now);
        e.update_state();
        e
    }

    // ----------------------------------------------------------------------------------------
    // Outputs

    /// The next action for the shell to perform.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next entry of the bounded pull queue (subscriptions with [`SubOptions::pull`]). After
    /// an overflow, the subscription's `Gap { reason: QueueOverflow }` comes first.
    pub fn next_pulled(&mut self) -> Option<Pulled> {
        if let Some((h, ())) = self.pull_overflow.pop_first() {
            if let Some(s) = self.subs.get_mut(&h) {
                s.counters.gaps += 1;
            }
            return Some(Pulled::Gap {
                handle: h,
                reason: GapReason::QueueOverflow,
            });
        }
        self.pull.pop_front()
    }

    /// Entries waiting in the pull queue (not counting pending overflow gaps).
    pub fn pulled_len(&self) -> usize {
        self.pull.len()
    }

    /// The earliest time at which [`Engine::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        let t = self.compute_timeout();
        self.expected_wake = t;
        t
    }

    /// The current connection state (also reported as [`Event::State`] on every change).
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// Facts of the current session, without the token.
    pub fn session_info(&self) -> Option<&SessionInfo> {
        self.session.as_ref().map(|s| &s.info)
    }

    /// The controller currently in use.
    pub fn current_url(&self) -> &BaseUrl {
        self.base()
    }

    /// Totals and per-subscription counters.
    pub fn stats(&self) -> Stats {
        let mut st = self.stats.clone();
        let mut total = self.retired;
        st.per_subscription = BTreeMap::new();
        for (h, s) in self.subs.iter() {
            total.add(&s.counters);
            st.per_subscription.insert(*h, s.counters);
        }
        st.total = total;
        st
    }

    pub fn subscription_info(&self, handle: SubHandle) -> Option<SubscriptionInfo> {
        let s = self.subs.get(&handle)?;
        Some(SubscriptionInfo {
            handle,
            subscription_id: s.device_id.clone(),
            state: s.state,
            next_refresh_at: s.next_refresh.or(s.ready_key.map(|_| self.last_now)),
            expires_at: (s.state == SubState::Active).then_some(s.expires_at),
            lifetime_secs: (s.lifetime_ms / 1000) as u32,
            counters: s.counters,
        })
    }

    /// Every handle the engine tracks, in order.
    pub fn handles(&self) -> Vec<SubHandle> {
        self.subs.keys().copied().collect()
    }

    /// For leak tests: the allocated length of every collection whose size depends on the
    /// subscriptions and requests the engine ever had, by name. Each must stay proportional to
    /// what is open now, not to what ever existed.
    #[doc(hidden)]
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("subs", self.subs.slots()),
            ("ids", self.ids.len()),
            ("pending", self.pending.len()),
            ("deadlines", self.deadlines.len()),
            ("to_subscribe", self.to_subscribe.len()),
            ("sub_retry", self.sub_retry.len()),
            ("refresh_sched", self.refresh_sched.len()),
            ("refresh_ready", self.refresh_ready.len()),
            ("pull_overflow", self.pull_overflow.len()),
            ("early", self.early.len()),
            ("inbox", self.inbox.len()),
            ("actions", self.actions.len()),
            ("events", self.events.len()),
        ]
    }

    /// The objects held for a store-mode subscription.
    pub fn store(&self, handle: SubHandle) -> Option<&Store> {
        self.subs.get(&handle)?.store.as_ref()
    }

    // ----------------------------------------------------------------------------------------
    // User commands

    /// Subscribes to a query. The subscribe is sent once the socket is open (and paced with
    /// other subscribes); the outcome is [`Event::Subscribed`] or [`Event::SubscribeFailed`].
    pub fn subscribe(&mut self, query: Query, opts: SubOptions, now: u64) -> SubHandle {
        let now = self.enter(now);
        let handle = SubHandle(self.next_handle);
        self.next_handle += 1;
        let mut q = query;
        q.options.subscription = Some(true);
        let lifetime_ms = u64::from(self.cfg.flavor.default_lifetime_secs()) * 1000;
        let mut sub = Sub {
            query: q,
            store: opts.store.then(Store::new),
            opts,
            state: SubState::Pending,
            device_id: None,
            refresh_url: None,
            old_id: None,
            req: None,
            lifetime_ms,
            next_refresh: None,
            ready_key: None,
            retry_at: None,
            queued: false,
            expires_at: 0,
            heartbeat: false,
            in_gap: false,
            reason: GapReason::Reconnect,
            ever: false,
            overlap: None,
            counters: Counters::default(),
            retries: 0,
            failure: None,
            waiters: 0,
        };
        let check = {
            let mut q = sub.query.clone();
            q.options.refresh_timeout = self.wanted_timeout(&sub.opts);
            q.render()
        };
        if let Err(e) = check {
            let error = EngineError::from(e);
            sub.state = SubState::Failed;
            sub.failure = Some(error.clone());
            self.subs.insert(handle, sub);
            self.events
                .push_back(Event::SubscribeFailed { handle, error });
            return handle;
        }
        let terminal = matches!(self.conn, Conn::Closed | Conn::Failed(_) | Conn::LoggingOut);
        self.subs.insert(handle, sub);
        if terminal {
            self.fail_sub(handle, EngineError::Closed);
        } else {
            self.queue_subscribe(handle);
        }
        self.drive(now);
        handle
    }

    /// Refreshes one subscription now (within the rate cap). Each call is answered by exactly
    /// one [`Event::Refreshed`].
    pub fn refresh(&mut self, handle: SubHandle, now: u64) {
        let now = self.enter(now);
        let refused = match (&self.conn, self.subs.get(&handle)) {
            (_, None) => Some(EngineError::UnknownHandle),
            (Conn::Failed(e), _) => Some(e.clone()),
            (Conn::Closed | Conn::LoggingOut, _) => Some(EngineError::Closed),
            (_, Some(s)) if s.state == SubState::Failed => {
                Some(s.failure.clone().unwrap_or(EngineError::Closed))
            }
            _ => None,
        };
        if let Some(e) = refused {
            self.events.push_back(Event::Refreshed {
                handle,
                result: Err(e),
            });
        } else if let Some(s) = self.subs.get_mut(&handle) {
            s.waiters += 1;
            if s.state == SubState::Active && s.req.is_none() && s.ready_key.is_none() {
                self.make_ready(handle);
            }
        }
        self.drive(now);
    }

    /// Forgets a subscription: no more refreshes (the device lets it lapse, §5), late pushes for
    /// its id are dropped. Returns false for an unknown handle.
    pub fn unsubscribe(&mut self, handle: SubHandle, now: u64) -> bool {
        let now = self.enter(now);
        let Some(_) = self.subs.get(&handle) else {
            return false;
        };
        self.answer_refreshes(handle, Err(EngineError::UnknownHandle));
        self.detach(handle, true);
        if let Some(s) = self.subs.remove(&handle) {
            self.retired.add(&s.counters);
        }
        self.pull_overflow.remove(&handle);
        self.check_rotation_done();
        self.drive(now);
        true
    }

    /// Logs out (`aaaLogout`), closes the socket and stops. Ends with [`Event::LoggedOut`] and
    /// [`Event::Closed`].
    pub fn logout(&mut self, now: u64) {
        let now = self.enter(now);
        if matches!(self.conn, Conn::Closed | Conn::LoggingOut) {
            return;
        }
        if self.session.is_none() || matches!(self.conn, Conn::Failed(_)) {
            self.events.push_back(Event::LoggedOut);
            self.close(now);
            return;
        }
        self.shutdown(EngineError::Closed);
        let user = self
            .cfg
            .auth
            .user()
            .map(str::to_owned)
            .or_else(|| self.session.as_ref().and_then(|s| s.info.user_name.clone()))
            .unwrap_or_default();
        self.conn = Conn::LoggingOut;
        self.send(
            now,
            Method::Post,
            LOGOUT_PATH,
            Some(logout_body(&user)),
            Req::Logout,
            true,
        );
        self.update_state();
    }

    /// Stops everything at once: cancels requests, closes sockets, reports [`Event::Closed`].
    pub fn close(&mut self, now: u64) {
        self.enter(now);
        if self.conn == Conn::Closed {
            return;
        }
        self.shutdown(EngineError::Closed);
        self.conn = Conn::Closed;
        self.update_state();
        self.events.push_back(Event::Closed);
    }

    // ----------------------------------------------------------------------------------------
    // I/O inputs

    pub fn handle_http_response(&mut self, req: RequestId, status: u16, body: String, now: u64) {
        let now = self.enter(now);
        let Some(p) = self.take_pending(req) else {
            return;
        };
        self.last_heard = now;
        self.heartbeat_out = false;
        if (200..300).contains(&status) {
            self.consecutive_failures = 0;
            if self.degraded == Some(DegradedReason::RequestFailures)
                || self.degraded == Some(DegradedReason::Verifying)
            {
                self.degraded = None;
            }
        }
        match p.req.clone() {
            Req::Login { rotate } => self.on_login(p, rotate, parse_login(status, &body), now),
            Req::Verify => self.on_verify(p, parse_login(status, &body), now),
            Req::SessionRefresh { .. } => {
                self.on_session_refresh(p, parse_login(status, &body), now)
            }
            Req::Subscribe { handle, timeout } => {
                // Frames received before this answer are read with the ids known before it
                // (early frames are held and replayed after the snapshot).
                self.flush_backlog(now);
                self.on_subscribe(p, handle, timeout, parse_query(status, &body), now)
            }
            Req::Refresh { handle, .. } => {
                // The hottest answer of a long session: a 2xx without an error object cannot
                // be anything but success, so only the others are parsed.
                let plain_ok = (200..300).contains(&status) && !body.contains("error");
                let r = if plain_ok {
                    Ok(())
                } else {
                    parse_refresh(status, &body)
                };
                self.on_refresh(p, handle, r, now)
            }
            Req::Logout => self.finish_logout(),
        }
        self.drive(now);
    }

    pub fn handle_http_failure(&mut self, req: RequestId, reason: TransportFailure, now: u64) {
        let now = self.enter(now);
        self.on_http_failure(req, reason, now);
        self.drive(now);
    }

    pub fn handle_socket_open(&mut self, sock: SocketId, now: u64) {
        let now = self.enter(now);
        let is_current = matches!(&self.sock, Some(s) if s.id == sock && !s.open);
        if !is_current {
            return;
        }
        if let Some(s) = self.sock.as_mut() {
            s.open = true;
        }
        self.last_heard = now;
        if self.rotating {
            // The new session's socket is up: move every subscription over. Their old ids keep
            // routing pushes from the old socket until each new subscribe answers.
            let handles: Vec<SubHandle> = self.subs.keys().copied().collect();
            for h in handles {
                let migrate = {
                    let s = &self.subs[&h];
                    s.state != SubState::Failed
                };
                if migrate {
                    self.detach(h, false);
                    let s = self.subs.get_mut(&h).unwrap();
                    if s.state == SubState::Active {
                        s.old_id = s.device_id.take();
                    }
                    s.state = SubState::Pending;
                    s.reason = GapReason::Rotation;
                    self.queue_subscribe(h);
                }
            }
            self.check_rotation_done();
        } else {
            self.conn = Conn::Up;
            self.ever_live = true;
            let handles: Vec<SubHandle> = self
                .subs
                .iter()
                .filter(|(_, s)| s.state == SubState::Pending)
                .map(|(h, _)| *h)
                .collect();
            if handles.is_empty() {
                self.attempt = 0;
            }
            for h in handles {
                self.queue_subscribe(h);
            }
        }
        self.drive(now);
    }

    /// A text frame from the socket. A frame of more than [`Config::slice_objects`] objects (or
    /// any frame while an earlier one is still being delivered) goes to the backlog and is
    /// delivered by [`Engine::handle_backlog`], one slice per call; see [`Engine::has_backlog`].
    pub fn handle_socket_message(&mut self, sock: SocketId, text: &str, now: u64) {
        self.on_socket_text(sock, Cow::Borrowed(text), now);
    }

    /// As [`Engine::handle_socket_message`], taking the text: a large frame is then kept as it
    /// is instead of copied.
    pub fn handle_socket_text(&mut self, sock: SocketId, text: String, now: u64) {
        self.on_socket_text(sock, Cow::Owned(text), now);
    }

    fn on_socket_text(&mut self, sock: SocketId, text: Cow<'_, str>, now: u64) {
        let now = self.enter(now);
        let current = matches!(&self.sock, Some(s) if s.id == sock && s.open);
        if !current && self.old_sock != Some(sock) {
            return;
        }
        self.last_heard = now;
        self.stats.frames += 1;
        let reader = if NotificationReader::streams(&text) {
            // Only the envelope is read now: this input already paid for taking in the text,
            // so the first slice waits for the next call.
            NotificationReader::open_owned(text.into_owned())
        } else {
            match parse_notification(&text) {
                Ok(n) if self.inbox.is_empty() && n.mos.len() <= self.cfg.slice_objects.max(1) => {
                    // The common case: nothing queued, and small enough to deliver at once.
                    self.report_rejected(n.rejected.len(), n.rejected.first(), n.mos.len());
                    self.fan_out(n.subscription_ids, n.mos, now);
                    self.drive(now);
                    return;
                }
                other => other.map(NotificationReader::from_parsed),
            }
        };
        match reader {
            Ok(reader) => {
                let streaming = reader.is_streaming();
                self.inbox.push_back(Inbound {
                    reader,
                    seen: HashSet::new(),
                    counted: false,
                    rejected: 0,
                    first_rejected: None,
                    delivered: 0,
                });
                if !streaming {
                    self.work(now);
                }
            }
            Err(e) => {
                self.stats.malformed_frames += 1;
                self.events.push_back(Event::Error(e.into()));
            }
        }
        self.drive(now);
    }

    /// Whether frames are waiting to be delivered.
    ///
    /// Why a backlog: one push can carry tens of thousands of objects, and reading and
    /// delivering them in one call is one long main-thread task in a browser (hundreds of
    /// milliseconds: the page freezes, input waits). So the engine delivers at most
    /// [`Config::slice_objects`] objects per input and keeps the rest here; the shell calls
    /// [`Engine::handle_backlog`] from a fresh task (after yielding to the event loop) until this
    /// is false. The engine stays sans-IO: it never knows how the shell yields, and a test simply
    /// calls `handle_backlog` in a loop, with simulated time.
    ///
    /// What is kept: order (a frame that arrives while one is queued waits behind it, so a
    /// subscription sees every object in arrival order; a large frame is read lazily, slice by
    /// slice, see [`NotificationReader`]); de-duplication across the slices of one frame; one
    /// `Error` per frame for unreadable entries. Before anything that changes which
    /// subscription an id means or starts a gap (a socket close, a subscribe answer), the
    /// backlog is delivered in full, so data received before a disruption comes before its
    /// `Gap`, as it would unsliced. A subscription closed meanwhile gets nothing more, and
    /// `close`/`logout` drop the backlog at once.
    pub fn has_backlog(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// Delivers the next slice of the backlog (see [`Engine::has_backlog`]).
    pub fn handle_backlog(&mut self, now: u64) {
        let now = self.enter(now);
        if self.inbox.is_empty() {
            return;
        }
        self.work(now);
        self.drive(now);
    }

    /// Delivers up to one slice's worth of objects from the backlog.
    fn work(&mut self, now: u64) {
        let mut budget = self.cfg.slice_objects.max(1);
        while budget > 0 {
            let Some(f) = self.inbox.front_mut() else {
                break;
            };
            let slice = f.reader.next_slice(budget);
            let taken = slice.mos.len() + slice.rejected.len();
            budget = budget.saturating_sub(taken.max(1));
            f.rejected += slice.rejected.len();
            if f.first_rejected.is_none() {
                f.first_rejected = slice.rejected.into_iter().next();
            }
            f.delivered += slice.mos.len();
            let count = !std::mem::replace(&mut f.counted, true);
            let ids = f.reader.subscription_ids().to_vec();
            let mut seen = std::mem::take(&mut f.seen);
            let done = f.reader.is_done();
            let mos: Vec<Mo> = if done && count {
                // The whole frame in one slice: the usual per-frame de-duplication.
                dedup_frame(slice.mos)
            } else {
                slice
                    .mos
                    .into_iter()
                    .filter(|m| seen.insert(fingerprint(m)))
                    .collect()
            };
            if let Some(f) = self.inbox.front_mut() {
                f.seen = seen;
            }
            if !mos.is_empty() || count {
                self.fan_out_slice(ids, mos, count, now);
            }
            if let Some(e) = slice.error {
                self.stats.malformed_frames += 1;
                self.events.push_back(Event::Error(e.into()));
            }
            if done {
                if let Some(f) = self.inbox.pop_front() {
                    self.report_rejected(f.rejected, f.first_rejected.as_ref(), f.delivered);
                }
            }
        }
    }

    /// Delivers the whole backlog now (before a disruption, see [`Engine::has_backlog`]).
    fn flush_backlog(&mut self, now: u64) {
        while !self.inbox.is_empty() {
            self.work(now);
        }
    }

    /// One `Error` for the unreadable entries of a frame.
    fn report_rejected(&mut self, n: usize, first: Option<&EntryError>, read: usize) {
        let Some(first) = first else {
            return;
        };
        self.stats.malformed_frames += 1;
        let detail = format!(
            "{} of {} entries unreadable (first at index {}: {})",
            n,
            n + read,
            first.index,
            first.reason
        );
        self.events
            .push_back(Event::Error(EngineError::Malformed(MalformedError {
                what: "notification",
                detail,
            })));
    }

    pub fn handle_socket_closed(&mut self, sock: SocketId, _code: Option<u16>, now: u64) {
        let now = self.enter(now);
        // What the socket delivered before it closed comes before the gap.
        self.flush_backlog(now);
        self.on_socket_closed(sock, now);
        self.drive(now);
    }

    /// Timers: call at (or after) [`Engine::poll_timeout`]. A call far later than asked means
    /// the machine slept or the tab was frozen: the connection is presumed dead and verified.
    pub fn handle_timeout(&mut self, now: u64) {
        let now = self.enter(now);
        self.drive(now);
    }

    /// Page visibility. Hidden tabs get timers at most once a minute; when the page comes back,
    /// overdue refreshes go out at once (the input itself runs them) and a long silence is
    /// verified.
    pub fn handle_visibility(&mut self, visible: bool, now: u64) {
        let now = self.enter(now);
        if visible && now.saturating_sub(self.last_heard) >= self.cfg.heartbeat_idle_ms / 3 {
            self.verify(now);
        }
        self.drive(now);
    }

    /// Network up/down as the runtime reports it. Offline: degraded, no retry storm. Online
    /// again: retry a waiting reconnect now and verify the connection.
    pub fn handle_online(&mut self, online: bool, now: u64) {
        let now = self.enter(now);
        self.offline = !online;
        if !online {
            let probe = now + self.cfg.backoff_cap_ms;
            if let Conn::Waiting { at } = &mut self.conn {
                *at = (*at).max(probe);
            }
        }
        if online {
            if let Conn::Waiting { at } = &mut self.conn {
                *at = (*at).min(now);
            }
            self.verify(now);
        }
        self.drive(now);
    }

    /// Optional wall-clock reading (ms since the epoch). A jump of the wall clock against the
    /// monotonic one means the machine slept: verify.
    pub fn handle_wall_clock(&mut self, wall_ms: u64, now: u64) {
        let now = self.enter(now);
        let offset = wall_ms as i64 - now as i64;
        if let Some(prev) = self.wall_offset {
            if (offset - prev).unsigned_abs() > self.cfg.clock_jump_ms {
                self.verify(now);
            }
        }
        self.wall_offset = Some(offset);
        self.drive(now);
    }

    // ----------------------------------------------------------------------------------------
    // Internals: bookkeeping

    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn base(&self) -> &BaseUrl {
        &self.cfg.urls[self.url_idx.min(self.cfg.urls.len().saturating_sub(1))]
    }

    fn is_terminal(&self) -> bool {
        matches!(self.conn, Conn::Closed | Conn::Failed(_) | Conn::LoggingOut)
    }

    /// Common entry of every input: monotonic clamp and clock-jump detection.
    fn enter(&mut self, now: u64) -> u64 {
        let now = now.max(self.last_now);
        self.last_now = now;
        if let Some(w) = self.expected_wake {
            if now > w.saturating_add(self.cfg.clock_jump_ms) {
                self.expected_wake = None;
                self.verify(now);
            }
        }
        now
    }

    fn socket_up(&self) -> bool {
        self.conn == Conn::Up && matches!(&self.sock, Some(s) if s.open)
    }

    fn headers(&self, with_token: bool) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(s) = &self.session {
            if with_token {
                match self.cfg.token_transport {
                    TokenTransport::CookieJar => {}
                    TokenTransport::CookieHeader => {
                        h.push(("Cookie".to_owned(), format!("APIC-cookie={}", s.token)))
                    }
                    TokenTransport::DevCookie => h.push(("DevCookie".to_owned(), s.token.clone())),
                }
            }
            if self.cfg.gui_token {
                if let Some(u) = &s.url_token {
                    h.push(("APIC-challenge".to_owned(), u.clone()));
                }
            }
        }
        h
    }

    fn send(
        &mut self,
        now: u64,
        method: Method,
        path: &str,
        body: Option<String>,
        req: Req,
        with_token: bool,
    ) -> RequestId {
        let url = self.base().http(path);
        self.send_to(now, method, url, body, req, with_token)
    }

    fn send_to(
        &mut self,
        now: u64,
        method: Method,
        url: String,
        body: Option<String>,
        req: Req,
        with_token: bool,
    ) -> RequestId {
        let id = RequestId(self.fresh());
        let headers = self.headers(with_token);
        let deadline = now + self.cfg.request_timeout_ms + DEADLINE_GRACE_MS;
        self.actions.push_back(Action::Http(HttpRequest {
            id,
            method,
            url,
            headers,
            body,
            timeout_ms: self.cfg.request_timeout_ms,
        }));
        self.pending.insert(
            id,
            Pending {
                req,
                sent_at: now,
                epoch: self.epoch,
            },
        );
        self.deadlines.push_back((deadline, id));
        id
    }

    fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        while let Some(&(_, front)) = self.deadlines.front() {
            if self.pending.contains_key(&front) {
                break;
            }
            self.deadlines.pop_front();
        }
        Some(p)
    }

    fn cancel(&mut self, id: RequestId) {
        if self.take_pending(id).is_some() {
            self.actions.push_back(Action::CancelHttp(id));
        }
    }

    /// Cancels every request and closes every socket (close, logout, failure); waiting refresh
    /// calls are answered with `why`.
    fn shutdown(&mut self, why: EngineError) {
        let ids: Vec<RequestId> = self.pending.keys().copied().collect();
        for id in ids {
            self.cancel(id);
        }
        self.session_refresh_req = None;
        self.close_sockets();
        let handles: Vec<SubHandle> = self.subs.keys().copied().collect();
        for h in handles {
            self.answer_refreshes(h, Err(why.clone()));
            self.detach(h, true);
            if let Some(s) = self.subs.get_mut(&h) {
                if s.state != SubState::Failed {
                    s.state = SubState::Pending;
                }
            }
        }
        self.subscribe_inflight = 0;
        self.rotating = false;
        self.rotation_switched = false;
        self.early.clear();
        self.inbox.clear();
    }

    fn close_sockets(&mut self) {
        if let Some(s) = self.sock.take() {
            self.actions.push_back(Action::CloseSocket { id: s.id });
        }
        if let Some(o) = self.old_sock.take() {
            self.actions.push_back(Action::CloseSocket { id: o });
        }
    }

    /// Takes a subscription out of every schedule and cancels its request. With `forget_ids`,
    /// its ids stop routing pushes.
    fn detach(&mut self, h: SubHandle, forget_ids: bool) {
        self.unschedule_refresh(h);
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        if let Some(k) = s.retry_at.take() {
            self.sub_retry.remove(&(k, h));
        }
        if s.queued {
            s.queued = false;
            self.to_subscribe.remove(&h);
        }
        s.heartbeat = false;
        let req = s.req.take();
        let was_subscribing = s.state == SubState::Subscribing;
        if forget_ids {
            s.refresh_url = None;
            if let Some(id) = s.device_id.take() {
                self.ids.remove(&id);
            }
            if let Some(id) = s.old_id.take() {
                self.ids.remove(&id);
            }
            s.overlap = None;
        }
        if let Some(r) = req {
            if was_subscribing {
                self.subscribe_inflight = self.subscribe_inflight.saturating_sub(1);
            }
            self.cancel(r);
        }
    }

    fn queue_subscribe(&mut self, h: SubHandle) {
        if let Some(s) = self.subs.get_mut(&h) {
            if !s.queued && s.req.is_none() && s.retry_at.is_none() {
                s.queued = true;
                s.state = SubState::Pending;
                self.to_subscribe.insert(h, ());
            }
        }
    }

    fn make_ready(&mut self, h: SubHandle) {
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        if let Some(k) = s.next_refresh.take() {
            self.refresh_sched.remove(&(k, h));
        }
        if s.ready_key.is_none() {
            // Among due refreshes, the one closest to expiry goes first; heartbeats jump ahead.
            let key = if s.heartbeat { 0 } else { s.expires_at };
            s.ready_key = Some(key);
            self.refresh_ready.insert((key, h));
        }
    }

    /// Removes a subscription's planned or ready refresh; false if the handle is unknown.
    fn unschedule_refresh(&mut self, h: SubHandle) -> bool {
        let Some(s) = self.subs.get_mut(&h) else {
            return false;
        };
        if let Some(k) = s.next_refresh.take() {
            self.refresh_sched.remove(&(k, h));
        }
        if let Some(k) = s.ready_key.take() {
            self.refresh_ready.remove(&(k, h));
        }
        true
    }

    fn schedule_refresh(&mut self, h: SubHandle, at: u64) {
        if !self.unschedule_refresh(h) {
            return;
        }
        let at = self.reserve_slot(at, self.last_now);
        if let Some(s) = self.subs.get_mut(&h) {
            s.next_refresh = Some(at);
        }
        self.refresh_sched.insert((at, h));
    }

    /// The minimum spacing of refreshes under the rate cap.
    fn spacing(&self) -> u64 {
        ((1000.0 / self.cfg.refresh_rate_cap.max(0.001)).ceil() as u64).max(1)
    }

    /// Picks the send time of a refresh wanted at `target`: the latest free slot of the rate cap's
    /// calendar at or before `target` (but not before `not_before`), else the first free one
    /// after it. Searching earlier first is what keeps a bulk of subscriptions made in the same
    /// second from all waiting in line behind each other and refreshing late: their first
    /// refreshes spread backwards over the time before they are due, and stay spread.
    fn reserve_slot(&self, target: u64, not_before: u64) -> u64 {
        let sp = self.spacing();
        let hi = target / sp;
        let lo = not_before.div_ceil(sp);
        let occupied = |idx: u64| {
            self.refresh_sched
                .range((idx * sp, SubHandle(0))..((idx + 1) * sp, SubHandle(0)))
                .next()
                .is_some()
        };
        if hi >= lo {
            let mut idx = hi;
            let mut free = None;
            for &(t, _) in self
                .refresh_sched
                .range(..((hi + 1) * sp, SubHandle(0)))
                .rev()
            {
                let ti = t / sp;
                if ti > idx {
                    continue;
                }
                if ti < idx {
                    free = Some(idx);
                    break;
                }
                if idx == lo {
                    break;
                }
                idx -= 1;
            }
            if free.is_none() && idx >= lo && !occupied(idx) {
                free = Some(idx);
            }
            if let Some(i) = free {
                return (i * sp).max(not_before);
            }
        }
        let mut idx = hi.max(lo);
        for &(t, _) in self.refresh_sched.range((idx * sp, SubHandle(0))..) {
            let ti = t / sp;
            if ti > idx {
                break;
            }
            if ti == idx {
                idx += 1;
            }
        }
        idx * sp
    }

    /// A subscription's refresh interval: 80-90 % of a third of its lifetime. A third leaves
    /// two more chances before expiry when a refresh is late (refreshes under load arrive late,
    /// §5) or fails; the early margin of at least a tenth absorbs waiting for a slot under the
    /// rate cap, so the refresh still leaves within a third; the jitter makes subscriptions
    /// created together drift apart instead of refreshing as one burst forever.
    fn refresh_interval(&mut self, lifetime_ms: u64) -> u64 {
        let third = lifetime_ms / 3;
        let early = third - third / 10;
        (early - self.rng.upto(third / 10)).max(1_000)
    }

    /// `aaaRefresh` interval: 40-50 % of `refreshTimeoutSeconds`. Half is what peers use; the
    /// jitter below it keeps a retry possible before the timeout and spreads consoles apart.
    fn session_refresh_interval(&mut self, refresh_timeout_ms: u64) -> u64 {
        let half = refresh_timeout_ms / 2;
        (half - self.rng.upto(half / 5)).max(1_000)
    }

    /// Full-jitter backoff for the n-th consecutive failure: uniform in
    /// `[0, min(cap, base * 2^(n-1))]`. Full jitter spreads a crowd of clients best after a
    /// controller restart.
    fn backoff(&mut self, n: u32) -> u64 {
        let ceiling = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1u64 << (n.saturating_sub(1)).min(40))
            .min(self.cfg.backoff_cap_ms);
        self.rng.upto(ceiling)
    }

    /// The wait before the next connection attempt. While the runtime says it is offline, only
    /// a slow probe at the backoff cap: no retry storm against a network that is not there (the
    /// `online` event retries at once).
    fn reconnect_delay(&mut self) -> u64 {
        let d = self.backoff(self.attempt);
        if self.offline {
            d.max(self.cfg.backoff_cap_ms)
        } else {
            d
        }
    }

    /// Delay after a 503: at least half of the exponential step, so a throttled device really
    /// gets a pause (full jitter could retry immediately). The pause never exceeds a sixth of the
    /// shortest subscription lifetime (10 s on APIC's 60 s default): longer, and subscriptions
    /// would lapse, and the resubscribes cost the device more than the refreshes it was spared.
    ///
    /// One throttling episode escalates once: the 503s of requests that were already in flight
    /// (or sent during the pause) arrive before the pause ends and do not lengthen it again.
    fn throttle(&mut self, now: u64) {
        if now >= self.throttle_until {
            self.throttle_count += 1;
        }
        let shortest = self
            .subs
            .values()
            .filter(|s| s.state == SubState::Active)
            .map(|s| s.lifetime_ms)
            .min()
            .unwrap_or(u64::MAX);
        let step = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1u64 << self.throttle_count.min(16))
            .min(self.cfg.backoff_cap_ms)
            .min((shortest / 6).max(1_000));
        let d = step / 2 + self.rng.upto(step / 2);
        self.throttle_until = self.throttle_until.max(now + d);
        self.degraded = Some(DegradedReason::Throttled);
    }

    fn wanted_timeout(&self, opts: &SubOptions) -> Option<u32> {
        if opts.no_refresh_timeout || !self.refresh_timeout_supported {
            return None;
        }
        opts.refresh_timeout.or(self.cfg.default_refresh_timeout)
    }

    fn gap(&mut self, h: SubHandle, reason: GapReason) {
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        if !s.ever || s.in_gap || s.state == SubState::Failed {
            return;
        }
        s.in_gap = true;
        s.counters.gaps += 1;
        let pull = s.opts.pull;
        self.route(h, pull, Pulled::Gap { handle: h, reason });
    }

    fn route(&mut self, _h: SubHandle, pull: bool, item: Pulled) {
        if !pull {
            self.events.push_back(match item {
                Pulled::Mos { handle, mos } => Event::Deliver { handle, mos },
                Pulled::Gap { handle, reason } => Event::Gap { handle, reason },
            });
            return;
        }
        let cap = self.cfg.queue_capacity.max(1);
        while self.pull.len() >= cap {
            match self.pull.pop_front() {
                Some(Pulled::Mos { handle, mos }) => {
                    if let Some(s) = self.subs.get_mut(&handle) {
                        s.counters.drops += mos.len() as u64;
                        s.counters.mos = s.counters.mos.saturating_sub(mos.len() as u64);
                    }
                    self.pull_overflow.insert(handle, ());
                }
                Some(Pulled::Gap { handle, .. }) => {
                    if let Some(s) = self.subs.get_mut(&handle) {
                        s.counters.gaps = s.counters.gaps.saturating_sub(1);
                    }
                    self.pull_overflow.insert(handle, ());
                }
                None => break,
            }
        }
        if let Pulled::Gap { handle, .. } = &item {
            if self.pull_overflow.contains_key(handle) {
                // An overflow gap is already waiting for this subscription and comes first.
                if let Some(s) = self.subs.get_mut(handle) {
                    s.counters.gaps = s.counters.gaps.saturating_sub(1);
                }
                return;
            }
        }
        self.pull.push_back(item);
    }

    fn fail_sub(&mut self, h: SubHandle, error: EngineError) {
        self.answer_refreshes(h, Err(error.clone()));
        self.detach(h, true);
        if let Some(s) = self.subs.get_mut(&h) {
            s.state = SubState::Failed;
            s.failure = Some(error.clone());
        }
        self.events
            .push_back(Event::SubscribeFailed { handle: h, error });
        self.check_rotation_done();
    }

    /// Answers every [`Engine::refresh`] call waiting on `h`.
    fn answer_refreshes(&mut self, h: SubHandle, result: Result<(), EngineError>) {
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        for _ in 0..std::mem::take(&mut s.waiters) {
            self.events.push_back(Event::Refreshed {
                handle: h,
                result: result.clone(),
            });
        }
    }

    /// A refresh of `h` completed: count it and answer the calls waiting for it.
    fn refresh_outcome(&mut self, h: SubHandle, result: Result<(), EngineError>) {
        if let Some(s) = self.subs.get_mut(&h) {
            match result {
                Ok(()) => s.counters.refreshes += 1,
                Err(_) => s.counters.refresh_failures += 1,
            }
        }
        self.answer_refreshes(h, result);
    }

    // ----------------------------------------------------------------------------------------
    // Connection lifecycle

    fn start_attempt(&mut self, now: u64) {
        self.conn = Conn::Attempt;
        self.attempt_started = now;
        if self.attempt > 0 {
            self.stats.reconnects += 1;
        }
        let need_auth = self.session.is_none() || self.session_suspect;
        if need_auth {
            match &self.cfg.auth {
                Auth::Password { user, password } => {
                    let body = login_body(user, password);
                    let path = login_path(self.cfg.gui_token);
                    self.send(
                        now,
                        Method::Post,
                        path,
                        Some(body),
                        Req::Login { rotate: false },
                        false,
                    );
                }
                Auth::Token { .. } => {
                    if let Some(r) = self.session_refresh_req.take() {
                        self.cancel(r);
                    }
                    self.send(
                        now,
                        Method::Get,
                        REFRESH_SESSION_PATH,
                        None,
                        Req::Verify,
                        true,
                    );
                }
            }
        } else {
            self.open_socket(now);
        }
    }

    fn open_socket(&mut self, now: u64) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return;
        };
        let id = SocketId(self.fresh());
        let url = self.base().socket(&token);
        self.sock = Some(Sock {
            id,
            open: false,
            deadline: now + self.cfg.request_timeout_ms,
        });
        self.actions.push_back(Action::OpenSocket { id, url });
    }

    fn install_session(&mut self, info: LoginInfo, sent_at: u64, now: u64) {
        let refresh_timeout_ms = info.refresh_timeout_secs.saturating_mul(1000);
        let interval = self.session_refresh_interval(refresh_timeout_ms);
        let rotate_at = match (&self.cfg.auth, info.maximum_lifetime_secs) {
            (Auth::Password { .. }, Some(max)) => {
                // Rotate a comfortable margin before the hard lifetime: the rotation itself
                // (login, socket, resubscribing everything) takes time and may need retries.
                let max_ms = max.saturating_mul(1000);
                let margin = (max_ms / 24).clamp(60_000, 3_600_000).min(max_ms / 2);
                let jitter = self.rng.upto(margin / 4);
                Some(sent_at + max_ms - margin - jitter)
            }
            _ => None,
        };
        let url_token = info
            .url_token
            .clone()
            .or_else(|| self.session.as_ref().and_then(|s| s.url_token.clone()));
        let sinfo = SessionInfo {
            user_name: info.user_name.clone(),
            version: info.version.clone(),
            node: info.node.clone(),
            refresh_timeout_secs: info.refresh_timeout_secs,
            maximum_lifetime_secs: info.maximum_lifetime_secs,
            rotates_at: rotate_at,
            url: self.base().to_string(),
        };
        self.session = Some(Session {
            token: info.token,
            url_token,
            refresh_timeout_ms,
            refresh_at: now + interval,
            rotate_at,
            info: sinfo.clone(),
        });
        if let Some(r) = self.session_refresh_req.take() {
            self.cancel(r);
        }
        self.session_refresh_failures = 0;
        self.epoch += 1;
        self.session_suspect = false;
        self.events.push_back(Event::LoggedIn(sinfo));
    }

    /// A connection attempt failed: back off (and move to the next controller, if any).
    fn fail_attempt(&mut self, now: u64, err: EngineError) {
        if self.is_terminal() {
            return;
        }
        if let Some(s) = self.sock.take() {
            self.actions.push_back(Action::CloseSocket { id: s.id });
        }
        self.attempt += 1;
        if let Some(cap) = self.cfg.max_reconnect_attempts {
            if self.attempt > cap {
                self.fail(EngineError::RetryCap(cap));
                return;
            }
        }
        self.events.push_back(Event::Error(err));
        if self.cfg.urls.len() > 1 {
            self.url_idx = (self.url_idx + 1) % self.cfg.urls.len();
            // Sessions belong to one controller: verify or log in again on the next one.
            self.session_suspect = true;
            for s in self.subs.values_mut() {
                if !s.in_gap {
                    s.reason = GapReason::Failover;
                }
            }
        }
        let d = self.reconnect_delay();
        self.conn = Conn::Waiting { at: now + d };
    }

    /// Terminal failure.
    fn fail(&mut self, err: EngineError) {
        self.shutdown(err.clone());
        self.conn = Conn::Failed(err);
        self.update_state();
    }

    /// The connection is lost or unusable: close sockets, stop every request, mark every
    /// subscription with one gap, and reconnect after a backoff. With `relogin`, the next attempt
    /// starts with a new login (or, for an adopted token, a verification).
    fn rebuild(&mut self, now: u64, reason: GapReason, relogin: bool) {
        if self.is_terminal() {
            return;
        }
        self.close_sockets();
        self.rotating = false;
        self.rotation_switched = false;
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| !matches!(p.req, Req::SessionRefresh { .. }) || relogin)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.cancel(id);
        }
        if relogin {
            self.session_refresh_req = None;
            self.session_suspect = true;
        }
        let handles: Vec<SubHandle> = self.subs.keys().copied().collect();
        for h in handles {
            if self.subs[&h].state == SubState::Failed {
                continue;
            }
            self.detach(h, true);
            self.gap(h, reason);
            let s = self.subs.get_mut(&h).unwrap();
            if s.ever {
                s.counters.reconnects += 1;
            }
            s.state = SubState::Pending;
            s.retries = 0;
        }
        self.subscribe_inflight = 0;
        self.heartbeat_out = false;
        self.attempt += 1;
        if let Some(cap) = self.cfg.max_reconnect_attempts {
            if self.attempt > cap {
                self.fail(EngineError::RetryCap(cap));
                return;
            }
        }
        let d = self.reconnect_delay();
        self.conn = Conn::Waiting { at: now + d };
    }

    fn session_expired(&mut self, now: u64, err: EngineError) {
        match self.cfg.auth {
            Auth::Password { .. } => {
                self.events.push_back(Event::Error(err));
                self.rebuild(now, GapReason::Relogin, true);
            }
            Auth::Token { .. } => self.fail(EngineError::SessionLost),
        }
    }

    fn verify(&mut self, now: u64) {
        match self.conn {
            Conn::Waiting { ref mut at } => *at = (*at).min(now),
            Conn::Up => {
                if self.heartbeat_out {
                    return;
                }
                self.degraded = Some(DegradedReason::Verifying);
                self.send_heartbeat(now, true);
            }
            _ => {}
        }
    }

    /// A cheap request proving the path end to end: the refresh of the subscription closest to
    /// its next refresh (harmless when early, and it fails if the device lost our socket), or,
    /// without subscriptions and only when `force`d, an `aaaRefresh`.
    fn send_heartbeat(&mut self, now: u64, force: bool) {
        let candidate = self
            .refresh_sched
            .first()
            .map(|(_, h)| *h)
            .or_else(|| self.refresh_ready.first().map(|(_, h)| *h));
        if let Some(h) = candidate {
            self.stats.heartbeats += 1;
            self.heartbeat_out = true;
            if let Some(s) = self.subs.get_mut(&h) {
                if let Some(k) = s.ready_key.take() {
                    self.refresh_ready.remove(&(k, h));
                }
                s.heartbeat = true;
            }
            self.make_ready(h);
        } else if force && self.session_refresh_req.is_none() && self.session.is_some() {
            self.stats.heartbeats += 1;
            self.heartbeat_out = true;
            let id = self.send(
                now,
                Method::Get,
                REFRESH_SESSION_PATH,
                None,
                Req::SessionRefresh { heartbeat: true },
                true,
            );
            self.session_refresh_req = Some(id);
        }
    }

    fn check_rotation_done(&mut self) {
        if !self.rotating || !self.rotation_switched || !self.socket_up() {
            return;
        }
        if self.subs.values().any(|s| s.old_id.is_some()) {
            return;
        }
        self.rotating = false;
        self.rotation_switched = false;
        self.rotate_failures = 0;
        self.stats.session_rotations += 1;
        if let Some(o) = self.old_sock.take() {
            self.actions.push_back(Action::CloseSocket { id: o });
        }
    }

    fn finish_logout(&mut self) {
        self.conn = Conn::Closed;
        self.session = None;
        self.events.push_back(Event::LoggedOut);
        self.update_state();
        self.events.push_back(Event::Closed);
    }

    fn on_socket_closed(&mut self, sock: SocketId, now: u64) {
        if self.old_sock == Some(sock) {
            // The retiring socket went early: subscriptions not yet moved lose their old stream.
            self.old_sock = None;
            let handles: Vec<SubHandle> = self
                .subs
                .iter()
                .filter(|(_, s)| s.old_id.is_some())
                .map(|(h, _)| *h)
                .collect();
            for h in handles {
                if let Some(id) = self.subs.get_mut(&h).and_then(|s| s.old_id.take()) {
                    self.ids.remove(&id);
                }
                self.gap(h, GapReason::Rotation);
            }
            self.check_rotation_done();
            return;
        }
        let Some(s) = &self.sock else {
            return;
        };
        if s.id != sock {
            return;
        }
        let was_open = s.open;
        self.sock = None;
        if self.is_terminal() {
            return;
        }
        if self.rotating || was_open {
            self.rebuild(now, GapReason::Reconnect, false);
        } else {
            // Never opened: a bad token is the likeliest cause, so the next attempt starts
            // with a fresh login (or verification).
            self.session_suspect = true;
            self.fail_attempt(now, EngineError::SocketFailed);
        }
    }

    // ----------------------------------------------------------------------------------------
    // Answers

    fn on_http_failure(&mut self, req: RequestId, reason: TransportFailure, now: u64) {
        let Some(p) = self.take_pending(req) else {
            return;
        };
        let err = EngineError::Transport(reason);
        match p.req {
            Req::Login { rotate: false } | Req::Verify => self.fail_attempt(now, err),
            Req::Login { rotate: true } => self.retry_rotation(now, err),
            Req::SessionRefresh { heartbeat } => {
                self.session_refresh_req = None;
                if heartbeat {
                    self.heartbeat_out = false;
                    self.rebuild(now, GapReason::Reconnect, false);
                } else {
                    self.transport_trouble(now);
                    self.retry_session_refresh(now);
                }
            }
            Req::Subscribe { handle, .. } => {
                if let Some(s) = self.subs.get_mut(&handle) {
                    if s.req == Some(req) {
                        s.req = None;
                        self.subscribe_inflight = self.subscribe_inflight.saturating_sub(1);
                        self.retry_subscribe(handle, now, err);
                    }
                }
                self.transport_trouble(now);
            }
            Req::Refresh { handle, heartbeat } => {
                let mut retry_at = None;
                if let Some(s) = self.subs.get_mut(&handle) {
                    if s.req == Some(req) {
                        s.req = None;
                        // Retry soon, but always before the expiry (§5).
                        let left = s.expires_at.saturating_sub(now);
                        retry_at = Some(now + (left / 3).min(self.cfg.backoff_base_ms * 2));
                    }
                }
                if retry_at.is_some() {
                    self.refresh_outcome(handle, Err(err));
                }
                if heartbeat {
                    self.heartbeat_out = false;
                    self.rebuild(now, GapReason::Reconnect, false);
                    return;
                }
                if let Some(at) = retry_at {
                    self.schedule_refresh(handle, at);
                }
                self.transport_trouble(now);
            }
            Req::Logout => self.finish_logout(),
        }
    }

    /// A request got no answer. A few in a row mean the connection is gone even if the socket
    /// has not noticed (sockets can die silently, §3).
    fn transport_trouble(&mut self, now: u64) {
        self.consecutive_failures += 1;
        if self.degraded.is_none() {
            self.degraded = Some(DegradedReason::RequestFailures);
        }
        if self.consecutive_failures >= FAILURES_BEFORE_RECONNECT && self.conn == Conn::Up {
            self.consecutive_failures = 0;
            self.rebuild(now, GapReason::Reconnect, false);
        }
    }

    fn on_login(
        &mut self,
        p: Pending,
        rotate: bool,
        r: Result<LoginInfo, ResponseError>,
        now: u64,
    ) {
        match r {
            Ok(info) => {
                self.stats.logins += 1;
                if rotate {
                    if self.conn != Conn::Up || !self.rotating {
                        return;
                    }
                    self.rotation_switched = true;
                    // Make-before-break: the new token is the only current one from now on.
                    // Refreshes of the old subscriptions stop (they would carry the new token
                    // to the old session's ids); each has at least two thirds of its lifetime
                    // left, enough for the switch.
                    self.install_session(info, p.sent_at, now);
                    let handles: Vec<SubHandle> = self.subs.keys().copied().collect();
                    for h in handles {
                        self.detach(h, false);
                        if let Some(s) = self.subs.get_mut(&h) {
                            if s.state == SubState::Subscribing {
                                s.state = SubState::Pending;
                            }
                        }
                    }
                    self.subscribe_inflight = 0;
                    self.old_sock = self.sock.take().map(|s| s.id);
                    self.open_socket(now);
                } else {
                    if self.conn != Conn::Attempt {
                        return;
                    }
                    self.install_session(info, p.sent_at, now);
                    self.open_socket(now);
                }
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::AuthRejected => {
                if rotate {
                    self.retry_rotation(now, d.into());
                } else {
                    self.fail(d.into());
                }
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::Throttled => {
                if rotate {
                    self.retry_rotation(now, d.into());
                } else {
                    self.throttle(now);
                    self.fail_attempt(now, d.into());
                }
            }
            Err(e) => {
                if rotate {
                    self.retry_rotation(now, e.into());
                } else {
                    self.fail_attempt(now, e.into());
                }
            }
        }
    }

    fn retry_rotation(&mut self, now: u64, err: EngineError) {
        self.rotating = false;
        self.rotation_switched = false;
        self.rotate_failures += 1;
        self.events.push_back(Event::Error(err));
        let d = self.backoff(self.rotate_failures + 2);
        if let Some(s) = self.session.as_mut() {
            s.rotate_at = Some(now + d.max(1_000));
        }
    }

    fn on_verify(&mut self, p: Pending, r: Result<LoginInfo, ResponseError>, now: u64) {
        if self.conn != Conn::Attempt {
            return;
        }
        match r {
            Ok(info) => {
                self.stats.token_refreshes += 1;
                self.install_session(info, p.sent_at, now);
                self.open_socket(now);
            }
            Err(ResponseError::Device(d))
                if matches!(d.kind, ErrorKind::SessionExpired | ErrorKind::AuthRejected) =>
            {
                self.events.push_back(Event::Error(d.into()));
                self.fail(EngineError::SessionLost);
            }
            Err(e) => self.fail_attempt(now, e.into()),
        }
    }

    fn on_session_refresh(&mut self, p: Pending, r: Result<LoginInfo, ResponseError>, now: u64) {
        self.session_refresh_req = None;
        match r {
            Ok(info) => {
                self.stats.token_refreshes += 1;
                self.session_refresh_failures = 0;
                let interval = self.session_refresh_interval(info.refresh_timeout_secs * 1000);
                if let Some(s) = self.session.as_mut() {
                    // The token changes on every aaaRefresh: adopt it everywhere at once.
                    s.token = info.token;
                    if let Some(u) = info.url_token {
                        s.url_token = Some(u);
                    }
                    s.refresh_timeout_ms = info.refresh_timeout_secs * 1000;
                    s.info.refresh_timeout_secs = info.refresh_timeout_secs;
                    s.refresh_at = now + interval;
                }
                self.epoch += 1;
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::SessionExpired => {
                if p.epoch < self.epoch {
                    self.retry_session_refresh(now);
                } else {
                    self.session_expired(now, d.into());
                }
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::Throttled => {
                self.throttle(now);
                self.retry_session_refresh(now);
                self.events.push_back(Event::Error(d.into()));
            }
            Err(e) => {
                self.events.push_back(Event::Error(e.into()));
                self.retry_session_refresh(now);
            }
        }
    }

    /// Retry an `aaaRefresh` with backoff, always well before the idle timeout runs out.
    fn retry_session_refresh(&mut self, now: u64) {
        self.session_refresh_failures += 1;
        let n = self.session_refresh_failures;
        let d = self
            .backoff(n + 1)
            .max(self.throttle_until.saturating_sub(now));
        if let Some(s) = self.session.as_mut() {
            let bound = (s.refresh_timeout_ms / 8).max(1_000);
            s.refresh_at = now + d.clamp(500, bound);
        }
    }

    fn retry_subscribe(&mut self, h: SubHandle, now: u64, err: EngineError) {
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        s.retries += 1;
        // Throttling, 5xx and lost requests are transient: retry for as long as it takes.
        // Only answers we cannot read at all give up after a while.
        let unreadable = matches!(err, EngineError::Malformed(_));
        if unreadable && s.retries > MAX_SUBSCRIBE_RETRIES {
            self.fail_sub(h, err);
            return;
        }
        let n = s.retries;
        s.state = SubState::Pending;
        let d = self
            .backoff(n + 1)
            .max(self.throttle_until.saturating_sub(now));
        let s = self.subs.get_mut(&h).unwrap();
        let at = now + d.max(100);
        s.retry_at = Some(at);
        self.sub_retry.insert((at, h));
    }

    fn on_subscribe(
        &mut self,
        p: Pending,
        h: SubHandle,
        timeout: Option<u32>,
        r: Result<crate::protocol::QueryResponse, ResponseError>,
        now: u64,
    ) {
        let req_ok = self
            .subs
            .get(&h)
            .map(|s| s.state == SubState::Subscribing)
            .unwrap_or(false);
        if !req_ok {
            return;
        }
        self.subscribe_inflight = self.subscribe_inflight.saturating_sub(1);
        if let Some(s) = self.subs.get_mut(&h) {
            s.req = None;
            s.state = SubState::Pending;
        }
        match r {
            Ok(resp) => {
                let Some(id) = resp.subscription_id else {
                    self.fail_sub(
                        h,
                        MalformedError {
                            what: "subscribe response",
                            detail: "no subscriptionId".to_owned(),
                        }
                        .into(),
                    );
                    return;
                };
                self.attempt = 0;
                self.throttle_count = 0;
                if self.degraded == Some(DegradedReason::Throttled) {
                    self.degraded = None;
                }
                self.subscribed(h, id, resp.mos, timeout, p.sent_at, now);
            }
            Err(ResponseError::Device(d)) => match d.kind {
                ErrorKind::SocketNotFound => {
                    self.events.push_back(Event::Error(d.into()));
                    // 405: the device has no socket for this session. Rebuild socket and every
                    // subscription; a repeat makes the next attempt log in again.
                    let relogin = self.attempt > 0;
                    self.rebuild(now, GapReason::SocketRebuilt, relogin);
                }
                ErrorKind::SessionExpired => {
                    if p.epoch < self.epoch {
                        self.queue_subscribe(h);
                    } else {
                        self.session_expired(now, d.into());
                    }
                }
                ErrorKind::Throttled => {
                    self.throttle(now);
                    self.retry_subscribe(h, now, d.into());
                }
                ErrorKind::UnknownClass | ErrorKind::ResultTooBig | ErrorKind::AuthRejected => {
                    self.fail_sub(h, d.into())
                }
                _ if d.http_status == 400 && timeout.is_some() => {
                    // Releases before 3.2(3) refuse `refresh-timeout` with a 400: fall back to
                    // the default lifetime for this and every later subscribe.
                    self.refresh_timeout_supported = false;
                    self.queue_subscribe(h);
                }
                _ if (400..500).contains(&d.http_status) => self.fail_sub(h, d.into()),
                _ => self.retry_subscribe(h, now, d.into()),
            },
            Err(ResponseError::Malformed(m)) => self.retry_subscribe(h, now, m.into()),
        }
        self.check_rotation_done();
    }

    /// A subscribe succeeded: gap (if the stream was interrupted), new id, snapshot,
    /// reconciliation, then any pushes that arrived for the new id before its answer.
    fn subscribed(
        &mut self,
        h: SubHandle,
        id: String,
        snapshot: Vec<Mo>,
        timeout: Option<u32>,
        sent_at: u64,
        now: u64,
    ) {
        let Some(refresh_url) = subscription_refresh_path(&id).map(|p| self.base().http(&p)) else {
            // An id that is not a decimal string could never be refreshed.
            self.fail_sub(
                h,
                MalformedError {
                    what: "subscribe response",
                    detail: "subscriptionId is not a decimal id".to_owned(),
                }
                .into(),
            );
            return;
        };
        let lifetime_ms =
            u64::from(timeout.unwrap_or(self.cfg.flavor.default_lifetime_secs())) * 1000;
        let interval = self.refresh_interval(lifetime_ms);
        let reason = self.subs[&h].reason;
        self.gap(h, reason);
        let s = self.subs.get_mut(&h).unwrap();
        s.refresh_url = Some(refresh_url);
        if let Some(old) = s.old_id.take() {
            self.ids.remove(&old);
        }
        if let Some(old) = s.device_id.take() {
            self.ids.remove(&old);
        }
        self.ids.insert(id.clone(), h);
        s.device_id = Some(id.clone());
        s.state = SubState::Active;
        s.lifetime_ms = lifetime_ms;
        // The device's clock for this subscription started no earlier than our send.
        s.expires_at = sent_at + lifetime_ms;
        s.retries = 0;
        let first = !s.ever;
        s.ever = true;
        s.in_gap = false;
        s.reason = GapReason::Reconnect;
        if let Some(o) = s.overlap.as_mut() {
            o.until = Some(now + OVERLAP_GRACE_MS);
        }
        let pull = s.opts.pull;
        let diffs = match s.store.as_mut() {
            Some(store) => reconcile(store, &snapshot, first),
            None => Vec::new(),
        };
        if !first && pull && s.store.is_none() {
            // A pull consumer sees the new snapshot in its queue, after the gap.
            let mos = snapshot.clone();
            s.counters.mos += mos.len() as u64;
            self.route(h, true, Pulled::Mos { handle: h, mos });
        }
        self.schedule_refresh(h, sent_at + interval);
        self.events.push_back(Event::Subscribed {
            handle: h,
            subscription_id: id.clone(),
            initial: snapshot,
        });
        self.answer_refreshes(h, Ok(()));
        if !diffs.is_empty() {
            if let Some(s) = self.subs.get_mut(&h) {
                s.counters.mos += diffs.len() as u64;
            }
            self.route(
                h,
                pull,
                Pulled::Mos {
                    handle: h,
                    mos: diffs,
                },
            );
        }
        self.replay_early(h, &id, now);
    }

    fn on_refresh(&mut self, p: Pending, h: SubHandle, r: Result<(), ResponseError>, now: u64) {
        let heartbeat = matches!(
            p.req,
            Req::Refresh {
                heartbeat: true,
                ..
            }
        );
        if heartbeat {
            self.heartbeat_out = false;
        }
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        if s.state != SubState::Active {
            return;
        }
        s.req = None;
        let outcome = r.clone().map_err(EngineError::from);
        self.refresh_outcome(h, outcome);
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        match r {
            Ok(()) => {
                s.expires_at = p.sent_at + s.lifetime_ms;
                let lifetime = s.lifetime_ms;
                self.throttle_count = 0;
                if self.degraded == Some(DegradedReason::Throttled) && now >= self.throttle_until {
                    self.degraded = None;
                }
                let interval = self.refresh_interval(lifetime);
                self.schedule_refresh(h, p.sent_at + interval);
            }
            Err(ResponseError::Device(d)) => {
                match d.kind {
                    ErrorKind::SessionExpired => {
                        if p.epoch < self.epoch {
                            self.make_ready(h);
                        } else {
                            self.session_expired(now, d.into());
                        }
                    }
                    ErrorKind::SocketNotFound => {
                        self.events.push_back(Event::Error(d.into()));
                        self.rebuild(now, GapReason::SocketRebuilt, false);
                    }
                    ErrorKind::Throttled => {
                        self.throttle(now);
                        self.make_ready(h);
                    }
                    _ if d.http_status == 400 => {
                        // The subscription lapsed (or the device forgot it): resubscribe this
                        // one; if the socket is gone too, the subscribe's 405 escalates.
                        s.counters.expiries += 1;
                        self.detach(h, true);
                        self.gap(h, GapReason::Expired);
                        self.events.push_back(Event::Error(d.into()));
                        let s = self.subs.get_mut(&h).unwrap();
                        s.state = SubState::Pending;
                        s.reason = GapReason::Expired;
                        self.queue_subscribe(h);
                    }
                    _ => {
                        let left = s.expires_at.saturating_sub(now);
                        let at = now + (left / 3).min(self.cfg.backoff_base_ms * 2);
                        self.events.push_back(Event::Error(d.into()));
                        self.schedule_refresh(h, at);
                    }
                }
            }
            Err(ResponseError::Malformed(m)) => {
                let left = s.expires_at.saturating_sub(now);
                let at = now + (left / 3).min(self.cfg.backoff_base_ms * 2);
                self.events.push_back(Event::Error(m.into()));
                self.schedule_refresh(h, at);
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Delivery

    /// One parsed frame to every subscription it names, once each.
    fn fan_out(&mut self, ids: Vec<String>, mos: Vec<Mo>, now: u64) {
        let mos = dedup_frame(mos);
        self.fan_out_slice(ids, mos, true, now);
    }

    /// One slice of a frame (de-duplicated already) to every subscription it names; `count`
    /// counts the frame (once per frame, however many slices it has).
    fn fan_out_slice(&mut self, ids: Vec<String>, mos: Vec<Mo>, count: bool, now: u64) {
        let mut targets: Vec<(SubHandle, bool)> = Vec::with_capacity(ids.len());
        let mut unknown: Vec<String> = Vec::new();
        for id in ids {
            match self.ids.get(&id) {
                Some(&h) => {
                    if !targets.iter().any(|(t, _)| *t == h) {
                        let via_old = self.subs.get(&h).and_then(|s| s.old_id.as_deref())
                            == Some(id.as_str());
                        targets.push((h, via_old));
                    }
                }
                None => unknown.push(id),
            }
        }
        if !unknown.is_empty() {
            if self.subscribe_inflight > 0 {
                // Perhaps the answer naming this id is still on its way: keep it briefly.
                if self.early.len() >= EARLY_FRAME_LIMIT {
                    self.early.pop_front();
                    self.stats.unknown_id_frames += 1;
                }
                self.early.push_back(Early {
                    at: now,
                    ids: unknown,
                    mos: mos.clone(),
                });
            } else {
                self.stats.unknown_id_frames += 1;
            }
        }
        let n = targets.len();
        let mut mos = Some(mos);
        for (i, (h, via_old)) in targets.into_iter().enumerate() {
            let batch = if i + 1 == n {
                mos.take().unwrap_or_default()
            } else {
                mos.as_ref().cloned().unwrap_or_default()
            };
            self.deliver(h, batch, via_old, count, now);
        }
    }

    /// Delivers pushes to one subscription: overlap de-duplication, store merge, routing.
    /// `count`: this delivery counts a frame (the first slice of a sliced frame does).
    fn deliver(&mut self, h: SubHandle, mut mos: Vec<Mo>, via_old: bool, count: bool, now: u64) {
        let Some(s) = self.subs.get_mut(&h) else {
            return;
        };
        if count {
            s.counters.frames += 1;
        }
        if s.in_gap || s.state == SubState::Failed {
            s.counters.drops += mos.len() as u64;
            return;
        }
        let before = mos.len();
        if let Some(o) = s.overlap.as_mut() {
            match o.until {
                None if via_old => {
                    for m in &mos {
                        if o.seen.len() < OVERLAP_LIMIT {
                            o.seen.insert(fingerprint(m));
                        }
                    }
                }
                Some(until) if until > now && !via_old => {
                    mos.retain(|m| !o.seen.remove(&fingerprint(m)));
                }
                Some(until) if until <= now => s.overlap = None,
                _ => {}
            }
        }
        let out = match s.store.as_mut() {
            None => mos,
            Some(store) => {
                let mut out = Vec::with_capacity(mos.len());
                for m in mos {
                    // A delete push is sparse: deliver the last full object instead.
                    let last = if m.status == Status::Deleted {
                        store.get(&m.dn).cloned()
                    } else {
                        None
                    };
                    match store.apply(&m) {
                        crate::protocol::Applied::Inserted => {
                            let mut full = store.get(&m.dn).cloned().unwrap_or(m);
                            full.status = Status::Created;
                            out.push(full);
                        }
                        crate::protocol::Applied::Updated(_) => {
                            if let Some(full) = store.get(&m.dn) {
                                let mut full = full.clone();
                                full.status = if m.status == Status::Created {
                                    Status::Created
                                } else {
                                    Status::Modified
                                };
                                out.push(full);
                            }
                        }
                        crate::protocol::Applied::Removed => {
                            let mut gone = last.unwrap_or(m);
                            gone.status = Status::Deleted;
                            out.push(gone);
                        }
                        crate::protocol::Applied::Unchanged => {}
                    }
                }
                out
            }
        };
        s.counters.drops += (before - out.len().min(before)) as u64;
        if out.is_empty() {
            return;
        }
        s.counters.mos += out.len() as u64;
        let pull = s.opts.pull;
        self.route(
            h,
            pull,
            Pulled::Mos {
                handle: h,
                mos: out,
            },
        );
    }

    fn replay_early(&mut self, h: SubHandle, id: &str, now: u64) {
        if self.early.is_empty() {
            return;
        }
        let mut batches = Vec::new();
        for e in self.early.iter_mut() {
            if let Some(pos) = e.ids.iter().position(|x| x == id) {
                e.ids.remove(pos);
                batches.push(if e.ids.is_empty() {
                    std::mem::take(&mut e.mos)
                } else {
                    e.mos.clone()
                });
            }
        }
        self.early.retain(|e| !e.ids.is_empty());
        if batches.is_empty() {
            return;
        }
        // A push for the new id describes a change made after the subscription existed, so at
        // or after its snapshot: apply them all, in order. (Comparing `modTs` is no test:
        // many classes answer `modTs: "never"`, and a later push would have been dropped.)
        for b in batches {
            self.deliver(h, b, false, true, now);
        }
    }

    // ----------------------------------------------------------------------------------------
    // The timer-driven heart

    fn compute_timeout(&self) -> Option<u64> {
        if matches!(self.conn, Conn::Closed | Conn::Failed(_)) {
            return None;
        }
        let mut t: Option<u64> = None;
        let mut at = |x: u64| t = Some(t.map_or(x, |y| y.min(x)));
        if let Some((d, _)) = self.deadlines.front() {
            at(*d);
        }
        if self.conn == Conn::LoggingOut {
            return t;
        }
        if let Some(s) = &self.sock {
            if !s.open {
                at(s.deadline);
            }
        }
        if let Conn::Waiting { at: w } = self.conn {
            at(w);
        }
        if let Some(s) = &self.session {
            if self.session_refresh_req.is_none() && !self.session_suspect {
                at(s.refresh_at);
            }
            if self.conn == Conn::Up && !self.rotating {
                if let Some(r) = s.rotate_at {
                    at(r);
                }
            }
        }
        if let Some((r, _)) = self.sub_retry.first() {
            at(*r);
        }
        if let Some((r, _)) = self.refresh_sched.first() {
            at(*r);
        }
        if self.socket_up() && !self.refresh_ready.is_empty() {
            at(self.next_refresh_slot.max(self.throttle_until));
        }
        if self.socket_up() && !self.heartbeat_out && !self.refresh_sched.is_empty() {
            at(self.last_heard + self.cfg.heartbeat_idle_ms);
        }
        if self.degraded == Some(DegradedReason::Throttled) {
            at(self.throttle_until);
        }
        if let Some(e) = self.early.front() {
            at(e.at + self.cfg.request_timeout_ms);
        }
        t
    }

    fn drive(&mut self, now: u64) {
        if matches!(self.conn, Conn::Closed | Conn::Failed(_)) {
            self.update_state();
            return;
        }
        // Requests the shell never answered.
        while let Some(&(t, id)) = self.deadlines.front() {
            if t > now {
                break;
            }
            self.deadlines.pop_front();
            if self.pending.contains_key(&id) {
                self.actions.push_back(Action::CancelHttp(id));
                self.on_http_failure(id, TransportFailure::Timeout, now);
            }
            if self.is_terminal() {
                self.update_state();
                return;
            }
        }
        if self.conn == Conn::LoggingOut {
            return;
        }
        // A socket that never opens.
        if let Some(s) = &self.sock {
            if !s.open && now >= s.deadline {
                let id = s.id;
                self.actions.push_back(Action::CloseSocket { id });
                self.on_socket_closed(id, now);
            }
        }
        if self.is_terminal() {
            self.update_state();
            return;
        }
        if let Conn::Waiting { at } = self.conn {
            if at <= now {
                self.start_attempt(now);
            }
        }
        // Session keepalive, also while reconnecting: the session outlives a dead socket.
        let due = self
            .session
            .as_ref()
            .map(|s| s.refresh_at <= now)
            .unwrap_or(false);
        if due && self.session_refresh_req.is_none() && !self.session_suspect {
            let id = self.send(
                now,
                Method::Get,
                REFRESH_SESSION_PATH,
                None,
                Req::SessionRefresh { heartbeat: false },
                true,
            );
            self.session_refresh_req = Some(id);
        }
        // Make-before-break rotation.
        let rotate_due = self
            .session
            .as_ref()
            .and_then(|s| s.rotate_at)
            .map(|r| r <= now)
            .unwrap_or(false);
        if rotate_due && self.socket_up() && !self.rotating {
            if let Auth::Password { user, password } = &self.cfg.auth {
                let body = login_body(user, password);
                let path = login_path(self.cfg.gui_token);
                self.rotating = true;
                if let Some(s) = self.session.as_mut() {
                    s.rotate_at = None;
                }
                self.send(
                    now,
                    Method::Post,
                    path,
                    Some(body),
                    Req::Login { rotate: true },
                    false,
                );
            }
        }
        // Subscribe retries whose time has come.
        while let Some(&(t, h)) = self.sub_retry.first() {
            if t > now {
                break;
            }
            self.sub_retry.remove(&(t, h));
            if let Some(s) = self.subs.get_mut(&h) {
                s.retry_at = None;
            }
            self.queue_subscribe(h);
        }
        // Due refreshes join the ready set, most urgent first.
        while let Some(&(t, h)) = self.refresh_sched.first() {
            if t > now {
                break;
            }
            self.make_ready(h);
        }
        if self.socket_up() {
            self.pump_subscribes(now);
            self.pump_refreshes(now);
            if !self.heartbeat_out
                && now >= self.last_heard + self.cfg.heartbeat_idle_ms
                && !self.refresh_sched.is_empty()
            {
                self.send_heartbeat(now, false);
                self.pump_refreshes(now);
            }
        }
        // A throttling pause that has run out no longer degrades the connection.
        if self.degraded == Some(DegradedReason::Throttled) && now >= self.throttle_until {
            self.degraded = None;
        }
        // Early frames nobody claimed.
        while let Some(e) = self.early.front() {
            if e.at + self.cfg.request_timeout_ms > now && self.subscribe_inflight > 0 {
                break;
            }
            self.early.pop_front();
            self.stats.unknown_id_frames += 1;
        }
        self.update_state();
    }

    fn pump_subscribes(&mut self, now: u64) {
        if self.now_throttled(now) {
            return;
        }
        while self.subscribe_inflight < self.cfg.max_inflight_subscribes.max(1) {
            let Some((h, ())) = self.to_subscribe.pop_first() else {
                break;
            };
            let Some(s) = self.subs.get_mut(&h) else {
                continue;
            };
            s.queued = false;
            if s.state == SubState::Failed || s.req.is_some() {
                continue;
            }
            let timeout = if s.opts.no_refresh_timeout || !self.refresh_timeout_supported {
                None
            } else {
                s.opts.refresh_timeout.or(self.cfg.default_refresh_timeout)
            };
            let mut q = s.query.clone();
            q.options.refresh_timeout = timeout;
            let path = match q.render() {
                Ok(p) => p,
                Err(e) => {
                    self.fail_sub(h, e.into());
                    continue;
                }
            };
            if s.old_id.is_some() && s.store.is_none() {
                s.overlap = Some(Overlap {
                    seen: HashSet::new(),
                    until: None,
                });
            }
            self.stats.subscribe_requests += 1;
            let id = self.send(
                now,
                Method::Get,
                &path,
                None,
                Req::Subscribe { handle: h, timeout },
                true,
            );
            let s = self.subs.get_mut(&h).unwrap();
            s.req = Some(id);
            s.state = SubState::Subscribing;
            self.subscribe_inflight += 1;
        }
    }

    fn now_throttled(&self, now: u64) -> bool {
        now < self.throttle_until
    }

    /// Sends due refreshes no faster than `refresh_rate_cap` per second: strictly spaced, so no
    /// one-second window ever holds more than the cap, however many subscriptions are due.
    fn pump_refreshes(&mut self, now: u64) {
        let spacing = self.spacing();
        while let Some(&(k, h)) = self.refresh_ready.first() {
            if now < self.next_refresh_slot || self.now_throttled(now) {
                break;
            }
            self.refresh_ready.remove(&(k, h));
            let Some(s) = self.subs.get_mut(&h) else {
                continue;
            };
            s.ready_key = None;
            let heartbeat = std::mem::take(&mut s.heartbeat);
            if s.state != SubState::Active || s.req.is_some() {
                continue;
            }
            let Some(url) = s.refresh_url.clone() else {
                continue;
            };
            self.stats.refresh_requests += 1;
            let id = self.send_to(
                now,
                Method::Get,
                url,
                None,
                Req::Refresh {
                    handle: h,
                    heartbeat,
                },
                true,
            );
            if let Some(s) = self.subs.get_mut(&h) {
                s.req = Some(id);
            }
            self.next_refresh_slot = now + spacing.max(1);
        }
    }

    fn compute_state(&self) -> ConnectionState {
        match &self.conn {
            Conn::Closed => ConnectionState::Closed,
            Conn::LoggingOut => self.state.clone(),
            Conn::Failed(e) => ConnectionState::Failed { reason: e.clone() },
            Conn::Waiting { at } => ConnectionState::Reconnecting {
                attempt: self.attempt,
                next_at: *at,
            },
            Conn::Attempt => {
                if self.attempt == 0 && !self.ever_live {
                    ConnectionState::Connecting
                } else {
                    ConnectionState::Reconnecting {
                        attempt: self.attempt,
                        next_at: self.attempt_started,
                    }
                }
            }
            Conn::Up => {
                if self.offline {
                    ConnectionState::Degraded {
                        reason: DegradedReason::Offline,
                    }
                } else if let Some(r) = self.degraded {
                    ConnectionState::Degraded { reason: r }
                } else {
                    ConnectionState::Live
                }
            }
        }
    }

    fn update_state(&mut self) {
        let s = self.compute_state();
        if s != self.state {
            self.state = s.clone();
            self.events.push_back(Event::State(s));
        }
    }
}

/// Store mode after a (re)subscribe: the first snapshot fills the store (the consumer has it as
/// `Subscribed.initial`); a later one is diffed against what was held and the differences are
/// returned as full objects with status `Created`, `Modified` or `Deleted`.
fn reconcile(store: &mut Store, snapshot: &[Mo], first: bool) -> Vec<Mo> {
    let mut held = store.take();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for top in snapshot {
        top.walk(&mut |m: &Mo| {
            let mut flat = m.clone();
            flat.children.clear();
            store.apply(&flat);
            if first || !seen.insert(m.dn.clone()) {
                return;
            }
            match held.remove(&m.dn) {
                None => {
                    flat.status = Status::Created;
                    out.push(flat);
                }
                Some(old) => {
                    if !same_content(&old.attributes, &flat.attributes)
                        || old.class_name != flat.class_name
                    {
                        flat.status = Status::Modified;
                        out.push(flat);
                    }
                }
            }
        });
    }
    if !first {
        for (_, mut old) in held {
            old.status = Status::Deleted;
            out.push(old);
        }
    }
    out
}

/// Attributes that say when or how an object was last written, not what it is: a difference in
/// them alone is no change to report after a gap.
const BOOKKEEPING: [&str; 3] = ["modTs", "childAction", "rn"];

fn same_content(a: &Attributes, b: &Attributes) -> bool {
    fn content(m: &Attributes) -> impl Iterator<Item = (&String, &String)> {
        m.iter().filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
    }
    a == b || content(a).eq(content(b))
}

/// Drops exact repeats of an object within one frame (the device sometimes sends one twice).
fn dedup_frame(mos: Vec<Mo>) -> Vec<Mo> {
    if mos.len() < 2 {
        return mos;
    }
    if mos.len() <= 16 {
        let mut out: Vec<Mo> = Vec::with_capacity(mos.len());
        for m in mos {
            if !out.iter().any(|o| o == &m) {
                out.push(m);
            }
        }
        return out;
    }
    let mut seen = HashSet::with_capacity(mos.len());
    mos.into_iter()
        .filter(|m| seen.insert(fingerprint(m)))
        .collect()
}

/// A content hash of one object (class, dn, status, attributes). `DefaultHasher::new` uses fixed
/// keys, so this is deterministic.
fn fingerprint(m: &Mo) -> u64 {
    let mut h = DefaultHasher::new();
    m.class_name.hash(&mut h);
    m.dn.hash(&mut h);
    m.status.as_str().hash(&mut h);
    for (k, v) in &m.attributes {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}
