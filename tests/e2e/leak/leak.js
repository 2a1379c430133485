// The page side of tests/e2e/leak.test.mjs. Before the package loads, timers, event listeners
// and WebSockets are counted (what is live now), so that after many open/close cycles the test
// can tell what the package left behind.
const live = { timeouts: new Set(), intervals: new Set(), listeners: new Map(), sockets: new Set() };
const origSetTimeout = globalThis.setTimeout;
const origClearTimeout = globalThis.clearTimeout;
const origSetInterval = globalThis.setInterval;
const origClearInterval = globalThis.clearInterval;
globalThis.setTimeout = function (fn, ms, ...rest) {
  const id = origSetTimeout.call(this, (...a) => {
    live.timeouts.delete(id);
    return typeof fn === "function" ? fn(...a) : undefined;
  }, ms, ...rest);
  live.timeouts.add(id);
  return id;
};
globalThis.clearTimeout = function (id) {
  live.timeouts.delete(id);
  return origClearTimeout.call(this, id);
};
globalThis.setInterval = function (...a) {
  const id = origSetInterval.apply(this, a);
  live.intervals.add(id);
  return id;
};
globalThis.clearInterval = function (id) {
  live.intervals.delete(id);
  return origClearInterval.call(this, id);
};
const kind = (t) => (t === window ? "window" : t === document ? "document" : t?.constructor?.name ?? "?");
const origAdd = EventTarget.prototype.addEventListener;
const origRemove = EventTarget.prototype.removeEventListener;
EventTarget.prototype.addEventListener = function (type, fn, opts) {
  const k = `${kind(this)}:${type}`;
  live.listeners.set(k, (live.listeners.get(k) ?? 0) + 1);
  return origAdd.call(this, type, fn, opts);
};
EventTarget.prototype.removeEventListener = function (type, fn, opts) {
  const k = `${kind(this)}:${type}`;
  live.listeners.set(k, (live.listeners.get(k) ?? 0) - 1);
  return origRemove.call(this, type, fn, opts);
};
const OrigWebSocket = globalThis.WebSocket;
globalThis.WebSocket = class extends OrigWebSocket {
  constructor(...a) {
    super(...a);
    live.sockets.add(this);
    origAdd.call(this, "close", () => live.sockets.delete(this));
  }
};

const errors = [];
addEventListener("error", (e) => errors.push(e.message));
addEventListener("unhandledrejection", (e) => errors.push(String(e.reason?.stack ?? e.reason)));

const { default: init, Session, EventChannel, ClassQuery } = await import("/pkg/index.js");
const wasm = await init();
const login = () => Session.login({ url: location.origin, user: "admin", password: "ins3965!", flavor: "apic", refreshTimeout: 30 });

let baseline = new Map();

window.leak = {
  ready: true,

  /** Listeners present now (the page's and the test driver's own) are not counted later. */
  baseline() {
    baseline = new Map(live.listeners);
  },

  /** What is live now: package timers, listeners by target and type, open sockets, memory. */
  census() {
    const listeners = {};
    for (const [k, v] of live.listeners) if (v !== (baseline.get(k) ?? 0)) listeners[k] = v - (baseline.get(k) ?? 0);
    return {
      timeouts: live.timeouts.size,
      intervals: live.intervals.size,
      listeners,
      sockets: [...live.sockets].filter((s) => s.readyState !== OrigWebSocket.CLOSED).length,
      wasmBytes: wasm.memory.buffer.byteLength,
      errors: errors.slice(),
    };
  },

  /** n times: log in, open a channel, subscribe, take a push-free snapshot, close (which logs out). */
  async channelCycles(n) {
    let objects = 0;
    for (let i = 0; i < n; i++) {
      const session = await login();
      const ec = new EventChannel(session, { onError: (e) => errors.push(`onError ${e.code}: ${e.message}`) });
      const sub = await ec.subscribe(new ClassQuery("fvTenant"), { onEvent: () => {} });
      objects += sub.initial.length;
      ec.close();
    }
    return objects;
  },

  /** One channel, n subscribe/close cycles, `width` at a time; then the channel closes. */
  async subscribeCycles(n, width) {
    const session = await login();
    const ec = new EventChannel(session, { onError: (e) => errors.push(`onError ${e.code}: ${e.message}`) });
    let done = 0;
    const lane = async () => {
      while (done < n) {
        done++;
        const sub = await ec.subscribe(new ClassQuery("fvTenant"), { store: done % 2 === 0, onEvent: () => {} });
        sub.close();
      }
    };
    await Promise.all(Array.from({ length: width }, lane));
    const held = ec.resources();
    ec.close();
    return held;
  },
};
