//! Requests in flight: what each one was for, the token it carried, and the engine's own
//! deadline for it.
//!
//! The engine keeps its own deadline although the shell is told the timeout too: a shell that
//! loses a request (a frozen tab, a fetch that never settles) must not leave a subscription
//! waiting for an answer forever. Answers and failures are routed from here to the part that
//! asked.

use std::collections::VecDeque;

use crate::protocol::{parse_login, parse_query, parse_refresh};
use crate::vecmap::VecMap;

use super::{
    Action, CallHandle, Engine, EngineError, HttpRequest, Method, RequestId, SubHandle,
    TokenTransport, TransportFailure,
};

/// The engine's own deadline for a request exceeds the one it gives the shell by this much, so
/// the shell's timeout report normally comes first.
const DEADLINE_GRACE_MS: u64 = 1_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Req {
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
    /// `aaaLogout` of a session being replaced by a login; with `then_login`, that login waits
    /// for this answer.
    Discard {
        then_login: bool,
    },
    /// A query or write of the application (calls.rs).
    Call(CallHandle),
}

pub(super) struct Pending {
    pub(super) req: Req,
    pub(super) sent_at: u64,
    /// Which token the request carried: a 403 for a token that has since been replaced is a
    /// race with `aaaRefresh`, not a dead session.
    pub(super) epoch: u64,
}

#[derive(Default)]
pub(super) struct Requests {
    pub(super) pending: VecMap<RequestId, Pending>,
    /// Request deadlines in send order. Every request gets the same timeout and time only moves
    /// forward, so this is sorted by construction; answered requests are skipped lazily.
    pub(super) deadlines: VecDeque<(u64, RequestId)>,
}

impl Requests {
    #[inline]
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.front().map(|(d, _)| *d)
    }
}

impl Engine {
    fn headers(&self, with_token: bool) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(s) = &self.session.current {
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

    /// Sends a request for `path` on the current controller.
    pub(super) fn send(
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

    pub(super) fn send_to(
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
        self.requests.pending.insert(
            id,
            Pending {
                req,
                sent_at: now,
                epoch: self.session.epoch,
            },
        );
        self.requests.deadlines.push_back((deadline, id));
        id
    }

    pub(super) fn take_pending(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.requests.pending.remove(&id)?;
        while let Some(&(_, front)) = self.requests.deadlines.front() {
            if self.requests.pending.contains_key(&front) {
                break;
            }
            self.requests.deadlines.pop_front();
        }
        Some(p)
    }

    /// Aborts a request; one that was already answered is left alone.
    pub(super) fn cancel(&mut self, id: RequestId) {
        if self.take_pending(id).is_some() {
            self.actions.push_back(Action::CancelHttp(id));
        }
    }

    /// Aborts every request for which `which` says so.
    pub(super) fn cancel_where(&mut self, which: impl Fn(&Req) -> bool) {
        let ids: Vec<RequestId> = self
            .requests
            .pending
            .iter()
            .filter(|(_, p)| which(&p.req))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.cancel(id);
        }
    }

    /// An answer: parsed by the kind of request, then handed to the part that sent it. False
    /// for a request no longer awaited.
    pub(super) fn on_answer(
        &mut self,
        req: RequestId,
        status: u16,
        body: String,
        now: u64,
    ) -> bool {
        let Some(p) = self.take_pending(req) else {
            return false;
        };
        self.heard_answer(now, (200..300).contains(&status));
        match p.req.clone() {
            Req::Login { rotate: false } => self.on_login(p, parse_login(status, &body), now),
            Req::Login { rotate: true } => {
                self.on_rotation_login(p, parse_login(status, &body), now)
            }
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
            Req::Discard { then_login } => self.session_discarded(then_login, now),
            Req::Call(h) => self.on_call(p, h, parse_query(status, &body), now),
        }
        true
    }

    /// A request got no answer.
    pub(super) fn on_http_failure(&mut self, req: RequestId, reason: TransportFailure, now: u64) {
        let Some(p) = self.take_pending(req) else {
            return;
        };
        let err = EngineError::Transport(reason);
        match p.req {
            Req::Login { rotate: false } => self.fail_attempt(now, err),
            Req::Verify => self.verify_failed(now, err, false),
            Req::Login { rotate: true } => self.retry_rotation(now, err),
            Req::SessionRefresh { heartbeat } => self.session_refresh_lost(heartbeat, now),
            Req::Subscribe { handle, .. } => self.subscribe_lost(handle, req, err, now),
            Req::Refresh { handle, heartbeat } => {
                self.refresh_lost(handle, req, heartbeat, err, now)
            }
            Req::Logout => self.finish_logout(),
            Req::Discard { then_login } => self.session_discarded(then_login, now),
            Req::Call(h) => self.call_lost(h, now),
        }
    }

    /// Timer: requests the shell never answered fail as timed out.
    pub(super) fn expire_requests(&mut self, now: u64) {
        while let Some(&(t, id)) = self.requests.deadlines.front() {
            if t > now {
                break;
            }
            self.requests.deadlines.pop_front();
            if self.requests.pending.contains_key(&id) {
                self.actions.push_back(Action::CancelHttp(id));
                self.on_http_failure(id, TransportFailure::Timeout, now);
            }
            if self.is_terminal() {
                return;
            }
        }
    }
}
