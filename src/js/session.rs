//! `Session`: the JavaScript class that logs in (or adopts a token) and owns the connection.

use std::future::ready;
use std::rc::Rc;

use js_sys::Object;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::future::promise;
use super::hub::Hub;
use super::options;
use super::reply::reply;
use super::shapes::state_js;
use super::types::{JsConnectionState, LoginOptions, PromiseSession, PromiseVoid, TokenOptions};
use crate::web::shell::Shell;

/// A session with one controller (or a cluster): logs in, keeps the session alive, and owns the
/// one socket every subscription of the session shares.
#[wasm_bindgen]
pub struct Session {
    pub(super) shell: Rc<Shell>,
    pub(super) hub: Rc<Hub>,
}

/// Starts the engine; the promise resolves with the `Session` once it is established.
fn start(opts: &Object, adopt: bool) -> Result<PromiseSession, JsValue> {
    let config = options::config(opts, adopt)?;
    let ctor = options::socket_constructor(opts.as_ref())?;
    let shell = Shell::start(config, ctor);
    let hub = Hub::new();
    hub.adopted.set(adopt);
    shell.set_listener(hub.clone());
    let (login, answer) = reply();
    *hub.login.borrow_mut() = Some(login);
    shell.pump();
    Ok(promise(answer).unchecked_into())
}

#[wasm_bindgen]
impl Session {
    /// Logs in with user and password: `Session.login({ url, user, password, flavor })`.
    /// Resolves once the session is established; rejects with `AUTH_REJECTED` and friends.
    pub fn login(options: LoginOptions) -> Result<PromiseSession, JsValue> {
        start(options.unchecked_ref(), false)
    }

    /// Adopts an existing session: `Session.fromToken({ url, token, urlToken?, devCookie? })`.
    #[wasm_bindgen(js_name = fromToken)]
    pub fn from_token(options: TokenOptions) -> Result<PromiseSession, JsValue> {
        start(options.unchecked_ref(), true)
    }

    /// The controller in use (base URL, no credentials).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.shell.read(|e| e.current_url().to_string())
    }

    /// The device's software version from the login answer.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> Option<String> {
        self.shell
            .read(|e| e.session_info().and_then(|i| i.version.clone()))
    }

    #[wasm_bindgen(getter)]
    pub fn user(&self) -> Option<String> {
        self.shell
            .read(|e| e.session_info().and_then(|i| i.user_name.clone()))
    }

    /// The connection state: `{ state: "live" | "connecting" | ... }`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> JsConnectionState {
        state_js(&self.hub.state.borrow()).unchecked_into()
    }

    /// Logs out (`aaaLogout`), closes the socket and stops every timer.
    pub fn logout(&self) -> PromiseVoid {
        if self.shell.is_closed() {
            return promise(ready(Ok(JsValue::UNDEFINED))).unchecked_into();
        }
        let (done, answer) = reply();
        self.hub.logout.borrow_mut().push(done);
        self.shell.with_engine(|e, now| e.logout(now));
        promise(answer).unchecked_into()
    }

    /// Closes without logging out.
    pub fn close(&self) {
        self.shell.shutdown();
    }
}
