// Shared helpers of the end-to-end tests: a tiny sequential test runner that prints
// "N passed, M failed" (the line scripts/test.sh counts), dme-sim instances on ephemeral ports
// that stop by themselves, and Debian's Chromium through playwright-core.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ARTIFACTS = join(ROOT, "target", "e2e-artifacts");
mkdirSync(ARTIFACTS, { recursive: true });

const cleanups = [];
/** Registers something to undo at exit (browsers, simulators, temporary directories). */
export function atExit(fn) {
  cleanups.push(fn);
}
async function runCleanups() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (e) {
      console.error("cleanup:", e.message);
    }
  }
}

const tests = [];
/** test(name, fn, { timeoutMs }): tests run one after the other, in the order declared. */
export function test(name, fn, { timeoutMs = 30000 } = {}) {
  tests.push({ name, fn, timeoutMs });
}

/** Runs the declared tests, prints one line each and the summary, and exits. */
export async function run(suite, { totalTimeoutMs = 240000 } = {}) {
  const started = Date.now();
  const guard = setTimeout(async () => {
    console.log(`FAIL ${suite}: the suite exceeded ${totalTimeoutMs} ms`);
    console.log(`0 passed, ${tests.length} failed`);
    await runCleanups();
    process.exit(1);
  }, totalTimeoutMs);
  let passed = 0;
  let failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    let timer;
    try {
      await Promise.race([
        t.fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${t.timeoutMs} ms`)), t.timeoutMs);
        }),
      ]);
      passed++;
      console.log(`ok   ${suite} › ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${suite} › ${t.name} (${Date.now() - t0} ms)\n     ${String(e?.stack ?? e).split("\n").slice(0, 6).join("\n     ")}`);
    } finally {
      clearTimeout(timer);
    }
  }
  clearTimeout(guard);
  await runCleanups();
  console.log(`${suite}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    await runCleanups();
    process.exit(130);
  });
}

/** Starts target/debug/dme-sim on 127.0.0.1:0 and resolves with { url, stats(), post(), stop() }. */
export async function startSim(args = [], { exitAfter = 600 } = {}) {
  const bin = process.env.DME_SIM_BIN ?? join(ROOT, "target", "debug", "dme-sim");
  const child = spawn(bin, ["--bind", "127.0.0.1:0", "--exit-after", String(exitAfter), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dme-sim did not start: ${out}`)), 15000);
    const onData = (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => reject(new Error(`dme-sim exited (${code}): ${out}`)));
    child.on("error", reject);
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", resolve);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 3000).unref();
    });
  atExit(stop);
  const post = async (path, body) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  const stats = async () => (await fetch(`${url}/_sim/stats`)).json();
  return { url, post, stats, stop, child };
}

/** Chromium from Debian, kept off the network. */
export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  atExit(() => browser.close());
  return browser;
}

/** Fails unless `cond` holds. */
export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value. */
export async function until(fn, what, timeoutMs = 10000, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last?.message ?? JSON.stringify(last)})`);
}
