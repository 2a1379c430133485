//! The pull side of a channel: `getevent()` calls and async iteration wait here and are fed, in
//! order, from the engine's bounded pull queue.

use std::collections::VecDeque;

use wasm_bindgen::JsValue;

use super::reply::Reply;
use super::shapes::{iter_done, iter_value, pulled_js};
use crate::engine::{Pulled, SubHandle};
use crate::vecmap::VecMap;
use crate::web::shell::Shell;

#[derive(Default)]
pub(crate) struct Pull {
    /// Entries taken from the engine's pull queue while looking for another subscription's.
    parked: VecDeque<Pulled>,
    /// `getevent()` calls waiting for an entry of any subscription. One that timed out is settled
    /// already and is skipped.
    getevent: VecDeque<Reply<JsValue>>,
    /// `next()` calls of async iteration waiting, per subscription.
    iter: VecMap<SubHandle, VecDeque<Reply<JsValue>>>,
}

fn handle_of(p: &Pulled) -> SubHandle {
    match p {
        Pulled::Mos { handle, .. } | Pulled::Gap { handle, .. } => *handle,
    }
}

impl Pull {
    /// The next entry (for one subscription, or any), parking others met on the way.
    pub(crate) fn take(&mut self, shell: &Shell, only: Option<SubHandle>) -> Option<Pulled> {
        let pos = self
            .parked
            .iter()
            .position(|p| only.is_none_or(|h| handle_of(p) == h));
        if let Some(i) = pos {
            return self.parked.remove(i);
        }
        loop {
            let p = shell.read_mut(|e| e.next_pulled())?;
            match only {
                Some(h) if handle_of(&p) != h => self.parked.push_back(p),
                _ => return Some(p),
            }
        }
    }

    /// A `getevent()` waits for the next entry of any subscription.
    pub(crate) fn wait_any(&mut self, reply: Reply<JsValue>) {
        // Timed-out calls leave the queue here too, so a loop of short `getevent`s on a quiet
        // channel does not grow it.
        self.getevent.retain(|r| !r.is_settled());
        self.getevent.push_back(reply);
    }

    /// A `next()` waits for the next entry of its subscription.
    pub(crate) fn wait_for(&mut self, handle: SubHandle, reply: Reply<JsValue>) {
        match self.iter.get_mut(&handle) {
            Some(q) => q.push_back(reply),
            None => {
                self.iter.insert(handle, VecDeque::from([reply]));
            }
        }
    }

    /// Gives the waiting calls what the engine queued, oldest call first.
    pub(crate) fn feed(&mut self, shell: &Shell) {
        loop {
            while self.getevent.front().is_some_and(Reply::is_settled) {
                self.getevent.pop_front();
            }
            if self.getevent.is_empty() {
                break;
            }
            let Some(p) = self.take(shell, None) else {
                break;
            };
            if let Some(w) = self.getevent.pop_front() {
                w.send(Ok(pulled_js(&p)));
            }
        }
        let handles: Vec<SubHandle> = self.iter.keys().copied().collect();
        for h in handles {
            while self.iter.get(&h).is_some_and(|q| !q.is_empty()) {
                let Some(p) = self.take(shell, Some(h)) else {
                    break;
                };
                if let Some(w) = self.iter.get_mut(&h).and_then(VecDeque::pop_front) {
                    w.send(Ok(iter_value(pulled_js(&p))));
                }
            }
        }
    }

    /// A subscription was closed: its iteration ends.
    pub(crate) fn end(&mut self, handle: SubHandle) {
        for w in self.iter.remove(&handle).into_iter().flatten() {
            w.send(Ok(iter_done()));
        }
    }

    /// The channel or the connection ended: `getevent()` calls get `null`, iterations end.
    pub(crate) fn end_all(&mut self) {
        for w in self.getevent.drain(..) {
            w.send(Ok(JsValue::NULL));
        }
        while let Some((_, q)) = self.iter.pop_first() {
            for w in q {
                w.send(Ok(iter_done()));
            }
        }
    }
}
