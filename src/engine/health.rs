//! Whether the connection can be trusted right now: when the device was last heard, the
//! heartbeat that proves a quiet connection, clock jumps, the runtime's offline flag, and the one
//! decision of what "degraded" means.
//!
//! A socket can die without a close event and a machine can sleep without telling anyone (§3),
//! so the engine never trusts silence: after the idle time, a clock jump, a wake from a hidden
//! tab or the network coming back, it sends a cheap request and believes the answer.

use super::conn::Conn;
use super::{DegradedReason, Engine, GapReason};

/// Consecutive requests failing without an answer before the connection is presumed dead.
const FAILURES_BEFORE_RECONNECT: u32 = 3;

#[derive(Default)]
pub(super) struct Health {
    pub(super) last_heard: u64,
    /// A heartbeat request is on its way.
    pub(super) heartbeat_out: bool,
    /// What the last [`Engine::poll_timeout`] asked for: a wake far later means a sleep.
    pub(super) expected_wake: Option<u64>,
    pub(super) wall_offset: Option<i64>,
    pub(super) offline: bool,
    degraded: Option<DegradedReason>,
    consecutive_failures: u32,
}

/// What moves the "degraded" flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A 2xx answer: requests get through again and the connection is verified.
    Answered,
    /// A request got no answer.
    NoAnswer,
    /// The device answered 503.
    Throttled,
    /// A check of the connection is on its way.
    Verifying,
    /// The device accepts work again: a throttling pause ran out, or it did something it had
    /// refused.
    ThrottleOver,
}

impl Health {
    pub(super) fn new(now: u64) -> Health {
        Health {
            last_heard: now,
            ..Health::default()
        }
    }

    /// The one place that decides "degraded". A throttle or a check replaces any other reason;
    /// request failures only show when nothing more specific does; each reason is cleared only
    /// by the signal that answers it.
    pub(super) fn signal(&mut self, s: Signal) {
        use DegradedReason::*;
        self.degraded = match (s, self.degraded) {
            (Signal::Throttled, _) => Some(Throttled),
            (Signal::Verifying, _) => Some(Verifying),
            (Signal::NoAnswer, None) => Some(RequestFailures),
            (Signal::Answered, Some(RequestFailures | Verifying)) => None,
            (Signal::ThrottleOver, Some(Throttled)) => None,
            (_, kept) => kept,
        };
    }

    /// Why the connection, when up, is not to be trusted.
    pub(super) fn degraded(&self) -> Option<DegradedReason> {
        if self.offline {
            Some(DegradedReason::Offline)
        } else {
            self.degraded
        }
    }

    /// Timer: the end of a throttling pause, while it degrades the connection.
    #[inline]
    pub(super) fn throttle_end_at(&self, throttle_until: u64) -> Option<u64> {
        (self.degraded == Some(DegradedReason::Throttled)).then_some(throttle_until)
    }

    pub(super) fn throttle_ended(&mut self) {
        self.signal(Signal::ThrottleOver);
    }
}

impl Engine {
    /// Common entry of every input: monotonic clamp and clock-jump detection.
    pub(super) fn enter(&mut self, now: u64) -> u64 {
        let now = now.max(self.last_now);
        self.last_now = now;
        self.next_wake = None;
        if let Some(w) = self.health.expected_wake {
            if now > w.saturating_add(self.cfg.clock_jump_ms) {
                self.health.expected_wake = None;
                self.verify(now);
            }
        }
        now
    }

    /// Any answer at all proves the path; a 2xx also ends a run of failures.
    pub(super) fn heard_answer(&mut self, now: u64, ok: bool) {
        self.health.last_heard = now;
        self.health.heartbeat_out = false;
        if ok {
            self.health.consecutive_failures = 0;
            self.health.signal(Signal::Answered);
        }
    }

    /// A request got no answer. A few in a row mean the connection is gone even if the socket
    /// has not noticed (sockets can die silently, §3).
    pub(super) fn transport_trouble(&mut self, now: u64) {
        self.health.consecutive_failures += 1;
        self.health.signal(Signal::NoAnswer);
        if self.health.consecutive_failures >= FAILURES_BEFORE_RECONNECT
            && self.conn.conn == Conn::Up
        {
            self.health.consecutive_failures = 0;
            self.rebuild(now, GapReason::Reconnect, false);
        }
    }

    /// Something suggests the connection may be dead: retry a waiting reconnect now, or check
    /// a live one.
    pub(super) fn verify(&mut self, now: u64) {
        match self.conn.conn {
            Conn::Waiting { ref mut at } => *at = (*at).min(now),
            Conn::Up => {
                if self.health.heartbeat_out {
                    return;
                }
                self.health.signal(Signal::Verifying);
                self.send_heartbeat(now, true);
            }
            _ => {}
        }
    }

    /// Timer: nothing heard for the idle time while subscriptions are planned.
    #[inline]
    pub(super) fn heartbeat_at(&self) -> Option<u64> {
        (self.socket_up() && !self.health.heartbeat_out && !self.pacing.calendar.is_empty())
            .then(|| self.health.last_heard + self.cfg.heartbeat_idle_ms)
    }

    /// A cheap request proving the path end to end: the refresh of the subscription closest to
    /// its next refresh (harmless when early, and it fails if the device lost our socket), or,
    /// without subscriptions and only when `force`d, an `aaaRefresh`.
    pub(super) fn send_heartbeat(&mut self, now: u64, force: bool) {
        let candidate = self
            .pacing
            .calendar
            .first_key()
            .map(|(_, h)| *h)
            .or_else(|| self.pacing.ready.first_key().map(|(_, h)| *h));
        if let Some(h) = candidate {
            self.stats.heartbeats += 1;
            self.health.heartbeat_out = true;
            self.make_ready(h, true);
        } else if force && self.session.refresh_req.is_none() && self.session.current.is_some() {
            self.stats.heartbeats += 1;
            self.health.heartbeat_out = true;
            self.send_session_refresh(now, true);
        }
    }

    /// Page visibility: a page coming back after a long silence checks the connection.
    pub(super) fn on_visibility(&mut self, visible: bool, now: u64) {
        if visible && now.saturating_sub(self.health.last_heard) >= self.cfg.heartbeat_idle_ms / 3 {
            self.verify(now);
        }
    }

    /// Offline: only a slow probe (no retry storm against a network that is not there).
    /// Online again: retry a waiting reconnect now and check the connection.
    pub(super) fn on_online(&mut self, online: bool, now: u64) {
        self.health.offline = !online;
        if online {
            if let Conn::Waiting { at } = &mut self.conn.conn {
                *at = (*at).min(now);
            }
            self.verify(now);
        } else {
            let probe = now + self.cfg.backoff_cap_ms;
            if let Conn::Waiting { at } = &mut self.conn.conn {
                *at = (*at).max(probe);
            }
        }
    }

    /// A jump of the wall clock against the monotonic one means the machine slept.
    pub(super) fn on_wall_clock(&mut self, wall_ms: u64, now: u64) {
        let offset = wall_ms as i64 - now as i64;
        if let Some(prev) = self.health.wall_offset {
            if (offset - prev).unsigned_abs() > self.cfg.clock_jump_ms {
                self.verify(now);
            }
        }
        self.health.wall_offset = Some(offset);
    }
}
