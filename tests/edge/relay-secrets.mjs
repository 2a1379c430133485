// The example relay's secrets, as steps of relay.test.mjs: the Worker's RELAY_TOKEN door in
// workerd (503 for every call while the secret is unset, 401 for a missing or wrong bearer, and
// neither lets a single request reach the device nor disturbs a running relay), the script
// taking the device password from the environment only, and no answer or log of any runtime
// carrying the password or a session token.
import { assert, sleep } from "./harness.mjs";

const CALLS = [
  ["/start", "POST"],
  ["/stop", "POST"],
  ["/status", "GET"],
];
// dme-sim's password, the one every relay in these tests logs in with.
const PASSWORD = "ins3965!";

/** How much has reached the device so far: requests through the proxy, logins on the device. */
async function traffic(sim, proxy) {
  return { requests: proxy.requests.length, logins: (await sim.stats()).logins };
}

/** Nothing more reached the device since `before`, not even later (an armed alarm would fire). */
async function untouched(sim, proxy, before) {
  // Longer than the tests' watchdog (1.5 s), so an alarm set by a refused call would have run.
  await sleep(2500);
  const now = await traffic(sim, proxy);
  assert(now.requests === before.requests, `${now.requests - before.requests} requests reached the device`);
  assert(now.logins === before.logins, `${now.logins - before.logins} logins on the device`);
}

/**
 * Steps before the relay starts (workerd): the refusals, while the device has seen nothing.
 * `relay` is relay.test.mjs's workerd relay (its call presents the right bearer by default).
 */
export function refusalTests(t, { sim, proxy, relay, workDir }) {
  t.test("without RELAY_TOKEN (or with a short one) every call gets 503 saying so, and nothing reaches the device", 60_000, async () => {
    const before = await traffic(sim, proxy);
    assert(before.requests === 0 && before.logins === 0, `the device was used before: ${JSON.stringify(before)}`);
    // Unset, empty, and shorter than the 16 characters the Worker requires.
    for (const [i, token] of [undefined, "", "fifteen-chars!!"].entries()) {
      const w = await relay.open({ outDir: `${workDir}-refusing-${i}`, token });
      try {
        for (const [path, method] of CALLS) {
          // Presenting the (too short) configured token, or any other, changes nothing.
          for (const auth of [null, `Bearer ${token || "x".repeat(32)}`]) {
            const r = await w.call(path, method, auth);
            assert(r.status === 503, `${method} ${path} (token ${JSON.stringify(token)}) answered ${r.status} ${r.text}`);
            assert(/RELAY_TOKEN/.test(r.text) && /set/.test(r.text), `${method} ${path}: the 503 does not say to set RELAY_TOKEN: ${r.text}`);
          }
        }
      } finally {
        await w.mf.dispose();
      }
    }
    await untouched(sim, proxy, before);
  });

  t.test("with RELAY_TOKEN, a missing or wrong bearer gets 401 on every call, and nothing reaches the device", 30_000, async () => {
    const before = await traffic(sim, proxy);
    const tok = relay.token;
    const flipped = tok.slice(0, -1) + (tok.endsWith("A") ? "B" : "A");
    const wrong = [
      null,
      "Bearer",
      "Bearer ",
      `Bearer ${flipped}`, // same length, last character differs
      `Bearer ${tok.slice(0, -1)}`,
      `Bearer ${tok}x`,
      `Bearer ${tok} ${tok}`,
      tok, // no scheme
      `Basic ${btoa(`relay:${tok}`)}`,
    ];
    for (const [path, method] of CALLS) {
      for (const auth of wrong) {
        const r = await relay.call(path, method, auth);
        assert(r.status === 401, `${method} ${path} with ${JSON.stringify(auth)} answered ${r.status} ${r.text}`);
        assert(r.body === null && !r.text.includes(tok), `${method} ${path}: the 401 carries more than a refusal: ${r.text}`);
      }
    }
    await untouched(sim, proxy, before);
    // The right token is let in, whatever the case of the scheme (RFC 7235); not running yet.
    for (const auth of [`Bearer ${tok}`, `bearer ${tok}`]) {
      const r = await relay.call("/status", "GET", auth);
      assert(r.status === 200 && r.body.running === false && r.body.enabled === false, `/status with ${auth.split(" ")[0]}: ${r.status} ${r.text}`);
    }
  });
}

/** A step while the relay runs (workerd): refused calls leave it alone. */
export function runningTests(t, { sim, proxy, relay }) {
  t.test("a refused /stop or /start leaves the running relay alone (no logout, no new login)", 20_000, async () => {
    const sessions = (await sim.stats()).sessions.map((s) => s.id);
    const before = await traffic(sim, proxy);
    for (const [path, method] of CALLS) {
      for (const auth of [null, `Bearer ${"x".repeat(relay.token.length)}`]) {
        const r = await relay.call(path, method, auth);
        assert(r.status === 401, `${method} ${path} answered ${r.status}`);
      }
    }
    await sleep(2000);
    const since = proxy.requests.slice(before.requests).map((r) => r.path.split("?")[0]);
    assert(!since.some((p) => /aaaLogin|aaaLogout/.test(p)), `the device saw ${since.join(", ")}`);
    const stats = await sim.stats();
    assert(stats.logins === before.logins, `logins ${before.logins} -> ${stats.logins}`);
    assert(JSON.stringify(stats.sessions.map((s) => s.id)) === JSON.stringify(sessions), `sessions ${sessions} -> ${stats.sessions.map((s) => s.id)}`);
    const r = await relay.call("/status");
    assert(r.body.running && r.body.enabled && r.body.status.state === "live", `after the refusals: ${r.text}`);
  });
}

/** Steps at the end (every runtime): no secret in any answer or output; the script's password. */
export function leakTests(t, { runtime, proxy, relay }) {
  t.test("no answer and no output carries the device password or a session token", 10_000, async () => {
    const tokens = proxy.issued.map((i) => i.token).filter(Boolean);
    assert(tokens.length >= 3, `only ${tokens.length} session tokens issued`);
    const texts = [...relay.lines, ...(relay.answers ?? [])];
    if (runtime === "workerd") {
      // An authorised /status tells the state, and only that.
      const r = await relay.call("/status");
      assert(r.status === 200 && typeof r.body.running === "boolean", `/status: ${r.status} ${r.text}`);
      texts.push(r.text);
    }
    assert(texts.length > 10, `only ${texts.length} lines and answers to look at`);
    for (const text of texts) {
      assert(!text.includes(PASSWORD), `the password in: ${text.slice(0, 200)}`);
      const tok = tokens.find((k) => text.includes(k));
      assert(!tok, `a session token in: ${text.slice(0, 200)}`);
      if (relay.token) assert(!text.includes(relay.token), `RELAY_TOKEN in: ${text.slice(0, 200)}`);
    }
    console.log(`checked ${texts.length} lines and answers against the password and ${tokens.length} session tokens`);
  });

  if (runtime === "workerd") return;
  t.test("the script takes the password from DEVICE_PASSWORD only and never prints it", 60_000, async () => {
    const flag = "Flag-Pa55word-4-test";
    const before = proxy.requests.length;
    // On the command line it is refused (even with DEVICE_PASSWORD set), without being echoed.
    for (const extra of [["--password", flag], [`--password=${flag}`]]) {
      const r = await relay.runOnce(extra, {});
      assert(r.code === 2 && /DEVICE_PASSWORD/.test(r.out), `${extra[0]}: exit ${r.code}: ${r.out}`);
      assert(!r.out.includes(flag), `the password was echoed: ${r.out}`);
    }
    // Without it in the environment the script does not start.
    const none = await relay.runOnce([], { DEVICE_PASSWORD: undefined });
    assert(none.code === 2 && /DEVICE_PASSWORD/.test(none.out), `without DEVICE_PASSWORD: exit ${none.code}: ${none.out}`);
    assert(proxy.requests.length === before, "a refused start reached the device");
    // A wrong one from the environment is tried, rejected, and not printed.
    const wrongPw = "Wr0ng-Pa55word-4-test";
    const wrong = await relay.runOnce([], { DEVICE_PASSWORD: wrongPw });
    assert(wrong.code === 1 && /start-failed/.test(wrong.out), `a wrong password: exit ${wrong.code}: ${wrong.out}`);
    assert(!wrong.out.includes(wrongPw), `the wrong password was printed: ${wrong.out}`);
    assert(proxy.requests.slice(before).some((r) => r.path.startsWith("/api/aaaLogin")), "the wrong password was not tried");
  });
}
