//! Subscribe requests: when they go out (a few at a time, never while the device asks for a
//! pause), what each answer leads to, and what a successful one delivers.
//!
//! The answer decides the escalation: a refused query fails that subscription alone, a lost
//! socket (405) rebuilds everything, an expired token logs in again, anything transient is
//! retried with backoff. A success ends the gap (if there was one), routes the new id, hands the
//! snapshot (and in store mode the reconciliation) to the consumer, then the pushes that beat it.

use std::collections::HashSet;

use crate::protocol::{
    subscription_refresh_path, ErrorKind, MalformedError, Mo, QueryResponse, ResponseError,
};

use super::delivery::Overlap;
use super::health::Signal;
use super::reconcile::{reconcile, reconcile_move};
use super::requests::{Pending, Req};
use super::subs::{Phase, Refresh, Resume, Wait};
use super::{Engine, EngineError, Event, GapReason, Method, Pulled, RequestId, SubHandle};

/// After a resubscribe switches ids, pushes already delivered under the old id are recognised
/// and dropped for this long.
const OVERLAP_GRACE_MS: u64 = 5_000;
/// A subscription whose subscribe answers could not be read this many times in a row is given up.
const MAX_SUBSCRIBE_RETRIES: u32 = 8;

impl Engine {
    /// Timer: subscribes whose retry time has come go back in line.
    pub(super) fn retry_due_subscribes(&mut self, now: u64) {
        while let Some(&(t, h)) = self.subs.retries.first_key() {
            if t > now {
                break;
            }
            let resume = match self.subs.map.get(&h).map(|s| &s.phase) {
                Some(Phase::Pending { resume, .. }) => *resume,
                _ => {
                    self.subs.retries.remove(&(t, h));
                    continue;
                }
            };
            self.set_phase(
                h,
                Phase::Pending {
                    wait: Wait::Slot,
                    resume,
                },
            );
        }
    }

    /// Timer: a subscribe slot is free and subscriptions wait for one.
    #[inline]
    pub(super) fn subscribe_slot_at(&self) -> Option<u64> {
        let free = self.subs.inflight < self.cfg.max_inflight_subscribes.max(1);
        (self.socket_up()
            && free
            && !self.subs.queue.is_empty()
            && !self.pacing.throttled(self.last_now))
        .then_some(self.last_now)
    }

    /// Sends queued subscribes while slots are free. Spread this way, a bulk of subscribes
    /// does not flood the device, and refreshes keep their slots.
    pub(super) fn pump_subscribes(&mut self, now: u64) {
        if self.pacing.throttled(now) {
            return;
        }
        while self.subs.inflight < self.cfg.max_inflight_subscribes.max(1) {
            let Some(&h) = self.subs.queue.keys().next() else {
                break;
            };
            let Some(s) = self.subs.map.get(&h) else {
                self.subs.queue.remove(&h);
                continue;
            };
            let resume = match &s.phase {
                Phase::Pending { resume, .. } => *resume,
                _ => Resume::First,
            };
            let timeout = self.wanted_timeout(&s.opts);
            let mut q = s.query.clone();
            q.options.refresh_timeout = timeout;
            let path = match q.render() {
                Ok(p) => p,
                Err(e) => {
                    self.fail_sub(h, e.into());
                    continue;
                }
            };
            if let Some(s) = self.subs.map.get_mut(&h) {
                if s.old_id.is_some() {
                    s.overlap = Some(Overlap {
                        seen: HashSet::new(),
                        dns: HashSet::new(),
                        until: None,
                    });
                }
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
            self.set_phase(
                h,
                Phase::Pending {
                    wait: Wait::Answer(id),
                    resume,
                },
            );
        }
    }

    /// A subscribe got no answer: retry it later.
    pub(super) fn subscribe_lost(
        &mut self,
        h: SubHandle,
        req: RequestId,
        err: EngineError,
        now: u64,
    ) {
        if let Some(Phase::Pending {
            wait: Wait::Answer(r),
            resume,
        }) = self.subs.map.get(&h).map(|s| &s.phase)
        {
            if *r == req {
                let resume = *resume;
                self.make_pending(h, resume, false);
                self.retry_subscribe(h, now, err);
            }
        }
        self.transport_trouble(now);
    }

    fn retry_subscribe(&mut self, h: SubHandle, now: u64, err: EngineError) {
        let Some(s) = self.subs.map.get_mut(&h) else {
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
        let resume = match s.phase {
            // A move keeps moving: its old id still delivers, and its old expiry is watched.
            Phase::Pending {
                resume: Resume::Move,
                ..
            } => Resume::Move,
            ref p => p.resume_after(GapReason::Reconnect),
        };
        let d = self
            .backoff(n + 1)
            .max(self.pacing.throttle_until.saturating_sub(now));
        let at = now + d.max(100);
        self.set_phase(
            h,
            Phase::Pending {
                wait: Wait::RetryAt(at),
                resume,
            },
        );
    }

    pub(super) fn on_subscribe(
        &mut self,
        p: Pending,
        h: SubHandle,
        timeout: Option<u32>,
        r: Result<QueryResponse, ResponseError>,
        now: u64,
    ) {
        let resume = match self.subs.map.get(&h).map(|s| &s.phase) {
            Some(Phase::Pending {
                wait: Wait::Answer(_),
                resume,
            }) => *resume,
            _ => return,
        };
        self.make_pending(h, resume, false);
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
                self.conn.attempt = 0;
                self.pacing.unthrottled();
                self.health.signal(Signal::ThrottleOver);
                self.subscribed(h, id, resp.mos, timeout, p.sent_at, now);
            }
            Err(ResponseError::Device(d)) => match d.kind {
                ErrorKind::SocketNotFound => {
                    self.events.push_back(Event::Error(d.into()));
                    // 405: the device has no socket for this session. Rebuild socket and every
                    // subscription; a repeat makes the next attempt log in again.
                    let relogin = self.conn.attempt > 0;
                    self.rebuild(now, GapReason::SocketRebuilt, relogin);
                }
                ErrorKind::SessionExpired => {
                    if p.epoch < self.session.epoch {
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
                    self.subs.refresh_timeout_supported = false;
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
        let Some(url) = subscription_refresh_path(&id).map(|p| self.base().http(&p)) else {
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
        let resume = match self.subs.map.get(&h).map(|s| &s.phase) {
            Some(Phase::Pending { resume, .. }) => *resume,
            _ => return,
        };
        if let Resume::After { reason, .. } = resume {
            self.gap(h, reason);
        }
        let first = resume == Resume::First;
        let moved = resume == Resume::Move;
        if let Some(old) = self.subs.map.get_mut(&h).and_then(|s| s.old_id.take()) {
            self.subs.ids.remove(&old);
        }
        self.subs.ids.insert(id.clone(), h);
        self.set_phase(
            h,
            Phase::Active {
                id: id.clone(),
                url,
                refresh: Refresh::Stopped,
            },
        );
        // The device's clock for this subscription started no earlier than our send.
        self.set_lifetime(h, lifetime_ms, sent_at + lifetime_ms);
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        s.retries = 0;
        if !moved && s.store.is_some() {
            // After a gap the store is diffed against the whole snapshot: a repeat on the new id
            // must then be applied again, not dropped.
            s.overlap = None;
        }
        if let Some(o) = s.overlap.as_mut() {
            o.until = Some(now + OVERLAP_GRACE_MS);
        }
        let pull = s.opts.pull;
        let store_mode = s.store.is_some();
        let diffs = match (s.store.as_mut(), moved) {
            (Some(store), false) => reconcile(store, &snapshot, first),
            (Some(store), true) => {
                // Objects the old id delivered since this subscribe went out may be newer than
                // the snapshot: the store keeps them, and their repeats on the new id are
                // dropped by the overlap.
                let recent = s.overlap.as_ref().map(|o| &o.dns);
                reconcile_move(store, &snapshot, recent)
            }
            (None, _) => Vec::new(),
        };
        if !first && !moved && pull && s.store.is_none() {
            // A pull consumer sees the new snapshot in its queue, after the gap.
            let mos = snapshot.clone();
            s.counters.mos += mos.len() as u64;
            self.route(true, Pulled::Mos { handle: h, mos });
        }
        self.schedule_refresh(h, sent_at + interval);
        if !moved {
            // A move continues the stream: the consumer has everything the snapshot holds.
            self.events.push_back(Event::Subscribed {
                handle: h,
                subscription_id: id.clone(),
                initial: snapshot,
                reconciled: (!first && store_mode).then_some(diffs.len()),
            });
        }
        self.answer_refreshes(h, Ok(()));
        if !diffs.is_empty() {
            if let Some(s) = self.subs.map.get_mut(&h) {
                s.counters.mos += diffs.len() as u64;
            }
            self.route(
                pull,
                Pulled::Mos {
                    handle: h,
                    mos: diffs,
                },
            );
        }
        self.replay_early(h, &id, now);
    }
}
