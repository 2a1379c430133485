// The live console (www/) and the built package (pkg/) over HTTPS and WSS, as against a real
// device: `dme-sim --tls` serves both same-origin with the certificate it made at start, and
// Chromium connects, subscribes and sees pushes. Also: the printed fingerprint is the printed
// certificate's, and plain HTTP on the TLS port gets the clear 400.
//   node tests/e2e/console-tls.test.mjs        (needs pkg/ and target/debug/dme-sim)
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { ROOT, atExit, test, run, launchBrowser, assert, until } from "./lib.mjs";

let sim;
let page;
const pageErrors = [];

/** Starts `dme-sim --tls`; resolves once it printed its URL, fingerprint and certificate. */
async function startTlsSim(args) {
  const bin = process.env.DME_SIM_BIN ?? join(ROOT, "target", "debug", "dme-sim");
  const child = spawn(bin, ["--tls", "--bind", "127.0.0.1:0", "--exit-after", "300", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  atExit(
    () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", resolve);
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      }),
  );
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dme-sim did not start: ${out}`)), 15000);
    child.stdout.on("data", (d) => {
      out += d;
      const url = out.match(/listening on (https:\/\/127\.0\.0\.1:\d+)/);
      const fp = out.match(/SHA-256 fingerprint ([0-9A-F:]+)/);
      const pem = out.match(/-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n/);
      if (url && fp && pem) {
        clearTimeout(timer);
        resolve({ url: url[1], fingerprint: fp[1], pem: pem[0] });
      }
    });
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => reject(new Error(`dme-sim exited (${code}): ${out}`)));
  });
}

/** A same-origin call from the page (its context accepts the self-signed certificate). */
const simCall = (path, body) =>
  page.evaluate(
    async ([p, b]) => {
      const r = await fetch(p, { method: "POST", body: b ? JSON.stringify(b) : undefined });
      return { status: r.status, json: await r.json() };
    },
    [path, body],
  );

test("the printed fingerprint is the printed certificate's", async () => {
  assert(new X509Certificate(sim.pem).fingerprint256 === sim.fingerprint, "fingerprint matches the PEM");
});

test("plain HTTP on the TLS port gets a clear 400", async () => {
  const r = await fetch(sim.url.replace("https://", "http://") + "/api/aaaLogin.json", { method: "POST", body: "{}" });
  assert(r.status === 400, `status ${r.status}`);
  assert((await r.text()).includes("speaks HTTPS"), "the answer says why");
});

test("the console connects over https and wss, subscribes and gets pushes", async () => {
  const browser = await launchBrowser();
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${sim.url}/`);
  assert((await page.inputValue("#url")) === sim.url, "the URL defaults to the https origin");
  await page.waitForFunction(() => document.title.startsWith("dme-events "), null, { timeout: 15000 });
  await page.click("#connect");
  await page.waitForSelector('#state[data-state="live"]', { timeout: 30000 });
  await until(() => page.locator("#subs li.sub-card").count().then((n) => n === 4), "four default subscriptions", 15000);
  await until(() => page.locator("#events tbody tr.ev").count(), "a churn event in the table", 15000);
  await page.fill("#sub-target", "fvTenant");
  await page.click("#subscribe");
  await page.locator("#subs li.sub-card", { hasText: "fvTenant" }).waitFor({ timeout: 10000 });
  const dn = "uni/tn-e2etls";
  const w = await simCall(`/_sim/write?dn=${dn}`, { fvTenant: { attributes: { name: "e2etls", descr: "over TLS" } } });
  assert(w.status === 200, `write: ${JSON.stringify(w.json)}`);
  const row = page.locator("#events tbody tr.ev", { has: page.locator("td.dn", { hasText: dn }) });
  await until(() => row.count(), `the event for ${dn}`, 15000);
  const stats = (await simCall("/_sim/stats")).json;
  assert(stats.sockets === 1 && stats.sessions.length === 1, `one session, one socket: ${JSON.stringify(stats.sessions)}`);
}, { timeoutMs: 90000 });

test("disconnect logs out; no page errors", async () => {
  await page.click("#disconnect");
  await page.waitForSelector('#state[data-state="idle"]', { timeout: 10000 });
  const stats = (await simCall("/_sim/stats")).json;
  assert(stats.sessions.length === 0, `sessions left: ${JSON.stringify(stats.sessions)}`);
  assert(pageErrors.length === 0, `uncaught page errors: ${pageErrors.join("; ")}`);
});

sim = await startTlsSim(["--flavor", "apic", "--churn", "5", "--throttle", "0", "--www", join(ROOT, "www"), "--pkg", join(ROOT, "pkg")]);
await run("e2e-console-tls", { totalTimeoutMs: 200000 });
