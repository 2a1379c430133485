// End-to-end tests of the live console (www/) served by dme-sim with the built package (pkg/),
// driven in Debian's Chromium: connect, subscribe, events, object view, the query box and a fault's
// acknowledgement, filter and pause, faults and recovery with gap markers, device data rendered as
// text, and a screenshot artifact; and the demo's readability: DNs shortened in the middle, a rate
// of live changes only, one row per state change, a gap line per card until its reconciliation,
// the cards in view at 1440×900.
//   node tests/e2e/console.test.mjs            (needs pkg/ and target/debug/dme-sim)
//   UPDATE_DOCS=1 node tests/e2e/console.test.mjs   also refreshes docs/console.png
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, ARTIFACTS, test, run, startSim, launchBrowser, assert, until, sleep } from "./lib.mjs";

let sim;
let page;
const pageErrors = [];

/** Every value the connection-state indicator took, in order (recorded in the page). */
const states = () => page.evaluate(() => window.__states.slice());
const gapRows = () => page.locator("#events tbody tr.gap").count();
const rowFor = (dn) => page.locator("#events tbody tr.ev", { has: page.locator("td.dn", { hasText: dn }) });

async function waitLive(timeoutMs = 30000) {
  await page.waitForSelector('#state[data-state="live"]', { timeout: timeoutMs });
}

/** Injects a fault with the page's own button; expects Live → (not live) → Live and one more gap
 * marker, and events flowing again afterwards. */
/** Live, and every subscription card says "active" (resubscribed after a fault). */
async function allActive(timeoutMs = 40000) {
  await waitLive(timeoutMs);
  await until(async () => {
    const tags = await page.locator("#subs li.sub-card .tag.state").allTextContents();
    return tags.length > 0 && tags.every((t) => t === "active");
  }, "every subscription active", timeoutMs, 200);
}

async function faultRecovers(button, expectState, n) {
  await allActive();
  const gapsBefore = await gapRows();
  const statesBefore = (await states()).length;
  await page.click(`#faults-panel button[data-fault="${button}"]`);
  await until(async () => (await states()).slice(statesBefore).some((s) => s !== "live"), "the state to leave live", 10000);
  await allActive();
  const seen = (await states()).slice(statesBefore);
  assert(seen.includes(expectState), `states after ${button}: ${seen.join(" → ")} (expected ${expectState})`);
  await until(async () => (await gapRows()) > gapsBefore, "a gap marker", 20000);
  const dn = `uni/tn-e2efault${n}`;
  await sim.post(`/_sim/write?dn=${dn}`, { fvTenant: { attributes: { name: `e2efault${n}`, descr: "after the fault" } } });
  await until(() => rowFor(dn).count(), `the event for ${dn} after recovery`, 15000);
  return seen;
}

test("the page loads with the connect form prefilled and the package loaded", async () => {
  const browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.addInitScript(() => {
    window.__states = [];
    document.addEventListener("DOMContentLoaded", () => {
      const el = document.getElementById("state");
      new MutationObserver(() => {
        const s = el.dataset.state;
        if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
      }).observe(el, { attributes: true, attributeFilter: ["data-state"] });
    });
  });
  await page.goto(`${sim.url}/`);
  assert((await page.inputValue("#url")) === sim.url, "the URL defaults to the page's origin");
  assert((await page.inputValue("#user")) === "admin", "user prefilled");
  assert((await page.inputValue("#password")) === "ins3965!", "password prefilled");
  assert((await page.inputValue("#flavor")) === "apic", "flavor from dme-sim");
  await page.waitForFunction(() => document.title.startsWith("dme-events "), null, { timeout: 10000 });
  assert(await page.locator("#faults-panel").isHidden(), "no fault buttons before connecting");
});

test("connect: Live, the default subscriptions and churn events arrive", async () => {
  await page.click("#connect");
  await waitLive(15000);
  await until(() => page.locator("#subs li.sub-card").count().then((n) => n === 4), "four default subscriptions", 15000);
  await until(() => page.locator("#events tbody tr.ev").count(), "a churn event in the table", 15000);
  assert(await page.locator("#faults-panel").isVisible(), "fault buttons shown against dme-sim");
  const device = await page.textContent("#device");
  assert(device.includes(sim.url), `device line: ${device}`);
});

test("subscribe to a class in store mode: device id, state, countdown, counters, events", async () => {
  await page.fill("#sub-target", "fvTenant");
  await page.check("#sub-store");
  await page.click("#subscribe");
  const card = page.locator("#subs li.sub-card", { hasText: "fvTenant" });
  await card.waitFor({ timeout: 10000 });
  await sim.post("/_sim/write?dn=uni/tn-e2e1", { fvTenant: { attributes: { name: "e2e1", descr: "first" } } });
  await until(() => rowFor("uni/tn-e2e1").count(), "the created tenant in the event table");
  const row = rowFor("uni/tn-e2e1").first();
  assert((await row.locator("td.status").textContent()) === "created", "status created");
  assert((await row.locator("td.cls").textContent()) === "fvTenant", "class fvTenant");
  await sim.post("/_sim/write?dn=uni/tn-e2e1", { fvTenant: { attributes: { descr: "second" } } });
  await until(async () => (await rowFor("uni/tn-e2e1").count()) === 2, "the modification");
  const changes = await rowFor("uni/tn-e2e1").first().locator("td.changes").textContent();
  assert(changes.includes("descr") && changes.includes("first") && changes.includes("second"),
    `store mode shows old → new: ${changes}`);
  const meta = await until(async () => {
    const t = await card.locator(".sub-meta").textContent();
    return /\d+ mos/.test(t) && !t.includes(" 0 mos") ? t : null;
  }, "the card's counters");
  assert(/id\s*\d{17,}/.test(meta), `device id on the card: ${meta}`);
  assert(/refresh\s*in \d+/.test(meta), `refresh countdown on the card: ${meta}`);
  assert((await card.locator(".tag.state").textContent()) === "active", "state active");
});

test("at 1440×900 every subscription card is in view without scrolling", async () => {
  const cards = page.locator("#subs li.sub-card");
  assert((await cards.count()) === 5, "five subscriptions");
  for (const box of await cards.evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON()))) {
    assert(box.top >= 0 && box.bottom <= 900, `a card outside the viewport: ${JSON.stringify(box)}`);
  }
  assert((await page.evaluate(() => document.querySelector(".side").scrollTop)) === 0, "the side column is not scrolled");
});

test("the objects column is named for what it shows", async () => {
  const heads = await page.locator("#objects thead th").allTextContents();
  assert(heads.includes("key attributes") && !heads.includes("state"), `object view headers: ${heads.join(", ")}`);
});

test("long DNs are shortened in the middle: the end shows, the whole DN on hover and in the detail pane", async () => {
  await page.selectOption("#obj-sub", { label: await page.locator("#obj-sub option", { hasText: "faultInst" }).first().textContent() });
  await page.locator("#objects tbody tr td.dn").first().waitFor({ timeout: 5000 });
  // One look at one cell (the view re-renders as faults change), its column narrowed so that the
  // DN cannot fit.
  const shown = await page.evaluate(() => {
    const th = document.querySelector("#objects thead th");
    th.style.width = "260px";
    const td = document.querySelector("#objects tbody tr td.dn");
    const tail = td.querySelector(".dn-tail");
    const head = td.querySelector(".dn-head");
    const t = tail.getBoundingClientRect();
    const c = td.getBoundingClientRect();
    const out = { headCut: head.scrollWidth > head.clientWidth };
    th.style.width = "";
    td.parentElement.click();
    return { dn: td.title, tail: tail.textContent, inside: t.left >= c.left && t.right <= c.right + 0.5,
      headCut: out.headCut, text: td.textContent };
  });
  const { dn } = shown;
  assert(dn && dn.length > 40 && /\/fault-[^/]+$/.test(dn), `a fault DN: ${dn}`);
  assert(shown.text === dn, "the cell's text is the whole DN (for filters and copy)");
  assert(dn.endsWith(shown.tail) && shown.tail.includes("/fault-"), `the last RNs show: ${shown.tail}`);
  assert(shown.inside, "the end of the DN is inside the cell");
  assert(shown.headCut, "the head of the DN is what gives way at this width");
  await until(async () => (await page.textContent("#obj-detail .detail-head .dn")) === dn, "the whole DN in the detail pane");
});

test("object view: current state of each object, with a detail pane", async () => {
  await page.locator("#subs li.sub-card", { hasText: "fvTenant" }).getByRole("button", { name: "Objects" }).click();
  await page.fill("#obj-filter", "e2e1");
  const row = page.locator("#objects tbody tr", { hasText: "uni/tn-e2e1" });
  await row.waitFor({ timeout: 5000 });
  await row.click();
  await until(async () => (await page.textContent("#obj-detail")).includes("second"), "the detail pane");
  await sim.post("/_sim/write?dn=uni/tn-e2e1", { fvTenant: { attributes: { descr: "third" } } });
  await until(async () => (await page.textContent("#obj-detail")).includes("third"), "the detail pane to follow the change");
  await page.fill("#obj-filter", "");
});

test("query box: a class with a filter, then a DN with its children", async () => {
  await page.fill("#query-target", "fvTenant");
  await page.fill("#query-filter", 'eq(fvTenant.name,"e2e1")');
  await page.click("#query-run");
  await until(async () => (await page.textContent("#query-out")).includes("uni/tn-e2e1"), "the class answer");
  assert((await page.textContent("#query-count")) === "1 object", await page.textContent("#query-out"));
  await page.fill("#query-target", "uni/tn-common");
  await page.fill("#query-filter", "");
  await page.click("#query-run");
  await until(async () => / children/.test(await page.textContent("#query-out")), "the DN answer with children");
  await page.fill("#query-target", "fvTenantt");
  await page.click("#query-run");
  await until(async () => (await page.textContent("#query-out")).includes("UNKNOWN_CLASS"), "a typed refusal");
});

test("acknowledge a fault: the commit comes back through the faultInst subscription", async () => {
  const dn = "topology/pod-1/node-101/sys/fault-F9901";
  await sim.post(`/_sim/write?dn=${dn}`, { faultInst: { attributes: { code: "F9901", ack: "no", severity: "major" } } });
  await page.selectOption("#obj-sub", { label: (await page.locator("#obj-sub option", { hasText: "faultInst" }).first().textContent()) });
  await page.fill("#obj-filter", "F9901");
  const row = page.locator("#objects tbody tr", { hasText: dn });
  await row.waitFor({ timeout: 10000 });
  // Clicked inside the page: while faults churn, the rows are redrawn every 400 ms and may never
  // hold still long enough for a pointer click on a loaded machine.
  await page.evaluate((dn) => [...document.querySelectorAll("#objects tbody tr")].find((tr) => tr.textContent.includes(dn)).click(), dn);
  await until(() => page.locator("#obj-detail button.ack").count(), "the Acknowledge button");
  await page.evaluate(() => document.querySelector("#obj-detail button.ack").click());
  await until(async () => (await page.locator("#obj-detail button.ack").count()) === 0, "the acknowledged fault to come back");
  const truth = await fetch(`${sim.url}/_sim/truth?class=faultInst`).then((r) => r.json());
  const ack = truth.imdata.map((x) => x.faultInst.attributes).find((a) => a.dn === dn)?.ack;
  assert(ack === "yes", `the device holds ack=${ack}`);
  await page.fill("#obj-filter", "");
  await page.selectOption("#obj-sub", { label: (await page.locator("#obj-sub option", { hasText: "fvTenant" }).first().textContent()) });
});

test("filter and pause", async () => {
  await page.fill("#filter", "tn-e2e1");
  const visible = await page.locator("#events tbody tr:visible").count();
  const matching = await page.locator("#events tbody tr:visible", { hasText: "tn-e2e1" }).count();
  const texts = await page.locator("#events tbody tr:visible").allTextContents();
  assert(visible > 0 && visible === matching, `filter shows only matching rows (${matching}/${visible}): ${texts.join(" | ")}`);
  await page.click("#pause");
  const before = await rowFor("uni/tn-e2e1").count();
  await sim.post("/_sim/write?dn=uni/tn-e2e1", { fvTenant: { attributes: { descr: "while paused" } } });
  await until(async () => /Resume \([1-9]/.test(await page.textContent("#pause")), "the paused counter");
  await sleep(300);
  assert((await rowFor("uni/tn-e2e1").count()) === before, "no new rows while paused");
  await page.click("#pause");
  await until(async () => (await rowFor("uni/tn-e2e1").count()) === before + 1, "the held row after resuming");
  await page.fill("#filter", "");
});

test("device data is text: an attribute <img src=x onerror=...> shows literally and runs nothing", async () => {
  const evil = `<img src=x onerror="window.__xss=1;document.title='owned'">`;
  await page.evaluate(() => (window.__xss = undefined));
  await sim.post("/_sim/write?dn=uni/tn-e2exss", { fvTenant: { attributes: { name: "e2exss", descr: evil, nameAlias: "<b>bold</b>" } } });
  await until(() => rowFor("uni/tn-e2exss").count(), "the tenant with markup in its attributes");
  const changes = await rowFor("uni/tn-e2exss").first().locator("td.changes").textContent();
  assert(changes.includes(evil), `the markup shows as text: ${changes}`);
  await page.fill("#obj-filter", "e2exss");
  await page.locator("#objects tbody tr", { hasText: "uni/tn-e2exss" }).click();
  await until(async () => (await page.textContent("#obj-detail")).includes(evil), "the detail pane shows it as text");
  await sleep(500);
  const imgs = await page.evaluate(() => document.querySelectorAll("main img, main b").length);
  assert(imgs === 0, `no element was created from device data (${imgs})`);
  assert((await page.evaluate(() => window.__xss)) === undefined, "the onerror handler never ran");
  assert(!(await page.title()).includes("owned"), "the title is untouched");
  await page.fill("#obj-filter", "");
});

test("fault: drop the socket → Reconnecting → Live, a gap marker, events again", async () => {
  await faultRecovers("drop", "reconnecting", 1);
}, { timeoutMs: 60000 });

/** Rows of the event table whose text contains `text`. */
const rowsWith = (text) => page.locator("#events tbody tr", { hasText: text }).count();

test("a recovery: one row per state change, a gap line per card until its reconciliation, the rate counts live changes only", async () => {
  await allActive();
  // No churn, so every event after the drop is the recovery's own.
  await sim.post("/_sim/churn?rate=0");
  await until(async () => (await page.textContent("#rate")) === "0 ev/s", "the rate to settle at 0", 5000, 100);
  const reconnectRows = await rowsWith("connection reconnecting (attempt 1)");
  const rates = [];
  const sampler = setInterval(() => page.textContent("#rate").then((t) => rates.push(t), () => {}), 200);
  try {
    await page.click('#faults-panel button[data-fault="drop"]');
    await until(async () => (await page.locator("#subs .gap-line.open").count()) > 0, "an open gap line", 10000);
    await allActive();
    const lines = await until(async () => {
      const l = await page.locator("#subs li.sub-card").evaluateAll((els) => els.map((e) => ({
        title: e.querySelector(".sub-title").textContent, store: !!e.querySelector('.tag[title="store mode"]'),
        gap: e.querySelector(".gap-line"),
      })).map((c) => ({ ...c, open: c.gap.classList.contains("open"), text: c.gap.hidden ? "" : c.gap.textContent, gap: undefined })));
      return l.every((c) => c.text && !c.open) ? l : null;
    }, "every card's gap line closed", 20000, 100);
    for (const c of lines) {
      const re = c.store ? /gap · reconnect at [\d:.]+ · reconciled: \d+ differences?$/ : /gap · reconnect at [\d:.]+ · fresh snapshot: \d+ objects$/;
      assert(re.test(c.text), `${c.title}: ${c.text}`);
    }
    assert(lines.some((c) => c.store && / reconciled: 0 differences$/.test(c.text)), `a reconciliation that found nothing says so: ${lines.map((c) => c.text).join(" | ")}`);
    await sleep(2500);
  } finally {
    clearInterval(sampler);
    await sim.post("/_sim/churn?rate=5");
  }
  assert(rates.length > 10 && rates.every((r) => r === "0 ev/s"), `the rate counted the recovery: ${[...new Set(rates)].join(", ")}`);
  assert((await rowsWith("connection reconnecting (attempt 1)")) === reconnectRows + 1,
    "one row for the one change to reconnecting (attempt 1)");
}, { timeoutMs: 60000 });

test("fault: expire the session → recovers with a gap marker", async () => {
  await faultRecovers("expire", "reconnecting", 2);
}, { timeoutMs: 60000 });

test("fault: 503 storm → recovers with a gap marker", async () => {
  await faultRecovers("storm", "reconnecting", 3);
}, { timeoutMs: 60000 });

test("fault: device restart → recovers with a gap marker", async () => {
  await faultRecovers("restart", "reconnecting", 4);
}, { timeoutMs: 60000 });

test("store mode after the faults still matches the device", async () => {
  await until(async () => {
    const [held, truth] = await Promise.all([
      page.evaluate(() => window.dmeConsole.subscriptions.find((s) => s.store()?.some((o) => o.className === "fvTenant"))
        .store().map((o) => `${o.dn} ${o.attributes.descr}`).sort()),
      fetch(`${sim.url}/_sim/truth?class=fvTenant`).then((r) => r.json())
        .then((t) => t.imdata.map((x) => `${x.fvTenant.attributes.dn} ${x.fvTenant.attributes.descr}`).sort()),
    ]);
    return JSON.stringify(held) === JSON.stringify(truth);
  }, "the fvTenant store to equal the truth", 10000, 250);
});

test("screenshot of the console (artifact)", async () => {
  // A moment of churn for the sparkline, a selected object in the detail pane.
  await page.fill("#obj-filter", "");
  await page.selectOption("#obj-sub", { label: (await page.locator("#obj-sub option", { hasText: "faultInst" }).first().textContent()) });
  await sleep(4000);
  // A recent recovery in view: gap markers and state changes among the events.
  await page.click('#faults-panel button[data-fault="drop"]');
  await allActive();
  await sleep(400);
  // Clicked in the page: the rows re-render while faults change.
  await page.evaluate(() => document.querySelector("#objects tbody tr").click());
  await page.evaluate(() => document.querySelector(".side").scrollTo(0, 0));
  const file = join(ARTIFACTS, "console.png");
  await page.screenshot({ path: file });
  if (process.env.UPDATE_DOCS) copyFileSync(file, join(ROOT, "docs", "console.png"));
  console.log(`     screenshot: ${file}`);
}, { timeoutMs: 30000 });

test("disconnect logs out and the page holds nothing", async () => {
  await page.click("#disconnect");
  await page.waitForSelector('#state[data-state="idle"]', { timeout: 10000 });
  assert((await page.locator("#subs li").count()) === 0, "no subscription cards");
  const sessions = (await sim.stats()).sessions;
  assert(sessions.length === 0, `dme-sim has sessions left: ${JSON.stringify(sessions)}`);
  assert(pageErrors.length === 0, `uncaught page errors: ${pageErrors.join("; ")}`);
});

sim = await startSim(["--flavor", "apic", "--churn", "5", "--throttle", "0", "--www", join(ROOT, "www"), "--pkg", join(ROOT, "pkg")]);
await run("e2e-console", { totalTimeoutMs: 300000 });
