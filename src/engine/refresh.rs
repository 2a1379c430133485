//! A subscription refresh's outcome: what each answer leads to, and the `refresh` calls waiting
//! for one.
//!
//! Refresh answers escalate by what they prove: success renews the lifetime; a lapsed
//! subscription (400) is made again alone; a lost socket (405) rebuilds everything; a 503 only
//! pauses; anything else is retried well before the expiry. When pacing decides to send it is in
//! pacing.rs.

use crate::protocol::{ErrorKind, ResponseError};

use super::health::Signal;
use super::requests::{Pending, Req};
use super::subs::{Phase, Refresh};
use super::{Engine, EngineError, Event, GapReason, RequestId, SubHandle};

impl Engine {
    /// [`Engine::refresh`]: refuse at once what cannot be done, else wait for the next outcome
    /// (and make the refresh due now if none is on its way).
    pub(super) fn request_refresh(&mut self, h: SubHandle) {
        let refused = match (self.stopped_error(), self.subs.map.get(&h)) {
            (_, None) => Some(EngineError::UnknownHandle),
            (Some(e), _) => Some(e),
            (None, Some(s)) => match &s.phase {
                Phase::Failed(e) => Some(e.clone()),
                _ => None,
            },
        };
        if let Some(e) = refused {
            self.events.push_back(Event::Refreshed {
                handle: h,
                result: Err(e),
            });
            return;
        }
        if let Some(s) = self.subs.map.get_mut(&h) {
            s.waiters += 1;
        }
        self.make_ready(h, false);
    }

    /// Answers every [`Engine::refresh`] call waiting on `h`.
    pub(super) fn answer_refreshes(&mut self, h: SubHandle, result: Result<(), EngineError>) {
        let waiters = match self.subs.map.get_mut(&h) {
            Some(s) => std::mem::take(&mut s.waiters),
            None => return,
        };
        self.push_refreshed(h, waiters, result);
    }

    fn push_refreshed(&mut self, h: SubHandle, waiters: u32, result: Result<(), EngineError>) {
        for _ in 0..waiters {
            self.events.push_back(Event::Refreshed {
                handle: h,
                result: result.clone(),
            });
        }
    }

    /// A refresh of `h` completed: count it and answer the calls waiting for it.
    fn refresh_outcome<E: Into<EngineError>>(&mut self, h: SubHandle, result: Result<(), E>) {
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        match result {
            Ok(()) => s.counters.refreshes += 1,
            Err(_) => s.counters.refresh_failures += 1,
        }
        let waiters = std::mem::take(&mut s.waiters);
        if waiters > 0 {
            self.push_refreshed(h, waiters, result.map_err(Into::into));
        }
    }

    pub(super) fn on_refresh(
        &mut self,
        p: Pending,
        h: SubHandle,
        r: Result<(), ResponseError>,
        now: u64,
    ) {
        if matches!(
            p.req,
            Req::Refresh {
                heartbeat: true,
                ..
            }
        ) {
            self.health.heartbeat_out = false;
        }
        if self.set_refresh(h, Refresh::Stopped).is_none() {
            return;
        }
        let outcome = match &r {
            Ok(()) => Ok(()),
            Err(e) => Err(e.clone()),
        };
        self.refresh_outcome(h, outcome);
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        let expires_at = s.expires_at;
        match r {
            Ok(()) => {
                let lifetime = s.lifetime_ms;
                self.set_expiry(h, p.sent_at + lifetime);
                self.pacing.unthrottled();
                if now >= self.pacing.throttle_until {
                    self.health.signal(Signal::ThrottleOver);
                }
                let interval = self.refresh_interval(lifetime);
                self.schedule_refresh(h, p.sent_at + interval);
            }
            Err(ResponseError::Device(d)) => match d.kind {
                ErrorKind::SessionExpired => {
                    if p.epoch < self.session.epoch {
                        self.make_ready(h, false);
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
                    self.make_ready(h, false);
                }
                _ if d.http_status == 400 => {
                    // The subscription lapsed (or the device forgot it): resubscribe this
                    // one; if the socket is gone too, the subscribe's 405 escalates.
                    s.counters.expiries += 1;
                    self.interrupt(h, GapReason::Expired);
                    self.events.push_back(Event::Error(d.into()));
                    self.queue_subscribe(h);
                }
                _ => {
                    let at = self.retry_before_expiry(expires_at, now);
                    self.events.push_back(Event::Error(d.into()));
                    self.schedule_refresh(h, at);
                }
            },
            Err(ResponseError::Malformed(m)) => {
                let at = self.retry_before_expiry(expires_at, now);
                self.events.push_back(Event::Error(m.into()));
                self.schedule_refresh(h, at);
            }
        }
    }

    /// A refresh got no answer: retry it before the expiry; a heartbeat that got none proves
    /// the connection dead.
    pub(super) fn refresh_lost(
        &mut self,
        h: SubHandle,
        req: RequestId,
        heartbeat: bool,
        err: EngineError,
        now: u64,
    ) {
        let mut retry_at = None;
        if let Some(s) = self.subs.map.get(&h) {
            if let Phase::Active {
                refresh: Refresh::InFlight(r),
                ..
            } = s.phase
            {
                if r == req {
                    retry_at = Some(self.retry_before_expiry(s.expires_at, now));
                }
            }
        }
        if retry_at.is_some() {
            self.set_refresh(h, Refresh::Stopped);
            self.refresh_outcome(h, Err(err));
        }
        if heartbeat {
            self.health.heartbeat_out = false;
            self.rebuild(now, GapReason::Reconnect, false);
            return;
        }
        if let Some(at) = retry_at {
            self.schedule_refresh(h, at);
        }
        self.transport_trouble(now);
    }
}
