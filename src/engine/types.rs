//! The engine's vocabulary: identifiers, the actions it asks the shell to perform, the events it
//! reports, and its counters.

use std::fmt;
use std::ops::Index;

use crate::protocol::{Mo, QueryResponse};

use super::error::EngineError;

/// A subscription as the application knows it. Stable for the life of the engine, while the
/// device's id changes on every resubscribe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubHandle(pub u64);

/// One HTTP request the engine asked for; the shell answers with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// One query or write ([`super::Engine::call`]) as the application knows it: stable across the
/// retries and re-logins it may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallHandle(pub u64);

/// A query or write to run on the engine's session: the method, the path (with its query
/// string, already validated by the protocol layer) and the body of a write.
#[derive(Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    /// How long the call may take in all, retries included; the engine's
    /// [`super::Config::request_timeout_ms`] when not given.
    pub timeout_ms: Option<u64>,
}

impl fmt::Debug for CallRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &self.body.as_ref().map(|b| b.len()))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// One socket the engine asked for; the shell reports its events with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// A request to perform. Headers and body may carry credentials: `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub id: RequestId,
    pub method: Method,
    /// The full URL (never holds a token: tokens travel in headers or the cookie jar).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Abort and report [`super::TransportFailure::Timeout`] after this long.
    pub timeout_ms: u64,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, _)| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// What the shell must do.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    Http(HttpRequest),
    /// Abort a request; its answer, if one still comes, is ignored.
    CancelHttp(RequestId),
    /// Open a WebSocket. `url` holds the session token (`wss://host/socket<token>`): this is the
    /// only place the engine ever hands it out, and `Debug` does not print it.
    OpenSocket {
        id: SocketId,
        url: String,
    },
    CloseSocket {
        id: SocketId,
    },
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Http(r) => f.debug_tuple("Http").field(r).finish(),
            Action::CancelHttp(id) => f.debug_tuple("CancelHttp").field(id).finish(),
            Action::OpenSocket { id, .. } => f
                .debug_struct("OpenSocket")
                .field("id", id)
                .field("url", &"<redacted>")
                .finish(),
            Action::CloseSocket { id } => f.debug_struct("CloseSocket").field("id", id).finish(),
        }
    }
}

/// Why the connection is degraded (up, but not trustworthy right now).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DegradedReason {
    /// The runtime reported the network offline.
    Offline,
    /// Requests failed without an answer; retrying.
    RequestFailures,
    /// The device answered 503; backing off.
    Throttled,
    /// A clock jump or a long silence: verifying that the connection is still alive.
    Verifying,
}

/// The connection as the user should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first login and socket are in progress.
    Connecting,
    /// Session and socket are up.
    Live,
    Degraded {
        reason: DegradedReason,
    },
    /// Connection lost; attempt `attempt` runs, or starts at `next_at` (engine time, ms).
    Reconnecting {
        attempt: u32,
        next_at: u64,
    },
    /// Terminal: credentials rejected, the adopted session lost, or the retry cap reached.
    Failed {
        reason: EngineError,
    },
    /// Closed by [`super::Engine::close`] or [`super::Engine::logout`].
    Closed,
}

/// Why a subscription's stream was interrupted. After a gap, what happened in between is lost
/// for good (§6): the consumer should take the next snapshot (or, in store mode, the
/// reconciliation deltas that follow) as the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// The socket closed or stopped answering; a new socket and subscription follow.
    Reconnect,
    /// The session ended (token timeout, lifetime); a new login follows.
    Relogin,
    /// A planned switch to a new session (before the old one reaches its maximum lifetime) that
    /// failed part-way: the retiring socket closed before this subscription had moved. A
    /// rotation that completes gives no gap at all.
    Rotation,
    /// The device said the subscription lapsed (refresh rejected); it is resubscribed.
    Expired,
    /// The device lost track of our socket (405); socket and subscriptions are rebuilt.
    SocketRebuilt,
    /// Moving to another controller of the cluster.
    Failover,
    /// The pull queue was full and dropped its oldest entries for this subscription. The
    /// subscription itself is fine; in store mode, [`super::Engine::store`] holds the truth to
    /// resynchronise from.
    QueueOverflow,
}

/// Session facts safe to show (no token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_name: Option<String>,
    pub version: Option<String>,
    pub node: Option<String>,
    pub refresh_timeout_secs: u64,
    pub maximum_lifetime_secs: Option<u64>,
    /// When (engine time, ms) the engine will replace this session with a new one
    /// (make-before-break), if it has a hard lifetime and the engine has a password.
    pub rotates_at: Option<u64>,
    /// The controller this session lives on (base URL, no credentials).
    pub url: String,
}

/// What the engine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    State(ConnectionState),
    /// A login (or adoption, or rotation login) succeeded.
    LoggedIn(SessionInfo),
    /// A subscribe succeeded: the first time and after every resubscribe that follows a gap
    /// (with the new id). `initial` is the device's snapshot as returned. A planned rotation
    /// moves a subscription to a new id without it (see [`super::Engine::subscription_info`]).
    Subscribed {
        handle: SubHandle,
        subscription_id: String,
        initial: Vec<Mo>,
        /// Store mode, after a gap: how many differences the reconciliation found (0 included).
        /// When there are any, they come in the `Deliver` that immediately follows.
        reconciled: Option<usize>,
    },
    /// The subscription is gone for good (the device refused the query).
    SubscribeFailed {
        handle: SubHandle,
        error: EngineError,
    },
    /// Objects for a subscription. Without store mode: the pushes as the device sent them (every
    /// entry, each at most once per frame and across a resubscribe overlap). In store mode: full
    /// merged objects, see [`SubOptions::store`].
    Deliver {
        handle: SubHandle,
        mos: Vec<Mo>,
    },
    /// The stream of this subscription was interrupted; exactly one per disruption, before any
    /// new data.
    Gap {
        handle: SubHandle,
        reason: GapReason,
    },
    /// The answer to one [`super::Engine::refresh`] call: exactly one per call, in call order
    /// per subscription. A call is answered by the outcome of the subscription's next refresh
    /// that completes (the one already in flight, if any), by `Ok` when the subscription is
    /// made again first (a subscribe renews it as a refresh would), and by an error when the
    /// handle is unknown, the subscription fails or is closed, or the engine stops.
    Refreshed {
        handle: SubHandle,
        result: Result<(), EngineError>,
    },
    /// The outcome of one [`super::Engine::call`]: exactly one per call, the device's answer read
    /// as a query answer (a write's is `totalCount` 0 and no objects), or why there is none.
    Answered {
        call: CallHandle,
        result: Result<QueryResponse, EngineError>,
    },
    /// Something non-fatal went wrong (a malformed frame, a failed refresh being retried).
    Error(EngineError),
    LoggedOut,
    Closed,
}

/// Options of one subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubOptions {
    /// Store mode: the engine keeps `dn → Mo` for this subscription (readable with
    /// [`super::Engine::store`]), merges sparse deltas, and delivers full objects:
    /// `Created` (new object, full), `Modified` (the full object after merging the delta),
    /// `Deleted` (the last full object held, status `Deleted`). Pushes that change nothing are not
    /// delivered. After a resubscribe the new snapshot is diffed against what was held and the
    /// differences are delivered in the same three statuses, so a consumer that applies every
    /// `Deliver` on top of the first `Subscribed.initial` converges on the device's truth.
    pub store: bool,
    /// `refresh-timeout` for this subscription, overriding [`super::Config::default_refresh_timeout`].
    pub refresh_timeout: Option<u32>,
    /// Send no `refresh-timeout` at all, even when the configuration has a default.
    pub no_refresh_timeout: bool,
    /// Route `Deliver` and `Gap` of this subscription to the bounded pull queue
    /// ([`super::Engine::next_pulled`]) instead of the event queue.
    pub pull: bool,
}

/// One entry of the pull queue (subscriptions with [`SubOptions::pull`]): the same `Deliver` and
/// `Gap` as events, in the same order, bounded by [`super::Config::queue_capacity`]. When full,
/// the oldest entries are dropped and the subscriptions they belonged to get a
/// `Gap { reason: QueueOverflow }`, returned before anything else. After a resubscribe of a
/// pull subscription without store mode, the new snapshot follows its gap as a `Mos` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pulled {
    Mos {
        handle: SubHandle,
        mos: Vec<Mo>,
    },
    Gap {
        handle: SubHandle,
        reason: GapReason,
    },
}

/// Where a subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubState {
    /// Waiting for a socket or a subscribe slot (first time or after a gap).
    Pending,
    /// The subscribe request is in flight.
    Subscribing,
    /// Subscribed and being refreshed.
    Active,
    /// Refused by the device; terminal.
    Failed,
}

/// Counters, per subscription and in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that named this subscription.
    pub frames: u64,
    /// Objects delivered.
    pub mos: u64,
    pub gaps: u64,
    /// Resubscribes after a connection or session loss.
    pub reconnects: u64,
    /// Successful subscription refreshes.
    pub refreshes: u64,
    pub refresh_failures: u64,
    /// Subscriptions that lapsed: the device said so, or their expiry passed unrefreshed.
    pub expiries: u64,
    /// Entries dropped: duplicates, pull-queue overflow.
    pub drops: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.frames += o.frames;
        self.mos += o.mos;
        self.gaps += o.gaps;
        self.reconnects += o.reconnects;
        self.refreshes += o.refreshes;
        self.refresh_failures += o.refresh_failures;
        self.expiries += o.expiries;
        self.drops += o.drops;
    }
}

/// Totals and per-subscription counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every frame received on the current or retiring socket.
    pub frames: u64,
    /// Sum over subscriptions (including ones that no longer exist).
    pub total: Counters,
    pub logins: u64,
    /// Successful `aaaRefresh` calls (each rotates the token).
    pub token_refreshes: u64,
    /// Make-before-break session rotations completed.
    pub session_rotations: u64,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Frames (or parts of frames) naming only ids we do not track.
    pub unknown_id_frames: u64,
    pub malformed_frames: u64,
    pub heartbeats: u64,
    /// Subscription refresh requests sent.
    pub refresh_requests: u64,
    pub subscribe_requests: u64,
    pub per_subscription: PerSubscription,
}

/// The counters of each live subscription, in handle order. A sorted vector rather than a
/// `BTreeMap`, whose code would be instantiated in the wasm for this one map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerSubscription(Vec<(SubHandle, Counters)>);

impl PerSubscription {
    /// From entries already in handle order.
    pub(crate) fn from_sorted(entries: Vec<(SubHandle, Counters)>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        PerSubscription(entries)
    }

    pub fn get(&self, h: &SubHandle) -> Option<&Counters> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(h)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In handle order.
    pub fn iter(&self) -> impl Iterator<Item = (&SubHandle, &Counters)> {
        self.0.iter().map(|(h, c)| (h, c))
    }
}

impl Index<&SubHandle> for PerSubscription {
    type Output = Counters;

    /// Panics when the subscription is not there, as a map's index does.
    fn index(&self, h: &SubHandle) -> &Counters {
        self.get(h).expect("no counters for this subscription")
    }
}

impl<'a> IntoIterator for &'a PerSubscription {
    type Item = (&'a SubHandle, &'a Counters);
    type IntoIter = Box<dyn Iterator<Item = (&'a SubHandle, &'a Counters)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// A snapshot of one subscription's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub handle: SubHandle,
    /// The device's current id, while subscribed.
    pub subscription_id: Option<String>,
    pub state: SubState,
    /// When the next refresh is planned (engine time, ms).
    pub next_refresh_at: Option<u64>,
    /// When the device will drop it without a refresh, as far as the engine knows.
    pub expires_at: Option<u64>,
    pub lifetime_secs: u32,
    pub counters: Counters,
}
