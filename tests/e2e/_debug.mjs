import { join } from "node:path";
import { ROOT, startSim, launchBrowser, sleep } from "./lib.mjs";
const sim = await startSim(["--flavor", "apic", "--churn", "5", "--throttle", "0", "--www", join(ROOT, "www"), "--pkg", join(ROOT, "pkg")]);
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
page.on("pageerror", (e) => console.log("pageerror", e.message));
page.on("console", (m) => console.log("console", m.text()));
await page.goto(sim.url);
await page.click("#connect");
await page.waitForSelector('#state[data-state="live"]');
await sleep(1500);
for (const fault of process.argv.slice(2)) {
await page.click(`#faults-panel button[data-fault="${fault}"]`);
for (let i = 0; i < 45; i++) {
  await sleep(1000);
  const st = await page.textContent("#state");
  if (st.trim() === "Live" && i > 2) break;
  console.log(i, st.trim(), JSON.stringify(await page.evaluate(() => window.dmeConsole.subscriptions.map((s) => [s.handle, s.subid, s.info()?.state, s.info()?.counters.gaps]))));
}
}
console.log(await page.locator("#events tbody tr").count(), await page.textContent("#event-count"));
const rows = await page.$$eval("#events tbody tr.marker", (trs) => trs.map((t) => t.textContent.slice(0, 220)).reverse());
console.log(rows.join("\n"));
await browser.close(); await sim.stop(); process.exit(0);
