//! Queries and writes on the engine's session ("calls"): each waits for a session it can trust,
//! goes out with the current token on the controller in use, and is retried through what the
//! session itself survives, within one deadline.
//!
//! What a call survives, and how:
//! - a token replaced while it was in flight (an `aaaRefresh` raced it): its 403 is sent again
//!   with the new token, as subscribes do;
//! - a token timeout (a 403 for the current token): the session is declared expired, which logs
//!   in again as for any other request, and the call is sent once more on the new session; a
//!   second such 403 is the call's error, so a device that keeps refusing cannot loop;
//! - a 503: the engine's throttling pause (shared with subscribes and refreshes), then again;
//! - no answer: counted as transport trouble (three in a row rebuild the connection, and a
//!   connection that cannot be rebuilt moves to the next controller), then again after a
//!   backoff, on whichever controller is in use by then;
//! - and all of that only until its deadline, after which it fails as `TIMEOUT`.
//!
//! Writes are retried too: a device applies `created,modified` and `deleted` the same way twice.

use crate::protocol::{ErrorKind, ResponseError};
use crate::vecmap::VecMap;

use super::health::Signal;
use super::requests::{Pending, Req};
use super::{
    CallHandle, CallRequest, Engine, EngineError, Event, QueryResponse, RequestId, TransportFailure,
};

/// A retry after a lost call waits at least this long, so a dead network is not hammered.
const MIN_RETRY_MS: u64 = 100;

enum Phase {
    /// Waiting for a usable session, a throttling pause or a backoff to end.
    Waiting {
        not_before: u64,
    },
    InFlight(RequestId),
}

struct Call {
    req: CallRequest,
    phase: Phase,
    deadline: u64,
    /// Whether this call already led to a new login.
    relogged: bool,
    /// Answers lost in a row, for the backoff.
    lost: u32,
}

#[derive(Default)]
pub(super) struct Calls {
    map: VecMap<CallHandle, Call>,
}

impl Calls {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Engine {
    /// Whether calls may go out: a session that is trusted (not being verified or replaced).
    /// The throttling pause is a time, which the timer waits for.
    fn session_trusted(&self) -> bool {
        self.session.current.is_some() && !self.session.suspect && !self.is_terminal()
    }

    /// Starts a call; see the module documentation.
    pub(super) fn start_call(&mut self, req: CallRequest, now: u64) -> CallHandle {
        let h = CallHandle(self.fresh());
        if let Some(err) = self.stopped_error() {
            self.events.push_back(Event::Answered {
                call: h,
                result: Err(err),
            });
            return h;
        }
        let deadline = now + req.timeout_ms.unwrap_or(self.cfg.request_timeout_ms);
        self.calls.map.insert(
            h,
            Call {
                req,
                phase: Phase::Waiting { not_before: now },
                deadline,
                relogged: false,
                lost: 0,
            },
        );
        h
    }

    /// Abandons a call (the caller's `AbortSignal`): its request is cancelled and it is answered
    /// `ABORTED`. False if it was already answered.
    pub(super) fn abort_call(&mut self, h: CallHandle) -> bool {
        let Some(c) = self.calls.map.remove(&h) else {
            return false;
        };
        if let Phase::InFlight(id) = c.phase {
            self.cancel(id);
        }
        self.answer_call(h, Err(EngineError::Transport(TransportFailure::Aborted)));
        true
    }

    fn answer_call(&mut self, call: CallHandle, result: Result<QueryResponse, EngineError>) {
        self.events.push_back(Event::Answered { call, result });
    }

    /// Timer: the earliest call deadline, or a waiting call that can go out.
    pub(super) fn calls_due_at(&self) -> Option<u64> {
        let usable = self.session_trusted();
        let pause = self.pacing.throttle_until;
        self.calls
            .map
            .values()
            .map(|c| match c.phase {
                Phase::Waiting { not_before } if usable => c.deadline.min(not_before.max(pause)),
                _ => c.deadline,
            })
            .min()
    }

    /// Timer: calls past their deadline fail; waiting calls go out if the session allows.
    pub(super) fn run_calls(&mut self, now: u64) {
        let late: Vec<CallHandle> = self
            .calls
            .map
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in late {
            if let Some(c) = self.calls.map.remove(&h) {
                if let Phase::InFlight(id) = c.phase {
                    self.cancel(id);
                }
                self.answer_call(h, Err(EngineError::Transport(TransportFailure::Timeout)));
            }
        }
        if !self.session_trusted() || self.pacing.throttled(now) {
            return;
        }
        let ready: Vec<CallHandle> = self
            .calls
            .map
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Waiting { not_before } if not_before <= now))
            .map(|(h, _)| *h)
            .collect();
        for h in ready {
            let Some(c) = self.calls.map.get(&h) else {
                continue;
            };
            let (method, path, body) = (c.req.method, c.req.path.clone(), c.req.body.clone());
            let id = self.send(now, method, &path, body, Req::Call(h), true);
            if let Some(c) = self.calls.map.get_mut(&h) {
                c.phase = Phase::InFlight(id);
            }
        }
    }

    /// Puts a call back in line, to go out no earlier than `at`.
    fn requeue_call(&mut self, h: CallHandle, at: u64) {
        if let Some(c) = self.calls.map.get_mut(&h) {
            c.phase = Phase::Waiting { not_before: at };
        }
    }

    /// The device answered a call.
    pub(super) fn on_call(
        &mut self,
        p: Pending,
        h: CallHandle,
        r: Result<QueryResponse, ResponseError>,
        now: u64,
    ) {
        let Some(c) = self.calls.map.get_mut(&h) else {
            return;
        };
        c.lost = 0;
        let relogged = c.relogged;
        match r {
            Ok(resp) => {
                self.calls.map.remove(&h);
                self.pacing.unthrottled();
                self.health.signal(Signal::ThrottleOver);
                self.answer_call(h, Ok(resp));
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::SessionExpired => {
                if p.epoch < self.session.epoch {
                    // Sent with a token that has been replaced since: send it with the new one.
                    self.requeue_call(h, now);
                } else if !relogged {
                    if let Some(c) = self.calls.map.get_mut(&h) {
                        c.relogged = true;
                    }
                    self.requeue_call(h, now);
                    if self.session.current.is_some() {
                        self.session_expired(now, d.into());
                    }
                } else {
                    self.calls.map.remove(&h);
                    self.answer_call(h, Err(d.into()));
                }
            }
            Err(ResponseError::Device(d)) if d.kind == ErrorKind::Throttled => {
                self.throttle(now);
                let at = self.pacing.throttle_until;
                self.requeue_call(h, at);
            }
            Err(e) => {
                self.calls.map.remove(&h);
                self.answer_call(h, Err(e.into()));
            }
        }
    }

    /// A call got no answer: the connection hears of it, the call goes again after a backoff.
    pub(super) fn call_lost(&mut self, h: CallHandle, now: u64) {
        let Some(c) = self.calls.map.get_mut(&h) else {
            return;
        };
        c.lost += 1;
        let n = c.lost;
        let d = self.backoff(n + 1).max(MIN_RETRY_MS);
        self.requeue_call(h, now + d);
        self.transport_trouble(now);
    }

    /// The engine stopped: every call is answered with why.
    pub(super) fn stop_calls(&mut self, why: &EngineError) {
        let handles: Vec<CallHandle> = self.calls.map.keys().copied().collect();
        for h in handles {
            self.calls.map.remove(&h);
            self.answer_call(h, Err(why.clone()));
        }
    }
}
