//! Subscriptions and their pushes: adding and refreshing one, applying writes and deletes to
//! the tree, and the frames each change becomes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{cap, Out, State, Sub};
use crate::catalog::Catalog;
use crate::mit::{Change, InNode, Writer};
use crate::query::Query;
use crate::render::{push_frame, Format, Node};
use crate::Flavor;

impl State {
    pub fn sub_base(&self) -> u64 {
        match self.flavor {
            Flavor::Apic => 72_057_598_349_803_562,
            Flavor::Nxos => 18_374_686_685_813_276_673,
        }
    }

    pub fn add_sub(
        &mut self,
        sid: u64,
        query: Query,
        format: Format,
        lifetime: Duration,
        now: Instant,
    ) -> u64 {
        let lifetime = cap(lifetime);
        let id = self.sub_base() + self.next_sub;
        self.next_sub += 1;
        self.subs.insert(
            id,
            Sub {
                id,
                session: sid,
                query,
                format,
                lifetime,
                expires: now + lifetime,
                silenced: false,
                pushes: 0,
            },
        );
        self.counters.subscribes += 1;
        id
    }

    pub fn refresh_sub(&mut self, sid: u64, id: u64, now: Instant) -> bool {
        match self.subs.get_mut(&id) {
            Some(s) if s.session == sid && s.expires > now => {
                s.expires = now + s.lifetime;
                true
            }
            _ => false,
        }
    }

    /// Apply a write body to the tree and push its changes; a bad body gives the 400 text (and
    /// pushes nothing). Returns how many objects changed.
    pub fn write(
        &mut self,
        cat: &Catalog,
        url_dn: &str,
        root: &InNode,
        now: Instant,
    ) -> Result<usize, String> {
        let mut w = Writer {
            mit: &mut self.mit,
            clock: &mut self.clock,
            cat,
            flavor: self.flavor,
            changes: Vec::new(),
        };
        w.apply(url_dn, root)?;
        let changes = w.changes;
        let n = changes.len();
        self.dispatch(cat, changes, now);
        Ok(n)
    }

    /// Delete an object and its subtree and push the deletions. Returns how many went.
    pub fn delete(&mut self, cat: &Catalog, dn: &str, now: Instant) -> usize {
        let changes = self.mit.delete(dn, &mut self.clock);
        let n = changes.len();
        self.dispatch(cat, changes, now);
        n
    }

    /// Apply pushes for changes that already happened in the tree.
    pub fn dispatch(&mut self, cat: &Catalog, changes: Vec<Change>, now: Instant) {
        self.counters.changes += changes.len() as u64;
        if let Some((n, buf, _)) = &mut self.faults.batch {
            buf.extend(changes);
            if buf.len() >= *n {
                if let Some((_, v, _)) = self.faults.batch.take() {
                    self.deliver(cat, &v, now);
                }
            }
            return;
        }
        for ch in changes {
            self.deliver(cat, std::slice::from_ref(&ch), now);
        }
    }

    /// The frames for a group of changes: per session and encoding, consecutive changes that
    /// match the same set of that session's subscriptions go together in one frame listing those
    /// ids, and the frames keep the order of the changes. A change matching several
    /// subscriptions arrives once with all their ids; a frame never lists an id whose query does
    /// not match every object in it; a later change never overtakes an earlier one (filters
    /// make two changes of one object match different sets).
    pub(super) fn deliver(&mut self, cat: &Catalog, group: &[Change], now: Instant) {
        // (session, xml, ids) -> item indexes, in the order of the group.
        let mut matches: BTreeMap<(u64, bool, usize), Vec<u64>> = BTreeMap::new();
        for sub in self.subs.values() {
            if sub.silenced || sub.expires <= now {
                continue;
            }
            for (i, ch) in group.iter().enumerate() {
                if sub.query.matches(ch, &self.mit, cat) {
                    let ids = matches
                        .entry((sub.session, sub.format == Format::Xml, i))
                        .or_default();
                    if !ids.contains(&sub.id) {
                        ids.push(sub.id);
                    }
                }
            }
        }
        // `matches` iterates by session, encoding, then change: runs of one id set become frames.
        // (session, xml, ids) and the indexes of the changes in that frame.
        type Frame = ((u64, bool, Vec<u64>), Vec<usize>);
        let mut plan: Vec<Frame> = Vec::new();
        for ((sid, xml, i), mut ids) in matches {
            ids.sort_unstable();
            let key = (sid, xml, ids);
            match plan.last_mut() {
                Some((k, items)) if *k == key => items.push(i),
                _ => plan.push((key, vec![i])),
            }
        }
        let mut slow = Vec::new();
        for ((sid, xml, ids), mut items) in plan {
            let Some(sess) = self.sessions.get(&sid) else {
                continue;
            };
            let Some(sock) = &sess.socket else { continue };
            items.sort_unstable();
            let enc = if xml { Format::Xml } else { Format::Json };
            if self.faults.lose > 0 {
                self.faults.lose -= 1;
                self.counters.frames_lost += 1;
                continue;
            }
            let strip = self.faults.strip_status > 0;
            if strip {
                self.faults.strip_status -= 1;
            }
            let nodes: Vec<Node> = items
                .iter()
                .map(|&i| {
                    let mut attrs = group[i].push_attrs();
                    if strip {
                        attrs.remove("status");
                    }
                    Node {
                        class: group[i].class.clone(),
                        attrs,
                        children: vec![],
                    }
                })
                .collect();
            let id_strs: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let frame = push_frame(enc, &id_strs, &nodes);
            let copies = if self.faults.duplicate > 0 {
                self.faults.duplicate -= 1;
                2
            } else {
                1
            };
            let mut ok = true;
            for _ in 0..copies {
                if sock.tx.try_send(Out::Text(frame.clone())).is_err() {
                    ok = false;
                    break;
                }
                self.counters.frames_sent += 1;
                self.counters.objects_pushed += nodes.len() as u64;
            }
            if ok {
                for id in &ids {
                    if let Some(s) = self.subs.get_mut(id) {
                        s.pushes += 1;
                    }
                }
            } else {
                slow.push(sid);
            }
        }
        for sid in slow {
            // A client that cannot keep up loses its socket rather than growing our memory.
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(sock) = s.socket.take() {
                    let _ = sock.tx.try_send(Out::Abort);
                }
            }
            self.subs.retain(|_, sub| sub.session != sid);
            self.counters.sockets_dropped_slow += 1;
        }
    }
}
