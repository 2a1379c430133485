//! Socket input the shell has not yet handed to the engine: a large text frame being copied into
//! wasm memory a piece per task, and whatever arrived behind it, kept in arrival order.

use std::collections::VecDeque;

use js_sys::JsString;

use super::socket::{SocketEvent, LARGE_UNITS};
use crate::engine::SocketId;

/// One queued socket input.
enum Incoming {
    /// A large text frame: `done` UTF-16 units of `text` are already in `buf`.
    Text {
        text: JsString,
        done: u32,
        buf: String,
    },
    Event(SocketEvent),
}

impl Incoming {
    fn of(ev: SocketEvent) -> Incoming {
        match ev {
            SocketEvent::Large(text) => Incoming::Text {
                text,
                done: 0,
                buf: String::new(),
            },
            ev => Incoming::Event(ev),
        }
    }
}

/// What [`Inbox::take`] found at the head of the queue.
pub(crate) enum Taken {
    /// An input to hand to the engine now; the task may take the next one too.
    Input(SocketId, SocketEvent),
    /// One piece of a large frame was copied in, the frame itself once complete: that is this
    /// task's share of the copying, so the caller yields before taking more.
    Piece(Option<(SocketId, SocketEvent)>),
}

#[derive(Default)]
pub(crate) struct Inbox {
    queue: VecDeque<(SocketId, Incoming)>,
}

impl Inbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    /// Queues an input behind the others.
    pub(crate) fn push_back(&mut self, id: SocketId, ev: SocketEvent) {
        self.queue.push_back((id, Incoming::of(ev)));
    }

    /// Queues an input that is due before everything queued.
    pub(crate) fn push_front(&mut self, id: SocketId, ev: SocketEvent) {
        self.queue.push_front((id, Incoming::of(ev)));
    }

    /// Takes the head input, copying in one piece (of [`LARGE_UNITS`]) when it is a large frame.
    pub(crate) fn take(&mut self) -> Option<Taken> {
        let (id, inc) = self.queue.pop_front()?;
        let (text, done, mut buf) = match inc {
            Incoming::Event(ev) => return Some(Taken::Input(id, ev)),
            Incoming::Text { text, done, buf } => (text, done, buf),
        };
        let len = text.length();
        let mut end = done.saturating_add(LARGE_UNITS).min(len);
        // Never split a surrogate pair between two pieces.
        if end < len && (0xD800..0xDC00).contains(&(text.char_code_at(end - 1) as u32)) {
            end -= 1;
        }
        buf.push_str(&String::from(text.slice(done, end)));
        if end < len {
            let rest = Incoming::Text {
                text,
                done: end,
                buf,
            };
            self.queue.push_front((id, rest));
            Some(Taken::Piece(None))
        } else {
            Some(Taken::Piece(Some((id, SocketEvent::Message(Some(buf))))))
        }
    }
}
