//! When subscription refreshes go out: the calendar of planned refreshes, the ready set waiting
//! for a slot under the rate cap, and the pause after the device throttles.
//!
//! APIC throttles clients (§7): hundreds of subscriptions made together would refresh together
//! forever and the 503s would make them lapse. So every refresh is planned into a calendar with
//! at most one refresh per slot of `1 / refresh_rate_cap` seconds, sent from the ready set most
//! urgent first, and held back as a whole while the device asks for a pause.

use super::health::Signal;
use super::requests::Req;
use super::subs::{Phase, Refresh};
use super::{Engine, Method, SubHandle, SubState};
use crate::vecmap::VecMap;

#[derive(Default)]
pub(super) struct Pacing {
    /// Planned refreshes by send time: the rate cap's calendar (one per slot).
    pub(super) calendar: VecMap<(u64, SubHandle), ()>,
    /// Refreshes due and waiting for a slot, most urgent (earliest expiry, heartbeat 0) first.
    pub(super) ready: VecMap<(u64, SubHandle), ()>,
    next_slot: u64,
    pub(super) throttle_until: u64,
    throttle_count: u32,
}

impl Pacing {
    #[inline]
    pub(super) fn next_planned(&self) -> Option<u64> {
        self.calendar.first_key().map(|(t, _)| *t)
    }

    #[inline]
    pub(super) fn throttled(&self, now: u64) -> bool {
        now < self.throttle_until
    }

    /// The device accepted work: the next throttling episode starts from the first step.
    pub(super) fn unthrottled(&mut self) {
        self.throttle_count = 0;
    }
}

impl Engine {
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
        let cal = &self.pacing.calendar;
        let sp = self.spacing();
        let hi = target / sp;
        let lo = not_before.div_ceil(sp);
        let occupied = |idx: u64| {
            cal.range((idx * sp, SubHandle(0))..((idx + 1) * sp, SubHandle(0)))
                .next()
                .is_some()
        };
        if hi >= lo {
            let mut idx = hi;
            let mut free = None;
            for &(t, _) in cal.range(..((hi + 1) * sp, SubHandle(0))).rev() {
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
        for &(t, _) in cal.range((idx * sp, SubHandle(0))..) {
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
    pub(super) fn refresh_interval(&mut self, lifetime_ms: u64) -> u64 {
        let third = lifetime_ms / 3;
        let early = third - third / 10;
        (early - self.rng.upto(third / 10)).max(1_000)
    }

    /// When to retry a failed refresh: soon, but always well before the expiry (§5), so two
    /// more tries fit in what is left.
    pub(super) fn retry_before_expiry(&self, expires_at: u64, now: u64) -> u64 {
        let left = expires_at.saturating_sub(now);
        now + (left / 3).min(self.cfg.backoff_base_ms * 2)
    }

    /// Plans the next refresh of an active subscription for `at` (or the nearest free slot).
    pub(super) fn schedule_refresh(&mut self, h: SubHandle, at: u64) {
        if self.set_refresh(h, Refresh::Stopped).is_none() {
            return;
        }
        let at = self.reserve_slot(at, self.last_now);
        self.set_refresh(h, Refresh::Planned(at));
    }

    /// Moves an active subscription's refresh to the ready set. Among due refreshes the one
    /// closest to expiry goes first; a `heartbeat` jumps ahead of all of them.
    pub(super) fn make_ready(&mut self, h: SubHandle, heartbeat: bool) {
        let Some(s) = self.subs.map.get(&h) else {
            return;
        };
        let Phase::Active { refresh, .. } = &s.phase else {
            return;
        };
        match refresh {
            Refresh::InFlight(_) => {}
            Refresh::Ready { .. } if !heartbeat => {}
            _ => {
                let key = if heartbeat { 0 } else { s.expires_at };
                self.set_refresh(h, Refresh::Ready { key, heartbeat });
            }
        }
    }

    /// Timer: planned refreshes whose time has come join the ready set.
    pub(super) fn ready_due_refreshes(&mut self, now: u64) {
        while let Some(&(t, h)) = self.pacing.calendar.first_key() {
            if t > now {
                break;
            }
            self.make_ready(h, false);
        }
    }

    /// Timer: the next free slot for a ready refresh.
    #[inline]
    pub(super) fn refresh_slot_at(&self) -> Option<u64> {
        (self.socket_up() && !self.pacing.ready.is_empty())
            .then(|| self.pacing.next_slot.max(self.pacing.throttle_until))
    }

    /// Sends due refreshes no faster than `refresh_rate_cap` per second: strictly spaced, so no
    /// one-second window ever holds more than the cap, however many subscriptions are due.
    pub(super) fn pump_refreshes(&mut self, now: u64) {
        let spacing = self.spacing();
        while let Some(&(k, h)) = self.pacing.ready.first_key() {
            if now < self.pacing.next_slot || self.pacing.throttled(now) {
                break;
            }
            let ready = match self.subs.map.get(&h).map(|s| &s.phase) {
                Some(Phase::Active {
                    url,
                    refresh: Refresh::Ready { heartbeat, .. },
                    ..
                }) => Some((url.clone(), *heartbeat)),
                _ => None,
            };
            let Some((url, heartbeat)) = ready else {
                self.pacing.ready.remove(&(k, h));
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
            self.set_refresh(h, Refresh::InFlight(id));
            self.pacing.next_slot = now + spacing.max(1);
        }
    }

    /// The device answered 503: pause. At least half of the exponential step, so a throttled
    /// device really gets a pause (full jitter could retry immediately). The pause never exceeds
    /// a sixth of the shortest subscription lifetime (10 s on APIC's 60 s default): longer, and
    /// subscriptions would lapse, and the resubscribes cost the device more than the refreshes
    /// it was spared.
    ///
    /// One throttling episode escalates once: the 503s of requests that were already in flight
    /// (or sent during the pause) arrive before the pause ends and do not lengthen it again.
    pub(super) fn throttle(&mut self, now: u64) {
        if now >= self.pacing.throttle_until {
            self.pacing.throttle_count += 1;
        }
        let shortest = self
            .subs
            .map
            .values()
            .filter(|s| s.phase.state() == SubState::Active)
            .map(|s| s.lifetime_ms)
            .min()
            .unwrap_or(u64::MAX);
        let step = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1u64 << self.pacing.throttle_count.min(16))
            .min(self.cfg.backoff_cap_ms)
            .min((shortest / 6).max(1_000));
        let d = step / 2 + self.rng.upto(step / 2);
        self.pacing.throttle_until = self.pacing.throttle_until.max(now + d);
        self.health.signal(Signal::Throttled);
    }
}
