//! The whole client as a sans-IO state machine.
//!
//! The engine never touches a socket, a clock or a timer, so that every decision it makes can be
//! tested natively with simulated time: a day of session life runs in milliseconds (see
//! `tests/engine/`). The shell (`src/web/`, or a test) feeds it inputs with the current time,
//! performs the [`Action`]s it asks for, reports what came back, reads [`Event`]s, and wakes it
//! at [`Engine::poll_timeout`]:
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
//! `now` is milliseconds of a monotonic clock; it never has to start at 0.
//!
//! Events for one subscription come in this order: `Subscribed` (with the snapshot), then
//! `Deliver`s; on any disruption exactly one `Gap`, then (after the resubscribe) `Subscribed` with
//! the new id and, in store mode, one `Deliver` with the reconciliation; then `Deliver`s again.
//! No data arrives between a gap and the next `Subscribed`, so a consumer can always treat what
//! follows a gap as the truth. The one resubscribe without a gap is a planned session rotation's
//! move, which is no disruption: it sends no `Subscribed` either, only (in store mode) a
//! `Deliver` of the real differences, if any.
//!
//! This file holds the public surface only: each input enters (clock checks), hands the work to
//! the part that owns it, and ends in `timer`'s `drive`, which runs whatever became due. Each
//! part owns its state, its deadlines and what happens when they fire: `conn` (attempts,
//! sockets, rebuild), `session` (token, keepalive, rotation), `subs` (phases and their indexes),
//! `subscribe` (subscribe requests and answers), `refresh` (refresh answers), `pacing` (rate
//! cap, throttling), `delivery` (frames to consumers), `health` (silence, clocks, "degraded"),
//! `requests`, `calls` (the application's queries and writes on the session), and the pure
//! `reconcile`.

mod calls;
mod config;
mod conn;
mod delivery;
mod error;
mod health;
mod pacing;
mod reconcile;
mod refresh;
mod requests;
mod rng;
mod session;
mod subs;
mod subscribe;
mod timer;
mod types;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::VecDeque;

use crate::protocol::{BaseUrl, Query, QueryResponse, Store};

pub use config::{Auth, Config, Flavor, TokenTransport};
pub use error::{EngineError, SocketFailure, TransportFailure};
pub use timer::Timer;
pub use types::{
    Action, CallHandle, CallRequest, ConnectionState, Counters, DegradedReason, Event, GapReason,
    HttpRequest, Method, PerSubscription, Pulled, RequestId, SessionInfo, SocketId, Stats,
    SubHandle, SubOptions, SubState, SubscriptionInfo,
};

use calls::Calls;
use conn::{Conn, Connection};
use delivery::Delivery;
use health::Health;
use pacing::Pacing;
use requests::Requests;
use rng::Rng;
use session::{Session, SessionState};
use subs::{Phase, Refresh, Subs};

/// The client state machine. See the module documentation.
pub struct Engine {
    cfg: Config,
    rng: Rng,
    /// The source of request and socket ids.
    next_id: u64,
    last_now: u64,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    stats: Stats,
    /// The next timer as the last `drive` left it, until an input enters again: the shell asks
    /// after every event, also after the many that never reach the engine.
    next_wake: Option<Option<(Timer, u64)>>,

    conn: Connection,
    session: SessionState,
    requests: Requests,
    subs: Subs,
    pacing: Pacing,
    health: Health,
    delivery: Delivery,
    calls: Calls,
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
            next_id: 1,
            last_now: now,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_wake: None,
            conn: Connection::new(now),
            session: SessionState::new(),
            requests: Requests::default(),
            subs: Subs::new(),
            pacing: Pacing::default(),
            health: Health::new(now),
            delivery: Delivery::default(),
            calls: Calls::default(),
        };
        if e.cfg.urls.is_empty() {
            e.conn.conn = Conn::Failed(EngineError::InvalidConfig("no controller URL"));
            e.update_state();
            return e;
        }
        if let Auth::Token {
            token, url_token, ..
        } = &e.cfg.auth
        {
            // An adopted token is used as is until aaaRefresh proves it (and tells the timers).
            e.session.current = Some(Session {
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
            e.session.suspect = true;
            e.session.epoch = 1;
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
        self.pop_pulled()
    }

    /// Entries waiting in the pull queue (not counting pending overflow gaps).
    pub fn pulled_len(&self) -> usize {
        self.delivery.pull.len()
    }

    /// The earliest time at which [`Engine::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        let t = self.next_timer().map(|(_, at)| at);
        self.health.expected_wake = t;
        t
    }

    /// Which timer is due next, and when: what [`Engine::poll_timeout`] returns, named.
    #[doc(hidden)]
    pub fn next_timer(&self) -> Option<(Timer, u64)> {
        self.next_wake.unwrap_or_else(|| self.next_timer_at())
    }

    /// Whether the engine still waits for the answer to this request. After the engine stops,
    /// only the logout of a session it gave up is still awaited: the shell lets that one finish
    /// instead of aborting it.
    pub fn awaits(&self, req: RequestId) -> bool {
        self.requests.pending.contains_key(&req)
    }

    /// The current connection state (also reported as [`Event::State`] on every change).
    pub fn state(&self) -> &ConnectionState {
        &self.conn.state
    }

    /// Facts of the current session, without the token.
    pub fn session_info(&self) -> Option<&SessionInfo> {
        self.session.current.as_ref().map(|s| &s.info)
    }

    /// The controller currently in use.
    pub fn current_url(&self) -> &BaseUrl {
        self.base()
    }

    /// Totals and per-subscription counters.
    pub fn stats(&self) -> Stats {
        let mut st = self.stats.clone();
        let mut total = self.subs.retired;
        let mut per = Vec::with_capacity(self.subs.map.len());
        for (h, s) in self.subs.map.iter() {
            total.add(&s.counters);
            per.push((*h, s.counters));
        }
        st.per_subscription = PerSubscription::from_sorted(per);
        st.total = total;
        st
    }

    pub fn subscription_info(&self, handle: SubHandle) -> Option<SubscriptionInfo> {
        let s = self.subs.map.get(&handle)?;
        let (subscription_id, next_refresh_at, expires_at) = match &s.phase {
            Phase::Active { id, refresh, .. } => {
                let next = match refresh {
                    Refresh::Planned(t) => Some(*t),
                    Refresh::Ready { .. } => Some(self.last_now),
                    Refresh::Stopped | Refresh::InFlight(_) => None,
                };
                (Some(id.clone()), next, Some(s.expires_at))
            }
            // Moving to a new session: the old id still delivers until the new one answers.
            Phase::Pending {
                resume: subs::Resume::Move,
                ..
            } => (s.old_id.clone(), None, Some(s.expires_at)),
            _ => (None, None, None),
        };
        Some(SubscriptionInfo {
            handle,
            subscription_id,
            state: s.phase.state(),
            next_refresh_at,
            expires_at,
            lifetime_secs: (s.lifetime_ms / 1000) as u32,
            counters: s.counters,
        })
    }

    /// Every handle the engine tracks, in order.
    pub fn handles(&self) -> Vec<SubHandle> {
        self.subs.map.keys().copied().collect()
    }

    /// For leak tests: the allocated length of every collection whose size depends on the
    /// subscriptions and requests the engine ever had, by name. Each must stay proportional to
    /// what is open now, not to what ever existed.
    #[doc(hidden)]
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("subs", self.subs.map.capacity()),
            ("ids", self.subs.ids.len()),
            ("pending", self.requests.pending.len()),
            ("deadlines", self.requests.deadlines.len()),
            ("to_subscribe", self.subs.queue.len()),
            ("sub_retry", self.subs.retries.len()),
            ("refresh_sched", self.pacing.calendar.len()),
            ("refresh_ready", self.pacing.ready.len()),
            ("pull_overflow", self.delivery.pull_overflow.len()),
            ("early", self.delivery.early.len()),
            ("inbox", self.delivery.inbox.len()),
            ("actions", self.actions.len()),
            ("events", self.events.len()),
            ("calls", self.calls.len()),
        ]
    }

    /// The objects held for a store-mode subscription.
    pub fn store(&self, handle: SubHandle) -> Option<&Store> {
        self.subs.map.get(&handle)?.store.as_ref()
    }

    // ----------------------------------------------------------------------------------------
    // User commands

    /// Subscribes to a query. The subscribe is sent once the socket is open (and paced with
    /// other subscribes); the outcome is [`Event::Subscribed`] or [`Event::SubscribeFailed`].
    pub fn subscribe(&mut self, query: Query, opts: SubOptions, now: u64) -> SubHandle {
        let now = self.enter(now);
        let (handle, sendable) = self.add_sub(query, opts);
        if sendable {
            self.drive(now);
        }
        handle
    }

    /// Refreshes one subscription now (within the rate cap). Each call is answered by exactly
    /// one [`Event::Refreshed`].
    pub fn refresh(&mut self, handle: SubHandle, now: u64) {
        let now = self.enter(now);
        self.request_refresh(handle);
        self.drive(now);
    }

    /// Forgets a subscription: no more refreshes (the device lets it lapse, §5), late pushes for
    /// its id are dropped. Returns false for an unknown handle.
    pub fn unsubscribe(&mut self, handle: SubHandle, now: u64) -> bool {
        let now = self.enter(now);
        if !self.remove_sub(handle) {
            return false;
        }
        self.drive(now);
        true
    }

    /// Runs a query or write on this engine's session: with the current token, on the controller
    /// in use, through a token refresh, one re-login, throttling and failover, within its
    /// deadline. Answered by exactly one [`Event::Answered`] with the returned handle (at once
    /// when the engine has stopped). The path must be one the protocol layer built.
    pub fn call(&mut self, req: CallRequest, now: u64) -> CallHandle {
        let now = self.enter(now);
        let h = self.start_call(req, now);
        self.drive(now);
        h
    }

    /// Abandons a call: its request is cancelled and it is answered `ABORTED`. False when it was
    /// answered already.
    pub fn cancel_call(&mut self, call: CallHandle, now: u64) -> bool {
        let now = self.enter(now);
        let found = self.abort_call(call);
        self.drive(now);
        found
    }

    /// Logs out (`aaaLogout`), closes the socket and stops. Ends with [`Event::LoggedOut`] and
    /// [`Event::Closed`].
    pub fn logout(&mut self, now: u64) {
        let now = self.enter(now);
        if matches!(self.conn.conn, Conn::Closed | Conn::LoggingOut) {
            return;
        }
        if self.session.current.is_none() || matches!(self.conn.conn, Conn::Failed(_)) {
            self.events.push_back(Event::LoggedOut);
            self.close(now);
            return;
        }
        self.begin_logout(now);
    }

    /// Stops everything at once: cancels requests, closes sockets, reports [`Event::Closed`].
    pub fn close(&mut self, now: u64) {
        self.enter(now);
        if self.conn.conn == Conn::Closed {
            return;
        }
        self.shutdown(EngineError::Closed);
        self.conn.conn = Conn::Closed;
        self.update_state();
        self.events.push_back(Event::Closed);
    }

    // ----------------------------------------------------------------------------------------
    // I/O inputs

    pub fn handle_http_response(&mut self, req: RequestId, status: u16, body: String, now: u64) {
        let now = self.enter(now);
        if self.on_answer(req, status, body, now) {
            self.drive(now);
        }
    }

    pub fn handle_http_failure(&mut self, req: RequestId, reason: TransportFailure, now: u64) {
        let now = self.enter(now);
        self.on_http_failure(req, reason, now);
        self.drive(now);
    }

    pub fn handle_socket_open(&mut self, sock: SocketId, now: u64) {
        let now = self.enter(now);
        if self.on_socket_open(sock, now) {
            self.drive(now);
        }
    }

    /// A text frame from the socket. A frame of more than [`Config::slice_objects`] objects (or
    /// any frame while an earlier one is still being delivered) goes to the backlog and is
    /// delivered by [`Engine::handle_backlog`], one slice per call; see [`Engine::has_backlog`].
    pub fn handle_socket_message(&mut self, sock: SocketId, text: &str, now: u64) {
        let now = self.enter(now);
        if self.on_socket_text(sock, Cow::Borrowed(text), now) {
            self.drive(now);
        }
    }

    /// As [`Engine::handle_socket_message`], taking the text: a large frame is then kept as it
    /// is instead of copied.
    pub fn handle_socket_text(&mut self, sock: SocketId, text: String, now: u64) {
        let now = self.enter(now);
        if self.on_socket_text(sock, Cow::Owned(text), now) {
            self.drive(now);
        }
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
    /// slice, see [`crate::protocol::NotificationReader`]); de-duplication across the slices of
    /// one frame; one `Error` per frame for unreadable entries. Before anything that changes
    /// which subscription an id means or starts a gap (a socket close, a subscribe answer), the
    /// backlog is delivered in full, so data received before a disruption comes before its
    /// `Gap`, as it would unsliced. A subscription closed meanwhile gets nothing more, and
    /// `close`/`logout` drop the backlog at once.
    pub fn has_backlog(&self) -> bool {
        !self.delivery.inbox.is_empty()
    }

    /// Delivers the next slice of the backlog (see [`Engine::has_backlog`]).
    pub fn handle_backlog(&mut self, now: u64) {
        let now = self.enter(now);
        if self.delivery.inbox.is_empty() {
            return;
        }
        self.work(now);
        self.drive(now);
    }

    /// The socket closed (or failed); `code` is the close code the runtime gave, if any.
    pub fn handle_socket_closed(&mut self, sock: SocketId, code: Option<u16>, now: u64) {
        let now = self.enter(now);
        // What the socket delivered before it closed comes before the gap.
        self.flush_backlog(now);
        self.on_socket_closed(sock, code, now);
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
        self.on_visibility(visible, now);
        self.drive(now);
    }

    /// Network up/down as the runtime reports it. Offline: degraded, no retry storm. Online
    /// again: retry a waiting reconnect now and verify the connection.
    pub fn handle_online(&mut self, online: bool, now: u64) {
        let now = self.enter(now);
        self.on_online(online, now);
        self.drive(now);
    }

    /// Optional wall-clock reading (ms since the epoch). A jump of the wall clock against the
    /// monotonic one means the machine slept: verify.
    pub fn handle_wall_clock(&mut self, wall_ms: u64, now: u64) {
        let now = self.enter(now);
        self.on_wall_clock(wall_ms, now);
        self.drive(now);
    }

    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}
