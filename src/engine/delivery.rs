//! From socket frame to consumer: the backlog of large frames delivered in slices, frames that
//! beat their subscribe answer, de-duplication across a resubscribe, the store-mode merge,
//! fan-out by subscription id, and the bounded pull queue.
//!
//! One parse per frame, then each object goes to every subscription the frame names, once.
//! Order is kept per subscription, and nothing is delivered between a gap and the resubscribe
//! that ends it.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use crate::protocol::{
    parse_notification, Applied, EntryError, MalformedError, Mo, NotificationReader, Status, Store,
};
use crate::vecmap::VecMap;

use super::reconcile::{dedup_frame, fingerprint};
use super::subs::Phase;
use super::{Engine, EngineError, Event, GapReason, Pulled, SocketId, SubHandle};

/// Frames naming an id we do not know yet are kept this many at most while a subscribe is in
/// flight: the device may push for a new subscription before its answer reaches us.
const EARLY_FRAME_LIMIT: usize = 256;
/// Fingerprints remembered per subscription during an overlap.
const OVERLAP_LIMIT: usize = 4096;

/// Pushes delivered under a subscription's old id, remembered so that the same objects arriving
/// under its new id are not delivered twice.
pub(super) struct Overlap {
    pub(super) seen: HashSet<u64>,
    /// The dns of those pushes: in store mode a rotation's snapshot does not override them.
    pub(super) dns: HashSet<String>,
    /// Set when the new id took over; after this the overlap guard is dropped.
    pub(super) until: Option<u64>,
}

pub(super) struct Early {
    at: u64,
    ids: Vec<String>,
    mos: Vec<Mo>,
}

/// A frame received but not yet fully delivered (see [`Engine::has_backlog`]).
pub(super) struct Inbound {
    reader: NotificationReader,
    /// Fingerprints of the objects handed out so far: repeats are dropped across slices as
    /// within one unsliced frame.
    seen: HashSet<u64>,
    /// The first slice counts the frame in the per-subscription counters.
    counted: bool,
    rejected: usize,
    first_rejected: Option<EntryError>,
    delivered: usize,
}

#[derive(Default)]
pub(super) struct Delivery {
    pub(super) pull: VecDeque<Pulled>,
    /// Subscriptions whose pull entries were dropped: each owes its consumer a gap.
    pub(super) pull_overflow: VecMap<SubHandle, ()>,
    pub(super) early: VecDeque<Early>,
    /// Frames waiting to be delivered, in arrival order.
    pub(super) inbox: VecDeque<Inbound>,
}

impl Delivery {
    /// Timer: early frames nobody claimed. With no subscribe in flight, none can be claimed.
    #[inline]
    pub(super) fn early_deadline(&self, inflight: usize, timeout: u64) -> Option<u64> {
        let e = self.early.front()?;
        Some(if inflight > 0 { e.at + timeout } else { e.at })
    }
}

impl Engine {
    /// A frame; false if it came on a socket that no longer counts.
    pub(super) fn on_socket_text(&mut self, sock: SocketId, text: Cow<'_, str>, now: u64) -> bool {
        let current = matches!(&self.conn.sock, Some(s) if s.id == sock && s.open);
        if !current && self.session.rotation.old_socket() != Some(sock) {
            return false;
        }
        self.health.last_heard = now;
        self.stats.frames += 1;
        let reader = if NotificationReader::streams(&text) {
            // Only the envelope is read now: this input already paid for taking in the text,
            // so the first slice waits for the next call.
            NotificationReader::open_owned(text.into_owned())
        } else {
            match parse_notification(&text) {
                Ok(n)
                    if self.delivery.inbox.is_empty()
                        && n.mos.len() <= self.cfg.slice_objects.max(1) =>
                {
                    // The common case: nothing queued, and small enough to deliver at once.
                    self.report_rejected(n.rejected.len(), n.rejected.first(), n.mos.len());
                    let mos = dedup_frame(n.mos);
                    self.fan_out(n.subscription_ids, mos, true, now);
                    return true;
                }
                other => other.map(NotificationReader::from_parsed),
            }
        };
        match reader {
            Ok(reader) => {
                let streaming = reader.is_streaming();
                self.delivery.inbox.push_back(Inbound {
                    reader,
                    seen: HashSet::new(),
                    counted: false,
                    rejected: 0,
                    first_rejected: None,
                    delivered: 0,
                });
                if !streaming {
                    self.work(now);
                }
            }
            Err(e) => {
                self.stats.malformed_frames += 1;
                self.events.push_back(Event::Error(e.into()));
            }
        }
        true
    }

    /// Delivers up to one slice's worth of objects from the backlog.
    pub(super) fn work(&mut self, now: u64) {
        let mut budget = self.cfg.slice_objects.max(1);
        while budget > 0 {
            let Some(f) = self.delivery.inbox.front_mut() else {
                break;
            };
            let slice = f.reader.next_slice(budget);
            let taken = slice.mos.len() + slice.rejected.len();
            budget = budget.saturating_sub(taken.max(1));
            f.rejected += slice.rejected.len();
            if f.first_rejected.is_none() {
                f.first_rejected = slice.rejected.into_iter().next();
            }
            f.delivered += slice.mos.len();
            let count = !std::mem::replace(&mut f.counted, true);
            let ids = f.reader.subscription_ids().to_vec();
            let mut seen = std::mem::take(&mut f.seen);
            let done = f.reader.is_done();
            let mos: Vec<Mo> = if done && count {
                // The whole frame in one slice: the usual per-frame de-duplication.
                dedup_frame(slice.mos)
            } else {
                slice
                    .mos
                    .into_iter()
                    .filter(|m| seen.insert(fingerprint(m)))
                    .collect()
            };
            if let Some(f) = self.delivery.inbox.front_mut() {
                f.seen = seen;
            }
            if !mos.is_empty() || count {
                self.fan_out(ids, mos, count, now);
            }
            if let Some(e) = slice.error {
                self.stats.malformed_frames += 1;
                self.events.push_back(Event::Error(e.into()));
            }
            if done {
                if let Some(f) = self.delivery.inbox.pop_front() {
                    self.report_rejected(f.rejected, f.first_rejected.as_ref(), f.delivered);
                }
            }
        }
    }

    /// Delivers the whole backlog now (before a disruption, see [`Engine::has_backlog`]).
    pub(super) fn flush_backlog(&mut self, now: u64) {
        while !self.delivery.inbox.is_empty() {
            self.work(now);
        }
    }

    /// One `Error` for the unreadable entries of a frame.
    fn report_rejected(&mut self, n: usize, first: Option<&EntryError>, read: usize) {
        let Some(first) = first else {
            return;
        };
        self.stats.malformed_frames += 1;
        let detail = format!(
            "{} of {} entries unreadable (first at index {}: {})",
            n,
            n + read,
            first.index,
            first.reason
        );
        self.events
            .push_back(Event::Error(EngineError::Malformed(MalformedError {
                what: "notification",
                detail,
            })));
    }

    /// One slice of a frame (de-duplicated already) to every subscription it names, once each;
    /// `count` counts the frame (once per frame, however many slices it has).
    fn fan_out(&mut self, ids: Vec<String>, mos: Vec<Mo>, count: bool, now: u64) {
        let mut targets: Vec<(SubHandle, bool)> = Vec::with_capacity(ids.len());
        let mut unknown: Vec<String> = Vec::new();
        for id in ids {
            match self.subs.ids.get(&id) {
                Some(&h) => {
                    if !targets.iter().any(|(t, _)| *t == h) {
                        let via_old = self.subs.map.get(&h).and_then(|s| s.old_id.as_deref())
                            == Some(id.as_str());
                        targets.push((h, via_old));
                    }
                }
                None => unknown.push(id),
            }
        }
        if !unknown.is_empty() {
            if self.subs.inflight > 0 {
                // Perhaps the answer naming this id is still on its way: keep it briefly.
                if self.delivery.early.len() >= EARLY_FRAME_LIMIT {
                    self.delivery.early.pop_front();
                    self.stats.unknown_id_frames += 1;
                }
                self.delivery.early.push_back(Early {
                    at: now,
                    ids: unknown,
                    mos: mos.clone(),
                });
            } else {
                self.stats.unknown_id_frames += 1;
            }
        }
        let n = targets.len();
        let mut mos = Some(mos);
        for (i, (h, via_old)) in targets.into_iter().enumerate() {
            let batch = if i + 1 == n {
                mos.take().unwrap_or_default()
            } else {
                mos.as_ref().cloned().unwrap_or_default()
            };
            self.deliver(h, batch, via_old, count, now);
        }
    }

    /// Delivers pushes to one subscription: overlap de-duplication, store merge, routing.
    /// `count`: this delivery counts a frame (the first slice of a sliced frame does).
    fn deliver(&mut self, h: SubHandle, mut mos: Vec<Mo>, via_old: bool, count: bool, now: u64) {
        let Some(s) = self.subs.map.get_mut(&h) else {
            return;
        };
        if count {
            s.counters.frames += 1;
        }
        if s.phase.in_gap() || matches!(s.phase, Phase::Failed(_)) {
            s.counters.drops += mos.len() as u64;
            return;
        }
        let before = mos.len();
        if let Some(o) = s.overlap.as_mut() {
            match o.until {
                None if via_old => {
                    for m in &mos {
                        if o.seen.len() < OVERLAP_LIMIT {
                            o.seen.insert(fingerprint(m));
                            o.dns.insert(m.dn.clone());
                        }
                    }
                }
                Some(until) if until > now && !via_old => {
                    mos.retain(|m| !o.seen.remove(&fingerprint(m)));
                }
                Some(until) if until <= now => s.overlap = None,
                _ => {}
            }
        }
        let out = match s.store.as_mut() {
            None => mos,
            Some(store) => merge(store, mos),
        };
        s.counters.drops += (before - out.len().min(before)) as u64;
        if out.is_empty() {
            return;
        }
        s.counters.mos += out.len() as u64;
        let pull = s.opts.pull;
        self.route(
            pull,
            Pulled::Mos {
                handle: h,
                mos: out,
            },
        );
    }

    /// Pushes that arrived for `id` before its subscribe answer, delivered after the snapshot.
    pub(super) fn replay_early(&mut self, h: SubHandle, id: &str, now: u64) {
        if self.delivery.early.is_empty() {
            return;
        }
        let mut batches = Vec::new();
        for e in self.delivery.early.iter_mut() {
            if let Some(pos) = e.ids.iter().position(|x| x == id) {
                e.ids.remove(pos);
                batches.push(if e.ids.is_empty() {
                    std::mem::take(&mut e.mos)
                } else {
                    e.mos.clone()
                });
            }
        }
        self.delivery.early.retain(|e| !e.ids.is_empty());
        // A push for the new id describes a change made after the subscription existed, so at
        // or after its snapshot: apply them all, in order. (Comparing `modTs` is no test:
        // many classes answer `modTs: "never"`, and a later push would have been dropped.)
        for b in batches {
            self.deliver(h, b, false, true, now);
        }
    }

    /// Timer: early frames nobody claimed are counted as unknown and dropped.
    pub(super) fn drop_unclaimed_early(&mut self, now: u64) {
        while let Some(e) = self.delivery.early.front() {
            if e.at + self.cfg.request_timeout_ms > now && self.subs.inflight > 0 {
                break;
            }
            self.delivery.early.pop_front();
            self.stats.unknown_id_frames += 1;
        }
    }

    /// To the event queue, or to the bounded pull queue. When that is full its oldest entries
    /// go, and their subscriptions owe a `QueueOverflow` gap, which comes before anything else.
    pub(super) fn route(&mut self, pull: bool, item: Pulled) {
        if !pull {
            self.events.push_back(match item {
                Pulled::Mos { handle, mos } => Event::Deliver { handle, mos },
                Pulled::Gap { handle, reason } => Event::Gap { handle, reason },
            });
            return;
        }
        let cap = self.cfg.queue_capacity.max(1);
        while self.delivery.pull.len() >= cap {
            let Some(dropped) = self.delivery.pull.pop_front() else {
                break;
            };
            let h = match &dropped {
                Pulled::Mos { handle, .. } | Pulled::Gap { handle, .. } => *handle,
            };
            if let Some(s) = self.subs.map.get_mut(&h) {
                match &dropped {
                    Pulled::Mos { mos, .. } => {
                        s.counters.drops += mos.len() as u64;
                        s.counters.mos = s.counters.mos.saturating_sub(mos.len() as u64);
                    }
                    Pulled::Gap { .. } => s.counters.gaps = s.counters.gaps.saturating_sub(1),
                }
            }
            self.delivery.pull_overflow.insert(h, ());
        }
        if let Pulled::Gap { handle, .. } = &item {
            if self.delivery.pull_overflow.contains_key(handle) {
                // An overflow gap is already waiting for this subscription and comes first.
                if let Some(s) = self.subs.map.get_mut(handle) {
                    s.counters.gaps = s.counters.gaps.saturating_sub(1);
                }
                return;
            }
        }
        self.delivery.pull.push_back(item);
    }

    pub(super) fn pop_pulled(&mut self) -> Option<Pulled> {
        if let Some((h, ())) = self.delivery.pull_overflow.pop_first() {
            if let Some(s) = self.subs.map.get_mut(&h) {
                s.counters.gaps += 1;
            }
            return Some(Pulled::Gap {
                handle: h,
                reason: GapReason::QueueOverflow,
            });
        }
        self.delivery.pull.pop_front()
    }
}

/// Store mode: merges pushes into the store and returns what to deliver, as full objects. A
/// delete push is sparse, so the last full object held is delivered instead; pushes that change
/// nothing are not delivered.
fn merge(store: &mut Store, mos: Vec<Mo>) -> Vec<Mo> {
    let mut out = Vec::with_capacity(mos.len());
    for m in mos {
        let last = if m.status == Status::Deleted {
            store.get(&m.dn).cloned()
        } else {
            None
        };
        match store.apply(&m) {
            Applied::Inserted => {
                let mut full = store.get(&m.dn).cloned().unwrap_or(m);
                full.status = Status::Created;
                out.push(full);
            }
            Applied::Updated(_) => {
                if let Some(full) = store.get(&m.dn) {
                    let mut full = full.clone();
                    full.status = if m.status == Status::Created {
                        Status::Created
                    } else {
                        Status::Modified
                    };
                    out.push(full);
                }
            }
            Applied::Removed => {
                let mut gone = last.unwrap_or(m);
                gone.status = Status::Deleted;
                out.push(gone);
            }
            Applied::Unchanged => {}
        }
    }
    out
}
