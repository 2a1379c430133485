//! A reply slot: how an engine event, or a timer, settles a promise that waits for it. The
//! promise's future waits on the [`Answer`]; whoever learns the outcome sends it through a
//! [`Reply`].
//!
//! Sending never calls into JavaScript (it only wakes the promise's task, which settles the
//! promise in a later microtask), so it is safe under any `RefCell` borrow and from inside the
//! engine's event loop.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::error::Failure;

enum State<T> {
    Waiting(Option<Waker>),
    Sent(Result<T, Failure>),
    Taken,
}

struct Slot<T> {
    state: RefCell<State<T>>,
    senders: Cell<usize>,
}

/// The sending side. Clones share the slot; the first send wins and later ones are ignored (a
/// `getevent` timeout after the data came, say).
pub(crate) struct Reply<T>(Rc<Slot<T>>);

/// The waiting side: a future of what the first [`Reply::send`] sent.
pub(crate) struct Answer<T>(Rc<Slot<T>>);

pub(crate) fn reply<T>() -> (Reply<T>, Answer<T>) {
    let slot = Rc::new(Slot {
        state: RefCell::new(State::Waiting(None)),
        senders: Cell::new(1),
    });
    (Reply(slot.clone()), Answer(slot))
}

impl<T> Reply<T> {
    pub(crate) fn send(&self, result: Result<T, Failure>) {
        let waker = {
            let mut state = self.0.state.borrow_mut();
            let State::Waiting(waker) = &mut *state else {
                return;
            };
            let waker = waker.take();
            *state = State::Sent(result);
            waker
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether something was sent already.
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(*self.0.state.borrow(), State::Waiting(_))
    }
}

impl<T> Clone for Reply<T> {
    fn clone(&self) -> Self {
        self.0.senders.set(self.0.senders.get() + 1);
        Reply(self.0.clone())
    }
}

impl<T> Drop for Reply<T> {
    /// The last sender gone without a word (a `refresh()` of a subscription closed meanwhile):
    /// the promise stays pending for good. Dropping the waker frees the waiting task, which
    /// holds the slot, so nothing is left behind.
    fn drop(&mut self) {
        let left = self.0.senders.get() - 1;
        self.0.senders.set(left);
        if left == 0 {
            let waker = match &mut *self.0.state.borrow_mut() {
                State::Waiting(w) => w.take(),
                _ => None,
            };
            drop(waker);
        }
    }
}

impl<T> Future for Answer<T> {
    type Output = Result<T, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.0.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Sent(result) => Poll::Ready(result),
            State::Waiting(_) if self.0.senders.get() > 0 => {
                *state = State::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
            // Nobody can send any more (see `Drop for Reply`): keep no waker, so nothing holds
            // the task.
            State::Waiting(_) => {
                *state = State::Waiting(None);
                Poll::Pending
            }
            State::Taken => Poll::Pending,
        }
    }
}
