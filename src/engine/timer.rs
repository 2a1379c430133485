//! Every deadline of the engine, in one table: what [`Engine::poll_timeout`] returns and what
//! [`Engine::handle_timeout`] runs both come from it.
//!
//! Each part owns its deadlines (the `deadline` and `fire` arms below only ask the part); this
//! file owns the order. The order is the one in which due timers run within one input, and it
//! matters: requests that timed out are failed before anything is sent on the connection they
//! doubted, a reconnect starts before the session keepalive looks at the session, and early
//! frames are let go only after the subscribe pump had its chance to claim them.

use super::conn::Conn;
use super::Engine;

/// A kind of deadline. Adding one means a variant here, its place in [`Timer::ALL`], and the
/// part that computes and handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A request the shell never answered (requests.rs).
    RequestTimeout,
    /// A socket that never opens (conn.rs).
    SocketOpen,
    /// The next connection attempt after a backoff (conn.rs).
    Reconnect,
    /// The session keepalive, `aaaRefresh` (session.rs).
    SessionRefresh,
    /// The make-before-break session rotation (session.rs).
    Rotation,
    /// A subscribe that failed transiently is queued again (subscribe.rs).
    SubscribeRetry,
    /// An active subscription reaches its expiry unrefreshed and is expired (subs.rs).
    Expiry,
    /// Planned refreshes join the ready set (pacing.rs).
    RefreshDue,
    /// A subscribe slot is free while subscriptions wait for one (subscribe.rs). Due at once when it
    /// is, so it never outlives the input that made it due.
    SubscribeSlot,
    /// A query or write passes its deadline, or can go out (calls.rs).
    Calls,
    /// The next refresh slot under the rate cap (pacing.rs).
    RefreshSlot,
    /// Nothing heard for the idle time: prove the connection (health.rs).
    Heartbeat,
    /// A throttling pause ends and no longer degrades the connection (health.rs).
    ThrottleEnd,
    /// Frames for ids nobody claimed are let go (delivery.rs).
    EarlyFrames,
}

/// The table, written once: [`Timer::ALL`] and [`Engine::deadlines`] are both made from this
/// list, so the order in which due timers run and the order of the deadlines cannot differ.
macro_rules! table {
    ($($t:ident),+ $(,)?) => {
        /// How many kinds of deadline there are.
        const COUNT: usize = [$(Timer::$t),+].len();

        impl Timer {
            /// The table: every timer, in the order due ones run.
            pub const ALL: [Timer; COUNT] = [$(Timer::$t),+];
        }

        impl Engine {
            /// Every timer's deadline, in table order. Written out per timer so that each
            /// part's answer is inlined into one straight pass instead of a call per timer.
            fn deadlines(&self) -> [Option<u64>; COUNT] {
                match self.conn.conn {
                    Conn::Closed | Conn::Failed(_) => [None; COUNT],
                    _ => [$(self.deadline(Timer::$t)),+],
                }
            }
        }
    };
}

table![
    RequestTimeout,
    SocketOpen,
    Reconnect,
    SessionRefresh,
    Rotation,
    SubscribeRetry,
    Expiry,
    RefreshDue,
    SubscribeSlot,
    Calls,
    RefreshSlot,
    Heartbeat,
    ThrottleEnd,
    EarlyFrames,
];

impl Engine {
    /// When `t` is due next, if it is armed. A stopped engine has no timers; one that is logging
    /// out only waits for its requests.
    #[inline(always)]
    fn deadline(&self, t: Timer) -> Option<u64> {
        match self.conn.conn {
            Conn::Closed | Conn::Failed(_) => return None,
            Conn::LoggingOut if t != Timer::RequestTimeout => return None,
            _ => {}
        }
        match t {
            Timer::RequestTimeout => self.requests.next_deadline(),
            Timer::SocketOpen => self.conn.socket_open_deadline(),
            Timer::Reconnect => self.conn.reconnect_at(),
            Timer::SessionRefresh => self.session.refresh_due_at(),
            Timer::Rotation => self.rotation_due_at(),
            Timer::SubscribeRetry => self.subs.next_retry(),
            Timer::Expiry => self.subs.next_expiry(),
            Timer::RefreshDue => self.pacing.next_planned(),
            Timer::SubscribeSlot => self.subscribe_slot_at(),
            Timer::Calls => self.calls_due_at(),
            Timer::RefreshSlot => self.refresh_slot_at(),
            Timer::Heartbeat => self.heartbeat_at(),
            Timer::ThrottleEnd => self.health.throttle_end_at(self.pacing.throttle_until),
            Timer::EarlyFrames => self
                .delivery
                .early_deadline(self.subs.inflight, self.cfg.request_timeout_ms),
        }
    }

    fn fire(&mut self, t: Timer, now: u64) {
        match t {
            Timer::RequestTimeout => self.expire_requests(now),
            Timer::SocketOpen => self.socket_open_timed_out(now),
            Timer::Reconnect => self.start_attempt(now),
            Timer::SessionRefresh => self.send_session_refresh(now, false),
            Timer::Rotation => self.start_rotation(now),
            Timer::SubscribeRetry => self.retry_due_subscribes(now),
            Timer::Expiry => self.expire_lapsed(now),
            Timer::RefreshDue => self.ready_due_refreshes(now),
            Timer::SubscribeSlot => self.pump_subscribes(now),
            Timer::Calls => self.run_calls(now),
            Timer::RefreshSlot => self.pump_refreshes(now),
            Timer::Heartbeat => {
                self.send_heartbeat(now, false);
                self.pump_refreshes(now);
            }
            Timer::ThrottleEnd => self.health.throttle_ended(),
            Timer::EarlyFrames => self.drop_unclaimed_early(now),
        }
    }

    /// The earliest armed timer and when it is due.
    pub(super) fn next_timer_at(&self) -> Option<(Timer, u64)> {
        earliest(&self.deadlines())
    }

    /// Runs every timer that is due, in table order, then reports a changed connection state.
    /// Every input ends here. A timer is looked at after the ones before it ran, so one that an
    /// earlier one disarmed does not fire.
    pub(super) fn drive(&mut self, now: u64) {
        // The deadlines are evaluated once, and again after each timer that fires (it may have
        // moved any of them): so the ones left at the end are the next ones, with no second scan.
        let mut at = self.deadlines();
        for (i, t) in Timer::ALL.into_iter().enumerate() {
            match self.conn.conn {
                Conn::Closed | Conn::Failed(_) => break,
                Conn::LoggingOut if t != Timer::RequestTimeout => return,
                _ => {}
            }
            if at[i].is_some_and(|d| d <= now) {
                self.fire(t, now);
                at = self.deadlines();
            }
        }
        self.update_state();
        self.next_wake = Some(earliest(&at));
    }
}

/// The earliest of the deadlines (`at` in table order) and its timer; the first in table order
/// among equal ones.
fn earliest(at: &[Option<u64>; COUNT]) -> Option<(Timer, u64)> {
    let mut next: Option<(Timer, u64)> = None;
    for (t, d) in Timer::ALL.into_iter().zip(at) {
        if let Some(d) = *d {
            if next.is_none_or(|(_, n)| d < n) {
                next = Some((t, d));
            }
        }
    }
    next
}
