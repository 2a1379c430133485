import { join } from "node:path";
import { ROOT, startSim, launchBrowser, sleep } from "./lib.mjs";
const sim = await startSim(["--flavor", "apic", "--churn", "0", "--throttle", "0", "--www", join(ROOT, "www"), "--pkg", join(ROOT, "pkg")]);
const browser = await launchBrowser();
const page = await browser.newPage();
await page.goto(sim.url);
await page.click("#connect");
await page.waitForSelector('#state[data-state="live"]');
await sleep(1000);
for (const f of process.argv.slice(2)) { await page.click(`#faults-panel button[data-fault="${f}"]`); await sleep(6000); }
console.log("before", JSON.stringify((await sim.stats()).sessions));
await page.click("#disconnect");
await page.waitForSelector('#state[data-state="idle"]');
console.log("after", JSON.stringify((await sim.stats()).sessions));
console.log(await page.$$eval("#events tbody tr.marker", (trs) => trs.slice(0, 5).map((t) => t.textContent)));
await browser.close(); await sim.stop(); process.exit(0);
