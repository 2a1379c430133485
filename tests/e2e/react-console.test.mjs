// The React example (examples/react-console/) as its user builds it: `npm ci --offline` from its
// own lock (the package itself linked from pkg/), `vite build`, then the built app served by its
// own dme-sim and driven in Chromium: the faults table fills, sorted by severity; a tenant written
// on the device appears; a dropped socket shows the gap banner, which goes once reconciled; no
// page error.
//   node tests/e2e/react-console.test.mjs      (needs pkg/ and target/debug/dme-sim)
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, test, run, startSim, launchBrowser, assert, until } from "./lib.mjs";

const APP = join(ROOT, "examples", "react-console");
let sim;
let page;
const pageErrors = [];

const npm = (args) => execFileSync("npm", args, { cwd: APP, stdio: ["ignore", "pipe", "pipe"], timeout: 240000 });

test("npm ci --offline from the example's lock, then vite build", async () => {
  // scripts/setup.sh installed these once (so npm's cache holds them); this install is offline.
  npm(["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]);
  npm(["run", "build", "--silent"]);
  assert(existsSync(join(APP, "dist", "index.html")), "the build wrote dist/index.html");
}, { timeoutMs: 240000 });

test("connect: the faults table fills, most severe first, and the tenants list", async () => {
  sim = await startSim(["--flavor", "apic", "--churn", "5", "--throttle", "0", "--www", join(APP, "dist")]);
  const browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // Whether the gap banner was ever shown (it may last less than a poll).
  await page.addInitScript(() => {
    window.__banners = 0;
    new MutationObserver(() => {
      if (document.querySelector(".gap-banner")) window.__banners++;
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(`${sim.url}/`);
  await page.click("button[type=submit]");
  await page.waitForSelector(".state.live", { timeout: 15000 });
  await until(async () => (await page.locator(".faults tbody tr").count()) > 10, "fault rows", 15000);
  const sevs = await page.locator(".faults tbody tr td:first-child").allTextContents();
  const RANK = { critical: 0, major: 1, minor: 2, warning: 3, info: 4, cleared: 5 };
  const ranks = sevs.map((s) => RANK[s] ?? 6);
  assert(ranks.every((r, i) => i === 0 || ranks[i - 1] <= r), `sorted by severity: ${sevs.slice(0, 20).join(",")}`);
  assert((await page.locator(".tenants li").count()) > 0, "tenants listed");
}, { timeoutMs: 40000 });

test("a tenant written on the device shows up", async () => {
  await sim.post("/_sim/write?dn=uni/tn-reactdemo", { fvTenant: { attributes: { name: "reactdemo" } } });
  await page.locator('.tenants li[data-name="reactdemo"]').waitFor({ timeout: 10000 });
});

test("a dropped socket shows the gap banner, then recovers with what changed meanwhile", async () => {
  const before = await page.evaluate(() => window.__banners);
  await sim.post("/_sim/drop-sockets?mode=abort");
  await sim.post("/_sim/write?dn=uni/tn-reactgap", { fvTenant: { attributes: { name: "reactgap" } } });
  await until(() => page.evaluate((b) => window.__banners > b, before), "the gap banner", 15000);
  await page.waitForSelector(".state.live", { timeout: 20000 });
  await page.locator('.tenants li[data-name="reactgap"]').waitFor({ timeout: 15000 });
  await until(async () => (await page.locator(".gap-banner").count()) === 0, "the banner to go", 15000);
  const note = await page.textContent(".faults .reconciled");
  assert(/Last gap reconciled: \d+ differences/.test(note), `the reconciliation note: ${note}`);
  assert(pageErrors.length === 0, `page errors: ${pageErrors.join("; ")}`);
}, { timeoutMs: 45000 });

await run("e2e-react-console", { totalTimeoutMs: 360000 });
