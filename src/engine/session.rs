//! The session: its token, the `aaaRefresh` that keeps it alive, and its make-before-break
//! rotation before the device's hard lifetime.
//!
//! The token changes on every `aaaRefresh` and the old one dies at once (the strict reading of
//! §3), so every request carries the epoch of the token it was sent with: a 403 for an older
//! epoch is a race, not a dead session. A rotation is one enum, so "which socket delivers" and
//! "is the switch done" are read from one value instead of a combination of flags.

use crate::protocol::{
    login_body, login_path, logout_body, BaseUrl, ErrorKind, LoginInfo, ResponseError, LOGOUT_PATH,
    REFRESH_SESSION_PATH,
};

use super::requests::{Pending, Req};
use super::subs::{Phase, Refresh, Wait};
use super::{
    Action, Auth, Engine, EngineError, Event, GapReason, Method, RequestId, SessionInfo, SocketId,
    TokenTransport,
};

pub(super) struct Session {
    pub(super) token: String,
    pub(super) url_token: Option<String>,
    pub(super) refresh_timeout_ms: u64,
    /// When the next `aaaRefresh` is due.
    pub(super) refresh_at: u64,
    /// When the make-before-break rotation starts (APIC with `maximumLifetimeSeconds`).
    pub(super) rotate_at: Option<u64>,
    pub(super) info: SessionInfo,
}

/// A make-before-break rotation. `failures` counts rotations that failed in a row; they back
/// off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rotation {
    Idle {
        failures: u32,
    },
    /// The new session's login is on its way; nothing has moved yet.
    LoggingIn {
        failures: u32,
    },
    /// The new session is installed and its socket opens (or is open) while subscriptions move
    /// to it; `old`, the retiring socket, still delivers for those not yet moved. Done once
    /// none is left on an old id.
    Switched {
        failures: u32,
        old: Option<SocketId>,
    },
}

impl Rotation {
    fn failures(self) -> u32 {
        match self {
            Rotation::Idle { failures }
            | Rotation::LoggingIn { failures }
            | Rotation::Switched { failures, .. } => failures,
        }
    }

    #[inline]
    pub(super) fn running(self) -> bool {
        !matches!(self, Rotation::Idle { .. })
    }

    /// The retiring socket, while it still serves.
    pub(super) fn old_socket(self) -> Option<SocketId> {
        match self {
            Rotation::Switched { old, .. } => old,
            _ => None,
        }
    }
}

pub(super) struct SessionState {
    pub(super) current: Option<Session>,
    /// Adopted token waiting for verification, or a session that may be dead: the next attempt
    /// verifies it (or logs in again) before using it.
    pub(super) suspect: bool,
    /// Which token is current (see the module documentation).
    pub(super) epoch: u64,
    pub(super) refresh_req: Option<RequestId>,
    refresh_failures: u32,
    pub(super) rotation: Rotation,
    /// The session a rotation replaced, logged out once the rotation ends.
    retired: Option<Session>,
}

impl SessionState {
    pub(super) fn new() -> SessionState {
        SessionState {
            current: None,
            suspect: false,
            epoch: 0,
            refresh_req: None,
            refresh_failures: 0,
            rotation: Rotation::Idle { failures: 0 },
            retired: None,
        }
    }

    /// Timer: the session keepalive, also while reconnecting (the session outlives a socket).
    #[inline]
    pub(super) fn refresh_due_at(&self) -> Option<u64> {
        let s = self.current.as_ref()?;
        (self.refresh_req.is_none() && !self.suspect).then_some(s.refresh_at)
    }
}

impl Engine {
    /// Sends `aaaLogin`; false without a password. The only place a login is built.
    pub(super) fn send_login(&mut self, now: u64, rotate: bool) -> bool {
        let Auth::Password { user, password } = &self.cfg.auth else {
            return false;
        };
        let body = login_body(user, password);
        let path = login_path(self.cfg.gui_token);
        self.send(
            now,
            Method::Post,
            path,
            Some(body),
            Req::Login { rotate },
            false,
        );
        true
    }

    /// The `aaaRefresh` that keeps the session alive, or (as a `heartbeat`) proves the path when
    /// there is no subscription to refresh.
    pub(super) fn send_session_refresh(&mut self, now: u64, heartbeat: bool) {
        let id = self.send(
            now,
            Method::Get,
            REFRESH_SESSION_PATH,
            None,
            Req::SessionRefresh { heartbeat },
            true,
        );
        self.session.refresh_req = Some(id);
    }

    /// `aaaRefresh` interval: 40-50 % of `refreshTimeoutSeconds`. Half is what peers use; the
    /// jitter below it keeps a retry possible before the timeout and spreads consoles apart.
    fn session_refresh_interval(&mut self, refresh_timeout_ms: u64) -> u64 {
        let half = refresh_timeout_ms / 2;
        (half - self.rng.upto(half / 5)).max(1_000)
    }

    /// Makes a logged-in session the current one; returns the one it replaces.
    pub(super) fn install_session(
        &mut self,
        info: LoginInfo,
        sent_at: u64,
        now: u64,
    ) -> Option<Session> {
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
        let url_token = info.url_token.clone().or_else(|| {
            self.session
                .current
                .as_ref()
                .and_then(|s| s.url_token.clone())
        });
        let sinfo = SessionInfo {
            user_name: info.user_name.clone(),
            version: info.version.clone(),
            node: info.node.clone(),
            refresh_timeout_secs: info.refresh_timeout_secs,
            maximum_lifetime_secs: info.maximum_lifetime_secs,
            rotates_at: rotate_at,
            url: self.base().to_string(),
        };
        let replaced = self.session.current.replace(Session {
            token: info.token,
            url_token,
            refresh_timeout_ms,
            refresh_at: now + interval,
            rotate_at,
            info: sinfo.clone(),
        });
        if let Some(r) = self.session.refresh_req.take() {
            self.cancel(r);
        }
        self.session.refresh_failures = 0;
        self.session.epoch += 1;
        self.session.suspect = false;
        self.events.push_back(Event::LoggedIn(sinfo));
        replaced
    }

    /// `aaaLogout` of a session the engine lets go (replaced by a login or a rotation, or left
    /// when the engine gives up), with that session's own token and to its own controller: else
    /// it stays at the device until its idle timeout. Sent as `Discard`, which a rebuild lets
    /// finish and the shell lets finish after a stop. `then_login`: a login waits for the answer.
    pub(super) fn log_out_session(&mut self, old: Session, then_login: bool, now: u64) {
        let Ok(base) = BaseUrl::parse(&old.info.url) else {
            return;
        };
        let user = self.cfg.auth.user().unwrap_or_default().to_owned();
        // Requests carry the current session's token: the one let go stands in for this one.
        let current = self.session.current.replace(old);
        self.send_to(
            now,
            Method::Post,
            base.http(LOGOUT_PATH),
            Some(logout_body(&user)),
            Req::Discard { then_login },
            true,
        );
        self.session.current = current;
    }

    /// Logs out the session a rotation replaced, once the rotation ends (done, or abandoned by
    /// a rebuild or a stop). Not with the browser's cookie jar: it holds the new session's token
    /// only, so a logout would end the new session; the old one lapses at its idle timeout.
    fn log_out_retired(&mut self) {
        let Some(old) = self.session.retired.take() else {
            return;
        };
        if self.cfg.token_transport != TokenTransport::CookieJar {
            self.log_out_session(old, false, self.last_now);
        }
    }

    pub(super) fn on_session_refresh(
        &mut self,
        p: Pending,
        r: Result<LoginInfo, ResponseError>,
        now: u64,
    ) {
        self.session.refresh_req = None;
        match r {
            Ok(info) => self.adopt_refreshed(info, now),
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::SessionExpired => {
                if p.epoch < self.session.epoch {
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

    /// A successful `aaaRefresh` of the current session: its new token, the next keepalive. The
    /// session stays the same one (its lifetime and rotation are untouched).
    pub(super) fn adopt_refreshed(&mut self, info: LoginInfo, now: u64) {
        self.stats.token_refreshes += 1;
        self.session.refresh_failures = 0;
        let interval = self.session_refresh_interval(info.refresh_timeout_secs * 1000);
        if let Some(s) = self.session.current.as_mut() {
            // The token changes on every aaaRefresh: adopt it everywhere at once.
            s.token = info.token;
            if let Some(u) = info.url_token {
                s.url_token = Some(u);
            }
            s.refresh_timeout_ms = info.refresh_timeout_secs * 1000;
            s.info.refresh_timeout_secs = info.refresh_timeout_secs;
            s.refresh_at = now + interval;
        }
        self.session.epoch += 1;
    }

    /// An `aaaRefresh` got no answer. As a heartbeat it proves the connection dead; as the
    /// keepalive it is retried.
    pub(super) fn session_refresh_lost(&mut self, heartbeat: bool, now: u64) {
        self.session.refresh_req = None;
        if heartbeat {
            self.health.heartbeat_out = false;
            self.rebuild(now, GapReason::Reconnect, false);
        } else {
            self.transport_trouble(now);
            self.retry_session_refresh(now);
        }
    }

    /// Retry an `aaaRefresh` with backoff, always well before the idle timeout runs out.
    fn retry_session_refresh(&mut self, now: u64) {
        self.session.refresh_failures += 1;
        let n = self.session.refresh_failures;
        let d = self
            .backoff(n + 1)
            .max(self.pacing.throttle_until.saturating_sub(now));
        if let Some(s) = self.session.current.as_mut() {
            let bound = (s.refresh_timeout_ms / 8).max(1_000);
            s.refresh_at = now + d.clamp(500, bound);
        }
    }

    /// The device says the session is gone: log in again, or fail for an adopted token.
    pub(super) fn session_expired(&mut self, now: u64, err: EngineError) {
        match self.cfg.auth {
            Auth::Password { .. } => {
                self.events.push_back(Event::Error(err));
                // Dead at the device: nothing to log out.
                self.session.current = None;
                self.rebuild(now, GapReason::Relogin, true);
            }
            Auth::Token { .. } => self.fail(EngineError::SessionLost),
        }
    }

    /// Timer: the rotation, while the connection is up and no rotation runs.
    #[inline]
    pub(super) fn rotation_due_at(&self) -> Option<u64> {
        if !self.socket_up() || self.session.rotation.running() {
            return None;
        }
        self.session.current.as_ref()?.rotate_at
    }

    pub(super) fn start_rotation(&mut self, now: u64) {
        if self.send_login(now, true) {
            let failures = self.session.rotation.failures();
            self.session.rotation = Rotation::LoggingIn { failures };
            if let Some(s) = self.session.current.as_mut() {
                s.rotate_at = None;
            }
        }
    }

    pub(super) fn on_rotation_login(
        &mut self,
        p: Pending,
        r: Result<LoginInfo, ResponseError>,
        now: u64,
    ) {
        let info = match r {
            Ok(info) => info,
            Err(e) => return self.retry_rotation(now, e.into()),
        };
        self.stats.logins += 1;
        let Rotation::LoggingIn { failures } = self.session.rotation else {
            return;
        };
        if !self.is_up() {
            return;
        }
        // Make-before-break: the new token is the only current one from now on. Refreshes of
        // the old subscriptions stop (they would carry the new token to the old session's ids);
        // each has at least two thirds of its lifetime left, enough for the switch.
        self.session.rotation = Rotation::Switched {
            failures,
            old: None,
        };
        self.session.retired = self.install_session(info, p.sent_at, now);
        let handles: Vec<_> = self.subs.map.keys().copied().collect();
        for h in handles {
            match self.subs.map.get(&h).map(|s| &s.phase) {
                Some(Phase::Active { .. }) => {
                    self.set_refresh(h, Refresh::Stopped);
                }
                Some(Phase::Pending { resume, .. }) => {
                    let resume = *resume;
                    self.set_phase(
                        h,
                        Phase::Pending {
                            wait: Wait::Socket,
                            resume,
                        },
                    );
                }
                _ => {}
            }
        }
        let old = self.conn.sock.take().map(|s| s.id);
        self.session.rotation = Rotation::Switched { failures, old };
        self.open_socket(now);
    }

    /// The rotation's login failed: the old session serves on; try again after a backoff.
    pub(super) fn retry_rotation(&mut self, now: u64, err: EngineError) {
        let failures = self.session.rotation.failures() + 1;
        self.session.rotation = Rotation::Idle { failures };
        self.events.push_back(Event::Error(err));
        let d = self.backoff(failures + 2);
        if let Some(s) = self.session.current.as_mut() {
            s.rotate_at = Some(now + d.max(1_000));
        }
    }

    /// Ends a rotation without completing it (the connection is rebuilt or stopped); its
    /// retiring socket is closed.
    pub(super) fn abandon_rotation(&mut self) {
        if let Some(o) = self.session.rotation.old_socket() {
            self.actions.push_back(Action::CloseSocket { id: o });
        }
        let failures = self.session.rotation.failures();
        self.session.rotation = Rotation::Idle { failures };
        self.log_out_retired();
    }

    /// The rotation is done once the new socket is up and no subscription is left on an old
    /// id: the retiring socket is closed.
    pub(super) fn check_rotation_done(&mut self) {
        let Rotation::Switched { old, .. } = self.session.rotation else {
            return;
        };
        if !self.socket_up() || self.subs.map.values().any(|s| s.old_id.is_some()) {
            return;
        }
        self.session.rotation = Rotation::Idle { failures: 0 };
        self.stats.session_rotations += 1;
        if let Some(o) = old {
            self.actions.push_back(Action::CloseSocket { id: o });
        }
        self.log_out_retired();
    }

    /// The retiring socket closed early: subscriptions not yet moved lose their old stream.
    pub(super) fn old_socket_closed(&mut self) {
        if let Rotation::Switched { failures, .. } = self.session.rotation {
            self.session.rotation = Rotation::Switched {
                failures,
                old: None,
            };
        }
        let handles: Vec<_> = self
            .subs
            .map
            .iter()
            .filter(|(_, s)| s.old_id.is_some())
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            if let Some(id) = self.subs.map.get_mut(&h).and_then(|s| s.old_id.take()) {
                self.subs.ids.remove(&id);
            }
            self.break_move(h, GapReason::Rotation);
        }
        self.check_rotation_done();
    }
}
