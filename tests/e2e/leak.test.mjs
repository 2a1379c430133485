// Leak cycles in Chromium against dme-sim: 1,000 EventChannel open/close cycles (each a login, a
// socket, a subscribe and a logout) and 10,000 subscribe/close cycles on one channel. Memory
// (JS heap after a forced GC, plus wasm memory) must stay flat, and once everything is closed no
// timer, window or document listener, or socket of the package may be left, and no error (such
// as "closure invoked recursively or after being dropped") may have been raised.
//   node tests/e2e/leak.test.mjs         (needs pkg/ and target/debug/dme-sim)
import { join } from "node:path";
import { ROOT, test, run, startSim, launchBrowser, assert, until, sleep } from "./lib.mjs";

const CHANNELS = Number(process.env.LEAK_CHANNELS ?? 1000);
const SUBSCRIBES = Number(process.env.LEAK_SUBSCRIBES ?? 10000);
// wasm memory only grows (it is the high-water mark of the Rust heap), and the Rust side of an
// unreachable Session, EventChannel or Subscription is freed when V8 collects its JS wrapper
// (FinalizationRegistry), which V8 does when its own heap asks for it. So the cycles run in
// chunks with a collection between them, as a long-lived page gets them anyway: what stays
// allocated after a collection is what the package leaks.
const CHUNKS = 4;
// Flat: what 1,000 cycles may add to the JS heap after a forced GC (a leaked closure or
// listener per cycle is a few hundred bytes at least, so 100 B per cycle catches it), and wasm
// memory may not grow at all once warm.
const HEAP_SLACK_PER_CYCLE = 100;
// wasm memory grows in 64 KiB pages, and the allocator's high-water mark can cross one boundary
// late (sessions dropped by finalizers are freed after the collection that found them): one page
// is allowed, so a leak of 66 B or more a cycle still fails the 1,000-cycle run.
const WASM_PAGE = 65536;

let page;
let cdp;
const consoleErrors = [];

async function measure() {
  await sleep(200);
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("HeapProfiler.collectGarbage");
  const { usedSize } = await cdp.send("Runtime.getHeapUsage");
  const census = await page.evaluate(() => window.leak.census());
  return { heap: usedSize, ...census };
}

/** Waits until the package holds nothing: no timer, no socket, no window/document listener. */
async function settled() {
  return until(async () => {
    const c = await page.evaluate(() => window.leak.census());
    const pageListeners = Object.entries(c.listeners).filter(([k]) => k.startsWith("window:") || k.startsWith("document:"));
    return c.timeouts === 0 && c.intervals === 0 && c.sockets === 0 && pageListeners.length === 0 && c;
  }, "the package to hold nothing", 10000, 100).catch(async (e) => {
    throw new Error(`${e.message}; census: ${JSON.stringify(await page.evaluate(() => window.leak.census()))}`);
  });
}

function flat(before, after, cycles, what) {
  const heapGrowth = after.heap - before.heap;
  const wasmGrowth = after.wasmBytes - before.wasmBytes;
  console.log(`     ${what}: JS heap ${(before.heap / 1048576).toFixed(2)} → ${(after.heap / 1048576).toFixed(2)} MB ` +
    `(${heapGrowth >= 0 ? "+" : ""}${(heapGrowth / 1024).toFixed(1)} KB, ${(heapGrowth / cycles).toFixed(1)} B per cycle), ` +
    `wasm ${(before.wasmBytes / 1048576).toFixed(2)} → ${(after.wasmBytes / 1048576).toFixed(2)} MB`);
  assert(heapGrowth <= HEAP_SLACK_PER_CYCLE * cycles, `the JS heap grew by ${heapGrowth} B over ${cycles} cycles`);
  assert(wasmGrowth <= WASM_PAGE, `wasm memory grew by ${wasmGrowth} B over ${cycles} cycles`);
  assert(after.errors.length === 0, `errors: ${after.errors.slice(0, 5).join(" | ")}`);
}

test("the page loads the package with its timers, listeners and sockets counted", async () => {
  const sim = await startSim(["--www", join(ROOT, "tests", "e2e", "leak"), "--pkg", join(ROOT, "pkg"),
    "--throttle", "0", "--objects", "400"], { exitAfter: 600 });
  const browser = await launchBrowser();
  const context = await browser.newContext();
  page = await context.newPage();
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.location()?.url?.endsWith("/favicon.ico")) return;
    if (m.type() === "error" || /closure invoked|panicked/i.test(m.text())) consoleErrors.push(m.text());
  });
  cdp = await context.newCDPSession(page);
  await page.goto(`${sim.url}/index.html`);
  await page.waitForFunction(() => window.leak?.ready, null, { timeout: 15000 });
  await page.evaluate(() => window.leak.baseline());
});

test(`${CHANNELS} EventChannel open/close cycles leave memory flat and nothing behind`, async () => {
  // Warm-up: V8's code and inline caches, and the wasm heap's high-water mark, grow over the
  // first few hundred cycles, then stop.
  await page.evaluate(() => window.leak.channelCycles(500));
  await settled();
  const before = await measure();
  const t0 = Date.now();
  let objects = 0;
  for (let i = 0; i < CHUNKS; i++) {
    objects += await page.evaluate((n) => window.leak.channelCycles(n), CHANNELS / CHUNKS);
    await measure();
  }
  assert(objects > 0, "every cycle got its snapshot");
  await settled();
  const after = await measure();
  console.log(`     ${CHANNELS} cycles (login, socket, subscribe, logout) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  flat(before, after, CHANNELS, "channels");
  assert(consoleErrors.length === 0, `console: ${consoleErrors.slice(0, 5).join(" | ")}`);
}, { timeoutMs: 240000 });

test(`${SUBSCRIBES} subscribe/close cycles on one channel leave memory flat and nothing behind`, async () => {
  // Warm-up as long as a chunk: the wasm heap's high-water mark is reached within one.
  await page.evaluate((n) => window.leak.subscribeCycles(n, 8), SUBSCRIBES / CHUNKS);
  await settled();
  const before = await measure();
  const t0 = Date.now();
  for (let i = 0; i < CHUNKS; i++) {
    const held = await page.evaluate((n) => window.leak.subscribeCycles(n, 8), SUBSCRIBES / CHUNKS);
    // Before its close, the channel held its socket and nothing for the closed subscriptions.
    assert(held.sockets === 1 && held.requests === 0, `before close the channel held ${JSON.stringify(held)}`);
    await measure();
  }
  await settled();
  const after = await measure();
  console.log(`     ${SUBSCRIBES} cycles in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  flat(before, after, SUBSCRIBES, "subscriptions");
  assert(consoleErrors.length === 0, `console: ${consoleErrors.slice(0, 5).join(" | ")}`);
}, { timeoutMs: 300000 });

await run("leak", { totalTimeoutMs: 600000 });
