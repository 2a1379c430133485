// The in-page half of the benchmark (driven by bench/run.mjs through playwright-core).
//
// The package's real delivery path is measured from the socket's `message` event onward: the
// global WebSocket is replaced, before the package opens its socket, by a wrapper around a real
// one. The wrapper connects to dme-sim for real (so the session has its socket and subscribing
// works, with real subscription ids), forwards open/close/error, and lets the bench dispatch
// generated frames to the package's `onmessage` exactly as a socket would.
import init, { Session, EventChannel, ClassQuery } from "/pkg/index.js";
import { CORPORA, corpus, burstFrame, sentinelFrame, endpoint, jsonFrame } from "./gen.js";
import { viewCostSetup, viewCostRun } from "./viewcost.js";

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

const S = { delivered: 0, errors: [], latencies: null, read: 0, sentinels: 0 };
let wasm;
let ec;
const ids = { off: [], on: [] };

// Both consumers read every field of every object they are handed, as a console rendering them
// would: a lazy representation would pay here, not escape the measurement.
function readAll(mos) {
  let n = 0;
  for (const mo of mos) {
    n += mo.className.length + mo.dn.length + mo.status.length;
    if (mo.statusMissing) n++;
    const a = mo.attributes;
    for (const k in a) n += k.length + a[k].length;
    if (mo.dn.startsWith("uni/tn-bench-sentinel-")) S.sentinels++;
  }
  S.read += n;
  return mos.length;
}

async function setup({ classes = ["fvTenant"], live = false } = {}) {
  wasm = await init();
  const session = await Session.login({ url: location.origin, user: "admin", password: "ins3965!", flavor: "apic" });
  ec = new EventChannel(session, { onError: (e) => S.errors.push(`${e.code}: ${e.message}`) });
  const onEvent = (mos) => {
    S.delivered += readAll(mos);
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

// ---- the plain JavaScript a team would write instead: parse, route ids, and with `store` merge
// into a Map per subscription and hand out the merged object (with the package's rules: a delete
// hands out the last full object, a push that changes nothing is not handed out).
function parseFrame(text, xml) {
  const mos = [];
  let idList;
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
  return [idList, mos];
}

function mergeInto(store, mo) {
  const held = store.get(mo.dn);
  if (mo.status === "deleted") {
    if (!held) return null;
    store.delete(mo.dn);
    return { className: held.className, dn: held.dn, status: "deleted", attributes: held.attributes };
  }
  if (held && mo.status !== "created") {
    let changed = false;
    const a = held.attributes;
    for (const k in mo.attributes) {
      const v = mo.attributes[k];
      if (k === "rn" && v === "") continue;
      if (a[k] !== v) { a[k] = v; changed = true; }
    }
    if (!changed) return null;
    held.status = "modified";
    return held;
  }
  if (held) {
    const a = held.attributes;
    let same = true;
    let n = 0;
    for (const k in mo.attributes) { n++; if (a[k] !== mo.attributes[k]) { same = false; break; } }
    if (same && n === Object.keys(a).length && held.className === mo.className) return null;
  }
  const full = { className: mo.className, dn: mo.dn, status: "created", attributes: { ...mo.attributes } };
  store.set(mo.dn, full);
  return full;
}

function plainJs(routeIds, store) {
  const subs = new Map(); // id -> Map(dn -> mo) | null
  const sock = { onmessage: null, delivered: 0, subs };
  for (const id of routeIds) subs.set(id, store ? new Map() : null);
  const xml = new DOMParser();
  sock.onmessage = (ev) => {
    const [idList, mos] = parseFrame(ev.data, xml);
    for (const id of idList) {
      if (!subs.has(id)) continue;
      const held = subs.get(id);
      if (!held) { sock.delivered += readAll(mos); continue; }
      const out = [];
      for (const mo of mos) {
        const m = mergeInto(held, mo);
        if (m) out.push(m);
      }
      if (out.length) sock.delivered += readAll(out);
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
// task boundary between chunks (as a socket would), then `sentinel`, and waits until every
// subscription it names has been handed the sentinel object (`want` of them; 0 for consumers that
// do not read). Returns the busy time: the dispatching tasks plus any task spent waiting for the
// sentinel, so work the package defers to later tasks is counted too.
let sentinelNo = 0;
async function timeRun(target, frames, per, sentinel, want) {
  const chunk = Math.max(1, Math.floor(2000 / per));
  let busy = 0;
  let i = 0;
  const s0 = S.sentinels;
  while (i < frames.length) {
    const end = Math.min(frames.length, i + chunk);
    const t0 = performance.now();
    for (; i < end; i++) target.onmessage(new MessageEvent("message", { data: frames[i] }));
    busy += performance.now() - t0;
    await yieldTask();
  }
  const t0 = performance.now();
  target.onmessage(new MessageEvent("message", { data: sentinel }));
  while (S.sentinels - s0 < want && performance.now() - t0 < 20000) await yieldTask();
  busy += performance.now() - t0;
  if (S.sentinels - s0 < want) throw new Error("the sentinel was not delivered within 20 s");
  return busy;
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

async function throughput({ rounds = 5 } = {}) {
  const pkgSock = sockets[sockets.length - 1];
  const plainOff = plainJs(ids.off, false);
  const plainOn = plainJs(ids.on, true);
  const floor = parseOnly();
  const out = [];
  for (const name of Object.keys(CORPORA)) {
    const spec = CORPORA[name];
    const mos = spec.frames * spec.per;
    const keys = ["package, store off", "package, store on", "plain JS, store off", "plain JS, store on", "JSON.parse only"];
    const rates = Object.fromEntries(keys.map((k) => [k, []]));
    const delivered = Object.fromEntries(keys.map((k) => [k, 0]));
    for (let r = 0; r <= rounds; r++) {
      // A fresh corpus each round (the same for every variant), so store mode meets new content.
      const seed = 7 + r;
      const framesOff = corpus(name, ids.off, seed);
      const framesOn = corpus(name, ids.on, seed);
      const sOff = sentinelFrame(ids.off.slice(0, spec.nids), ++sentinelNo, spec.xml);
      const sOn = sentinelFrame(ids.on.slice(0, spec.nids), ++sentinelNo, spec.xml);
      const count = (sock) => (sock ? sock.delivered : S.delivered);
      const variants = {
        "package, store off": [null, framesOff, sOff, spec.nids],
        "package, store on": [null, framesOn, sOn, spec.nids],
        "plain JS, store off": [plainOff, framesOff, sOff, spec.nids],
        "plain JS, store on": [plainOn, framesOn, sOn, spec.nids],
        "JSON.parse only": [floor, framesOff, sOff, 0],
      };
      // Alternate the order so that drift (GC, thermal, neighbours) hits every variant alike.
      const order = r % 2 ? [...keys].reverse() : keys;
      for (const k of order) {
        const [sock, frames, sentinel, want] = variants[k];
        const d0 = count(sock);
        const ms = await timeRun(sock || pkgSock, frames, spec.per, sentinel, want);
        if (r > 0) {
          rates[k].push(mos / (ms / 1000)); // round 0 warms up
          delivered[k] += count(sock) - d0;
        }
      }
    }
    const row = { corpus: name, xml: spec.xml, frames: spec.frames, mosPerFrame: spec.per, ids: spec.nids, mos, delivered };
    for (const k of keys) row[k] = median(rates[k]);
    out.push(row);
  }
  return { rows: out, errors: S.errors.slice(0, 5) };
}

// ---- store density: `n` endpoint-like objects held in one store-mode subscription (the package)
// or in the Map a team would keep (plain JS). Each side runs in a page of its own; the driver
// measures the JS heap (after forced collection) plus wasm memory before and after.
let density = null;
async function densitySetup({ plain = false } = {}) {
  if (plain) {
    const sock = plainJs(["density"], true);
    density = { sock, id: "density" };
    return {};
  }
  wasm = await init();
  const session = await Session.login({ url: location.origin, user: "admin", password: "ins3965!", flavor: "apic" });
  ec = new EventChannel(session, { onError: (e) => S.errors.push(`${e.code}: ${e.message}`) });
  const sub = await ec.subscribe(new ClassQuery("fvCEp"), { onEvent: (mos) => { S.delivered += readAll(mos); }, store: true });
  density = { sock: sockets[sockets.length - 1], id: sub.subid, sub, initial: sub.initial.length };
  return { initial: sub.initial.length };
}

async function densityFill({ n = 100000, per = 500 } = {}) {
  const { sock, id } = density;
  let json = 0;
  for (let i = 0; i < n; i += per) {
    const mos = [];
    for (let k = i; k < Math.min(n, i + per); k++) mos.push(endpoint(k));
    for (const [c, a] of mos) json += JSON.stringify({ [c]: { attributes: a } }).length;
    sock.onmessage(new MessageEvent("message", { data: jsonFrame([id], mos) }));
    await yieldTask();
  }
  const s0 = S.sentinels;
  sock.onmessage(new MessageEvent("message", { data: sentinelFrame([id], ++sentinelNo, false) }));
  const t0 = performance.now();
  while (S.sentinels === s0 && performance.now() - t0 < 20000) await yieldTask();
  // Held by the run alone: the package's store also holds the subscription's own snapshot.
  const held = density.sub ? density.sub.store().length - density.initial : sock.subs.get(id).size;
  return { objects: n, jsonBytes: json, held, wasmBytes: wasm ? wasm.memory.buffer.byteLength : 0 };
}

async function burst({ n = 50000, plainToo = true } = {}) {
  const pkgSock = sockets[sockets.length - 1];
  const frame = burstFrame(ids.off, n);
  const result = {};
  const runs = { package: pkgSock };
  if (plainToo) runs["plain JS"] = plainJs(ids.off, false);
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
  return wasm ? wasm.memory.buffer.byteLength : 0;
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

globalThis.bench = { setup, throughput, burst, deliver, wasmBytes, live, densitySetup, densityFill, state: S,
  viewCostSetup: (o) => viewCostSetup(o, sockets), viewCostRun };
document.getElementById("status").textContent = "ready";
