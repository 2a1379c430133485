//! The TypeScript declarations of the public surface. wasm-bindgen writes the classes; the shapes
//! of option objects, MOs, states, events and errors are declared here, and the extern types
//! below give every method a precise signature instead of `any`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = r#"
/** The kind of device: decides the default subscription lifetime (60 s / 90 s) and whether
 * `refresh-timeout` is sent by default (APIC only). */
export type Flavor = "apic" | "nxos";

/** How the session token travels: the browser's cookie jar (same-origin pages), a `Cookie`
 * header (Deno, Node, workers), or the `DevCookie` header (apps hosted inside APIC). */
export type TokenTransport = "cookie-jar" | "cookie-header" | "devcookie";

/** Options shared by `Session.login` and `Session.fromToken`. */
export interface ConnectOptions {
  /** The controller, e.g. `"https://apic1"`. Defaults to the page's own origin. */
  url?: string;
  /** Several controllers of one cluster: traffic is pinned to one, rotating on failure. */
  urls?: string[];
  /** Default `"apic"`. */
  flavor?: Flavor;
  /** Default: `"cookie-jar"` in a browser (a page or a web worker), `"cookie-header"` elsewhere
   * (Deno, Node, workerd). */
  tokenTransport?: TokenTransport;
  /** Log in with `?gui-token-request=yes` and send `APIC-challenge` on every request. */
  guiToken?: boolean;
  /** Most subscription refreshes per second (default 5). */
  refreshRateCap?: number;
  /** `refresh-timeout` (seconds) sent with every subscribe; `false` sends none. Default 900 on
   * APIC, none on NX-OS. */
  refreshTimeout?: number | false;
  /** Give up after this many failed reconnection attempts (default: never). */
  maxReconnectAttempts?: number;
  /** Send a cheap request after this much silence (ms, default 30000). */
  heartbeatMs?: number;
  /** Timeout of every request (ms, default 30000). */
  requestTimeoutMs?: number;
  /** Reconnect backoff: first step and cap (ms); each wait is random up to the step. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Capacity of the pull queue used by `getevent()` and async iteration (default 1024). */
  queueCapacity?: number;
  /** Seed of the jitter generator (tests). */
  seed?: number;
  /** The WebSocket constructor to open the event socket with, instead of the runtime's global
   * one: e.g. the `ws` package's, on a Node.js without a global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

/** A constructor with the browser's `WebSocket` interface (`new (url) => socket` with `onopen`,
 * `onmessage`, `onclose`, `onerror` and `close()`), such as the `ws` package's. */
export type WebSocketConstructor = new (url: string) => unknown;

/** `Session.login` options. */
export interface LoginOptions extends ConnectOptions {
  user: string;
  password: string;
}

/** `Session.fromToken` options: adopt a session someone else opened. */
export interface TokenOptions extends ConnectOptions {
  token: string;
  /** The `urlToken` of a `gui-token-request` login: sent as `APIC-challenge`. */
  urlToken?: string;
  /** Only used for the logout body. */
  user?: string;
  /** Send the token as `DevCookie` (shorthand for `tokenTransport: "devcookie"`). */
  devCookie?: boolean;
}

/** `""` for objects from a snapshot (`initial`, a resubscribe), else what a push said. */
export type MoStatus = "" | "created" | "modified" | "deleted";

/** A managed object. Every attribute value is a string, as on the wire. */
export interface Mo {
  className: string;
  dn: string;
  status: MoStatus;
  attributes: Record<string, string>;
  /** Nested children, only in query answers that asked for `rspSubtree`. */
  children?: Mo[];
  /** The device sent no `status`; the object was read as `modified`. */
  statusMissing?: true;
}

/** Stable error codes. */
export type ErrorCode =
  | "AUTH_REJECTED" | "SESSION_EXPIRED" | "SOCKET_NOT_FOUND" | "REFRESH_REJECTED"
  | "UNKNOWN_CLASS" | "RESULT_TOO_BIG" | "THROTTLED" | "DEVICE_ERROR" | "PROTOCOL"
  | "INVALID_QUERY" | "INVALID_CONFIG" | "INVALID_STATE" | "NETWORK" | "CORS_BLOCKED"
  | "TIMEOUT" | "ABORTED" | "SOCKET_FAILED" | "RETRY_CAP" | "CLOSED" | "UNKNOWN_HANDLE"
  | "CALLBACK_THREW" | "SOCKET_UNAVAILABLE";

/** Every rejection and `onError` report is an `Error` with a stable `code`; device answers also
 * carry the HTTP status and the device's own code and text. Never a token. */
export interface DmeError extends Error {
  code: ErrorCode;
  httpStatus?: number;
  deviceCode?: string;
  deviceText?: string;
  /** For `CALLBACK_THREW`: what the callback threw. */
  cause?: unknown;
  /** The subscription handle an error concerns, when it concerns one. */
  subscription?: number;
  /** For `SOCKET_FAILED`: the socket's close code (`null`: none was given). */
  closeCode?: number | null;
  /** For `SOCKET_FAILED`: whether the device still answered over HTTP right after (`null`: not
   * checked). `true` means the socket itself is refused, not the session. */
  httpWorks?: boolean | null;
  /** For `SOCKET_FAILED` in a browser, when the device answers over HTTP: what to look at. */
  hint?: string;
}

export type DegradedReason = "offline" | "request-failures" | "throttled" | "verifying";

/** The connection as a person should see it. Times are wall-clock milliseconds. */
export type ConnectionState =
  | { state: "connecting" }
  | { state: "live" }
  | { state: "degraded"; reason: DegradedReason }
  | { state: "reconnecting"; attempt: number; nextAt: number }
  | { state: "failed"; error: DmeError }
  | { state: "closed" };

/** Why a subscription's stream was interrupted. What happened in between is lost: the snapshot
 * (or, in store mode, the reconciliation) that follows is the truth. A planned session rotation
 * gives no gap; `rotation` is one that failed part-way. */
export type GapReason =
  | "reconnect" | "relogin" | "rotation" | "expired" | "socket-rebuilt" | "failover"
  | "queue-overflow";

export interface GapEvent {
  type: "gap";
  /** The subscription's local handle (`Subscription.handle`). */
  subscription: number;
  reason: GapReason;
}

export interface MosEvent {
  type: "mos";
  subscription: number;
  mos: Mo[];
}

/** What `getevent()` and async iteration yield. */
export type PulledEvent = MosEvent | GapEvent;

export interface EventChannelOptions {
  /** Every connection state change. */
  onState?: (state: ConnectionState) => void;
  /** Non-fatal errors: malformed frames, failed refreshes being retried, callback exceptions. */
  onError?: (error: DmeError) => void;
  /** Gaps of subscriptions that have no `onGap` of their own. */
  onGap?: (gap: GapEvent) => void;
  /** The WebSocket constructor to use, as in `Session.login`: needed where the runtime has no
   * global `WebSocket` (Node.js before 22 without `--experimental-websocket`). */
  WebSocket?: WebSocketConstructor;
}

export interface SubscribeOptions {
  /** Pushes for this subscription. Without it, events wait for `getevent()` / `for await`. */
  onEvent?: (mos: Mo[]) => void;
  onGap?: (gap: GapEvent) => void;
  /** Keep `dn → Mo`, merge sparse deltas, deliver full objects, and reconcile after gaps. */
  store?: boolean;
  /** Store mode: a reconciliation after a gap is complete; `differences` objects were
   * delivered for it (0 included). */
  onReconciled?: (done: { subscription: number; differences: number }) => void;
  /** Store mode without `onEvent`: deliver by push to the live view (`snapshot`, `onChange`,
   * `subscribe`) instead of queueing for `getevent()`. */
  view?: boolean;
  /** `refresh-timeout` in seconds for this subscription; `false` sends none. */
  refreshTimeout?: number | false;
}

/** Query options, named after the REST parameters. */
export interface QueryOptions {
  queryTarget?: "self" | "children" | "subtree";
  targetSubtreeClass?: string | string[];
  /** `query-target-filter`, e.g. `'and(eq(fvBD.name,"web"),ne(fvBD.descr,""))'`. */
  filter?: string;
  queryTargetFilter?: string;
  rspSubtree?: "no" | "children" | "full";
  rspSubtreeClass?: string | string[];
  rspSubtreeInclude?: string | string[];
  rspPropInclude?: "all" | "naming-only" | "config-only";
  orderBy?: string | string[];
  page?: number;
  pageSize?: number;
  /** Use the `/api/node/...` form. */
  node?: boolean;
  /** Document encoding of the answer and of the pushes (default `"json"`). */
  format?: "json" | "xml";
}

export interface ClassQueryOptions extends QueryOptions {
  /** Scope a class query below one object: `/api/node/class/<under>/<class>.json`. */
  under?: string;
}

export interface Counters {
  frames: number;
  mos: number;
  gaps: number;
  reconnects: number;
  refreshes: number;
  refreshFailures: number;
  expiries: number;
  drops: number;
}

export interface Stats {
  frames: number;
  logins: number;
  tokenRefreshes: number;
  sessionRotations: number;
  reconnects: number;
  unknownIdFrames: number;
  malformedFrames: number;
  heartbeats: number;
  refreshRequests: number;
  subscribeRequests: number;
  total: Counters;
  /** Keyed by subscription handle. */
  perSubscription: Record<string, Counters>;
}

export interface SubscriptionInfo {
  subscriptionId: string | null;
  state: "pending" | "subscribing" | "active" | "failed";
  /** Wall-clock milliseconds. */
  nextRefreshAt: number | null;
  expiresAt: number | null;
  lifetimeSecs: number;
  counters: Counters;
}

/** What every query and write takes besides its input. */
export interface CallOptions {
  /** Abandons the call: its request is cancelled and the promise rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** How long the call may take in all, retries included (ms); default: the session's
   * `requestTimeoutMs`. Past it the promise rejects with `TIMEOUT`. */
  requestTimeoutMs?: number;
}

/** The answer to `session.query` (and to a write: `totalCount` 0, no objects). */
export interface QueryAnswer {
  totalCount: number;
  mos: Mo[];
}

/** One page of `session.pages`, counted from 0. */
export interface Page extends QueryAnswer {
  page: number;
}

export interface PagesOptions extends CallOptions {
  /** Objects per request. */
  pageSize: number;
}

export type LookupOptions = QueryOptions & CallOptions;
export type ClassLookupOptions = ClassQueryOptions & CallOptions;

/** A change for `session.commit`: create or modify (`status` `"created,modified"` unless given),
 * or delete (`status: "deleted"`). Every attribute value is a string, as on the wire. */
export interface Change {
  className: string;
  dn: string;
  attributes?: Record<string, string>;
  status?: "created" | "modified" | "created,modified" | "deleted";
}

/** One immutable state of a store-mode subscription's live view (`sub.snapshot()`). The same
 * object until something changes; unchanged objects keep their identity across snapshots. */
export interface StoreSnapshot extends Iterable<Readonly<Mo>> {
  /** The object with this DN, frozen. */
  get(dn: string): Readonly<Mo> | undefined;
  has(dn: string): boolean;
  readonly size: number;
  /** Every object, frozen, in no particular order (sort it for display). */
  readonly list: ReadonlyArray<Readonly<Mo>>;
  /** Counts the view's changes. */
  readonly version: number;
  /** The reason of a gap whose reconciliation has not finished, else `null`. */
  readonly gap: GapReason | null;
  /** How many differences the last reconciliation found, `null` before the first. */
  readonly reconciled: number | null;
}

/** What a channel still holds (all zero / false after `close()`). */
export interface Resources {
  sockets: number;
  requests: number;
  timer: boolean;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "LoginOptions")]
    pub type LoginOptions;
    #[wasm_bindgen(typescript_type = "TokenOptions")]
    pub type TokenOptions;
    #[wasm_bindgen(typescript_type = "Promise<Session>")]
    pub type PromiseSession;
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type PromiseVoid;
    #[wasm_bindgen(typescript_type = "ConnectionState")]
    pub type JsConnectionState;
    #[wasm_bindgen(typescript_type = "EventChannelOptions")]
    pub type EventChannelOptions;
    #[wasm_bindgen(typescript_type = "ClassQuery | DnQuery")]
    pub type AnyQuery;
    #[wasm_bindgen(typescript_type = "SubscribeOptions")]
    pub type SubscribeOptions;
    #[wasm_bindgen(typescript_type = "Promise<Subscription>")]
    pub type PromiseSubscription;
    #[wasm_bindgen(typescript_type = "{ timeoutMs?: number }")]
    pub type GetEventOptions;
    #[wasm_bindgen(typescript_type = "Promise<PulledEvent | null>")]
    pub type PromisePulled;
    #[wasm_bindgen(typescript_type = "Stats")]
    pub type JsStats;
    #[wasm_bindgen(typescript_type = "Resources")]
    pub type JsResources;
    #[wasm_bindgen(typescript_type = "Mo[]")]
    pub type MoArray;
    #[wasm_bindgen(typescript_type = "Mo[] | null")]
    pub type MoArrayOrNull;
    #[wasm_bindgen(typescript_type = "SubscriptionInfo | null")]
    pub type JsSubscriptionInfo;
    #[wasm_bindgen(typescript_type = "Promise<IteratorResult<PulledEvent, undefined>>")]
    pub type PromiseIter;
    #[wasm_bindgen(typescript_type = "QueryOptions")]
    pub type JsQueryOptions;
    #[wasm_bindgen(typescript_type = "ClassQueryOptions")]
    pub type JsClassQueryOptions;
    #[wasm_bindgen(typescript_type = "CallOptions")]
    pub type JsCallOptions;
    #[wasm_bindgen(typescript_type = "LookupOptions")]
    pub type JsLookupOptions;
    #[wasm_bindgen(typescript_type = "ClassLookupOptions")]
    pub type JsClassLookupOptions;
    #[wasm_bindgen(typescript_type = "PagesOptions")]
    pub type JsPagesOptions;
    #[wasm_bindgen(typescript_type = "Change | Change[]")]
    pub type JsChanges;
    #[wasm_bindgen(typescript_type = "Promise<QueryAnswer>")]
    pub type PromiseQueryAnswer;
    #[wasm_bindgen(typescript_type = "Promise<Mo | null>")]
    pub type PromiseMoOrNull;
    #[wasm_bindgen(typescript_type = "Promise<Mo[]>")]
    pub type PromiseMoArray;
    #[wasm_bindgen(typescript_type = "Promise<QueryAnswer | QueryAnswer[]>")]
    pub type PromiseCommit;
    #[wasm_bindgen(typescript_type = "Promise<IteratorResult<Page, undefined>>")]
    pub type PromisePage;
    #[wasm_bindgen(typescript_type = "() => StoreSnapshot")]
    pub type SnapshotFn;
    #[wasm_bindgen(typescript_type = "(listener: () => void) => () => void")]
    pub type OnChangeFn;
    #[wasm_bindgen(typescript_type = "(run: (snapshot: StoreSnapshot) => void) => () => void")]
    pub type SubscribeFn;
}
