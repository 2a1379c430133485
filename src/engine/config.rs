//! What the engine is told once, at construction: where the controllers are, how to authenticate,
//! how the token travels, and the timing knobs. Every default is chosen for a real fabric and
//! explained where it is defined.

use std::fmt;

use crate::protocol::BaseUrl;

/// How the engine gets a session.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Log in with `aaaLogin`; the engine can log in again on its own when the session ends.
    Password { user: String, password: String },
    /// Adopt a session someone else opened (a console embedded in APIC gets `token` and
    /// `urlToken`). The engine verifies it with `aaaRefresh` first and can never log in again: when
    /// this session ends the engine fails with `SESSION_EXPIRED`.
    Token {
        token: String,
        url_token: Option<String>,
        /// Only used for the logout body.
        user: Option<String>,
    },
}

impl Auth {
    pub fn password(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Password {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn token(token: impl Into<String>) -> Auth {
        Auth::Token {
            token: token.into(),
            url_token: None,
            user: None,
        }
    }

    pub(crate) fn user(&self) -> Option<&str> {
        match self {
            Auth::Password { user, .. } => Some(user),
            Auth::Token { user, .. } => user.as_deref(),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Token {
                user, url_token, ..
            } => f
                .debug_struct("Token")
                .field("token", &"<redacted>")
                .field("url_token", &url_token.as_ref().map(|_| "<redacted>"))
                .field("user", user)
                .finish(),
        }
    }
}

/// Which kind of device: it decides the default subscription lifetime and whether
/// `refresh-timeout` is sent by default (PROTOCOL.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    Apic,
    Nxos,
}

impl Flavor {
    /// The lifetime of a subscription that was not given `refresh-timeout`: 60 s on APIC, 90 s on
    /// NX-OS (PROTOCOL.md §5).
    pub fn default_lifetime_secs(self) -> u32 {
        match self {
            Flavor::Apic => 60,
            Flavor::Nxos => 90,
        }
    }
}

/// How the session token travels on REST requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenTransport {
    /// The browser's cookie jar carries `APIC-cookie` (same-origin deployments): the engine adds
    /// no token header, because a second copy of the token has been seen to break pushes (§3).
    CookieJar,
    /// The engine adds `Cookie: APIC-cookie=<token>` (native runtimes, Node, Deno).
    CookieHeader,
    /// The engine adds `DevCookie: <token>` (apps hosted inside APIC).
    DevCookie,
}

/// Everything the engine needs to know up front. Build with [`Config::apic`] or [`Config::nxos`]
/// and adjust fields.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// One or more controllers of the same fabric. All traffic goes to one at a time; a failed
    /// connection attempt moves to the next (§7).
    pub urls: Vec<BaseUrl>,
    pub auth: Auth,
    pub flavor: Flavor,
    pub token_transport: TokenTransport,
    /// Log in with `?gui-token-request=yes` and send `APIC-challenge: <urlToken>` on every
    /// request. Set automatically when an adopted token comes with a `urlToken`.
    pub gui_token: bool,
    /// Seed of the jitter generator: the same seed and inputs give the same outputs.
    pub seed: u64,
    /// The most subscription refreshes sent in any one second. APIC throttles clients (2 logins
    /// or refreshes a second by default, §7); hundreds of subscriptions refreshing together would
    /// trip it and the 503s would make them lapse. Default 5.
    pub refresh_rate_cap: f64,
    /// `refresh-timeout` sent with every subscribe unless a subscription overrides it. `None`
    /// means the device default lifetime. Default `Some(900)` on APIC (long lifetimes survive the
    /// once-a-minute timers of background tabs), `None` on NX-OS (support unknown, §8).
    pub default_refresh_timeout: Option<u32>,
    /// Reconnect backoff: the n-th consecutive failed attempt waits a uniformly random time in
    /// `[0, min(backoff_cap_ms, backoff_base_ms * 2^(n-1))]` ("full jitter": a fabric that
    /// restarts does not see every console come back in the same second).
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// Give up (state `Failed`) after this many consecutive failed attempts; `None` retries
    /// forever, which is what a monitoring console wants.
    pub max_reconnect_attempts: Option<u32>,
    /// Send a cheap request when nothing at all has been heard for this long: a socket can die
    /// without a close event, and only a REST answer proves the session and its subscriptions
    /// are still there (§3). Default 30 s.
    pub heartbeat_idle_ms: u64,
    /// Every request carries this timeout; the engine also enforces it itself. Default 30 s.
    pub request_timeout_ms: u64,
    /// Capacity (entries) of the pull queue of [`crate::engine::Engine::next_pulled`]. Default 1024.
    pub queue_capacity: usize,
    /// Subscribe requests in flight at once. A bulk of subscribes is spread so that the device
    /// is not flooded and refreshes keep their slots. Default 8.
    pub max_inflight_subscribes: usize,
    /// A timer that fires this much later than asked means the machine slept (or the tab was
    /// frozen): assume the connection is dead and verify it. Default 15 s.
    pub clock_jump_ms: u64,
    /// The most objects one input hands out (see [`crate::engine::Engine::has_backlog`]): a larger
    /// frame is read and delivered in slices of this many, and the shell yields to the event loop
    /// between slices so a page never freezes on a burst. Default 1,000: about 12 ms of work in
    /// a browser on a slow, shared machine, with room under the 50 ms of a "long task" for a
    /// garbage collection or a heavy callback.
    pub slice_objects: usize,
}

impl Config {
    /// Defaults for an APIC (ACI) fabric.
    pub fn apic(url: BaseUrl, auth: Auth) -> Config {
        Config {
            urls: vec![url],
            auth,
            flavor: Flavor::Apic,
            token_transport: TokenTransport::CookieJar,
            gui_token: false,
            seed: 0x5eed_d0e5_2024_0001,
            refresh_rate_cap: 5.0,
            default_refresh_timeout: Some(900),
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
            max_reconnect_attempts: None,
            heartbeat_idle_ms: 30_000,
            request_timeout_ms: 30_000,
            queue_capacity: 1024,
            max_inflight_subscribes: 8,
            clock_jump_ms: 15_000,
            slice_objects: 1_000,
        }
    }

    /// Defaults for an NX-OS switch: 90 s lifetimes, no `refresh-timeout`.
    pub fn nxos(url: BaseUrl, auth: Auth) -> Config {
        Config {
            flavor: Flavor::Nxos,
            default_refresh_timeout: None,
            ..Config::apic(url, auth)
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("urls", &self.urls)
            .field("auth", &self.auth)
            .field("flavor", &self.flavor)
            .field("token_transport", &self.token_transport)
            .field("gui_token", &self.gui_token)
            .field("seed", &self.seed)
            .field("refresh_rate_cap", &self.refresh_rate_cap)
            .field("default_refresh_timeout", &self.default_refresh_timeout)
            .field("backoff_base_ms", &self.backoff_base_ms)
            .field("backoff_cap_ms", &self.backoff_cap_ms)
            .field("max_reconnect_attempts", &self.max_reconnect_attempts)
            .field("heartbeat_idle_ms", &self.heartbeat_idle_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_inflight_subscribes", &self.max_inflight_subscribes)
            .field("clock_jump_ms", &self.clock_jump_ms)
            .field("slice_objects", &self.slice_objects)
            .finish()
    }
}
