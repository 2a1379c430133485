// dme-events live console: wires the package (served same-origin at /pkg/) to the page.
// Device data only ever reaches the DOM as text (see dom.js).
import { h, $, setContent, duration, compact } from "./dom.js";
import { EventTable, changesOf, NOISE } from "./events.js";
import { ObjectView } from "./objects.js";
import { Sparkline } from "./sparkline.js";
import { setupQueryBox, ackAction } from "./query.js";
import { gapOpened, gapClosed, reconciledText } from "./gaps.js";

const CLASSES = {
  apic: ["faultInst", "ethpmPhysIf", "l1PhysIf", "fvAEPg", "fvBD", "fvCEp", "fvTenant", "fvCtx", "fvSubnet",
    "fvAp", "fvRsBd", "fvRsCtx", "vzBrCP", "vzSubj", "vzFilter", "vzEntry", "faultRecord", "topSystem",
    "fabricNode", "aaaUser", "aaaActiveUserSession"],
  nxos: ["ethpmPhysIf", "l1PhysIf", "bgpPeerEntry", "bgpPeer", "bgpDom", "bgpInst", "l2BD", "lldpAdjEp",
    "interfaceEntity", "topSystem", "sysmgrShowVersion", "aaaUser"],
};
/** What "start with a default set" subscribes to: the classes the fabric changes most. */
const DEFAULTS = {
  apic: [["faultInst", true], ["ethpmPhysIf", true], ["fvAEPg", false], ["fvCEp", false]],
  nxos: [["ethpmPhysIf", true], ["bgpPeerEntry", true], ["l1PhysIf", false], ["l2BD", false]],
};

const ui = {
  form: $("#connect-form"), url: $("#url"), user: $("#user"), password: $("#password"),
  flavor: $("#flavor"), defaults: $("#defaults"), connect: $("#connect"), disconnect: $("#disconnect"),
  connectError: $("#connect-error"), state: $("#state"), stateText: $("#state-text"), device: $("#device"),
  totals: $("#totals"), subForm: $("#sub-form"), subKind: $("#sub-kind"), subTarget: $("#sub-target"),
  subStore: $("#sub-store"), subscribe: $("#subscribe"), subError: $("#sub-error"), subs: $("#subs"),
  subsCount: $("#subs-count"), classes: $("#classes"), faults: $("#faults-panel"), churn: $("#churn"),
  churnValue: $("#churn-value"), simStats: $("#sim-stats"),
};

const spark = new Sparkline($("#spark"), $("#rate"));
const table = new EventTable({
  tbody: $("#events tbody"), filterInput: $("#filter"), pauseButton: $("#pause"),
  clearButton: $("#clear"), countLabel: $("#event-count"),
});
const objects = new ObjectView({
  select: $("#obj-sub"), filterInput: $("#obj-filter"), tbody: $("#objects tbody"),
  countLabel: $("#obj-count"), detail: $("#obj-detail"),
  detailActions: (mo) => ackAction(mo, () => session),
});
setupQueryBox({
  form: $("#query-form"), target: $("#query-target"), filter: $("#query-filter"), out: $("#query-out"),
  getSession: () => session,
});

let pkg = null; // the package module, once loaded
let session = null;
let ec = null;
let sim = null; // { base, stats } when the device is dme-sim
let lastState = { state: "idle" };
let lastStateRow = ""; // the text of the last state row, so one state change gives one row
const subs = new Map(); // handle -> record

// ---------------------------------------------------------------------------------------------
// Start-up: load the package, probe for dme-sim, prefill the form.

ui.url.value = location.origin;
const params = new URLSearchParams(location.search);
const askedFlavor = params.get("flavor");
if (askedFlavor === "apic" || askedFlavor === "nxos") ui.flavor.value = askedFlavor;
fillClasses();
ui.flavor.addEventListener("change", fillClasses);
const ready = loadPackage();
probeSim(location.origin).then((s) => {
  if (s && !s.upstream && !session && !askedFlavor && (s.flavor === "apic" || s.flavor === "nxos")) {
    ui.flavor.value = s.flavor;
    fillClasses();
  }
});

async function loadPackage() {
  try {
    pkg = await import("/pkg/index.js");
    await pkg.default();
    const v = pkg.version?.();
    if (v) document.title = `dme-events ${v} · live console`;
    return pkg;
  } catch (err) {
    showError(ui.connectError,
      `The package did not load from /pkg/ (${err.message}). Build it with: bash scripts/build-pkg.sh`);
    ui.connect.disabled = true;
    throw err;
  }
}

function fillClasses() {
  setContent(ui.classes, CLASSES[ui.flavor.value].map((c) => h("option", { value: c })));
  ui.subTarget.placeholder = DEFAULTS[ui.flavor.value][0][0];
}

// ---------------------------------------------------------------------------------------------
// Connect / disconnect.

ui.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (session) return;
  hideError(ui.connectError);
  setFormBusy(true);
  renderState({ state: "connecting" });
  const url = ui.url.value.trim().replace(/\/+$/, "");
  const flavor = ui.flavor.value;
  try {
    await ready;
    // The package waits up to 60 s between attempts by default (kind to a struggling fabric); the
    // demo caps it lower so a visitor sees the recovery within seconds.
    const cap = Number($("#backoff-cap").value);
    session = await pkg.Session.login({
      url, user: ui.user.value, password: ui.password.value, flavor,
      ...(cap > 0 ? { backoffCapMs: cap * 1000 } : {}),
    });
    ec = new pkg.EventChannel(session, {
      onState: (s) => onState(s),
      onError: (err) => table.push({ kind: "sys", level: "error", tag: err.code || "error", text: err.message }),
      onGap: (gap) => onGap(subs.get(gap.subscription), gap),
    });
    renderState(ec.state);
    setContent(ui.device, `${session.user ?? ui.user.value}@${session.url} · ${flavor}` +
      (session.version ? ` · ${session.version}` : ""));
    table.push({ kind: "sys", level: "state", tag: "session", text: `logged in to ${session.url} as ${session.user ?? ui.user.value}` });
    ui.disconnect.disabled = false;
    ui.subscribe.disabled = false;
    probeSim(url).then(showFaults);
    if (ui.defaults.checked) {
      for (const [cls, store] of DEFAULTS[flavor]) {
        await addSubscription({ kind: "class", target: cls, store, options: {} }).catch(() => {});
      }
    }
  } catch (err) {
    showError(ui.connectError, describe(err));
    ec?.close();
    ec = null;
    session?.close();
    session = null;
    renderState({ state: "idle" });
    setFormBusy(false);
  }
});

ui.disconnect.addEventListener("click", async () => {
  const s = session;
  const channel = ec;
  session = null;
  ec = null;
  for (const rec of subs.values()) rec.li.remove();
  subs.clear();
  objects.clear();
  showFaults(null);
  ui.disconnect.disabled = true;
  ui.subscribe.disabled = true;
  // Log out first: once the channel is closed, logout() no longer reaches the device.
  try {
    await s?.logout();
  } catch (err) {
    table.push({ kind: "sys", level: "error", tag: err.code || "error", text: `logout: ${err.message}` });
  }
  channel?.close();
  table.push({ kind: "sys", level: "state", tag: "session", text: "logged out" });
  renderState({ state: "idle" });
  setContent(ui.device);
  setFormBusy(false);
  updateCards();
});

function setFormBusy(connected) {
  for (const el of [ui.url, ui.user, ui.password, ui.flavor, ui.connect, $("#backoff-cap")]) el.disabled = connected;
  // Connected, the form folds to its buttons so the subscription cards fit on the screen.
  document.body.classList.toggle("connected", connected);
}

// ---------------------------------------------------------------------------------------------
// Connection state.

function onState(s) {
  renderState(s);
  const detail = s.state === "reconnecting" ? ` (attempt ${s.attempt})`
    : s.state === "degraded" ? ` (${s.reason})`
    : s.state === "failed" ? ` (${s.error?.code}: ${s.error?.message})` : "";
  const text = `connection ${s.state}${detail}`;
  // The package reports a state again when only its details move (the next attempt's time).
  if (text === lastStateRow) return;
  lastStateRow = text;
  table.push({ kind: "sys", level: s.state === "failed" ? "error" : "state", tag: "state", text });
}

function renderState(s) {
  lastState = s;
  ui.state.dataset.state = s.state;
  ui.stateText.textContent = stateLabel(s);
}

function stateLabel(s) {
  switch (s.state) {
    case "idle": return "Disconnected";
    case "connecting": return "Connecting…";
    case "live": return "Live";
    case "degraded": return `Degraded · ${s.reason}`;
    case "reconnecting": {
      const wait = s.nextAt ? Math.max(0, s.nextAt - Date.now()) : 0;
      return `Reconnecting · attempt ${s.attempt}` + (wait > 0 ? ` · in ${(wait / 1000).toFixed(1)}s` : "");
    }
    case "failed": return `Failed · ${s.error?.code ?? "error"}`;
    case "closed": return "Closed";
    default: return s.state;
  }
}

// ---------------------------------------------------------------------------------------------
// Subscriptions.

ui.subForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  hideError(ui.subError);
  const target = ui.subTarget.value.trim();
  if (!target || !ec) return;
  const options = {};
  const qt = $("#opt-target").value;
  if (qt) options.queryTarget = qt;
  const tsc = $("#opt-tsc").value.trim();
  if (tsc) options.targetSubtreeClass = tsc.split(",").map((c) => c.trim()).filter(Boolean);
  const filter = $("#opt-filter").value.trim();
  if (filter) options.filter = filter;
  if ($("#opt-format").value === "xml") options.format = "xml";
  const rt = $("#opt-rt").value.trim();
  ui.subscribe.disabled = true;
  try {
    await addSubscription({
      kind: ui.subKind.value, target, store: ui.subStore.checked, options,
      refreshTimeout: rt === "" ? undefined : Number(rt),
    });
    ui.subTarget.value = "";
  } catch (err) {
    showError(ui.subError, describe(err));
  } finally {
    ui.subscribe.disabled = !ec;
  }
});

async function addSubscription({ kind, target, store, options, refreshTimeout }) {
  const channel = ec;
  const query = kind === "dn" ? new pkg.DnQuery(target, options) : new pkg.ClassQuery(target, options);
  const label = `${kind === "dn" ? "dn " : ""}${target}`;
  const rec = { handle: null, label, store, query: query.toString(), sub: null, li: null };
  const pendingEvents = [];
  const onEvent = (mos) => (rec.handle === null ? pendingEvents.push(mos) : onMos(rec, mos));
  const sub = await channel.subscribe(query, {
    store,
    refreshTimeout,
    onEvent,
    onGap: (gap) => onGap(rec, gap),
    onReconciled: ({ differences }) => onReconciled(rec, differences),
  });
  if (channel !== ec) {
    sub.close();
    return;
  }
  rec.sub = sub;
  rec.handle = sub.handle;
  subs.set(rec.handle, rec);
  if (store) objects.add(rec.handle, label, sub.initial);
  rec.li = renderCard(rec);
  ui.subs.appendChild(rec.li);
  table.push({ kind: "sys", level: "info", tag: "subscribed",
    text: `#${rec.handle} ${rec.query} · id ${sub.subid} · ${sub.initial.length} objects in the snapshot` });
  pendingEvents.forEach((mos) => onMos(rec, mos));
  updateCards();
  return rec;
}

function onMos(rec, mos) {
  if (mos.length > 0 && mos.every((mo) => !mo.status)) {
    // A subscription without store mode re-read its snapshot after a gap: one line, not a flood.
    table.push({ kind: "sys", level: "info", tag: "snapshot",
      text: `#${rec.handle} ${rec.label}: fresh snapshot of ${mos.length} objects after the gap` });
    gapClosed(rec, `fresh snapshot: ${mos.length} objects`);
    return;
  }
  // The rate counts live changes only: a store's reconciliation after a gap is not churn.
  if (!rec.gapOpen) spark.add(mos.length);
  let bookkeeping = 0;
  for (const mo of mos) {
    const prev = rec.store ? objects.prev(rec.handle, mo.dn) : undefined;
    const changes = changesOf(mo, prev);
    if (prev && mo.status === "modified" && !changes.some((c) => !NOISE.has(c.k))) {
      // A whole object (store mode) that differs only in bookkeeping such as modTs: typical of
      // the reconciliation after a gap. Counted below instead of filling the table.
      bookkeeping++;
      continue;
    }
    table.push({ kind: "mo", sub: rec, mo, changes });
  }
  if (bookkeeping) {
    table.push({ kind: "sys", level: "info", tag: "reconciled",
      text: `#${rec.handle} ${rec.label}: ${bookkeeping} objects differed only in modTs or other bookkeeping` });
  }
  if (rec.store) objects.apply(rec.handle, mos);
}

function onGap(rec, gap) {
  table.push({ kind: "gap", sub: rec ?? { handle: gap.subscription, label: "", store: false }, reason: gap.reason });
  if (rec) gapOpened(rec, gap.reason);
}

function onReconciled(rec, differences) {
  table.push({ kind: "sys", level: "info", tag: "reconciled",
    text: `#${rec.handle} ${rec.label}: ${reconciledText(differences)}` });
  gapClosed(rec, reconciledText(differences));
}

function closeSubscription(rec) {
  rec.sub.close();
  subs.delete(rec.handle);
  objects.remove(rec.handle);
  rec.li.remove();
  table.push({ kind: "sys", level: "info", tag: "closed", text: `#${rec.handle} ${rec.query}` });
  updateCards();
}

function renderCard(rec) {
  rec.el = {
    state: h("span", { className: "tag" }),
    id: h("span", { className: "id" }),
    refresh: h("span"),
    counters: h("span"),
    gap: h("div", { className: "gap-line", hidden: true }),
  };
  return h("li", { className: "sub-card", dataset: { handle: String(rec.handle) } },
    h("div", { className: "sub-head" },
      h("span", { className: "sub-title", title: rec.query }, `#${rec.handle} ${rec.label}`),
      rec.store ? h("span", { className: "tag", title: "store mode" }, "store") : null,
      rec.query.includes(".xml") ? h("span", { className: "tag" }, "xml") : null,
      rec.el.state),
    h("div", { className: "sub-meta" },
      h("span", null, "id"), rec.el.id,
      h("span", null, "refresh"), rec.el.refresh,
      h("span", { className: "counts" }, rec.el.counters)),
    rec.el.gap,
    renderCardActions(rec));
}

/** The card's buttons, in one row with its id so that the cards stay short. */
function renderCardActions(rec) {
  return h("div", { className: "sub-actions" },
    h("button", { type: "button", className: "refresh", onclick: () => refreshNow(rec) }, "Refresh"),
    rec.store ? h("button", { type: "button", onclick: () => objects.show(rec.handle) }, "Objects") : null,
    h("button", { type: "button", className: "close", onclick: () => closeSubscription(rec) }, "Close"));
}

async function refreshNow(rec) {
  try {
    await rec.sub.refresh();
    table.push({ kind: "sys", level: "info", tag: "refresh", text: `#${rec.handle} refreshed by hand` });
  } catch (err) {
    table.push({ kind: "sys", level: "error", tag: err.code || "error", text: `#${rec.handle} refresh: ${err.message}` });
  }
}

function updateCards() {
  const now = Date.now();
  ui.subsCount.textContent = subs.size ? `(${subs.size})` : "";
  for (const rec of subs.values()) {
    const info = rec.sub.info();
    if (!info) continue;
    rec.el.state.textContent = info.state;
    rec.el.state.className = `tag state ${info.state}`;
    rec.li.classList.toggle("failed", info.state === "failed");
    rec.el.id.textContent = rec.sub.subid || "(resubscribing)";
    rec.el.refresh.textContent = info.nextRefreshAt
      ? `in ${duration(info.nextRefreshAt - now)}/${info.lifetimeSecs}s`
      : "—";
    const c = info.counters;
    rec.el.counters.textContent =
      `${compact(c.mos)} mos · ${compact(c.frames)} frames · ${c.refreshes} refreshes · ${c.gaps} gaps` +
      (c.refreshFailures ? ` · ${c.refreshFailures} refresh failures` : "");
  }
  if (ec) {
    const t = ec.stats();
    setContent(ui.totals,
      h("span", null, "frames ", h("b", null, compact(t.frames))),
      h("span", null, "objects ", h("b", null, compact(t.total.mos))),
      h("span", null, "gaps ", h("b", null, String(t.total.gaps))),
      h("span", null, "reconnects ", h("b", null, String(t.reconnects))));
  } else {
    setContent(ui.totals);
  }
  if (lastState.state === "reconnecting") ui.stateText.textContent = stateLabel(lastState);
}
setInterval(updateCards, 500);

// ---------------------------------------------------------------------------------------------
// dme-sim fault injection (shown only when GET /_sim/stats answers and it is not proxying).

async function probeSim(base) {
  try {
    const res = await fetch(`${base}/_sim/stats`, { cache: "no-store" });
    if (!res.ok) return null;
    const stats = await res.json();
    return typeof stats.flavor === "string" ? { ...stats, base } : null;
  } catch {
    return null;
  }
}

function showFaults(stats) {
  sim = stats && !stats.upstream && session ? { base: stats.base } : null;
  ui.faults.hidden = !sim;
  if (sim) {
    ui.churn.value = String(Math.round(stats.churn ?? 0));
    ui.churnValue.textContent = `${ui.churn.value}/s`;
    renderSimStats(stats);
  }
}

async function simPost(path) {
  const res = await fetch(`${sim.base}/_sim/${path}`, { method: "POST" });
  if (!res.ok) throw new Error(`/_sim/${path} answered ${res.status}`);
  return res.json();
}

const FAULTS = {
  drop: { text: "dropped the WebSocket", run: () => simPost("drop-sockets?mode=abort") },
  expire: { text: "expired the session (403 Token timeout)", run: () => simPost("expire-session") },
  storm: {
    text: "503 storm: the next 6 requests answer 503, and the socket drops",
    run: async () => {
      await simPost("fail-503?n=6");
      await simPost("drop-sockets?mode=abort");
    },
  },
  restart: { text: "restarted the device (sessions forgotten, 503 for 3 s)", run: () => simPost("restart?down_ms=3000") },
};

for (const btn of ui.faults.querySelectorAll("button[data-fault]")) {
  btn.addEventListener("click", async () => {
    const f = FAULTS[btn.dataset.fault];
    if (!sim || !f) return;
    btn.disabled = true;
    table.push({ kind: "sys", level: "error", tag: "fault", text: `injected: ${f.text}` });
    try {
      await f.run();
    } catch (err) {
      table.push({ kind: "sys", level: "error", tag: "fault", text: err.message });
    } finally {
      setTimeout(() => (btn.disabled = false), 800);
    }
  });
}

ui.churn.addEventListener("input", () => (ui.churnValue.textContent = `${ui.churn.value}/s`));
ui.churn.addEventListener("change", () => sim && simPost(`churn?rate=${ui.churn.value}`).catch(() => {}));

function renderSimStats(s) {
  ui.simStats.textContent =
    `${s.flavor} · ${compact(s.objects)} objects · ${s.sessions?.length ?? 0} sessions · ` +
    `${s.subscriptions?.length ?? 0} subscriptions · ${compact(s.frames_sent ?? 0)} frames sent`;
}

setInterval(async () => {
  if (!sim || document.hidden) return;
  const s = await probeSim(sim.base);
  if (s && sim) renderSimStats(s);
}, 2000);

// ---------------------------------------------------------------------------------------------

function describe(err) {
  if (err && err.code) {
    let s = `${err.code}: ${err.message}`;
    if (err.httpStatus) s += ` (HTTP ${err.httpStatus})`;
    return s;
  }
  return String(err?.message ?? err);
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = false;
}

function hideError(el) {
  el.hidden = true;
  el.textContent = "";
}

// For scripts and the end-to-end tests: read-only access to what the page holds.
window.dmeConsole = {
  get session() { return session; },
  get channel() { return ec; },
  get subscriptions() { return [...subs.values()].map((r) => r.sub); },
  get state() { return lastState; },
};
