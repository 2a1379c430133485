//! The device WebSocket, made with the runtime's global `WebSocket` or a constructor of the same
//! interface the application gave (the `ws` package on Node.js). A `Socket` owns its four event
//! closures; dropping it detaches them first and then closes the socket, so no event can reach a
//! dropped closure.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// What the socket reports, in the order it happens.
pub(crate) enum SocketEvent {
    Open,
    /// A text frame. Binary frames are not part of the protocol and are reported as `None`.
    Message(Option<String>),
    /// A text frame longer than [`LARGE_UNITS`], still a JavaScript string: copying it into
    /// wasm memory at once would itself be a long task, so the shell takes it in by pieces.
    Large(js_sys::JsString),
    /// Closed (or failed). `code` is the close code when the runtime gave one.
    Closed {
        code: Option<u16>,
    },
}

/// The runtime's global `WebSocket` constructor, if it has one (Node.js 20 has none without
/// `--experimental-websocket`).
pub(crate) fn global_constructor() -> Option<js_sys::Function> {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("WebSocket"))
        .ok()?
        .dyn_into()
        .ok()
}

/// The close code of a connection that failed without a close frame (RFC 6455, 7.4.1).
const ABNORMAL_CLOSURE: u16 = 1006;

/// Frames longer than this (UTF-16 units) arrive as [`SocketEvent::Large`]; about 2 ms of copying
/// in a browser.
pub(crate) const LARGE_UNITS: u32 = 1 << 20;

#[must_use = "dropping a Socket closes it"]
pub(crate) struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Socket {
    /// Opens `url` with `ctor`; `on_event` is called for every event until the socket is
    /// dropped. An error event is followed by a close event in every runtime, so errors are
    /// reported through close.
    pub(crate) fn open(
        ctor: &js_sys::Function,
        url: &str,
        on_event: impl Fn(SocketEvent) + 'static,
    ) -> Result<Socket, ()> {
        let args = js_sys::Array::of1(&JsValue::from_str(url));
        let ws: WebSocket = js_sys::Reflect::construct(ctor, &args)
            .map_err(|_| ())?
            .unchecked_into();
        let on_event = std::rc::Rc::new(on_event);
        let f = on_event.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| f(SocketEvent::Open));
        let f = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            f(match e.data().dyn_into::<js_sys::JsString>() {
                Ok(t) if t.length() > LARGE_UNITS => SocketEvent::Large(t),
                Ok(t) => SocketEvent::Message(Some(t.into())),
                Err(_) => SocketEvent::Message(None),
            })
        });
        let f = on_event.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            f(SocketEvent::Closed {
                code: Some(e.code()),
            })
        });
        // Some runtimes fire `error` without a following `close` when the handshake fails. An
        // `error` means the connection failed, whose close code is 1006 (abnormal closure): the
        // one the `close` that usually follows would carry.
        let f = on_event;
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            f(SocketEvent::Closed {
                code: Some(ABNORMAL_CLOSURE),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let _ = self.ws.close();
    }
}
