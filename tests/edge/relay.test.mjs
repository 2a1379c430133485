// The example fault relay (examples/relay/) in one runtime, against its own dme-sim on loopback
// and a local webhook receiver: login and subscribe, a raised fault delivered, a soaking fault
// held back until a sparse delta raises it, session token rotation without a new login, a socket
// drop (gap, recovery), a device restart with an outage (gap, re-login, and a fault raised
// during the outage still delivered), and a clean stop (logout). In workerd also the alarm and
// the cron trigger starting the relay; the relay's secrets (RELAY_TOKEN, the device password,
// session tokens) are tested in relay-secrets.mjs, registered from here.
//
//   node tests/edge/relay.test.mjs workerd   # the Worker + Durable Object in workerd (miniflare)
//   node tests/edge/relay.test.mjs deno      # relay-cli.js in Deno (node_modules/.bin/deno)
//   node --experimental-websocket tests/edge/relay.test.mjs node   # relay-cli.js in Node
//
// Needs the built package in pkg/ (scripts/build-pkg.sh) and target/debug/dme-sim. Ends with
// "N passed, M failed"; every wait has a deadline, and everything it starts is stopped.
import { spawn } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, assert, runner, sleep, startProxy, startSim, startWebhook, until, within } from "./harness.mjs";
import { leakTests, refusalTests, runningTests } from "./relay-secrets.mjs";

const runtime = process.argv[2];
if (!["workerd", "deno", "node"].includes(runtime)) {
  console.error("usage: relay.test.mjs workerd|deno|node");
  process.exit(2);
}
const PKG = process.env.DME_PKG ?? join(ROOT, "pkg");
const WORK = join(ROOT, "target/edge", runtime);
// Short session timers, so token rotation happens within the test (aaaRefresh every ~3 s).
const SIM_FLAGS = ["--throttle", "0", "--objects", "400", "--refresh-timeout", "6", "--token-grace", "1"];
// What the relay itself printed goes to a file (it reports expected errors during the outage
// tests, which would read like failures in the test output); its path is shown on failure.
const TRANSCRIPT = join(ROOT, "target/edge", `${runtime}-relay.log`);
mkdirSync(join(ROOT, "target/edge"), { recursive: true });
writeFileSync(TRANSCRIPT, "");
const transcript = (line) => appendFileSync(TRANSCRIPT, line + "\n");

/** The relay in workerd: the Worker bundled like wrangler would, its Durable Object, /status. */
async function workerdRelay(sim, hook) {
  const { startWorker, randomToken } = await import("../../examples/relay/dev.mjs");
  const lines = [];
  // Every answer the Worker gave, to show that none carries a secret.
  const answers = [];
  const stdio = (stdout, stderr) => {
    for (const [s, tag] of [[stdout, "workerd"], [stderr, "workerd!"]]) {
      s.setEncoding("utf8");
      let buf = "";
      s.on("data", (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          lines.push(line);
          transcript(`[${tag}] ${line}`);
        }
      });
    }
  };
  // Starts the Worker in workerd with these bindings (the test's device, webhook and watchdog);
  // its answers and output are recorded like the relay's own.
  const open = async (o) => {
    const w = await startWorker({
      device: sim.url,
      webhook: hook.url,
      pkgDir: PKG,
      // A short watchdog, so the alarm runs (and is proven harmless) during the test.
      watchdogMs: 1500,
      log: stdio,
      ...o,
    });
    const call = async (...args) => {
      const r = await w.call(...args);
      answers.push(r.text);
      return r;
    };
    return { ...w, call };
  };
  const token = randomToken();
  const w = await open({ outDir: WORK, token });
  return {
    lines,
    answers,
    token,
    open,
    async start() {
      const r = await w.call("/start", "POST");
      assert(r.status === 200 && r.body?.ok, `/start answered ${r.status} ${JSON.stringify(r.body)}`);
    },
    call: w.call,
    /** Fires the Worker's cron trigger, as the platform would (no HTTP request, no bearer). */
    async scheduled() {
      const worker = await w.mf.getWorker();
      await worker.scheduled({ cron: "*/10 * * * *" });
    },
    async status() {
      const r = await w.call("/status");
      const s = r.body?.status;
      return s && { state: s.state, subscribed: !!s.subid, gaps: s.gaps.map((g) => g.reason), errors: s.errors, forwarded: s.forwarded };
    },
    async stop() {
      const r = await w.call("/stop", "POST");
      assert(r.status === 200, `/stop answered ${r.status}`);
      const after = await w.call("/status");
      assert(after.body.running === false && after.body.enabled === false, "the relay object stopped");
    },
    async dispose() {
      await w.mf.dispose();
    },
  };
}

/** The relay as a script (relay-cli.js) in Deno or Node; its JSON lines are its status. */
async function scriptRelay(sim, hook) {
  let cmd;
  let args;
  const common = ["--device", sim.url, "--webhook", hook.url];
  if (runtime === "deno") {
    cmd = process.env.DENO_BIN ?? join(ROOT, "node_modules/.bin/deno");
    // The import map points `dme-events` at the built package (like `npm:dme-events` would).
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    const config = join(WORK, "deno.json");
    writeFileSync(config, JSON.stringify({ imports: { "dme-events": join(PKG, "index.js") } }));
    args = ["run", "--allow-net", "--allow-read", "--allow-env", "--no-prompt", "--config", config,
      join(ROOT, "examples/relay/relay-cli.js"), ...common];
  } else {
    // Node resolves `dme-events` from node_modules: install the built package there by a link,
    // next to copies of the example's two files.
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(join(WORK, "node_modules"), { recursive: true });
    symlinkSync(PKG, join(WORK, "node_modules/dme-events"), "dir");
    for (const f of ["relay.js", "relay-cli.js"]) cpSync(join(ROOT, "examples/relay", f), join(WORK, f));
    cmd = process.execPath;
    const major = Number(process.versions.node.split(".")[0]);
    args = [...(major < 22 ? ["--experimental-websocket"] : []), join(WORK, "relay-cli.js"), ...common];
  }
  const env = { ...process.env, DEVICE_PASSWORD: "ins3965!", NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
  const lines = [];
  const events = [];
  let child;
  let exited = null;
  return {
    lines,
    async start() {
      child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
      const exitP = new Promise((r) => child.on("exit", (code, sig) => r((exited = { code, sig }))));
      this.exit = exitP;
      let buf = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          lines.push(line);
          transcript(`[${runtime}] ${line}`);
          try {
            events.push(JSON.parse(line));
          } catch {}
        }
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (d) => {
        lines.push(String(d));
        transcript(`[${runtime}!] ${String(d).trimEnd()}`);
      });
      const first = await until(20_000, "the relay to subscribe", () =>
        exited ? { exited } : events.find((e) => e.event === "subscribed" || e.event === "start-failed"),
      );
      assert(first.event === "subscribed", `the relay did not start: ${JSON.stringify(first)}`);
    },
    async status() {
      const states = events.filter((e) => e.event === "state");
      return {
        state: states.length ? states[states.length - 1].state : "connecting",
        subscribed: events.some((e) => e.event === "subscribed"),
        gaps: events.filter((e) => e.event === "gap").map((e) => e.reason),
        errors: events.filter((e) => e.event === "error").length,
      };
    },
    async stop() {
      child.kill("SIGTERM");
      const r = await within(10_000, "the relay to exit", this.exit);
      assert(r.code === 0, `the relay exited with ${JSON.stringify(r)}`);
      assert(events.some((e) => e.event === "stopped"), "the relay said it stopped");
    },
    /**
     * Runs the script once more, with `extra` arguments and the environment changed by `envChange`
     * (an undefined value removes a variable); resolves { code, out } (stdout and stderr) once
     * it exits, killing it after `ms`.
     */
    async runOnce(extra, envChange, ms = 20_000) {
      const e = { ...env, ...envChange };
      for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
      const c = spawn(cmd, [...args, ...extra], { stdio: ["ignore", "pipe", "pipe"], env: e });
      let out = "";
      for (const s of [c.stdout, c.stderr]) s.on("data", (d) => (out += d));
      const code = await within(ms, "the script to exit", new Promise((r) => c.on("close", r))).catch((err) => {
        c.kill("SIGKILL");
        throw err;
      });
      transcript(`[${runtime} once ${extra.join(" ")}] exit ${code}\n${out.trimEnd()}`);
      return { code, out };
    },
    async dispose() {
      if (child && !exited) child.kill("SIGKILL");
    },
  };
}

const sim = await startSim(SIM_FLAGS);
const hook = await startWebhook();
// The relay talks to the device through a recording proxy, which shows the headers it sent.
const proxy = await startProxy(sim.url);
const device = { url: proxy.url };
const relay = runtime === "workerd" ? await workerdRelay(device, hook) : await scriptRelay(device, hook);
const faults = (dn) => hook.bodies("fault-raised").filter((b) => dn === undefined || b.dn === dn);
const gaps = () => hook.bodies("gap");
const relaySessions = async () => (await sim.stats()).sessions;

const t = runner(`edge relay (${runtime})`);
const ctx = { runtime, sim, proxy, relay, workDir: WORK };

if (runtime === "workerd") refusalTests(t, ctx);

t.test("logs in to dme-sim, opens the socket and subscribes to faultInst", 30_000, async () => {
  await relay.start();
  const st = await until(10_000, "state live", async () => {
    const s = await relay.status();
    return s?.state === "live" && s.subscribed && s;
  });
  assert(st.errors === 0, `errors: ${st.errors}`);
  const stats = await sim.stats();
  assert(stats.sessions.length === 1 && stats.sessions[0].socket, `sessions: ${JSON.stringify(stats.sessions)}`);
  assert(stats.subscriptions.some((s) => s.query === "class/faultInst"), "a faultInst subscription on the device");
});

if (runtime === "workerd") runningTests(t, ctx);

t.test("a fault raised on the device reaches the webhook, once", 20_000, async () => {
  const dn = await sim.fault("F9101", { lc: "raised", severity: "major", descr: "edge test fault" });
  const [b] = await until(10_000, "the fault at the webhook", () => faults(dn).length && faults(dn));
  assert(b.code === "F9101" && b.severity === "major" && b.descr === "edge test fault", JSON.stringify(b));
  assert(b.device === proxy.url && b.status === "created", JSON.stringify(b));
  // A later change of the same raised fault is not a new raise.
  await sim.fault("F9101", { descr: "edge test fault, changed" });
  await sleep(1000);
  assert(faults(dn).length === 1, `forwarded ${faults(dn).length} times`);
  assert(faults().length === 1, `faults already raised at start were forwarded: ${faults().length}`);
});

t.test("a soaking fault is held back until a sparse delta raises it (store mode merge)", 20_000, async () => {
  const dn = await sim.fault("F9102", { lc: "soaking", severity: "minor", descr: "soaking first" });
  await sleep(1200);
  assert(faults(dn).length === 0, "a soaking fault was forwarded");
  await sim.fault("F9102", { lc: "raised" });
  const [b] = await until(10_000, "the raised fault at the webhook", () => faults(dn).length && faults(dn));
  // The push carried only lc: code, severity and descr come from the merged object.
  assert(b.code === "F9102" && b.severity === "minor" && b.descr === "soaking first" && b.status === "modified", JSON.stringify(b));
});

t.test("the session token rotates (aaaRefresh) with no new login, and pushes keep coming", 30_000, async () => {
  const before = await sim.stats();
  // Past the device's idle timeout (6 s): only a working aaaRefresh with the new token keeps it.
  await sleep(8000);
  const stats = await sim.stats();
  assert(stats.logins === before.logins, `logged in again: ${before.logins} -> ${stats.logins}`);
  assert(stats.sessions.length === 1 && stats.sessions[0].socket, `sessions: ${JSON.stringify(stats.sessions)}`);
  const dn = await sim.fault("F9103", { lc: "raised", severity: "critical" });
  await until(10_000, "the fault at the webhook", () => faults(dn).length);
  const st = await relay.status();
  assert(st.state === "live" && st.errors === 0, JSON.stringify(st));
});

t.test("a socket drop: a gap at the webhook, recovery, and pushes again", 30_000, async () => {
  const r = await sim.post("/_sim/drop-sockets");
  assert(r.dropped === 1, `dropped ${r.dropped}`);
  const [g] = await until(15_000, "a gap at the webhook", () => gaps().length && gaps());
  assert(g.reason === "reconnect" && g.device === proxy.url, JSON.stringify(g));
  await until(15_000, "live again", async () => {
    const s = await relay.status();
    return s.state === "live" && (await relaySessions()).some((x) => x.socket);
  });
  const dn = await sim.fault("F9104", { lc: "raised", severity: "major" });
  await until(10_000, "a fault after the recovery", () => faults(dn).length);
});

t.test("a device restart with an outage: a gap, a new login, and the fault raised meanwhile arrives", 45_000, async () => {
  const gapsBefore = gaps().length;
  const loginsBefore = (await sim.stats()).logins;
  await sim.post("/_sim/restart?down_ms=2000");
  const dn = await sim.fault("F9105", { lc: "raised", severity: "major", descr: "raised during the outage" });
  await until(30_000, "a second gap", () => gaps().length > gapsBefore);
  const [b] = await until(30_000, "the outage's fault at the webhook", () => faults(dn).length && faults(dn));
  assert(b.descr === "raised during the outage", JSON.stringify(b));
  const stats = await sim.stats();
  assert(stats.logins > loginsBefore, "no new login after the restart");
  await until(10_000, "live again", async () => (await relay.status()).state === "live");
  const all = faults().map((f) => f.dn);
  assert(new Set(all).size === all.length, `a fault was forwarded twice: ${all.join(", ")}`);
});

t.test("the token travels as exactly one Cookie header, always a current one", 5000, async () => {
  const tokens = proxy.issued.map((i) => i.token);
  assert(proxy.issued.some((i) => i.by.startsWith("aaaRefresh")), "no aaaRefresh seen");
  assert(proxy.issued.filter((i) => i.by.startsWith("aaaLogin")).length >= 2, "no second login seen");
  const used = new Set();
  let checked = 0;
  for (const r of proxy.requests) {
    const login = r.path.startsWith("/api/aaaLogin");
    assert(r.devCookies.length === 0, `${r.path} sent DevCookie`);
    if (login) {
      assert(r.cookies.length === 0, `a login carried a cookie`);
      continue;
    }
    let token;
    if (r.path.startsWith("/socket")) {
      token = r.path.slice("/socket".length);
    } else {
      assert(r.cookies.length === 1, `${r.method} ${r.path.slice(0, 40)} sent ${r.cookies.length} Cookie headers`);
      const m = /^APIC-cookie=([^;\s]+)$/.exec(r.cookies[0]);
      assert(m, `${r.path.slice(0, 40)}: the Cookie header is not exactly one APIC-cookie`);
      token = m[1];
    }
    const idx = tokens.indexOf(token);
    assert(idx >= 0, `${r.path.slice(0, 40)} used a token the device never issued`);
    // The newest token issued before the request left, or the one before it (a request may
    // race an aaaRefresh); never an older one.
    const newest = proxy.issued.filter((i) => i.at <= r.at).length - 1;
    assert(idx >= newest - 1, `${r.path.slice(0, 40)} used token #${idx} while #${newest} was current`);
    used.add(token);
    checked++;
  }
  assert(used.size >= 3, `only ${used.size} distinct tokens used`);
  console.log(`checked ${checked} requests and sockets, ${used.size} tokens, ${proxy.issued.length} issued`);
});

t.test("stop: the relay logs out and the device holds no session", 20_000, async () => {
  await relay.stop();
  await until(5000, "no session left", async () => (await relaySessions()).length === 0);
});

if (runtime === "workerd") {
  t.test("the cron trigger starts the relay, with no bearer", 30_000, async () => {
    const loginsBefore = (await sim.stats()).logins;
    await relay.scheduled();
    const st = await until(15_000, "the relay started by the cron trigger", async () => {
      const s = (await relay.call("/status")).body;
      return s.running && s.status.state === "live" && s;
    });
    assert(st.enabled, "not enabled");
    const stats = await sim.stats();
    assert(stats.logins === loginsBefore + 1 && stats.sessions.length === 1, `logins ${loginsBefore} -> ${stats.logins}, sessions ${stats.sessions.length}`);
    await relay.stop();
    await until(5000, "no session left", async () => (await relaySessions()).length === 0);
  });

  t.test("the Durable Object's alarm starts the relay once the device can be reached", 45_000, async () => {
    await sim.post("/_sim/restart?down_ms=4000");
    const r = await relay.call("/start", "POST");
    // The device is down: /start reports the failure, and the object stays enabled.
    assert(r.status === 502 && r.body.failure?.code, `/start answered ${r.status} ${JSON.stringify(r.body)}`);
    const st = await until(30_000, "the alarm to start the relay", async () => {
      const s = (await relay.call("/status")).body;
      return s.running && s.status.state === "live" && s;
    });
    assert(st.enabled, "not enabled");
    const dn = await sim.fault("F9106", { lc: "raised", severity: "major" });
    await until(10_000, "a fault from the restarted relay", () => faults(dn).length);
    await relay.stop();
    await until(5000, "no session left", async () => (await relaySessions()).length === 0);
  });
}

leakTests(t, ctx);

const failed = await t.run(async () => {
  console.log(`the relay's own output: ${TRANSCRIPT}`);
  await relay.dispose();
  await hook.close();
  await proxy.close();
  sim.stop();
});
process.exit(failed ? 1 : 0);
