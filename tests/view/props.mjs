// Property test of the live view (src/js/view.js) in Node: seeded random batches of created,
// modified and deleted objects, growing the store past several re-hashes of its bucket table.
// After each batch read, the snapshot equals a reference Map; every earlier snapshot still shows
// what it showed; an object that did not change is the same object in the next snapshot; a
// snapshot is the same object until a change; listeners run once per burst, after it.
//   node tests/view/props.mjs [seed]
import { View } from "../../src/js/view.js";

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.argv[2] ?? 17);
const rand = mulberry32(seed);
const rnd = (n) => Math.floor(rand() * n);
const fail = (msg) => {
  console.error(`view props (seed ${seed}): ${msg}`);
  process.exit(1);
};

const ref = new Map(); // dn -> value of attribute v
const view = new View([{ className: "c", dn: "uni/seed", status: "", attributes: { v: "seed" } }]);
ref.set("uni/seed", "seed");
let notified = 0;
view.onChange(() => notified++);
const kept = []; // [snapshot, copy of ref at the time]
let prev = view.snapshot();
let prevRef = new Map(ref);
for (let step = 0; step < 4000; step++) {
  const batch = [];
  const changed = new Set();
  for (let j = 0, n = 1 + rnd(30); j < n; j++) {
    const dn = `uni/tn-${rnd(30000)}/ap-${rnd(3)}`;
    changed.add(dn);
    if (rnd(6) === 0) {
      batch.push({ className: "c", dn, status: "deleted", attributes: {} });
      ref.delete(dn);
    } else {
      batch.push({ className: "c", dn, status: ref.has(dn) ? "modified" : "created", attributes: { v: `${step}.${j}` } });
      ref.set(dn, `${step}.${j}`);
    }
  }
  view.apply(batch);
  if (step % 5 !== 0) continue;
  const snap = view.snapshot();
  if (snap === prev) fail(`step ${step}: the same snapshot after a change`);
  if (view.snapshot() !== snap) fail(`step ${step}: a new snapshot without a change`);
  if (snap.size !== ref.size || snap.list.length !== ref.size) fail(`step ${step}: size ${snap.size}, want ${ref.size}`);
  for (const [dn, v] of ref) if (snap.get(dn)?.attributes.v !== v) fail(`step ${step}: ${dn} is ${snap.get(dn)?.attributes.v}, want ${v}`);
  for (const mo of snap.list) if (!ref.has(mo.dn) || !Object.isFrozen(mo)) fail(`step ${step}: ${mo.dn} held or not frozen`);
  for (const [dn, v] of prevRef) {
    if (prev.get(dn)?.attributes.v !== v) fail(`step ${step}: an earlier snapshot changed at ${dn}`);
    if (ref.get(dn) === v && snap.get(dn) !== prev.get(dn)) fail(`step ${step}: ${dn} did not change but is a new object`);
  }
  if (step % 500 === 0) kept.push([snap, new Map(ref)]);
  prev = snap;
  prevRef = new Map(ref);
}
for (const [snap, want] of kept) {
  if (snap.size !== want.size) fail("an old snapshot's size changed");
  for (const [dn, v] of want) if (snap.get(dn)?.attributes.v !== v) fail(`an old snapshot changed at ${dn}`);
}
// Listeners run from a microtask: none yet, then one call for the whole synchronous run above.
if (notified !== 0) fail(`${notified} notifications inside the run`);
await Promise.resolve();
if (notified !== 1) fail(`${notified} notifications for one synchronous run, want 1`);
console.log(`view props (seed ${seed}): ok, ${ref.size} objects held at the end`);
