// The cost of a live view (issue 17): 100,000 endpoint-like objects held in one store-mode
// subscription, 100 changes a second (one object each, through the package's socket as pushes),
// and one read per animation frame, the way a UI framework reads: is there a new state, and what
// is in it. Three consoles, each in a page of its own (the driver measures main-thread task time
// through the DevTools protocol over the same window):
// - "view": `sub.snapshot()` per frame (the package's live view);
// - "Map, immutable per frame": onEvent copies deliveries into a Map by hand, and a frame with
//   changes copies that Map into a new one (a new state for the framework, as a view gives);
// - "Map, mutated in place": the same Map and no copy (the cheapest, with no immutable state).
import init, { Session, EventChannel, ClassQuery } from "/pkg/index.js";
import { endpoint, jsonFrame } from "./gen.js";

const yieldTask = () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => r(); c.port2.postMessage(0); });

let run = null;

/** Logs in, subscribes and fills the store with `n` objects; the view (if any) is made after. */
export async function viewCostSetup({ kind, n = 100000, per = 500 }, sockets) {
  await init();
  const session = await Session.login({ url: location.origin, user: "admin", password: "ins3965!", flavor: "apic" });
  const ec = new EventChannel(session, {});
  const map = new Map();
  const state = { dirty: false, changed: null, held: map };
  const copy = (mos) => {
    for (const mo of mos) {
      if (mo.status === "deleted") map.delete(mo.dn);
      else map.set(mo.dn, mo);
      state.changed = mo.dn;
    }
    state.dirty = true;
  };
  const sub = await ec.subscribe(new ClassQuery("fvCEp"),
    kind === "view" ? { store: true, view: true } : { store: true, onEvent: copy });
  const sock = sockets[sockets.length - 1];
  for (let i = 0; i < n; i += per) {
    const mos = [];
    for (let k = i; k < Math.min(n, i + per); k++) mos.push(endpoint(k));
    sock.onmessage(new MessageEvent("message", { data: jsonFrame([sub.subid], mos) }));
    await yieldTask();
  }
  const held = kind === "view" ? sub.snapshot().size : map.size;
  run = { kind, sub, sock, state, n, seq: 0 };
  return { held };
}

/** Runs the changes and the per-frame reads for `seconds`; the driver measures around it. */
export async function viewCostRun({ seconds = 5, rate = 100 }) {
  const { kind, sub, sock, state, n } = run;
  let frames = 0;
  let newStates = 0;
  let last = null;
  let touched = 0;
  let stop = false;
  const frame = () => {
    if (stop) return;
    frames++;
    if (kind === "view") {
      const s = sub.snapshot();
      if (s !== last) {
        last = s;
        newStates++;
        touched += s.size;
      }
    } else if (state.dirty) {
      state.dirty = false;
      newStates++;
      last = kind === "map-copy" ? new Map(state.held) : state.held;
      touched += last.size;
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const t0 = performance.now();
  let sent = 0;
  await new Promise((done) => {
    const timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (sent < due) {
        const [c, a] = endpoint((run.seq++ * 7919) % n);
        a.status = "modified";
        a.descr = `change ${run.seq}`;
        sock.onmessage(new MessageEvent("message", { data: jsonFrame([sub.subid], [[c, a]]) }));
        sent++;
      }
      if (performance.now() - t0 >= seconds * 1000) {
        clearInterval(timer);
        stop = true;
        done();
      }
    }, 1000 / rate);
  });
  return { changes: sent, frames, newStates, seconds: (performance.now() - t0) / 1000, touched };
}
