//! The driver: owns one [`Engine`] and performs its actions on the runtime's `fetch`,
//! `WebSocket` and timers, then reports its events to the JavaScript surface through a
//! [`Listener`].
//!
//! Re-entrancy rule: no `RefCell` borrow is held across an `.await` or a call into JavaScript.
//! Every step borrows the engine, takes one action or event out, releases the borrow, and only
//! then performs it, so a user callback may call back into the package (subscribe, close, ...)
//! from inside a delivery.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use web_sys::AbortController;

use super::clock::{now_ms, wall_ms};
use super::env::{self, EnvEvent, EnvWatch};
use super::http::{fetch_text, Exchange, FetchFailure};
use super::inbox::{Inbox, Taken};
use super::socket::{self, Socket, SocketEvent};
use super::tick::Tick;
use crate::engine::{
    Action, Config, ConnectionState, Engine, Event, HttpRequest, RequestId, SocketId,
    TokenTransport, TransportFailure,
};
use crate::vecmap::VecMap;

/// Receives what the engine reports, outside any borrow.
pub(crate) trait Listener {
    fn on_event(&self, shell: &Rc<Shell>, event: Event);
    /// Called after every pump, when the engine has settled (to feed waiting pull consumers).
    fn after_pump(&self, shell: &Rc<Shell>);
}

pub(crate) struct Shell {
    engine: RefCell<Engine>,
    sockets: RefCell<VecMap<SocketId, Socket>>,
    /// What sockets are made with: the application's constructor, else the global one.
    socket_ctor: RefCell<Option<js_sys::Function>>,
    /// A socket the engine asked for while there was no constructor: opened when one is given
    /// (`new EventChannel(session, { WebSocket })`), forgotten when the engine gives up on it.
    parked_socket: RefCell<Option<(SocketId, String)>>,
    requests: RefCell<VecMap<RequestId, AbortController>>,
    timer: RefCell<Option<(u64, Timeout)>>,
    /// The next slice of the engine's backlog, in a later task (see [`Shell::arm_backlog`]).
    backlog: RefCell<Option<Tick>>,
    /// Socket input not yet given to the engine: a large frame being copied in by pieces, and
    /// whatever arrived behind it (see [`Shell::arm_backlog`]).
    inbox: RefCell<Inbox>,
    env: RefCell<Option<EnvWatch>>,
    listener: RefCell<Option<Rc<dyn Listener>>>,
    with_credentials: bool,
    pumping: Cell<bool>,
    again: Cell<bool>,
    closed: Cell<bool>,
    me: Weak<Shell>,
}

thread_local! {
    /// Every shell that is not shut down. A running connection must not stop because the page
    /// dropped its last reference to the JavaScript objects (their finalizers would otherwise
    /// free the engine and the stream would end without a word): only `close()`, `logout()` or
    /// a terminal failure ends it.
    static LIVE: RefCell<Vec<Rc<Shell>>> = const { RefCell::new(Vec::new()) };
}

impl Shell {
    pub(crate) fn start(config: Config, socket_ctor: Option<js_sys::Function>) -> Rc<Shell> {
        let with_credentials = config.token_transport == TokenTransport::CookieJar;
        let now = now_ms();
        let shell = Rc::new_cyclic(|me| Shell {
            engine: RefCell::new(Engine::new(config, now)),
            sockets: RefCell::new(VecMap::new()),
            socket_ctor: RefCell::new(socket_ctor.or_else(socket::global_constructor)),
            parked_socket: RefCell::new(None),
            requests: RefCell::new(VecMap::new()),
            timer: RefCell::new(None),
            backlog: RefCell::new(None),
            inbox: RefCell::new(Inbox::default()),
            env: RefCell::new(None),
            listener: RefCell::new(None),
            with_credentials,
            pumping: Cell::new(false),
            again: Cell::new(false),
            closed: Cell::new(false),
            me: me.clone(),
        });
        let weak = Rc::downgrade(&shell);
        *shell.env.borrow_mut() = Some(EnvWatch::start(move |ev| {
            if let Some(s) = weak.upgrade() {
                let now = now_ms();
                match ev {
                    EnvEvent::Visible(v) => s.engine.borrow_mut().handle_visibility(v, now),
                    EnvEvent::Online(o) => s.engine.borrow_mut().handle_online(o, now),
                }
                s.pump();
            }
        }));
        if !env::is_visible() {
            shell.engine.borrow_mut().handle_visibility(false, now);
        }
        shell.engine.borrow_mut().handle_wall_clock(wall_ms(), now);
        LIVE.with(|l| l.borrow_mut().push(shell.clone()));
        shell
    }

    /// Whether sockets can be made (a constructor was given or the runtime has one).
    pub(crate) fn can_open_sockets(&self) -> bool {
        self.socket_ctor.borrow().is_some()
    }

    /// Makes sockets with `ctor` from now on; a socket waiting for one opens now.
    pub(crate) fn set_socket_constructor(&self, ctor: js_sys::Function) {
        *self.socket_ctor.borrow_mut() = Some(ctor);
        let parked = self.parked_socket.borrow_mut().take();
        if let Some((id, url)) = parked {
            self.open_socket(id, &url);
            self.pump();
        }
    }

    pub(crate) fn set_listener(&self, l: Rc<dyn Listener>) {
        *self.listener.borrow_mut() = Some(l);
    }

    /// Runs `f` on the engine (with the current time) and then pumps.
    pub(crate) fn with_engine<R>(&self, f: impl FnOnce(&mut Engine, u64) -> R) -> R {
        let r = f(&mut self.engine.borrow_mut(), now_ms());
        self.pump();
        r
    }

    /// Reads the engine without pumping.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Engine) -> R) -> R {
        f(&self.engine.borrow())
    }

    /// Mutates the engine without pumping (for queue reads).
    pub(crate) fn read_mut<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.engine.borrow_mut())
    }

    fn rc(&self) -> Option<Rc<Shell>> {
        self.me.upgrade()
    }

    /// Performs every pending action, reports every pending event, and re-arms the timer.
    /// Re-entrant calls (from a callback) are folded into the running pump.
    pub(crate) fn pump(&self) {
        if self.pumping.get() {
            self.again.set(true);
            return;
        }
        let Some(me) = self.rc() else { return };
        self.pumping.set(true);
        loop {
            self.again.set(false);
            // Each poll is its own statement so that its borrow ends before the action or the
            // callback runs (a `while let` would hold it for the whole loop body).
            loop {
                let action = self.engine.borrow_mut().poll_action();
                let Some(action) = action else { break };
                self.perform(action);
            }
            let listener = self.listener.borrow().clone();
            loop {
                let event = self.engine.borrow_mut().poll_event();
                let Some(event) = event else { break };
                if let Some(l) = &listener {
                    l.on_event(&me, event);
                }
            }
            if let Some(l) = &listener {
                l.after_pump(&me);
            }
            if !self.again.get() {
                break;
            }
        }
        self.pumping.set(false);
        self.arm_timer();
        self.arm_backlog();
    }

    /// Bursts in slices. A burst costs three things, each of which alone can exceed the 50 ms
    /// of a "long task" for a frame of 50,000 objects: copying the text into wasm memory,
    /// reading it, and handing the objects to JavaScript. So a large frame is copied in by
    /// pieces (the [`Inbox`], one piece per task, with any socket input that arrives meanwhile
    /// queued behind it, so order is kept), and the engine reads and delivers
    /// it a slice at a time ([`Engine::has_backlog`]). Between two pieces or slices the shell
    /// yields to the event loop, so input, rendering and timers get their turn. The engine
    /// decides what a slice is and keeps the order of delivery; the shell only chooses when, the
    /// one thing a sans-IO engine cannot know. A yield is a `MessageChannel` message ([`Tick`]),
    /// at most one armed at a time; `close()` drops it and whatever is queued.
    fn arm_backlog(&self) {
        if self.closed.get() {
            self.backlog.borrow_mut().take();
            self.inbox.borrow_mut().clear();
            return;
        }
        let work = !self.inbox.borrow().is_empty() || self.engine.borrow().has_backlog();
        if !work || self.backlog.borrow().is_some() {
            return;
        }
        let weak = self.me.clone();
        let tick = Tick::new(move || {
            let Some(s) = weak.upgrade() else { return };
            // Released after this call returns: it owns the closure running now.
            let fired = s.backlog.borrow_mut().take();
            wasm_bindgen_futures::spawn_local(async move { drop(fired) });
            if !s.step_incoming() {
                s.engine.borrow_mut().handle_backlog(now_ms());
            }
            s.pump();
        });
        *self.backlog.borrow_mut() = Some(tick);
    }

    /// Takes in the next piece of a large frame (and hands the engine the queued inputs up to
    /// the next large frame). Returns whether there was anything queued.
    fn step_incoming(&self) -> bool {
        let mut any = false;
        loop {
            let taken = self.inbox.borrow_mut().take();
            match taken {
                None => return any,
                Some(Taken::Input(id, ev)) => self.dispatch(id, ev),
                Some(Taken::Piece(frame)) => {
                    if let Some((id, ev)) = frame {
                        self.dispatch(id, ev);
                    }
                    return true;
                }
            }
            any = true;
        }
    }

    /// Hands one socket event to the engine (no pump).
    fn dispatch(&self, id: SocketId, ev: SocketEvent) {
        let now = now_ms();
        match ev {
            SocketEvent::Open => self.engine.borrow_mut().handle_socket_open(id, now),
            SocketEvent::Message(Some(text)) => {
                self.engine.borrow_mut().handle_socket_text(id, text, now)
            }
            SocketEvent::Message(None) => {
                // Binary frames are not part of the protocol: report as malformed text.
                self.engine.borrow_mut().handle_socket_message(id, "", now)
            }
            ev @ SocketEvent::Large(_) => self.inbox.borrow_mut().push_front(id, ev),
            SocketEvent::Closed { code } => {
                // Drop the socket (and its closures) only after this handler returns.
                let sock = self.sockets.borrow_mut().remove(&id);
                if sock.is_some() {
                    wasm_bindgen_futures::spawn_local(async move { drop(sock) });
                    self.engine.borrow_mut().handle_socket_closed(id, code, now);
                }
            }
        }
    }

    fn arm_timer(&self) {
        if self.closed.get() {
            self.timer.borrow_mut().take();
            return;
        }
        let deadline = self.engine.borrow_mut().poll_timeout();
        let mut timer = self.timer.borrow_mut();
        match deadline {
            None => {
                timer.take();
            }
            Some(at) => {
                if matches!(&*timer, Some((t, _)) if *t == at) {
                    return;
                }
                let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                let weak = self.me.clone();
                *timer = Some((
                    at,
                    Timeout::new(delay, move || {
                        if let Some(s) = weak.upgrade() {
                            s.timer.borrow_mut().take();
                            let now = now_ms();
                            {
                                let mut e = s.engine.borrow_mut();
                                e.handle_wall_clock(wall_ms(), now);
                                e.handle_timeout(now);
                            }
                            s.pump();
                        }
                    }),
                ));
            }
        }
    }

    fn perform(&self, action: Action) {
        match action {
            Action::Http(req) => self.send(req),
            Action::CancelHttp(id) => {
                if let Some(a) = self.requests.borrow_mut().remove(&id) {
                    a.abort();
                }
            }
            Action::OpenSocket { id, url } => self.open_socket(id, &url),
            Action::CloseSocket { id } => {
                let sock = self.sockets.borrow_mut().remove(&id);
                drop(sock);
                let mut parked = self.parked_socket.borrow_mut();
                if parked.as_ref().is_some_and(|(p, _)| *p == id) {
                    parked.take();
                }
            }
        }
    }

    fn send(&self, req: HttpRequest) {
        let Ok(abort) = AbortController::new() else {
            self.engine.borrow_mut().handle_http_failure(
                req.id,
                TransportFailure::Aborted,
                now_ms(),
            );
            self.again.set(true);
            return;
        };
        self.requests.borrow_mut().insert(req.id, abort.clone());
        let id = req.id;
        let ex = Exchange {
            method: req.method.as_str(),
            url: req.url,
            headers: req.headers,
            body: req.body,
            with_credentials: self.with_credentials,
        };
        let weak = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = fetch_text(ex, &abort).await;
            let Some(s) = weak.upgrade() else { return };
            let known = s.requests.borrow_mut().remove(&id).is_some();
            if !known {
                return; // cancelled: the engine asked us to forget it
            }
            let now = now_ms();
            {
                let mut e = s.engine.borrow_mut();
                match result {
                    Ok((status, body)) => e.handle_http_response(id, status, body, now),
                    Err(f) => {
                        let reason = match f {
                            FetchFailure::Aborted => TransportFailure::Timeout,
                            FetchFailure::Network { cross_origin: true } => TransportFailure::Cors,
                            FetchFailure::Network { .. } | FetchFailure::Refused(_) => {
                                TransportFailure::Network
                            }
                        };
                        e.handle_http_failure(id, reason, now)
                    }
                }
            }
            s.pump();
        });
    }

    fn open_socket(&self, id: SocketId, url: &str) {
        let ctor = self.socket_ctor.borrow().clone();
        let Some(ctor) = ctor else {
            *self.parked_socket.borrow_mut() = Some((id, url.to_owned()));
            return;
        };
        let weak = self.me.clone();
        let opened = Socket::open(&ctor, url, move |ev| {
            let Some(s) = weak.upgrade() else { return };
            let queued = !s.inbox.borrow().is_empty();
            if queued || matches!(ev, SocketEvent::Large(_)) {
                // Behind a large frame being taken in, or one itself: in order, in later tasks.
                s.inbox.borrow_mut().push_back(id, ev);
            } else {
                s.dispatch(id, ev);
            }
            s.pump();
        });
        match opened {
            Ok(sock) => {
                self.sockets.borrow_mut().insert(id, sock);
            }
            Err(()) => {
                self.engine
                    .borrow_mut()
                    .handle_socket_closed(id, None, now_ms());
                self.again.set(true);
            }
        }
    }

    /// Stops everything: the engine is closed, sockets and listeners are released, no timer
    /// stays armed.
    pub(crate) fn shutdown(&self) {
        if self.closed.replace(true) {
            return;
        }
        let settled = matches!(
            self.engine.borrow().state(),
            ConnectionState::Failed { .. } | ConnectionState::Closed
        );
        if !settled {
            self.engine.borrow_mut().close(now_ms());
        }
        // Report the last events (the closed state); callbacks may re-enter, shutdown is done.
        self.pump();
        self.timer.borrow_mut().take();
        let backlog = self.backlog.borrow_mut().take();
        if backlog.is_some() {
            wasm_bindgen_futures::spawn_local(async move { drop(backlog) });
        }
        self.env.borrow_mut().take();
        self.parked_socket.borrow_mut().take();
        let socks = std::mem::take(&mut *self.sockets.borrow_mut());
        drop(socks);
        let reqs = std::mem::take(&mut *self.requests.borrow_mut());
        let engine = self.engine.borrow();
        for (id, a) in reqs.iter() {
            // A logout the engine still awaits ends a session at the device: it finishes (its
            // answer finds the shell closed and is dropped).
            if !engine.awaits(*id) {
                a.abort();
            }
        }
        drop(engine);
        let me: *const Shell = self;
        // Released after this call returns: the caller may hold the last strong reference.
        let released = LIVE.with(|l| {
            let mut l = l.borrow_mut();
            l.iter()
                .position(|s| std::ptr::eq(Rc::as_ptr(s), me))
                .map(|i| l.swap_remove(i))
        });
        if let Some(r) = released {
            wasm_bindgen_futures::spawn_local(async move { drop(r) });
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Live handles held by the shell (for tests that check nothing is left behind).
    pub(crate) fn resources(&self) -> (usize, usize, bool) {
        (
            self.sockets.borrow().len(),
            self.requests.borrow().len(),
            self.timer.borrow().is_some(),
        )
    }
}
