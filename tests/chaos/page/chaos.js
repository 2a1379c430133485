// The page side of the chaos suite (tests/chaos/run.mjs drives it through Playwright): the
// package, served same-origin by dme-sim at /pkg/, runs store-mode subscriptions; this file
// records every gap, state, error and uncaught exception, and exposes the stores.
import init, { Session, EventChannel, ClassQuery, DnQuery } from "/pkg/index.js";

const now = () => performance.now();
const log = { gaps: [], states: [], errors: [], uncaught: [], events: 0, deliveries: [] };
// The last deliveries (time, subscription, dn, status, modTs), to explain a difference.
const DELIVERIES_KEPT = 20000;
const subs = new Map(); // name -> { sub, query }
let session;
let ec;

addEventListener("error", (e) => log.uncaught.push(`error: ${e.message}`));
addEventListener("unhandledrejection", (e) => log.uncaught.push(`unhandled rejection: ${e.reason?.stack ?? e.reason}`));

// Wall-clock jumps: `Date` reads the real clock plus an offset the driver sets. The package takes
// its monotonic time from `performance.now()` and only compares the two clocks.
const RealDate = Date;
let offset = 0;
class JumpingDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }
  static now() {
    return RealDate.now() + offset;
  }
}
globalThis.Date = JumpingDate;

// Page visibility as a browser reports it for a background tab.
let hidden = false;
Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });

// Every socket the package opens: when, until when, how many messages (for the report when a
// schedule does not hold).
const sockets = [];
const RealWebSocket = WebSocket;
globalThis.WebSocket = class extends RealWebSocket {
  constructor(...a) {
    super(...a);
    const rec = { opened: now(), closed: null, messages: 0, last: null };
    sockets.push(rec);
    this.addEventListener("message", () => { rec.messages++; rec.last = now(); });
    this.addEventListener("close", () => (rec.closed = now()));
  }
};

await init();

window.chaos = {
  ready: true,

  /** Logs in, opens the channel and subscribes, in store mode, to every query given. */
  async start({ url, seed, refreshTimeout, queries }) {
    session = await Session.login({
      url, user: "admin", password: "ins3965!", flavor: "apic", seed,
      refreshTimeout, backoffBaseMs: 100, backoffCapMs: 800, heartbeatMs: 3000, requestTimeoutMs: 4000,
    });
    ec = new EventChannel(session, {
      onState: (s) => log.states.push({ t: now(), state: s.state, reason: s.reason ?? null }),
      onError: (e) => log.errors.push({ t: now(), code: e.code, message: e.message }),
    });
    for (const q of queries) {
      const query = q.kind === "class" ? new ClassQuery(q.target) : new DnQuery(q.target, { queryTarget: "subtree" });
      const sub = await ec.subscribe(query, {
        store: true,
        onEvent: (mos) => {
          log.events += mos.length;
          const t = now();
          for (const mo of mos) log.deliveries.push([t, q.name, mo.dn, mo.status, mo.attributes.modTs ?? ""]);
          if (log.deliveries.length > DELIVERIES_KEPT) log.deliveries.splice(0, log.deliveries.length - DELIVERIES_KEPT);
        },
        onGap: (g) => log.gaps.push({ t: now(), sub: q.name, reason: g.reason }),
      });
      subs.set(q.name, { sub, query: q });
    }
    return { t: now() };
  },

  /** Which subscriptions are active right now (taken just before a fault is injected). */
  sample() {
    const active = {};
    for (const [name, { sub }] of subs) active[name] = sub.info().state === "active";
    return { t: now(), active };
  },

  /** dn -> attributes of every subscription's store. */
  stores() {
    const out = {};
    for (const [name, { sub }] of subs) {
      const m = {};
      for (const mo of sub.store() ?? []) m[mo.dn] = mo.attributes;
      out[name] = m;
    }
    return out;
  },

  states() {
    const out = {};
    for (const [name, { sub }] of subs) out[name] = sub.info().state;
    out.ids = Object.fromEntries([...subs].map(([name, { sub }]) => [name, sub.subid]));
    return out;
  },

  log() {
    return { ...log, deliveries: undefined, now: now(), stats: ec?.stats().total ?? null };
  },

  /** Deliveries to a subscription since its last gap: time and dn. */
  since(sub) {
    const g = log.gaps.filter((x) => x.sub === sub).map((x) => x.t);
    const from = g.length ? g[g.length - 1] : 0;
    return JSON.stringify(log.deliveries.filter((d) => d[1] === sub && d[0] >= from).map((d) => [Math.round(d[0]), d[2].slice(16), d[3]]));
  },

  /** What was delivered for one object, and the subscription's gaps and subscribes. */
  history(sub, dn) {
    return {
      deliveries: log.deliveries.filter((d) => d[1] === sub && d[2] === dn),
      gaps: log.gaps.filter((g) => g.sub === sub),
      info: subs.get(sub)?.sub.info() ?? null,
      stats: ec?.stats() ?? null,
      sockets: sockets.slice(-4),
    };
  },

  setHidden(h) {
    hidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  },

  jumpClock(ms) {
    offset += ms;
  },

  /** Closes the subscriptions and the channel (which logs the session out). */
  stop() {
    for (const { sub } of subs.values()) sub.close();
    ec?.close();
    subs.clear();
  },

  /** What the channel still holds: sockets, requests in flight, a timer. */
  resources() {
    return ec?.resources() ?? null;
  },
};
