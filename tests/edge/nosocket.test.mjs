// A socket that will not open, in Node.js: run with plain `node` (no --experimental-websocket),
// so that on Node.js 20 there is no global WebSocket (on a later Node.js the test removes it).
//   1. `new EventChannel` fails at once with SOCKET_UNAVAILABLE naming the remedies;
//   2. the `ws` package's constructor, given as the `WebSocket` option, serves the channel;
//   3. against a dme-sim that refuses every socket upgrade for a minute (as a proxy that does
//      not pass WebSockets), the package logs in once, leaves at most one session on the device,
//      reports SOCKET_FAILED with its cause, and logs that session out when closed.
//
//   node tests/edge/nosocket.test.mjs     # needs the built package in pkg/ and target/debug/dme-sim
import { join } from "node:path";
import WS from "ws";
import { ROOT, assert, runner, sleep, startSim, until } from "./harness.mjs";

delete globalThis.WebSocket;
const m = await import(join(ROOT, "pkg/node.js"));
const REFUSE_MS = Number(process.env.NOSOCKET_MS ?? 60_000);
const login = (url, extra = {}) =>
  m.Session.login({ url, user: "admin", password: "ins3965!", ...extra });

const sims = [];
const t = runner("nosocket");

t.test("no WebSocket: new EventChannel throws SOCKET_UNAVAILABLE at once", 20_000, async () => {
  assert(typeof globalThis.WebSocket === "undefined", "this runtime still has a WebSocket");
  const sim = await startSim();
  sims.push(sim);
  const session = await login(sim.url);
  let thrown;
  try {
    new m.EventChannel(session, {});
  } catch (e) {
    thrown = e;
  }
  assert(thrown instanceof Error, `no error thrown (${thrown})`);
  assert(thrown.code === "SOCKET_UNAVAILABLE", `code ${thrown.code}`);
  for (const remedy of ["Node.js 22", "--experimental-websocket", "WebSocket constructor"]) {
    assert(thrown.message.includes(remedy), `message names "${remedy}": ${thrown.message}`);
  }
  await session.logout();
  const st = await sim.stats();
  assert(st.logins === 1, `${st.logins} logins`);
  assert(st.sessions.length === 0, `${st.sessions.length} sessions left on the device`);
});

t.test("the ws package's constructor as the WebSocket option", 20_000, async () => {
  const sim = sims[0];
  const session = await login(sim.url);
  const seen = [];
  const ec = new m.EventChannel(session, { WebSocket: WS });
  const sub = await ec.subscribe(new m.ClassQuery("fvTenant"), { onEvent: (mos) => seen.push(...mos) });
  assert(/^\d{17,}$/.test(sub.subid), `subscription id ${sub.subid}`);
  const name = `nosock${Date.now()}`;
  await sim.post(`/_sim/write?dn=uni/tn-${name}`, { fvTenant: { attributes: { name } } });
  await until(5_000, "the push", () => seen.some((mo) => mo.dn === `uni/tn-${name}`));
  ec.close();
  await until(5_000, "the logout", async () => (await sim.stats()).sessions.length === 0);
});

t.test(`a server refusing every socket for ${REFUSE_MS / 1000} s: one login, one session`, REFUSE_MS + 30_000, async () => {
  const sim = await startSim();
  sims.push(sim);
  await sim.post("/_sim/refuse-sockets?n=1000000");
  const errors = [];
  const session = await login(sim.url, { backoffBaseMs: 500, backoffCapMs: 4_000 });
  const ec = new m.EventChannel(session, { WebSocket: WS, onError: (e) => errors.push(e) });
  const pending = ec.subscribe(new m.ClassQuery("fvTenant"), {});
  pending.catch(() => {});
  await sleep(REFUSE_MS);
  const st = await sim.stats();
  console.log(
    `  ${REFUSE_MS / 1000} s of refused sockets: ${st.sockets_refused} socket attempts, ` +
      `${st.logins} logins, ${st.sessions.length} sessions at the device, ${errors.length} errors`,
  );
  assert(st.sockets_refused >= 5, `it kept trying: ${st.sockets_refused} attempts`);
  assert(st.logins === 1, `${st.logins} logins`);
  assert(st.sessions.length <= 1, `${st.sessions.length} sessions left on the device`);
  const failed = errors.filter((e) => e.code === "SOCKET_FAILED");
  assert(failed.length >= 1, `errors: ${errors.map((e) => e.code).join(",")}`);
  for (const e of failed) {
    assert(e.closeCode === 1006, `close code ${e.closeCode}`);
    assert(e.httpWorks === true, `httpWorks ${e.httpWorks}`);
    assert(/answers over HTTP/.test(e.message), e.message);
    assert(!/APIC-cookie|token=|socket[A-Za-z0-9+/=]{8,}/.test(e.message), `a token in ${e.message}`);
  }
  ec.close();
  await until(5_000, "the logout", async () => (await sim.stats()).sessions.length === 0);
});

const failed = await t.run(() => sims.forEach((s) => s.stop()));
process.exit(failed ? 1 : 0);
