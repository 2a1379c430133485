// The chaos suite: the package runs store-mode subscriptions in headless Chromium against a
// churning dme-sim while a seeded schedule injects faults. After the faults stop, every
// subscription's store must equal the simulator's true state within two refresh periods, every
// disruption that hit a live subscription must have produced its gap, and nothing may throw.
//
//   node tests/chaos/run.mjs [--schedules N] [--seed S] [--parallel P] [--faults K] [--report FILE]
//
// Needs pkg/ (scripts/build-pkg.sh) and target/debug/dme-sim. The same seed gives the same
// schedule (the faults, their parameters and the pauses between them); what the network and the
// timers then do is real. Prints one line per schedule, a summary, writes FILE (Markdown) and
// FILE.json, and exits non-zero when a schedule did not hold.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT, launchBrowser, sleep, startSim } from "../e2e/lib.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
// --seeds 24,41: replay exactly these schedules.
const SEEDS = opt("seeds", null)?.split(",").map(Number) ?? null;
const SCHEDULES = SEEDS ? SEEDS.length : Number(opt("schedules", 4));
const BASE_SEED = Number(opt("seed", 1));
const PARALLEL = Math.max(1, Number(opt("parallel", 2)));
const FAULTS = Number(opt("faults", 8));
const REPORT = opt("report", join(ROOT, "target", "chaos", "report.md"));
// --self-check: one more schedule ends with frames lost silently (`/_sim/lose`, which no client
// can notice), and the suite must catch the difference; proves the comparison can fail.
const SELF_CHECK = args.includes("--self-check");

// Timing, compressed like the browser tests: a subscription lives REFRESH_TIMEOUT seconds
// without a refresh, and the package refreshes it every 80-90 % of a third of that.
const REFRESH_TIMEOUT = 6;
const REFRESH_PERIOD_MS = (REFRESH_TIMEOUT * 1000) / 3;
const DEADLINE_MS = 2 * REFRESH_PERIOD_MS;
// A disruption's gap must follow within this (plus any freeze after it): two refresh periods
// for a lapse to be seen, a slow answer (at most 2.5 s), a backoff (at most 0.8 s), a margin.
const GAP_WITHIN_MS = 2 * REFRESH_PERIOD_MS + 2500 + 800 + 2700;
// How long to keep watching a schedule that missed the deadline, to tell slow from stuck.
const GRACE_MS = 30000;
const CLASSES = ["faultInst", "ethpmPhysIf", "l1PhysIf", "fvAEPg", "fvBD", "fvCEp", "fvTenant"];
// Attributes that say how an object was written, not what it is (the package's reconciliation
// does not report a difference in them alone).
const BOOKKEEPING = new Set(["status", "childAction", "modTs", "rn"]);

/** mulberry32: a small seeded generator, enough to pick faults. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}

// The faults: name, weight, and how to inject it. `inject` returns whether it disrupted the
// subscriptions for sure (then each one that was active must report a gap afterwards), or
// "maybe" (the package may or may not need a gap: a short freeze, a few refreshes rejected).
const FAULT_KINDS = [
  ["drop-abort", 3, async ({ sim }) => (await sim.post("/_sim/drop-sockets?mode=abort")).dropped > 0],
  ["drop-close", 2, async ({ sim }) => (await sim.post("/_sim/drop-sockets?mode=close")).dropped > 0],
  ["restart", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/restart?down_ms=${r.pick([0, 0, 300, 800, 1500])}`);
    return true;
  }],
  ["token-expiry", 2, async ({ sim }) => (await sim.post("/_sim/expire-session")).expired > 0],
  ["subscriptions-lapse", 2, async ({ sim }) => (await sim.post("/_sim/expire-subscription?all=1")).expired > 0],
  ["refresh-400", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/fail-refresh?n=${r.int(1, 6)}`);
    return "maybe";
  }],
  // The device loses the socket but the connection stays open: pushes stop, refreshes answer
  // 400 and the resubscribe 405, after which the package must build a new socket.
  ["socket-lost-405", 2, async ({ sim }) => {
    const n = (await sim.post("/_sim/drop-sockets?mode=forget")).dropped;
    return n > 0;
  }],
  ["503-storm", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/fail-503?n=${r.int(3, 40)}`);
    return "maybe";
  }],
  ["slow-responses", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/delay?ms=${r.int(200, 2500)}&n=${r.int(2, 12)}`);
    return false;
  }],
  ["duplicated-frames", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/duplicate?n=${r.int(1, 10)}`);
    return false;
  }],
  ["batched-frames", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/batch?n=${r.int(2, 40)}`);
    return false;
  }],
  ["malformed-frame", 2, async ({ sim, r }) => {
    await sim.post(`/_sim/malformed?kind=${r.pick(["truncated", "garbage", "wrong-shape", "empty"])}`);
    return false;
  }],
  // A background tab: hidden for a while, then shown again.
  ["page-hidden", 1, async ({ page, r }) => {
    await page.evaluate(() => window.chaos.setHidden(true));
    await sleep(r.int(300, 3000));
    await page.evaluate(() => window.chaos.setHidden(false));
    return false;
  }],
  // A frozen tab: hidden, then its JavaScript stopped (CDP Debugger.pause: timers and socket
  // messages wait), then resumed and shown. Longer than a subscription's lifetime, the device
  // drops the subscriptions meanwhile.
  ["page-frozen", 2, async ({ page, cdp, r, fault }) => {
    // Now and then longer than the session's idle timeout (12 s) and the package's clock-jump
    // threshold (15 s): the timers wake late and the token is gone.
    const ms = r.next() < 0.3 ? r.int(13000, 20000) : r.int(1000, 9000);
    await page.evaluate(() => window.chaos.setHidden(true));
    await cdp.send("Debugger.enable");
    await cdp.send("Debugger.pause");
    fault.frozenMs = ms;
    await sleep(ms);
    await cdp.send("Debugger.resume");
    await cdp.send("Debugger.disable");
    await page.evaluate(() => window.chaos.setHidden(false));
    return ms > REFRESH_TIMEOUT * 1000 + 500 ? true : "maybe";
  }],
  ["clock-jump", 1, async ({ page, r }) => {
    const ms = r.pick([-1, 1]) * r.int(60_000, 7_200_000);
    await page.evaluate((d) => window.chaos.jumpClock(d), ms);
    return false;
  }],
];
const TOTAL_WEIGHT = FAULT_KINDS.reduce((s, f) => s + f[1], 0);
function pickFault(r) {
  let x = r.next() * TOTAL_WEIGHT;
  for (const f of FAULT_KINDS) {
    x -= f[1];
    if (x < 0) return f;
  }
  return FAULT_KINDS[0];
}

/** dn -> attributes, as the simulator holds them now. */
async function truthOf(sim, q) {
  const param = q.kind === "class" ? `class=${encodeURIComponent(q.target)}` : `dn=${encodeURIComponent(q.target)}`;
  const body = await (await fetch(`${sim.url}/_sim/truth?${param}`)).json();
  const out = {};
  for (const entry of body.imdata) {
    const [, mo] = Object.entries(entry)[0];
    out[mo.attributes.dn] = mo.attributes;
  }
  return out;
}

/** The first difference between a store and the truth, or null. */
function difference(store, truth) {
  for (const dn of Object.keys(truth)) {
    const held = store[dn];
    if (!held) return `missing ${dn}`;
    for (const [k, v] of Object.entries(truth[dn])) {
      if (BOOKKEEPING.has(k)) continue;
      if (held[k] !== v) return `${dn}: ${k} is ${JSON.stringify(held[k])}, truly ${JSON.stringify(v)}`;
    }
  }
  for (const dn of Object.keys(store)) if (!truth[dn]) return `stale ${dn} (deleted at the device)`;
  return null;
}

async function runSchedule(browser, index, { sabotage = false } = {}) {
  const seed = SEEDS && index < SEEDS.length ? SEEDS[index] : BASE_SEED + index;
  const r = rng(seed * 7919 + 17);
  // The self-check's schedule must not rotate its session while the suite watches: a rotation
  // resubscribes and its reconciliation would repair the loss the check is about.
  const maxLifetime = sabotage ? (r.int(10, 40), 3600) : r.int(10, 40);
  const out = { seed, maxLifetime, faults: [], problems: [], converged: false, convergenceMs: null };
  const sim = await startSim([
    "--www", join(ROOT, "tests", "chaos", "page"), "--pkg", join(ROOT, "pkg"),
    "--throttle", "0", "--objects", "400", "--sub-lifetime", "4", "--refresh-timeout", "12",
    "--token-grace", "2", "--max-lifetime", String(maxLifetime), "--seed", String(seed),
  ], { exitAfter: 300 });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const consoleProblems = [];
    page.on("pageerror", (e) => consoleProblems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      const t = m.text();
      if (/panicked|closure invoked|RuntimeError|unreachable/i.test(t)) consoleProblems.push(`console: ${t.slice(0, 300)}`);
    });
    const cdp = await context.newCDPSession(page);
    await page.goto(`${sim.url}/index.html`);
    await page.waitForFunction(() => window.chaos?.ready, null, { timeout: 15000 });

    const tenants = Object.keys(await truthOf(sim, { kind: "class", target: "fvTenant" })).sort();
    const queries = [
      ...CLASSES.map((c) => ({ name: c, kind: "class", target: c })),
      { name: "tenant-subtree", kind: "dn", target: r.pick(tenants) },
    ];
    await page.evaluate((o) => window.chaos.start(o), { url: sim.url, seed, refreshTimeout: REFRESH_TIMEOUT, queries });
    await sim.post(`/_sim/churn?rate=${r.int(10, 60)}`);
    await sleep(500);

    // The self-check's schedule has no faults before its loss: nothing may repair it.
    for (let k = 0; k < (sabotage ? 0 : FAULTS); k++) {
      await sleep(r.int(200, 1500));
      const [name, , inject] = pickFault(r);
      const sample = await page.evaluate(() => window.chaos.sample());
      const fault = { name, at: sample.t, active: sample.active, frozenMs: 0 };
      fault.disrupted = await inject({ sim, page, cdp, r, fault });
      out.faults.push(fault);
    }

    if (sabotage) {
      await sim.post("/_sim/reset-faults");
      await sim.post("/_sim/lose?n=1000000");
      await sleep(1500);
    }

    // The faults stop: no more injected failures, the fabric goes quiet, the tab is in front.
    await sim.post("/_sim/reset-faults");
    await sim.post("/_sim/churn?rate=0");
    const stoppedAt = await page.evaluate(() => { window.chaos.setHidden(false); return performance.now(); });
    const t0 = Date.now();
    let last = "not compared yet";
    // Converged: every store equals the truth, every subscription is active, and every
    // disruption that hit an active subscription has produced its gap (a lapse is only seen at
    // the next refresh, so a gap may still be due when the stores already agree).
    // The gap must come soon after the fault, not from whatever disruption follows: within
    // GAP_WITHIN_MS (detection takes at most a refresh period, plus a slow answer, plus a
    // backoff), plus the time the tab was frozen after the fault.
    const missingGaps = (gaps) => {
      const missing = [];
      for (const f of out.faults) {
        if (f.disrupted !== true) continue;
        const frozen = out.faults.filter((x) => x.at >= f.at).reduce((n, x) => n + x.frozenMs, 0);
        const until = f.at + GAP_WITHIN_MS + frozen;
        for (const [sub, wasActive] of Object.entries(f.active)) {
          if (wasActive && !gaps.some((g) => g.sub === sub && g.t >= f.at && g.t <= until)) {
            missing.push(`${f.name} at ${f.at.toFixed(0)} ms gave ${sub} no gap within ${(until - f.at).toFixed(0)} ms`);
          }
        }
      }
      return missing;
    };
    out.gapChecks = out.faults.filter((f) => f.disrupted === true)
      .reduce((n, f) => n + Object.values(f.active).filter(Boolean).length, 0);
    const watch = DEADLINE_MS + (sabotage ? 1000 : GRACE_MS);
    let atDeadline = null;
    let missing = [];
    while (Date.now() - t0 < watch) {
      const states = await page.evaluate(() => window.chaos.states());
      const stores = await page.evaluate(() => window.chaos.stores());
      const { gaps } = await page.evaluate(() => window.chaos.log());
      let diff = null;
      for (const q of queries) {
        if (states[q.name] !== "active") {
          diff = `${q.name} is ${states[q.name]}`;
          break;
        }
        const d = difference(stores[q.name], await truthOf(sim, q));
        if (d) {
          diff = `${q.name}: ${d}`;
          break;
        }
      }
      missing = missingGaps(gaps);
      if (!diff && missing.length === 0) {
        out.convergenceMs = Date.now() - t0;
        break;
      }
      last = diff ?? missing[0];
      if (atDeadline === null && Date.now() - t0 > DEADLINE_MS) {
        atDeadline = last;
        out.simSubsAtDeadline = (await sim.stats()).subscriptions;
        out.clientAtDeadline = await page.evaluate(() => window.chaos.states());
      }
      await sleep(100);
    }
    if (out.convergenceMs === null) {
      out.problems.push(`never converged within ${watch / 1000} s: ${last}`);
      out.problems.push(...missing);
    } else if (out.convergenceMs > DEADLINE_MS) {
      out.problems.push(`converged after ${out.convergenceMs} ms, over the ${DEADLINE_MS} ms deadline; at the deadline: ${atDeadline}`);
    }
    out.converged = out.convergenceMs !== null && out.convergenceMs <= DEADLINE_MS;

    const log = await page.evaluate(() => window.chaos.log());
    out.gaps = log.gaps.length;
    out.gapReasons = {};
    for (const g of log.gaps) out.gapReasons[g.reason] = (out.gapReasons[g.reason] ?? 0) + 1;
    out.errorCodes = {};
    for (const e of log.errors) out.errorCodes[e.code] = (out.errorCodes[e.code] ?? 0) + 1;
    out.objectsDelivered = log.events;
    if (!out.converged) {
      // What the connection did after the faults stopped, for the report.
      out.afterStop = log.states.filter((x) => x.t >= stoppedAt - 2000)
        .map((x) => `${(x.t - stoppedAt).toFixed(0)}:${x.state}${x.reason ? `(${x.reason})` : ""}`).join(" ");
      out.errorsAfterStop = log.errors.filter((x) => x.t >= stoppedAt - 2000)
        .map((x) => `${(x.t - stoppedAt).toFixed(0)}:${x.code}`).join(" ");
      out.problems.push(`states from 2 s before the stop (ms after it): ${out.afterStop}; errors: ${out.errorsAfterStop}`);
      const m = /^([A-Za-z-]+): (?:stale |missing )?([^ ]+?):? /.exec(atDeadline ?? last ?? "");
      if (m) {
        const h = await page.evaluate(([sub, dn]) => window.chaos.history(sub, dn), [m[1], m[2]]);
        const rel = (t) => (t - stoppedAt).toFixed(0);
        out.problems.push(`history of ${m[2]} in ${m[1]} (ms after the stop): deliveries ` +
          h.deliveries.map((d) => `${rel(d[0])}:${d[3]}@${d[4].slice(11, 23)}`).join(" ") +
          `; gaps ${h.gaps.map((g) => `${rel(g.t)}:${g.reason}`).join(" ")}; faults ${out.faults.map((f) => `${rel(f.at)}:${f.name}`).join(" ")}` +
          `; sim subscriptions at the deadline ${JSON.stringify(out.simSubsAtDeadline?.filter((x) => x.query.includes(m[1])))}` +
          `; client id ${out.clientAtDeadline?.ids?.[m[1]]}, deliveries since its last gap ${await page.evaluate(([sub]) => window.chaos.since(sub), [m[1]])}` +
          `; sockets ${h.sockets.map((x) => `[${rel(x.opened)}..${x.closed === null ? "open" : rel(x.closed)} ${x.messages} msgs, last ${x.last === null ? "-" : rel(x.last)}]`).join(" ")}` +
          `; the stop at ${new Date(t0).toISOString().slice(11, 23)} (wall); counters ${JSON.stringify(h.info?.counters)}; channel ${JSON.stringify({ ...h.stats, perSubscription: undefined })}`);
      }
    }
    // Closing leaves nothing behind, and nothing fires afterwards.
    await page.evaluate(() => window.chaos.stop());
    const closedAt = Date.now();
    let left;
    do {
      await sleep(100);
      left = await page.evaluate(() => window.chaos.resources());
    } while (left && (left.sockets || left.requests || left.timer) && Date.now() - closedAt < 5000);
    if (left && (left.sockets || left.requests || left.timer)) out.problems.push(`5 s after close the channel still holds ${JSON.stringify(left)}`);
    const after = await page.evaluate(() => window.chaos.log().uncaught);
    for (const u of after) out.problems.push(`uncaught: ${u}`);
    for (const c of consoleProblems) out.problems.push(c);
  } catch (e) {
    out.problems.push(`harness: ${String(e?.stack ?? e).split("\n").slice(0, 3).join(" | ")}`);
  } finally {
    await context.close().catch(() => {});
    await sim.stop();
  }
  return out;
}

const started = Date.now();
const browser = await launchBrowser();
const results = new Array(SCHEDULES);
let nextIndex = 0;
async function worker() {
  while (nextIndex < SCHEDULES) {
    const i = nextIndex++;
    const res = await runSchedule(browser, i);
    results[i] = res;
    const names = res.faults.map((f) => f.name).join(", ");
    const verdict = res.problems.length ? "BAD " : "ok  ";
    console.log(`${verdict} schedule seed=${res.seed}: ${res.faults.length} faults (${names}); ` +
      `converged in ${res.convergenceMs ?? "-"} ms; gaps ${res.gaps ?? 0} (${res.gapChecks ?? 0} required); max-lifetime ${res.maxLifetime} s`);
    for (const p of res.problems) console.log(`     ${p}`);
  }
}
await Promise.all(Array.from({ length: Math.min(PARALLEL, SCHEDULES) }, worker));
let selfCheck = null;
if (SELF_CHECK) {
  const res = await runSchedule(browser, SCHEDULES, { sabotage: true });
  selfCheck = res.problems.some((p) => p.startsWith("never converged"));
  console.log(`${selfCheck ? "ok  " : "BAD "} self-check: frames lost silently at the end of schedule seed=${res.seed} were ` +
    (selfCheck ? `caught (${res.problems[0]})` : "not caught"));
}

const good = results.filter((r) => r.problems.length === 0).length;
const bad = SCHEDULES - good + (selfCheck === false ? 1 : 0);
const faultsInjected = results.reduce((s, r) => s + r.faults.length, 0);
const byKind = {};
for (const r of results) for (const f of r.faults) byKind[f.name] = (byKind[f.name] ?? 0) + 1;
const converged = results.filter((r) => r.converged).length;
const times = results.filter((r) => r.convergenceMs !== null).map((r) => r.convergenceMs).sort((a, b) => a - b);
const worst = times.length ? times[times.length - 1] : null;
const median = times.length ? times[Math.floor(times.length / 2)] : null;
const gaps = {};
for (const r of results) for (const [k, v] of Object.entries(r.gapReasons ?? {})) gaps[k] = (gaps[k] ?? 0) + v;
const errors = {};
for (const r of results) for (const [k, v] of Object.entries(r.errorCodes ?? {})) errors[k] = (errors[k] ?? 0) + v;
const seconds = ((Date.now() - started) / 1000).toFixed(0);

const md = [
  `Chaos run: \`node tests/chaos/run.mjs --schedules ${SCHEDULES} --seed ${BASE_SEED} --parallel ${PARALLEL} --faults ${FAULTS}\`` +
    ` (${seconds} s, Chromium headless, ${new Date().toISOString().slice(0, 10)})`,
  "",
  "| figure | value |",
  "|---|---|",
  `| schedules run | ${SCHEDULES} |`,
  `| faults injected | ${faultsInjected} |`,
  `| schedules converged within two refresh periods (${DEADLINE_MS} ms), gaps complete, nothing thrown | ${good} of ${SCHEDULES} |`,
  `| schedules converged within the deadline | ${converged} of ${SCHEDULES} |`,
  `| convergence time after the faults stop: median / worst | ${median ?? "-"} ms / ${worst ?? "-"} ms |`,
  `| gaps required (a disruption hit an active subscription) and found | ${results.reduce((s, r) => s + (r.gapChecks ?? 0), 0)} |`,
  `| faults by kind | ${Object.entries(byKind).sort().map(([k, v]) => `${k} ${v}`).join(", ")} |`,
  `| gaps by reason | ${Object.entries(gaps).sort().map(([k, v]) => `${k} ${v}`).join(", ") || "none"} |`,
  `| typed errors reported (onError) | ${Object.entries(errors).sort().map(([k, v]) => `${k} ${v}`).join(", ") || "none"} |`,
  `| uncaught exceptions, panics | ${results.reduce((s, r) => s + r.problems.filter((p) => /uncaught|pageerror|console:/.test(p)).length, 0)} |`,
  "",
].join("\n");
mkdirSync(dirname(REPORT), { recursive: true });
writeFileSync(REPORT, md);
writeFileSync(`${REPORT}.json`, JSON.stringify({ schedules: SCHEDULES, seed: BASE_SEED, faults: FAULTS, results }, null, 1));
console.log(`\n${md}`);
console.log(`report: ${REPORT}`);
// The line scripts/test.sh counts: one test per schedule.
console.log(`${good + (selfCheck ? 1 : 0)} passed, ${bad} failed`);
await browser.close();
process.exit(bad ? 1 : 0);
