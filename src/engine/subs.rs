//! Subscriptions: the phase each one is in, the one function that moves it between phases, and
//! the routing of device ids to handles. Subscribe requests and their answers are in
//! subscribe.rs, refresh answers in refresh.rs.
//!
//! A subscription's phase is one enum carrying its data, so a combination that cannot happen
//! cannot be written down. The queues the timers and pumps read (waiting for a slot, retrying
//! at, planned or ready refreshes, subscribes in flight) are indexes of the phases, kept by
//! [`Engine::set_phase`] alone: a phase change can never leave a stale entry behind.

use std::collections::HashMap;

use crate::protocol::{Query, Store};
use crate::vecmap::VecMap;

use super::delivery::Overlap;
use super::{
    Counters, Engine, EngineError, Event, GapReason, Pulled, RequestId, SubHandle, SubOptions,
    SubState,
};

/// A subscription whose refresh has not succeeded this long before its expiry is taken as
/// expired: a refresh sent later would reach the device too late, and the device may count from
/// a little earlier than the engine does. At most a tenth of a short lifetime.
const EXPIRY_MARGIN_MS: u64 = 1_000;

pub(super) struct Sub {
    pub(super) query: Query,
    pub(super) opts: SubOptions,
    pub(super) phase: Phase,
    /// During a rotation: the id on the retiring socket, still routed until the new one is up.
    pub(super) old_id: Option<String>,
    pub(super) lifetime_ms: u64,
    /// When the device drops it without a refresh, as far as the engine knows.
    pub(super) expires_at: u64,
    pub(super) store: Option<Store>,
    pub(super) overlap: Option<Overlap>,
    pub(super) counters: Counters,
    /// Subscribe attempts that failed in a row.
    pub(super) retries: u32,
    /// [`Engine::refresh`] calls waiting for their [`Event::Refreshed`].
    pub(super) waiters: u32,
}

pub(super) enum Phase {
    /// Not subscribed at the device: waiting for something, or the subscribe is in flight.
    Pending { wait: Wait, resume: Resume },
    /// Subscribed under `id` (`url` refreshes it), refreshed according to `refresh`.
    Active {
        id: String,
        url: String,
        refresh: Refresh,
    },
    /// Refused by the device; terminal.
    Failed(EngineError),
}

/// What a pending subscription waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// A socket: nothing happens until the connection is up.
    Socket,
    /// A subscribe slot (`max_inflight_subscribes`).
    Slot,
    /// A transient failure: queued again at this time.
    RetryAt(u64),
    /// The answer to this subscribe request.
    Answer(RequestId),
}

/// What the next `Subscribed` continues: the first subscribe has no gap; a later one follows
/// exactly one gap, sent when the disruption is known or, at the latest, with the resubscribe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resume {
    First,
    After {
        reason: GapReason,
        gap_sent: bool,
    },
    /// A planned rotation moves it to the new session with no gap: its old id keeps delivering
    /// until the new subscribe answers, and the answer brings no snapshot to the consumer (in
    /// store mode only the real differences, see `subscribe.rs`). Still live, so its old id's
    /// expiry is watched as an active one's is.
    Move,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refresh {
    /// None planned: a rotation switched sessions and the old id is no longer refreshed.
    Stopped,
    /// In the rate cap's calendar at this time.
    Planned(u64),
    /// Due, waiting for a slot; `key` orders the ready set.
    Ready {
        key: u64,
        heartbeat: bool,
    },
    InFlight(RequestId),
}

impl Sub {
    /// When an active subscription that was not refreshed is taken as expired.
    fn expiry_deadline(&self) -> u64 {
        let margin = (self.lifetime_ms / 10).min(EXPIRY_MARGIN_MS);
        self.expires_at.saturating_sub(margin)
    }
}

impl Phase {
    pub(super) fn state(&self) -> SubState {
        match self {
            Phase::Pending {
                wait: Wait::Answer(_),
                ..
            } => SubState::Subscribing,
            Phase::Pending {
                resume: Resume::Move,
                ..
            }
            | Phase::Active { .. } => SubState::Active,
            Phase::Pending { .. } => SubState::Pending,
            Phase::Failed(_) => SubState::Failed,
        }
    }

    /// Between a gap and the resubscribe: no data may be delivered.
    pub(super) fn in_gap(&self) -> bool {
        matches!(
            self,
            Phase::Pending {
                resume: Resume::After { gap_sent: true, .. },
                ..
            }
        )
    }

    /// Subscribed at least once.
    pub(super) fn ever(&self) -> bool {
        !matches!(
            self,
            Phase::Pending {
                resume: Resume::First,
                ..
            }
        )
    }

    /// Live for the device: subscribed, or moving to a new session while its old id delivers.
    /// Such a phase is in the expiry index.
    pub(super) fn live(&self) -> bool {
        matches!(
            self,
            Phase::Active { .. }
                | Phase::Pending {
                    resume: Resume::Move,
                    ..
                }
        )
    }

    /// The resume of a subscription leaving this phase for a pending one after `reason`. A move
    /// that is interrupted is a disruption like any other.
    pub(super) fn resume_after(&self, reason: GapReason) -> Resume {
        match self {
            Phase::Pending {
                resume: Resume::Move,
                ..
            } => Resume::After {
                reason,
                gap_sent: false,
            },
            Phase::Pending { resume, .. } => *resume,
            _ => Resume::After {
                reason,
                gap_sent: false,
            },
        }
    }
}

pub(super) struct Subs {
    pub(super) map: VecMap<SubHandle, Sub>,
    next_handle: u64,
    /// Device ids to handles: each subscription's current id and, during a rotation, its id on
    /// the retiring socket.
    pub(super) ids: HashMap<String, SubHandle>,
    /// Index of `Wait::Slot`, in handle order.
    pub(super) queue: VecMap<SubHandle, ()>,
    /// Index of `Wait::RetryAt`.
    pub(super) retries: VecMap<(u64, SubHandle), ()>,
    /// Count of `Wait::Answer`.
    pub(super) inflight: usize,
    /// Index of the active ones by the time they expire (see [`Sub::expiry_deadline`]).
    pub(super) expiries: VecMap<(u64, SubHandle), ()>,
    /// Cleared for good when the device refuses `refresh-timeout` (releases before 3.2(3)).
    pub(super) refresh_timeout_supported: bool,
    /// Counters of subscriptions that are gone.
    pub(super) retired: Counters,
}

impl Subs {
    pub(super) fn new() -> Subs {
        Subs {
            map: VecMap::new(),
            next_handle: 1,
            ids: HashMap::new(),
            queue: VecMap::new(),
            retries: VecMap::new(),
            inflight: 0,
            expiries: VecMap::new(),
            refresh_timeout_supported: true,
            retired: Counters::default(),
        }
    }

    #[inline]
    pub(super) fn next_retry(&self) -> Option<u64> {
        self.retries.first_key().map(|(t, _)| *t)
    }

    #[inline]
    pub(super) fn next_expiry(&self) -> Option<u64> {
        self.expiries.first_key().map(|(t, _)| *t)
    }

    /// The `refresh-timeout` a subscribe with these options carries.
    fn wanted_timeout(&self, opts: &SubOptions, default: Option<u32>) -> Option<u32> {
        if opts.no_refresh_timeout || !self.refresh_timeout_supported {
            return None;
        }
        opts.refresh_timeout.or(default)
    }
}

impl Engine {
    /// A new subscription, checked at once: a query that cannot be sent fails here (and the
    /// second value is false).
    pub(super) fn add_sub(&mut self, query: Query, opts: SubOptions) -> (SubHandle, bool) {
        let handle = SubHandle(self.subs.next_handle);
        self.subs.next_handle += 1;
        let mut q = query;
        q.options.subscription = Some(true);
        let mut check = q.clone();
        check.options.refresh_timeout = self.wanted_timeout(&opts);
        let sub = Sub {
            query: q,
            store: opts.store.then(Store::new),
            opts,
            phase: Phase::Pending {
                wait: Wait::Socket,
                resume: Resume::First,
            },
            old_id: None,
            lifetime_ms: u64::from(self.cfg.flavor.default_lifetime_secs()) * 1000,
            expires_at: 0,
            overlap: None,
            counters: Counters::default(),
            retries: 0,
            waiters: 0,
        };
        self.subs.map.insert(handle, sub);
        if let Err(e) = check.render() {
            let error = EngineError::from(e);
            self.set_phase(handle, Phase::Failed(error.clone()));
            self.events
                .push_back(Event::SubscribeFailed { handle, error });
            return (handle, false);
        }
        if self.is_terminal() {
            self.fail_sub(handle, EngineError::Closed);
        } else {
            self.queue_subscribe(handle);
        }
        (handle, true)
    }

    /// Forgets a subscription; false for an unknown handle.
    pub(super) fn remove_sub(&mut self, h: SubHandle) -> bool {
        if !self.subs.map.contains_key(&h) {
            return false;
        }
        self.answer_refreshes(h, Err(EngineError::UnknownHandle));
        if let Some(old) = self.set_phase(h, Phase::Failed(EngineError::UnknownHandle)) {
            self.forget_ids(h, &old);
        }
        if let Some(s) = self.subs.map.remove(&h) {
            self.subs.retired.add(&s.counters);
        }
        self.delivery.pull_overflow.remove(&h);
        self.check_rotation_done();
        true
    }

    pub(super) fn wanted_timeout(&self, opts: &SubOptions) -> Option<u32> {
        self.subs
            .wanted_timeout(opts, self.cfg.default_refresh_timeout)
    }

    /// Moves a subscription to `new`: its old phase leaves the indexes (and its request is
    /// cancelled, unless already answered), the new one enters them. Every phase change goes
    /// through here. Returns the old phase.
    pub(super) fn set_phase(&mut self, h: SubHandle, new: Phase) -> Option<Phase> {
        let s = self.subs.map.get_mut(&h)?;
        let old = std::mem::replace(&mut s.phase, new);
        self.unindex(h, &old);
        self.index(h);
        Some(old)
    }

    /// As [`Engine::set_phase`], for the refresh plan of an active subscription only; `None`
    /// if it is not active.
    pub(super) fn set_refresh(&mut self, h: SubHandle, new: Refresh) -> Option<Refresh> {
        let s = self.subs.map.get_mut(&h)?;
        let Phase::Active { refresh, .. } = &mut s.phase else {
            return None;
        };
        let old = std::mem::replace(refresh, new);
        self.unindex_refresh(h, old);
        self.index_refresh(h, new);
        Some(old)
    }

    fn unindex(&mut self, h: SubHandle, old: &Phase) {
        if old.live() {
            if let Some(s) = self.subs.map.get(&h) {
                let key = (s.expiry_deadline(), h);
                self.subs.expiries.remove(&key);
            }
        }
        match old {
            Phase::Pending { wait, .. } => match *wait {
                Wait::Socket => {}
                Wait::Slot => {
                    self.subs.queue.remove(&h);
                }
                Wait::RetryAt(t) => {
                    self.subs.retries.remove(&(t, h));
                }
                Wait::Answer(r) => {
                    self.subs.inflight = self.subs.inflight.saturating_sub(1);
                    self.cancel(r);
                }
            },
            Phase::Active { refresh, .. } => self.unindex_refresh(h, *refresh),
            Phase::Failed(_) => {}
        }
    }

    fn unindex_refresh(&mut self, h: SubHandle, old: Refresh) {
        match old {
            Refresh::Stopped => {}
            Refresh::Planned(t) => {
                self.pacing.calendar.remove(&(t, h));
            }
            Refresh::Ready { key, .. } => {
                self.pacing.ready.remove(&(key, h));
            }
            Refresh::InFlight(r) => self.cancel(r),
        }
    }

    fn index(&mut self, h: SubHandle) {
        let Some(s) = self.subs.map.get(&h) else {
            return;
        };
        if s.phase.live() {
            self.subs.expiries.insert((s.expiry_deadline(), h), ());
        }
        match &s.phase {
            Phase::Pending { wait, .. } => match *wait {
                Wait::Socket => {}
                Wait::Slot => {
                    self.subs.queue.insert(h, ());
                }
                Wait::RetryAt(t) => {
                    self.subs.retries.insert((t, h), ());
                }
                Wait::Answer(_) => self.subs.inflight += 1,
            },
            Phase::Active { refresh, .. } => {
                let refresh = *refresh;
                self.index_refresh(h, refresh);
            }
            Phase::Failed(_) => {}
        }
    }

    fn index_refresh(&mut self, h: SubHandle, refresh: Refresh) {
        match refresh {
            Refresh::Planned(t) => {
                self.pacing.calendar.insert((t, h), ());
            }
            Refresh::Ready { key, .. } => {
                self.pacing.ready.insert((key, h), ());
            }
            Refresh::Stopped | Refresh::InFlight(_) => {}
        }
    }

    /// Sets when the device drops the subscription without a refresh. Only through here while
    /// it is live, so its place in the expiry index stays right.
    pub(super) fn set_expiry(&mut self, h: SubHandle, expires_at: u64) {
        if let Some(lifetime) = self.subs.map.get(&h).map(|s| s.lifetime_ms) {
            self.set_lifetime(h, lifetime, expires_at);
        }
    }

    /// As [`Engine::set_expiry`], with a new lifetime (which the expiry margin depends on).
    pub(super) fn set_lifetime(&mut self, h: SubHandle, lifetime_ms: u64, expires_at: u64) {
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        let live = s.phase.live();
        if live {
            self.subs.expiries.remove(&(s.expiry_deadline(), h));
        }
        s.lifetime_ms = lifetime_ms;
        s.expires_at = expires_at;
        if live {
            self.subs.expiries.insert((s.expiry_deadline(), h), ());
        }
    }

    /// Timer: active subscriptions whose refreshes did not get through before their expiry
    /// (a throttling storm, a device that answers nothing useful). The device has dropped them
    /// or is about to, and says nothing: each gets its `Expired` gap now and is made again as
    /// soon as the device lets it, instead of being shown as live with data that no longer
    /// comes.
    pub(super) fn expire_lapsed(&mut self, now: u64) {
        while let Some(&(t, h)) = self.subs.expiries.first_key() {
            if t > now {
                break;
            }
            if let Some(s) = self.subs.map.get_mut(&h) {
                s.counters.expiries += 1;
            }
            self.interrupt(h, GapReason::Expired);
            self.subs.expiries.remove(&(t, h));
            self.queue_subscribe(h);
        }
    }

    /// Leaves the current phase for a pending one waiting for the socket; with `forget`, its
    /// ids stop routing pushes. Returns the old phase.
    pub(super) fn make_pending(
        &mut self,
        h: SubHandle,
        resume: Resume,
        forget: bool,
    ) -> Option<Phase> {
        let old = self.set_phase(
            h,
            Phase::Pending {
                wait: Wait::Socket,
                resume,
            },
        )?;
        if forget {
            self.forget_ids(h, &old);
        }
        Some(old)
    }

    fn forget_ids(&mut self, h: SubHandle, old: &Phase) {
        if let Phase::Active { id, .. } = old {
            self.subs.ids.remove(id);
        }
        if let Some(s) = self.subs.map.get_mut(&h) {
            s.overlap = None;
            if let Some(id) = s.old_id.take() {
                self.subs.ids.remove(&id);
            }
        }
    }

    /// The stream of `h` is interrupted: it waits for the socket again and its consumer gets
    /// the one gap of this disruption (none before its first subscribe, none twice).
    pub(super) fn interrupt(&mut self, h: SubHandle, reason: GapReason) {
        let Some(s) = self.subs.map.get(&h) else {
            return;
        };
        let resume = s.phase.resume_after(reason);
        self.make_pending(h, resume, true);
        self.gap(h, reason);
    }

    /// A move whose old stream ended before the new one took over (the retiring socket
    /// closed): a disruption after all, with its one gap. The subscribe in flight stays.
    pub(super) fn break_move(&mut self, h: SubHandle, reason: GapReason) {
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        let key = (s.expiry_deadline(), h);
        if let Phase::Pending { resume, .. } = &mut s.phase {
            if *resume == Resume::Move {
                self.subs.expiries.remove(&key);
                *resume = Resume::After {
                    reason,
                    gap_sent: false,
                };
            }
        }
        self.gap(h, reason);
    }

    /// Sends the gap of a pending subscription, once per disruption.
    pub(super) fn gap(&mut self, h: SubHandle, reason: GapReason) {
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        let Phase::Pending {
            resume: Resume::After { gap_sent, .. },
            ..
        } = &mut s.phase
        else {
            return;
        };
        if *gap_sent {
            return;
        }
        *gap_sent = true;
        s.counters.gaps += 1;
        let pull = s.opts.pull;
        self.route(pull, Pulled::Gap { handle: h, reason });
    }

    /// A subscription that waits for the socket goes in line for a subscribe slot.
    pub(super) fn queue_subscribe(&mut self, h: SubHandle) {
        if let Some(Phase::Pending {
            wait: Wait::Socket,
            resume,
        }) = self.subs.map.get(&h).map(|s| &s.phase)
        {
            let resume = *resume;
            self.set_phase(
                h,
                Phase::Pending {
                    wait: Wait::Slot,
                    resume,
                },
            );
        }
    }

    /// Gives a subscription up for good.
    pub(super) fn fail_sub(&mut self, h: SubHandle, error: EngineError) {
        self.answer_refreshes(h, Err(error.clone()));
        if let Some(old) = self.set_phase(h, Phase::Failed(error.clone())) {
            self.forget_ids(h, &old);
        }
        self.events
            .push_back(Event::SubscribeFailed { handle: h, error });
        self.check_rotation_done();
    }
}
