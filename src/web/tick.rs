//! One call of a function in a later task of the event loop, after everything already queued
//! (input, rendering, timers, other messages) has had its turn.
//!
//! A `MessageChannel` message where the runtime has one (browsers, workers, Deno, Node, workerd):
//! it runs as soon as the event loop is free, where a `setTimeout(0)` that is re-armed from its
//! own callback is clamped to 4 ms after a few rounds in browsers. Otherwise `setTimeout(0)`.
//! Dropping a `Tick` cancels it and releases the channel (in Node, an open port with a listener
//! would keep the process alive).

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageChannel, MessagePort};

#[must_use = "dropping a Tick cancels it"]
pub(crate) enum Tick {
    Channel {
        ports: (MessagePort, MessagePort),
        _callback: Closure<dyn FnMut()>,
    },
    Timer {
        _timeout: Timeout,
    },
}

impl Tick {
    pub(crate) fn new(f: impl FnOnce() + 'static) -> Tick {
        let f = Rc::new(Cell::new(Some(f)));
        let run = {
            let f = f.clone();
            move || {
                if let Some(f) = f.take() {
                    f()
                }
            }
        };
        let Ok(ch) = MessageChannel::new() else {
            return Tick::Timer {
                _timeout: Timeout::new(0, run),
            };
        };
        let callback = Closure::<dyn FnMut()>::new(run);
        let (rx, tx) = (ch.port1(), ch.port2());
        rx.set_onmessage(Some(callback.as_ref().unchecked_ref()));
        if tx.post_message(&JsValue::UNDEFINED).is_err() {
            rx.set_onmessage(None);
            return Tick::Timer {
                _timeout: Timeout::new(0, move || {
                    if let Some(f) = f.take() {
                        f()
                    }
                }),
            };
        }
        Tick::Channel {
            ports: (rx, tx),
            _callback: callback,
        }
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        if let Tick::Channel {
            ports: (rx, tx), ..
        } = self
        {
            rx.set_onmessage(None);
            rx.close();
            tx.close();
        }
    }
}
