// Runs the built package outside the browser (Node 20 with --experimental-websocket, Deno):
// logs in to dme-sim, subscribes in store mode, writes an object through the simulator and waits
// for the push. Usage: <runtime> smoke.mjs <pkg entry URL> <dme-sim URL>
// Prints "ok <runtime>" and exits 0, or prints the failure and exits 1.

const [entry, sim] = (globalThis.Deno ? Deno.args : process.argv.slice(2));
const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : `node ${process.versions.node}`;
const exit = (code) => (globalThis.Deno ? Deno.exit(code) : process.exit(code));
const fail = (msg) => {
  console.error(`FAIL ${runtime}: ${msg}`);
  exit(1);
};
setTimeout(() => fail("timed out after 20 s"), 20000);

const m = await import(entry);
await m.default();

const session = await m.Session.login({ url: sim, user: "admin", password: "ins3965!" });
if (session.user !== "admin") fail(`user is ${session.user}`);
const errors = [];
const ec = new m.EventChannel(session, { onError: (e) => errors.push(e) });
const seen = [];
const sub = await ec.subscribe(new m.ClassQuery("fvTenant"), {
  store: true,
  onEvent: (mos) => seen.push(...mos),
});
if (!/^\d{17,}$/.test(sub.subid)) fail(`subscription id ${sub.subid}`);
if (sub.initial.length < 3) fail(`initial snapshot has ${sub.initial.length} objects`);

const name = `rt${Date.now()}`;
const res = await fetch(`${sim}/_sim/write?dn=uni/tn-${name}`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ fvTenant: { attributes: { name, descr: "from a runtime test" } } }),
});
if (!res.ok) fail(`sim write answered ${res.status}`);
for (let i = 0; i < 100 && !seen.some((mo) => mo.dn === `uni/tn-${name}`); i++) {
  await new Promise((r) => setTimeout(r, 50));
}
const mo = seen.find((mo) => mo.dn === `uni/tn-${name}`);
if (!mo) fail("no push received");
if (mo.status !== "created" || mo.attributes.descr !== "from a runtime test") fail(JSON.stringify(mo));
if (!sub.store().some((o) => o.dn === `uni/tn-${name}`)) fail("store lacks the new object");
if (errors.length) fail(`errors: ${errors.map((e) => e.code).join(",")}`);
await fetch(`${sim}/_sim/delete?dn=uni/tn-${name}`, { method: "POST" });
ec.close();
console.log(`ok ${runtime}: login, subscribe (${sub.initial.length} initial), push received`);
exit(0);
