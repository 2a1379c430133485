//! The hub behind one session's JavaScript objects: it turns the engine's events into callback
//! calls and settles the promises that wait for them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::batch::Batch;
use super::error::{coded, engine_error, set, Failure};
use super::mo::mos_to_js;
use super::pull::Pull;
use super::reply::Reply;
use super::session::Session;
use super::shapes::{gap_js, gap_reason, state_js};
use super::subscription::Subscription;
use super::view::View;
use crate::engine::{CallHandle, ConnectionState, EngineError, Event, SubHandle};
use crate::protocol::QueryResponse;
use crate::vecmap::VecMap;
use crate::web::shell::{Listener, Shell};

/// One subscription's side of the hub.
pub(crate) struct SubEntry {
    pub(crate) on_event: Option<Function>,
    pub(crate) on_gap: Option<Function>,
    /// Store mode: called with `{ subscription, differences }` when a reconciliation is done.
    pub(crate) on_reconciled: Option<Function>,
    pub(crate) store: bool,
    /// Delivered by push (`onEvent` or `view: true`), not through the pull queue.
    pub(crate) push: bool,
    /// The live view, once something asked for it (views are opt-in).
    pub(crate) view: Option<View>,
    /// A reconciliation with differences: they come in the next `Deliver`, then it is done.
    pub(crate) reconciling: Option<usize>,
    /// The promise of `ec.subscribe`, until the first `Subscribed`.
    pub(crate) pending: Option<Reply<Subscription>>,
    pub(crate) initial: JsValue,
    /// `refresh()` calls waiting for their `Event::Refreshed`, which come in call order.
    pub(crate) refreshes: VecDeque<Reply<JsValue>>,
}

/// The callbacks of the open `EventChannel`.
#[derive(Default)]
pub(crate) struct Callbacks {
    pub(crate) on_state: Option<Function>,
    pub(crate) on_error: Option<Function>,
    pub(crate) on_gap: Option<Function>,
}

pub(crate) struct Hub {
    /// The promise of `Session.login` / `fromToken`, until the session is established.
    pub(crate) login: RefCell<Option<Reply<Session>>>,
    pub(crate) logout: RefCell<Vec<Reply<JsValue>>>,
    pub(crate) callbacks: RefCell<Callbacks>,
    pub(crate) subs: RefCell<VecMap<SubHandle, SubEntry>>,
    /// Queries and writes waiting for their `Event::Answered` (src/js/calls.rs).
    pub(crate) calls: RefCell<VecMap<CallHandle, Reply<QueryResponse>>>,
    pub(crate) pull: RefCell<Pull>,
    /// The objects of the frame being delivered, converted once for every subscription.
    batch: RefCell<Batch>,
    pub(crate) state: RefCell<ConnectionState>,
    pub(crate) channel_open: Cell<bool>,
    /// The last error reported, to explain a first login that could not connect.
    last_error: RefCell<Option<EngineError>>,
    /// The session was adopted (`fromToken`): closing must not log it out.
    pub(crate) adopted: Cell<bool>,
    /// The channel was closed: user callbacks are no longer called.
    pub(crate) detached: Cell<bool>,
    me: Weak<Hub>,
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(v: &JsValue);
}

impl Hub {
    pub(crate) fn new() -> Rc<Hub> {
        Rc::new_cyclic(|me| Hub {
            me: me.clone(),
            login: RefCell::new(None),
            logout: RefCell::new(Vec::new()),
            callbacks: RefCell::new(Callbacks::default()),
            subs: RefCell::new(VecMap::new()),
            calls: RefCell::new(VecMap::new()),
            pull: RefCell::new(Pull::default()),
            batch: RefCell::new(Batch::default()),
            state: RefCell::new(ConnectionState::Connecting),
            channel_open: Cell::new(false),
            last_error: RefCell::new(None),
            adopted: Cell::new(false),
            detached: Cell::new(false),
        })
    }

    fn rc(&self) -> Rc<Hub> {
        self.me.upgrade().expect("the hub outlives its events")
    }

    /// Calls a user callback; an exception it throws goes to `onError` and never stops delivery.
    fn call(&self, f: &Function, args: &[&JsValue]) {
        let r = match args {
            [a] => f.call1(&JsValue::UNDEFINED, a),
            [a, b] => f.call2(&JsValue::UNDEFINED, a, b),
            _ => f.call0(&JsValue::UNDEFINED),
        };
        if let Err(thrown) = r {
            let err = coded("CALLBACK_THREW", "a callback threw an exception");
            set(&err, "cause", thrown);
            self.report(&err);
        }
    }

    /// A view that could not apply what was delivered (a bug, never device data).
    pub(crate) fn view_failed(&self, thrown: JsValue) {
        let err = coded("VIEW_FAILED", "a live view could not apply a delivery");
        set(&err, "cause", thrown);
        self.report(&err);
    }

    /// A store's reconciliation after a gap is complete: the view and `onReconciled` learn it.
    fn reconciled(&self, handle: SubHandle, differences: usize) {
        let (view, f) = match self.subs.borrow().get(&handle) {
            Some(e) => (e.view.clone(), e.on_reconciled.clone()),
            None => return,
        };
        if let Some(v) = view {
            self.view_reconciled(&v, differences);
        }
        if let Some(f) = f {
            let o = js_sys::Object::new();
            set(&o, "subscription", JsValue::from(handle.0 as f64));
            set(&o, "differences", JsValue::from(differences as f64));
            self.call(&f, &[&o.into()]);
        }
    }

    fn report(&self, err: &JsValue) {
        let f = self.callbacks.borrow().on_error.clone();
        match f {
            // An exception in onError itself is dropped: there is nobody left to tell.
            Some(f) => {
                let _ = f.call1(&JsValue::UNDEFINED, err);
            }
            None => console_warn(err),
        }
    }

    /// Everything still waiting ends: subscribes reject with `err`, `getevent()` gets `null`,
    /// iterations end.
    pub(crate) fn fail_all_pending(&self, err: &EngineError) {
        for e in self.subs.borrow_mut().values_mut() {
            if let Some(p) = e.pending.take() {
                p.send(Err(err.clone().into()));
            }
        }
        self.pull.borrow_mut().end_all();
    }

    /// The login promise fails: the first attempt could not establish the session.
    fn fail_login(&self, err: impl FnOnce() -> Failure) {
        if let Some(p) = self.login.borrow_mut().take() {
            p.send(Err(err()));
        }
    }

    fn on_state(&self, shell: &Rc<Shell>, s: ConnectionState) {
        *self.state.borrow_mut() = s.clone();
        // `Session.login` reports the first attempt's failure instead of retrying forever;
        // retries are for sessions that were established once.
        if matches!(s, ConnectionState::Reconnecting { .. }) && self.login.borrow().is_some() {
            let last = self.last_error.borrow_mut().take();
            self.fail_login(|| last.map_or(Failure::NoSession, Failure::Engine));
            shell.shutdown();
            return;
        }
        if let ConnectionState::Failed { reason } = &s {
            shell.shutdown();
            self.fail_login(|| reason.clone().into());
            self.fail_all_pending(reason);
        }
        let f = self.callbacks.borrow().on_state.clone();
        if let Some(f) = f {
            self.call(&f, &[&state_js(&s)]);
        }
    }
}

impl Listener for Hub {
    fn on_event(&self, shell: &Rc<Shell>, event: Event) {
        // Queries and writes belong to the session, not to the channel.
        let for_session = matches!(
            event,
            Event::LoggedOut | Event::Closed | Event::Answered { .. }
        );
        if self.detached.get() && !for_session {
            return;
        }
        match event {
            Event::State(s) => self.on_state(shell, s),
            Event::LoggedIn(_) => {
                if let Some(p) = self.login.borrow_mut().take() {
                    p.send(Ok(Session {
                        shell: shell.clone(),
                        hub: self.rc(),
                    }));
                }
            }
            Event::Subscribed {
                handle,
                initial,
                reconciled,
                ..
            } => {
                let (pending, resubscribed, done_now) = {
                    let mut subs = self.subs.borrow_mut();
                    let Some(e) = subs.get_mut(&handle) else {
                        return;
                    };
                    // Pushed differences arrive in the next delivery, then it is done; none, or
                    // differences queued for getevent(), mean done now (below).
                    e.reconciling = reconciled.filter(|&n| n > 0 && e.push);
                    let done_now = reconciled.filter(|_| e.reconciling.is_none());
                    let first = e.pending.take();
                    let again = first.is_none() && !e.store;
                    if first.is_some() {
                        e.initial = mos_to_js(&initial).into();
                    }
                    (first, again.then(|| e.on_event.clone()).flatten(), done_now)
                };
                if let Some(p) = pending {
                    p.send(Ok(Subscription {
                        shell: shell.clone(),
                        hub: self.rc(),
                        handle,
                    }));
                } else if let Some(f) = resubscribed {
                    // Without store mode, the new snapshot after a gap is the truth to adopt.
                    self.call(&f, &[&mos_to_js(&initial).into()]);
                }
                if let Some(n) = done_now {
                    self.reconciled(handle, n);
                }
            }
            Event::SubscribeFailed { handle, error } => {
                let pending = self
                    .subs
                    .borrow_mut()
                    .get_mut(&handle)
                    .and_then(|e| e.pending.take());
                match pending {
                    Some(p) => {
                        self.subs.borrow_mut().remove(&handle);
                        p.send(Err(error.into()));
                    }
                    None => {
                        let err = engine_error(&error);
                        set(&err, "subscription", JsValue::from(handle.0 as f64));
                        self.report(&err);
                    }
                }
            }
            Event::Deliver { handle, mos } => {
                let (f, view, reconciled) = match self.subs.borrow_mut().get_mut(&handle) {
                    Some(e) => (e.on_event.clone(), e.view.clone(), e.reconciling.take()),
                    None => return,
                };
                if f.is_some() || view.is_some() {
                    // One conversion for both, shared with every subscription handed equal objects in
                    // this pump; the view keeps frozen copies of its own.
                    let arr: JsValue = self.batch.borrow_mut().convert(handle, mos).into();
                    if let Some(v) = view {
                        self.view_apply(&v, &arr);
                    }
                    if let Some(f) = f {
                        self.call(&f, &[&arr]);
                    }
                }
                if let Some(n) = reconciled {
                    self.reconciled(handle, n);
                }
            }
            Event::Gap { handle, reason } => {
                self.view_gap(handle, gap_reason(reason));
                let f = self
                    .subs
                    .borrow()
                    .get(&handle)
                    .and_then(|e| e.on_gap.clone())
                    .or_else(|| self.callbacks.borrow().on_gap.clone());
                if let Some(f) = f {
                    self.call(&f, &[&gap_js(handle, reason)]);
                }
            }
            Event::Refreshed { handle, result } => {
                let waiting = self
                    .subs
                    .borrow_mut()
                    .get_mut(&handle)
                    .and_then(|e| e.refreshes.pop_front());
                if let Some(r) = waiting {
                    // Whatever the engine's reason (the device refused, the subscription failed,
                    // the connection ended), a started refresh() rejects with one code.
                    r.send(
                        result
                            .map(|()| JsValue::UNDEFINED)
                            .map_err(|_| Failure::RefreshRejected),
                    );
                }
            }
            Event::Answered { call, result } => {
                let waiting = self.calls.borrow_mut().remove(&call);
                if let Some(r) = waiting {
                    r.send(result.map_err(Failure::Engine));
                }
            }
            Event::Error(e) => {
                if self.login.borrow().is_some() {
                    *self.last_error.borrow_mut() = Some(e);
                } else {
                    self.report(&engine_error(&e));
                }
            }
            Event::LoggedOut | Event::Closed => {
                shell.shutdown();
                for w in self.logout.borrow_mut().drain(..) {
                    w.send(Ok(JsValue::UNDEFINED));
                }
                self.fail_login(|| EngineError::Closed.into());
                self.fail_all_pending(&EngineError::Closed);
            }
        }
    }

    fn after_pump(&self, shell: &Rc<Shell>) {
        self.batch.borrow_mut().clear();
        self.pull.borrow_mut().feed(shell);
    }
}
