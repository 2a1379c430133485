// The in-page half of the benchmark (driven by bench/run.mjs through playwright-core).
//
// The package's real delivery path is measured from the socket's `message` event onward: the
// global WebSocket is replaced, before the package opens its socket, by a wrapper around a real
// one. The wrapper connects to dme-sim for real (so the session has its socket and subscribing
// works, with real subscription ids), forwards open/close/error, and lets the bench dispatch
// generated frames to the package's `onmessage` exactly as a socket would.
import init, { Session, EventChannel, ClassQuery } from "/pkg/index.js";
import { CORPORA, corpus, burstFrame } from "./gen.js";

const RealWS = globalThis.WebSocket;
let arrival = 0; // performance.now() when the frame being handled arrived
const sockets = [];
class BenchSocket {
  constructor(url) {
    this.url = url;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.real = new RealWS(url);
    this.real.onopen = (e) => this.onopen && this.onopen(e);
    this.real.onclose = (e) => this.onclose && this.onclose(e);
    this.real.onerror = (e) => this.onerror && this.onerror(e);
    this.real.onmessage = (e) => {
      arrival = performance.now();
      if (this.onmessage) this.onmessage(e);
    };
    sockets.push(this);
  }
  get readyState() { return this.real.readyState; }
  get binaryType() { return this.real.binaryType; }
  set binaryType(v) { this.real.binaryType = v; }
  send(d) { this.real.send(d); }
  close(code, reason) { code === undefined ? this.real.close() : this.real.close(code, reason); }
}
for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) BenchSocket[k] = RealWS[k];
globalThis.WebSocket = BenchSocket;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const yieldTask = () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => r(); c.port2.postMessage(0); });

const S = { delivered: 0, errors: [], latencies: null };
let wasm;
let ec;
const ids = { off: [], on: [] };

async function setup({ classes = ["fvTenant"], live = false } = {}) {
  wasm = await init();
  const session = await Session.login({ url: location.origin, user: "admin", password: "ins3965!", flavor: "apic" });
  ec = new EventChannel(session, { onError: (e) => S.errors.push(`${e.code}: ${e.message}`) });
  const onEvent = (mos) => {
    S.delivered += mos.length;
    if (S.latencies) S.latencies.push(performance.now() - arrival);
  };
  if (live) {
    for (const c of classes) await ec.subscribe(new ClassQuery(c), { onEvent });
    return { subscriptions: classes.length };
  }
  for (let i = 0; i < 4; i++) ids.off.push((await ec.subscribe(new ClassQuery("fvTenant"), { onEvent })).subid);
  for (let i = 0; i < 4; i++) ids.on.push((await ec.subscribe(new ClassQuery("fvTenant"), { onEvent, store: true })).subid);
  return { ids };
}

// ---- the plain JavaScript a team would write instead: parse, route ids, merge into a Map, call back.
function plainJs() {
  const subs = new Map(); // id -> { store: Map(dn -> mo), cb }
  const sock = { onmessage: null, delivered: 0 };
  const cb = (mos) => { sock.delivered += mos.length; };
  for (const id of ids.off) subs.set(id, { store: new Map(), cb });
  const xml = new DOMParser();
  sock.onmessage = (ev) => {
    const text = ev.data;
    let idList;
    const mos = [];
    if (text.charCodeAt(0) === 60) {
      const root = xml.parseFromString(text, "application/xml").documentElement;
      idList = (root.getAttribute("subscriptionId") || "").split(",");
      for (let el = root.firstElementChild; el; el = el.nextElementSibling) {
        const attributes = {};
        for (const a of el.attributes) attributes[a.name] = a.value;
        mos.push({ className: el.tagName, dn: attributes.dn, status: attributes.status || "modified", attributes });
      }
    } else {
      const doc = JSON.parse(text);
      idList = doc.subscriptionId;
      for (const entry of doc.imdata) {
        for (const className in entry) {
          const attributes = entry[className].attributes;
          mos.push({ className, dn: attributes.dn, status: attributes.status || "modified", attributes });
        }
      }
    }
    for (const id of idList) {
      const sub = subs.get(id);
      if (!sub) continue;
      for (const mo of mos) {
        if (mo.status === "deleted") sub.store.delete(mo.dn);
        else {
          const held = sub.store.get(mo.dn);
          if (held && mo.status !== "created") Object.assign(held.attributes, mo.attributes);
          else sub.store.set(mo.dn, { className: mo.className, dn: mo.dn, attributes: { ...mo.attributes } });
        }
      }
      sub.cb(mos);
    }
  };
  return sock;
}

function parseOnly() {
  const sock = { onmessage: null, delivered: 0 };
  const xml = new DOMParser();
  sock.onmessage = (ev) => {
    const text = ev.data;
    if (text.charCodeAt(0) === 60) sock.delivered += xml.parseFromString(text, "application/xml").documentElement.childElementCount;
    else sock.delivered += JSON.parse(text).imdata.length;
  };
  return sock;
}

// Dispatches frames to `target.onmessage` as MessageEvents, in chunks of about 2,000 MOs with a
// task boundary between chunks (as a socket would); returns the busy time only.
async function timeRun(target, frames, per) {
  const chunk = Math.max(1, Math.floor(2000 / per));
  let busy = 0;
  let i = 0;
  while (i < frames.length) {
    const end = Math.min(frames.length, i + chunk);
    const t0 = performance.now();
    for (; i < end; i++) target.onmessage(new MessageEvent("message", { data: frames[i] }));
    busy += performance.now() - t0;
    await yieldTask();
  }
  return busy;
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

async function throughput({ rounds = 5 } = {}) {
  const pkgSock = sockets[sockets.length - 1];
  const plain = plainJs();
  const floor = parseOnly();
  const out = [];
  for (const name of Object.keys(CORPORA)) {
    const spec = CORPORA[name];
    const framesOff = corpus(name, ids.off);
    const framesOn = corpus(name, ids.on);
    const mos = spec.frames * spec.per;
    const variants = {
      "package, store off": async () => { const d0 = S.delivered; const ms = await timeRun(pkgSock, framesOff, spec.per); return [ms, S.delivered - d0]; },
      "package, store on": async () => { const d0 = S.delivered; const ms = await timeRun(pkgSock, framesOn, spec.per); return [ms, S.delivered - d0]; },
      "plain JS": async () => { const d0 = plain.delivered; const ms = await timeRun(plain, framesOff, spec.per); return [ms, plain.delivered - d0]; },
      "JSON.parse only": async () => { const d0 = floor.delivered; const ms = await timeRun(floor, framesOff, spec.per); return [ms, floor.delivered - d0]; },
    };
    const keys = Object.keys(variants);
    const rates = Object.fromEntries(keys.map((k) => [k, []]));
    const delivered = {};
    for (let r = 0; r <= rounds; r++) {
      // Alternate the order so that drift (GC, thermal, neighbours) hits every variant alike.
      const order = r % 2 ? [...keys].reverse() : keys;
      for (const k of order) {
        const [ms, d] = await variants[k]();
        delivered[k] = d;
        if (r > 0) rates[k].push(mos / (ms / 1000)); // round 0 warms up
      }
    }
    const row = { corpus: name, frames: spec.frames, mosPerFrame: spec.per, ids: spec.nids, mos, delivered };
    for (const k of keys) row[k] = median(rates[k]);
    out.push(row);
  }
  return { rows: out, errors: S.errors.slice(0, 5) };
}

async function burst({ n = 50000, plainToo = true } = {}) {
  const pkgSock = sockets[sockets.length - 1];
  const frame = burstFrame(ids.off, n);
  const result = {};
  const runs = { package: pkgSock };
  if (plainToo) runs["plain JS"] = plainJs();
  for (const [k, sock] of Object.entries(runs)) {
    const tasks = [];
    const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(e.duration); });
    obs.observe({ type: "longtask", buffered: false });
    await sleep(50);
    const d0 = k === "package" ? S.delivered : sock.delivered;
    const t0 = performance.now();
    let firstTaskMs = 0;
    setTimeout(() => {
      const s = performance.now();
      sock.onmessage(new MessageEvent("message", { data: frame }));
      firstTaskMs = performance.now() - s;
    }, 0);
    const got = () => (k === "package" ? S.delivered : sock.delivered) - d0;
    while (got() < n && performance.now() - t0 < 20000) await sleep(20);
    const totalMs = performance.now() - t0;
    await sleep(300);
    obs.disconnect();
    result[k] = { delivered: got(), longestTaskMs: Math.max(0, ...tasks), firstTaskMs, totalMs, longTasks: tasks.length };
  }
  return result;
}

// Delivers `n` more objects through the package (500-MO frames, store mode on).
async function deliver({ n }) {
  const pkgSock = sockets[sockets.length - 1];
  const frames = corpus("500-MO bursts", ids.on, 13);
  const d0 = S.delivered;
  let i = 0;
  while (S.delivered - d0 < n) {
    pkgSock.onmessage(new MessageEvent("message", { data: frames[i++ % frames.length] }));
    if (i % 10 === 0) await yieldTask();
  }
  return { delivered: S.delivered - d0, wasmBytes: wasm.memory.buffer.byteLength };
}

function wasmBytes() {
  return wasm.memory.buffer.byteLength;
}

async function live({ seconds = 5 } = {}) {
  await sleep(500);
  S.latencies = [];
  const d0 = S.delivered;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const ms = performance.now() - t0;
  const lat = S.latencies.sort((a, b) => a - b);
  S.latencies = null;
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  return { mos: S.delivered - d0, callbacks: lat.length, mosPerSec: (S.delivered - d0) / (ms / 1000), p50: q(0.5), p99: q(0.99), errors: S.errors.slice(0, 5) };
}

globalThis.bench = { setup, throughput, burst, deliver, wasmBytes, live, state: S };
document.getElementById("status").textContent = "ready";
