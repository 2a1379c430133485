// A browser's web worker: no `document`, but a cookie jar, and a `Cookie` header set by script
// is dropped without an error. The package must pick the jar there (not the Cookie header it
// sends in Deno, Node and workerd), with `credentials: "include"` so that it also works across
// origins. Runs in Debian's Chromium (playwright-core): one dme-sim serves the page, the worker
// and pkg/, the worker watches another one (a different origin, with CORS).
//
//   node tests/edge/webworker.test.mjs     # needs the built package in pkg/
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, assert, runner, startSim } from "./harness.mjs";

const WWW = join(ROOT, "target/edge/webworker-www");
rmSync(WWW, { recursive: true, force: true });
mkdirSync(WWW, { recursive: true });
writeFileSync(join(WWW, "index.html"), `<!doctype html><meta charset="utf-8"><title>worker</title><p>worker test</p>\n`);
writeFileSync(
  join(WWW, "worker.js"),
  `import init, { Session, EventChannel, ClassQuery } from "/pkg/index.js";
const report = (o) => postMessage(o);
const device = new URL(location.href).searchParams.get("device");
try {
  await init();
  const session = await Session.login({ url: device, user: "admin", password: "ins3965!" });
  const ec = new EventChannel(session, {});
  const seen = [];
  const sub = await ec.subscribe(new ClassQuery("faultInst"), { store: true, onEvent: (mos) => seen.push(...mos) });
  report({ step: "subscribed", hasDocument: typeof document !== "undefined", url: session.url, initial: sub.initial.length });
  onmessage = async (e) => {
    const dn = e.data;
    for (let i = 0; i < 100 && !seen.some((m) => m.dn === dn); i++) await new Promise((r) => setTimeout(r, 50));
    const mo = seen.find((m) => m.dn === dn);
    await session.logout();
    ec.close();
    report({ step: "push", status: mo?.status, lc: mo?.attributes.lc });
  };
} catch (e) {
  report({ step: "error", code: e.code, message: String(e.message) });
}
`,
);

const site = await startSim(["--throttle", "0", "--objects", "100", "--www", WWW, "--pkg", process.env.DME_PKG ?? join(ROOT, "pkg")]);
const sim = await startSim(["--throttle", "0", "--objects", "400", "--cors"]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
const page = await browser.newPage();
const t = runner("edge web worker");

t.test("in a web worker the package logs in to another origin and subscribes through the cookie jar", 30_000, async () => {
  await page.goto(`${site.url}/`);
  await page.evaluate((device) => {
    window.msgs = [];
    window.w = new Worker(`/worker.js?device=${encodeURIComponent(device)}`, { type: "module" });
    window.w.onmessage = (e) => window.msgs.push(e.data);
    window.w.onerror = (e) => window.msgs.push({ step: "error", message: String(e.message) });
  }, sim.url);
  await page.waitForFunction(() => window.msgs.length > 0, null, { timeout: 20_000 });
  const [m] = await page.evaluate(() => window.msgs);
  assert(m.step === "subscribed", JSON.stringify(m));
  assert(m.hasDocument === false && m.url === sim.url && m.initial > 0, JSON.stringify(m));
});

t.test("a push reaches the worker, and logout ends the session", 30_000, async () => {
  const dn = await sim.fault("F9201", { lc: "raised", severity: "major" });
  await page.evaluate((d) => window.w.postMessage(d), dn);
  await page.waitForFunction(() => window.msgs.length > 1, null, { timeout: 20_000 });
  const m = (await page.evaluate(() => window.msgs))[1];
  assert(m.step === "push" && m.status === "created" && m.lc === "raised", JSON.stringify(m));
  const stats = await sim.stats();
  assert(stats.sessions.length === 0, `sessions left: ${stats.sessions.length}`);
});

const failed = await t.run(async () => {
  await browser.close();
  sim.stop();
  site.stop();
});
process.exit(failed ? 1 : 0);
