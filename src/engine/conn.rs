//! The connection: attempts (a login or token check, then the socket), the backoff between
//! them, failover across controllers, the rebuild after a loss, and the state the user sees.
//!
//! Every loss goes through [`Engine::rebuild`], so a disruption always means the same thing:
//! sockets closed, requests stopped, one gap per subscription, and one next attempt after a
//! backoff with full jitter (a fabric that restarts does not see every console come back in the
//! same second).

use crate::protocol::{
    logout_body, BaseUrl, ErrorKind, LoginInfo, ResponseError, LOGOUT_PATH, REFRESH_SESSION_PATH,
};

use super::requests::{Pending, Req};
use super::subs::{Phase, Resume};
use super::{
    Action, Auth, ConnectionState, Engine, EngineError, Event, GapReason, Method, SocketFailure,
    SocketId, SubState,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Conn {
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

pub(super) struct Sock {
    pub(super) id: SocketId,
    pub(super) open: bool,
    /// Give up on an opening socket after this.
    deadline: u64,
}

pub(super) struct Connection {
    pub(super) conn: Conn,
    /// What was last reported as [`Event::State`].
    pub(super) state: ConnectionState,
    /// Consecutive failed attempts.
    pub(super) attempt: u32,
    attempt_started: u64,
    ever_live: bool,
    pub(super) sock: Option<Sock>,
    /// The socket of this attempt closed before it opened, with this close code: the session
    /// check (`aaaRefresh`) on its way decides what follows.
    refused: Option<Option<u16>>,
    /// The controller in use, an index into `Config::urls`.
    url_idx: usize,
}

impl Connection {
    pub(super) fn new(now: u64) -> Connection {
        Connection {
            conn: Conn::Attempt,
            state: ConnectionState::Connecting,
            attempt: 0,
            attempt_started: now,
            ever_live: false,
            sock: None,
            refused: None,
            url_idx: 0,
        }
    }

    /// Timer: a socket that never opens.
    #[inline]
    pub(super) fn socket_open_deadline(&self) -> Option<u64> {
        self.sock.as_ref().filter(|s| !s.open).map(|s| s.deadline)
    }

    /// Timer: the next connection attempt.
    #[inline]
    pub(super) fn reconnect_at(&self) -> Option<u64> {
        match self.conn {
            Conn::Waiting { at } => Some(at),
            _ => None,
        }
    }
}

impl Engine {
    pub(super) fn base(&self) -> &BaseUrl {
        let urls = &self.cfg.urls;
        &urls[self.conn.url_idx.min(urls.len().saturating_sub(1))]
    }

    pub(super) fn is_terminal(&self) -> bool {
        matches!(
            self.conn.conn,
            Conn::Closed | Conn::Failed(_) | Conn::LoggingOut
        )
    }

    /// Why nothing more can be done, once the engine stops.
    pub(super) fn stopped_error(&self) -> Option<EngineError> {
        match &self.conn.conn {
            Conn::Failed(e) => Some(e.clone()),
            Conn::Closed | Conn::LoggingOut => Some(EngineError::Closed),
            _ => None,
        }
    }

    #[inline]
    pub(super) fn is_up(&self) -> bool {
        // A pattern, not the derived `==` (a call, since `Conn` holds an error): every input
        // asks this for several timers.
        matches!(self.conn.conn, Conn::Up)
    }

    #[inline]
    pub(super) fn socket_up(&self) -> bool {
        self.is_up() && matches!(&self.conn.sock, Some(s) if s.open)
    }

    /// Timer: the next attempt starts. It logs in (or verifies an adopted token) when there is
    /// no session to trust, else it only opens a socket.
    pub(super) fn start_attempt(&mut self, now: u64) {
        self.conn.conn = Conn::Attempt;
        self.conn.attempt_started = now;
        self.conn.refused = None;
        if self.conn.attempt > 0 {
            self.stats.reconnects += 1;
        }
        if self.session.current.is_some() && !self.session.suspect {
            self.open_socket(now);
        } else if self.discard_session(now) {
            // The login follows the logout's answer.
        } else if !self.send_login(now, false) {
            self.send_verify(now);
        }
    }

    /// Before a login replaces a session the device may still hold (one whose socket the device
    /// keeps losing, one on the controller left behind), that session is logged out: else each
    /// such login leaves one behind until its idle timeout. On the same controller the logout
    /// goes first and the login follows its answer (which may clear the cookie a login sets); to
    /// another controller both go at once. True if the login waits. Adopted sessions are their
    /// owner's and never logged out here; dead ones were dropped already.
    fn discard_session(&mut self, now: u64) -> bool {
        if !matches!(self.cfg.auth, Auth::Password { .. }) {
            return false;
        }
        let Some(old) = self.session.current.take() else {
            return false;
        };
        let same = old.info.url == self.base().to_string();
        self.log_out_session(old, same, now);
        same
    }

    /// The logout of a replaced session was answered (or failed): a login waiting for it goes.
    pub(super) fn session_discarded(&mut self, then_login: bool, now: u64) {
        if then_login && self.conn.conn == Conn::Attempt && self.session.current.is_none() {
            self.send_login(now, false);
        }
    }

    /// `aaaRefresh` proving the session before a socket is (again) opened with it.
    fn send_verify(&mut self, now: u64) {
        if let Some(r) = self.session.refresh_req.take() {
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

    pub(super) fn open_socket(&mut self, now: u64) {
        let Some(token) = self.session.current.as_ref().map(|s| s.token.clone()) else {
            return;
        };
        let id = SocketId(self.fresh());
        let url = self.base().socket(&token);
        self.conn.sock = Some(Sock {
            id,
            open: false,
            deadline: now + self.cfg.request_timeout_ms,
        });
        self.actions.push_back(Action::OpenSocket { id, url });
    }

    pub(super) fn on_login(&mut self, p: Pending, r: Result<LoginInfo, ResponseError>, now: u64) {
        match r {
            Ok(info) => {
                self.stats.logins += 1;
                if self.conn.conn != Conn::Attempt {
                    return;
                }
                let _ = self.install_session(info, p.sent_at, now);
                self.open_socket(now);
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::AuthRejected => {
                self.fail(d.into())
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::Throttled => {
                self.throttle(now);
                self.fail_attempt(now, d.into());
            }
            Err(e) => self.fail_attempt(now, e.into()),
        }
    }

    /// The answer to a session check: before the first socket of an adopted token, or after a
    /// socket that would not open. A session that answers is kept (a refused socket then waits
    /// for the next backoff step with the cause told); one the device no longer knows is
    /// replaced by one login, or ends an adopted session.
    pub(super) fn on_verify(&mut self, p: Pending, r: Result<LoginInfo, ResponseError>, now: u64) {
        if self.conn.conn != Conn::Attempt {
            return;
        }
        let refused = self.conn.refused.take();
        match r {
            Ok(info) => match refused {
                None => {
                    self.stats.token_refreshes += 1;
                    let _ = self.install_session(info, p.sent_at, now);
                    self.open_socket(now);
                }
                Some(close_code) => {
                    // The same session, checked: not a new login (its rotation stays due).
                    self.adopt_refreshed(info, now);
                    self.fail_attempt(
                        now,
                        EngineError::SocketFailed(SocketFailure {
                            close_code,
                            http_works: Some(true),
                        }),
                    );
                }
            },
            Err(ResponseError::Device(d))
                if matches!(d.kind, ErrorKind::SessionExpired | ErrorKind::AuthRejected) =>
            {
                // The device forgot the session (the likeliest reason its socket was refused):
                // with a password, this step's one login replaces it.
                if refused.is_some() && matches!(self.cfg.auth, Auth::Password { .. }) {
                    self.session.current = None;
                    self.send_login(now, false);
                    return;
                }
                self.events.push_back(Event::Error(d.into()));
                self.fail(EngineError::SessionLost);
            }
            Err(e) => self.verify_failed(now, e.into(), true),
        }
    }

    /// A session check failed (`answered`: with an answer from the device, else without one):
    /// this attempt failed, with the socket's cause if a socket was refused.
    pub(super) fn verify_failed(&mut self, now: u64, err: EngineError, answered: bool) {
        let err = match self.conn.refused.take() {
            Some(close_code) => EngineError::SocketFailed(SocketFailure {
                close_code,
                http_works: Some(answered),
            }),
            None => err,
        };
        self.fail_attempt(now, err);
    }

    /// The socket opened. Subscriptions waiting for it go in line; during a rotation, every
    /// subscription moves to the new session, its old id routing pushes from the old socket
    /// until the new subscribe answers.
    /// False for a socket that is not the one opening.
    pub(super) fn on_socket_open(&mut self, sock: SocketId, now: u64) -> bool {
        match self.conn.sock.as_mut() {
            Some(s) if s.id == sock && !s.open => s.open = true,
            _ => return false,
        }
        self.health.last_heard = now;
        let handles: Vec<_> = self.subs.map.keys().copied().collect();
        if self.session.rotation.running() {
            for h in handles {
                let resume = match self.subs.map.get(&h).map(|s| &s.phase) {
                    Some(Phase::Failed(_)) | None => continue,
                    Some(Phase::Pending {
                        resume: Resume::First,
                        ..
                    }) => Resume::First,
                    Some(Phase::Pending {
                        resume: Resume::After { gap_sent, .. },
                        ..
                    }) => Resume::After {
                        reason: GapReason::Rotation,
                        gap_sent: *gap_sent,
                    },
                    // Live ones move without a gap: the old id delivers until the new answers.
                    Some(Phase::Active { .. })
                    | Some(Phase::Pending {
                        resume: Resume::Move,
                        ..
                    }) => Resume::Move,
                };
                if let Some(Phase::Active { id, .. }) = self.make_pending(h, resume, false) {
                    if let Some(s) = self.subs.map.get_mut(&h) {
                        s.old_id = Some(id);
                    }
                }
                self.queue_subscribe(h);
            }
            self.check_rotation_done();
        } else {
            self.conn.conn = Conn::Up;
            self.conn.ever_live = true;
            let waiting: Vec<_> = handles
                .into_iter()
                .filter(|h| {
                    self.subs.map.get(h).map(|s| s.phase.state()) == Some(SubState::Pending)
                })
                .collect();
            if waiting.is_empty() {
                self.conn.attempt = 0;
            }
            for h in waiting {
                self.queue_subscribe(h);
            }
        }
        true
    }

    pub(super) fn on_socket_closed(&mut self, sock: SocketId, code: Option<u16>, now: u64) {
        if self.session.rotation.old_socket() == Some(sock) {
            self.old_socket_closed();
            return;
        }
        let was_open = match &self.conn.sock {
            Some(s) if s.id == sock => s.open,
            _ => return,
        };
        self.conn.sock = None;
        if self.is_terminal() {
            return;
        }
        if self.session.rotation.running() || was_open {
            self.rebuild(now, GapReason::Reconnect, false);
        } else {
            // Never opened. Logging in again for every refused socket leaves a session behind
            // at the device per attempt and runs into its login throttle; the session is checked
            // instead, which also tells whether the device answers at all.
            self.conn.refused = Some(code);
            self.send_verify(now);
        }
    }

    /// Timer: the socket did not open in time.
    pub(super) fn socket_open_timed_out(&mut self, now: u64) {
        if let Some(id) = self.conn.sock.as_ref().map(|s| s.id) {
            self.actions.push_back(Action::CloseSocket { id });
            self.on_socket_closed(id, None, now);
        }
    }

    /// A connection attempt failed: back off (and move to the next controller, if any).
    pub(super) fn fail_attempt(&mut self, now: u64, err: EngineError) {
        if self.is_terminal() {
            return;
        }
        if let Some(s) = self.conn.sock.take() {
            self.actions.push_back(Action::CloseSocket { id: s.id });
        }
        if self.count_attempt() {
            return;
        }
        self.events.push_back(Event::Error(err));
        if self.cfg.urls.len() > 1 {
            self.conn.url_idx = (self.conn.url_idx + 1) % self.cfg.urls.len();
            // Sessions belong to one controller: verify or log in again on the next one.
            self.session.suspect = true;
            for s in self.subs.map.values_mut() {
                if let Phase::Pending {
                    resume:
                        Resume::After {
                            reason,
                            gap_sent: false,
                        },
                    ..
                } = &mut s.phase
                {
                    *reason = GapReason::Failover;
                }
            }
        }
        self.wait_for_next_attempt(now);
    }

    /// Counts a failed attempt; true if that reached the retry cap (and the engine failed).
    fn count_attempt(&mut self) -> bool {
        self.conn.attempt += 1;
        match self.cfg.max_reconnect_attempts {
            Some(cap) if self.conn.attempt > cap => {
                self.fail(EngineError::RetryCap(cap));
                true
            }
            _ => false,
        }
    }

    /// The wait before the next connection attempt: full-jitter backoff, and while the runtime
    /// says it is offline only a slow probe at the backoff cap (the `online` event retries at
    /// once).
    fn wait_for_next_attempt(&mut self, now: u64) {
        let mut d = self.backoff(self.conn.attempt);
        if self.health.offline {
            d = d.max(self.cfg.backoff_cap_ms);
        }
        self.conn.conn = Conn::Waiting { at: now + d };
    }

    /// Full-jitter backoff for the n-th consecutive failure: uniform in
    /// `[0, min(cap, base * 2^(n-1))]`. Full jitter spreads a crowd of clients best after a
    /// controller restart.
    pub(super) fn backoff(&mut self, n: u32) -> u64 {
        let ceiling = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1u64 << (n.saturating_sub(1)).min(40))
            .min(self.cfg.backoff_cap_ms);
        self.rng.upto(ceiling)
    }

    /// Terminal failure.
    pub(super) fn fail(&mut self, err: EngineError) {
        self.shutdown(err.clone());
        self.conn.conn = Conn::Failed(err);
        // A session of ours the device may still hold (the retry cap reached while it answers)
        // is logged out: the engine gives it up and no one else can.
        if matches!(self.cfg.auth, Auth::Password { .. }) {
            if let Some(s) = self.session.current.take() {
                self.log_out_session(s, false, self.last_now);
            }
        }
        self.update_state();
    }

    /// The connection is lost or unusable: close sockets, stop every request, mark every
    /// subscription with one gap, and reconnect after a backoff. With `relogin`, the next attempt
    /// starts with a new login (or, for an adopted token, a verification).
    pub(super) fn rebuild(&mut self, now: u64, reason: GapReason, relogin: bool) {
        if self.is_terminal() {
            return;
        }
        self.close_sockets();
        // A replaced session's logout goes on: it is the only one that session gets. Calls go
        // on too: they do not need the socket, and a 403 for a dead token brings them back.
        self.cancel_where(|r| {
            !matches!(r, Req::Discard { .. } | Req::Call(_))
                && (!matches!(r, Req::SessionRefresh { .. }) || relogin)
        });
        if relogin {
            self.session.refresh_req = None;
            self.session.suspect = true;
        }
        let handles: Vec<_> = self.subs.map.keys().copied().collect();
        for h in handles {
            let ever = match self.subs.map.get(&h).map(|s| &s.phase) {
                Some(Phase::Failed(_)) | None => continue,
                Some(p) => p.ever(),
            };
            self.interrupt(h, reason);
            if let Some(s) = self.subs.map.get_mut(&h) {
                if ever {
                    s.counters.reconnects += 1;
                }
                s.retries = 0;
            }
        }
        self.health.heartbeat_out = false;
        if self.count_attempt() {
            return;
        }
        self.wait_for_next_attempt(now);
    }

    /// Cancels every request and closes every socket (close, logout, failure); waiting refresh
    /// calls are answered with `why`.
    pub(super) fn shutdown(&mut self, why: EngineError) {
        self.cancel_where(|_| true);
        self.stop_calls(&why);
        self.session.refresh_req = None;
        self.close_sockets();
        let handles: Vec<_> = self.subs.map.keys().copied().collect();
        for h in handles {
            self.answer_refreshes(h, Err(why.clone()));
            let resume = match self.subs.map.get(&h).map(|s| &s.phase) {
                Some(Phase::Failed(_)) | None => continue,
                Some(p) => p.resume_after(GapReason::Reconnect),
            };
            self.make_pending(h, resume, true);
        }
        self.delivery.early.clear();
        self.delivery.inbox.clear();
    }

    fn close_sockets(&mut self) {
        if let Some(s) = self.conn.sock.take() {
            self.actions.push_back(Action::CloseSocket { id: s.id });
        }
        self.abandon_rotation();
    }

    /// `aaaLogout`, after which the engine is closed; without a session, closes at once.
    pub(super) fn begin_logout(&mut self, now: u64) {
        self.shutdown(EngineError::Closed);
        let user = self
            .cfg
            .auth
            .user()
            .map(str::to_owned)
            .or_else(|| {
                self.session
                    .current
                    .as_ref()
                    .and_then(|s| s.info.user_name.clone())
            })
            .unwrap_or_default();
        self.conn.conn = Conn::LoggingOut;
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

    pub(super) fn finish_logout(&mut self) {
        self.conn.conn = Conn::Closed;
        self.session.current = None;
        self.events.push_back(Event::LoggedOut);
        self.update_state();
        self.events.push_back(Event::Closed);
    }

    fn compute_state(&self) -> ConnectionState {
        let c = &self.conn;
        match &c.conn {
            Conn::Closed => ConnectionState::Closed,
            Conn::LoggingOut => c.state.clone(),
            Conn::Failed(e) => ConnectionState::Failed { reason: e.clone() },
            Conn::Waiting { at } => ConnectionState::Reconnecting {
                attempt: c.attempt,
                next_at: *at,
            },
            Conn::Attempt if c.attempt == 0 && !c.ever_live => ConnectionState::Connecting,
            Conn::Attempt => ConnectionState::Reconnecting {
                attempt: c.attempt,
                next_at: c.attempt_started,
            },
            Conn::Up => match self.health.degraded() {
                Some(reason) => ConnectionState::Degraded { reason },
                None => ConnectionState::Live,
            },
        }
    }

    /// Reports the connection state if it changed.
    pub(super) fn update_state(&mut self) {
        let s = self.compute_state();
        if s != self.conn.state {
            self.conn.state = s.clone();
            self.events.push_back(Event::State(s));
        }
    }
}
