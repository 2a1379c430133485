// The live event table: newest first, bounded, batched into one DOM update per animation frame,
// with a filter box and pause. Rows are built from text nodes only.
import { h, clock } from "./dom.js";
import { dnCell } from "./dn.js";

export const MAX_ROWS = 500;
const MAX_CHANGES_SHOWN = 8;

export class EventTable {
  constructor({ tbody, filterInput, pauseButton, clearButton, countLabel, onFlush }) {
    this.tbody = tbody;
    this.filterInput = filterInput;
    this.pauseButton = pauseButton;
    this.countLabel = countLabel;
    this.onFlush = onFlush;
    this.pending = [];
    this.paused = false;
    this.filter = "";
    this.scheduled = false;
    filterInput.addEventListener("input", () => {
      this.filter = filterInput.value.trim().toLowerCase();
      for (const tr of this.tbody.rows) tr.hidden = !this.matches(tr.dmeText);
      this.updateCount();
    });
    pauseButton.addEventListener("click", () => this.setPaused(!this.paused));
    clearButton.addEventListener("click", () => {
      this.tbody.replaceChildren();
      this.pending = [];
      this.updateCount();
    });
    this.updateCount();
  }

  setPaused(paused) {
    this.paused = paused;
    this.pauseButton.setAttribute("aria-pressed", String(paused));
    this.pauseButton.classList.toggle("active", paused);
    if (!paused) this.schedule();
    this.updateCount();
  }

  /** Adds entries: { kind: "mo", sub, mo, changes } | { kind: "gap", sub, reason } |
   * { kind: "sys", level, text }. */
  push(entry) {
    entry.t ??= Date.now();
    this.pending.push(entry);
    if (this.pending.length > MAX_ROWS * 2) this.pending.splice(0, this.pending.length - MAX_ROWS);
    if (this.paused) this.updateCount();
    else this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    // requestAnimationFrame does not run in background tabs: fall back to a timer there so the
    // queue stays bounded and the table is current when the tab comes back.
    const run = () => {
      if (!this.scheduled) return;
      this.scheduled = false;
      this.flush();
    };
    requestAnimationFrame(run);
    setTimeout(run, 250);
  }

  flush() {
    if (this.paused || this.pending.length === 0) return;
    const batch = this.pending.length > MAX_ROWS ? this.pending.slice(-MAX_ROWS) : this.pending;
    this.pending = [];
    const frag = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) frag.appendChild(this.row(batch[i]));
    this.tbody.insertBefore(frag, this.tbody.firstChild);
    while (this.tbody.rows.length > MAX_ROWS) this.tbody.lastChild.remove();
    this.updateCount();
    this.onFlush?.(batch);
  }

  matches(text) {
    return !this.filter || text.includes(this.filter);
  }

  row(e) {
    let tr;
    if (e.kind === "mo") {
      const { mo } = e;
      const changes = h("td", { className: "changes" });
      const shown = e.changes.slice(0, MAX_CHANGES_SHOWN);
      for (const c of shown) {
        changes.appendChild(
          h("span", { className: "chg" },
            h("span", { className: "k" }, c.k),
            c.old !== undefined ? [" ", h("span", { className: "old" }, c.old), h("span", { className: "arrow" }, " → ")] : "=",
            h("span", { className: "v" }, c.v)),
        );
      }
      if (e.changes.length > shown.length) {
        changes.appendChild(h("span", { className: "more" }, `+${e.changes.length - shown.length} more`));
      }
      changes.title = e.changes.map((c) => (c.old !== undefined ? `${c.k}: ${c.old} → ${c.v}` : `${c.k}=${c.v}`)).join("\n");
      const status = mo.status || "snapshot";
      tr = h("tr", { className: `ev st-${status}` },
        h("td", { className: "time" }, clock(e.t)),
        h("td", { className: "sub", title: e.sub.label }, `#${e.sub.handle}`),
        h("td", { className: "cls" }, mo.className),
        dnCell(mo.dn),
        h("td", { className: "status" }, h("span", { className: `badge st-${status}` }, status)),
        changes);
      tr.dmeText = `${mo.className} ${mo.dn} ${status} ${changes.title}`.toLowerCase();
    } else if (e.kind === "gap") {
      const text = `gap in #${e.sub.handle} ${e.sub.label} — ${e.reason}: changes in between were not seen; ` +
        (e.sub.store ? "the store reconciles from a fresh snapshot" : "a fresh snapshot follows");
      tr = h("tr", { className: "marker gap" },
        h("td", { className: "time" }, clock(e.t)),
        h("td", { colSpan: 5 }, h("span", { className: "badge gap" }, "gap"), " ", text));
      tr.dmeText = `gap ${text}`.toLowerCase();
    } else {
      tr = h("tr", { className: `marker sys lvl-${e.level || "info"}` },
        h("td", { className: "time" }, clock(e.t)),
        h("td", { colSpan: 5 }, h("span", { className: `badge ${e.level || "info"}` }, e.tag || "info"), " ", e.text));
      tr.dmeText = `${e.tag} ${e.text}`.toLowerCase();
    }
    tr.hidden = !this.matches(tr.dmeText);
    return tr;
  }

  updateCount() {
    const rows = this.tbody.rows.length;
    let shown = rows;
    if (this.filter) {
      shown = 0;
      for (const tr of this.tbody.rows) if (!tr.hidden) shown++;
    }
    let text = this.filter ? `${shown} of ${rows} rows` : `${rows} rows`;
    if (this.paused) text += ` · paused, ${this.pending.length} waiting`;
    this.countLabel.textContent = text;
    this.pauseButton.textContent = this.paused ? `Resume (${this.pending.length})` : "Pause";
  }
}

/** Attributes that every push carries and that say nothing about the change itself. */
export const NOISE = new Set(["dn", "status", "rn", "childAction", "modTs"]);
/** Also hidden when listing a whole created object. */
const CREATED_NOISE = new Set([...NOISE, "lcOwn", "monPolDn", "uid", "userdom", "extMngdBy",
  "annotation", "nameAlias", "configIssues", "ownerKey", "ownerTag"]);

/** Keys a person looks at first; timestamps go last. */
const PRIORITY = ["operSt", "adminSt", "state", "severity", "lc", "code", "name", "descr", "operStQual",
  "operSpeed", "speed", "encap", "ip", "mac", "addr", "prevOperSt", "highestSeverity", "cause"];
const rank = (k) => {
  const i = PRIORITY.indexOf(k);
  if (i >= 0) return i;
  return /Ts$|Chg$|^last|^created$|Time$/.test(k) ? 1000 : 100;
};
const byRank = (a, b) => rank(a.k) - rank(b.k) || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0);

/** What an event changed. `prev` is the object's attributes before it (store mode, where events
 * carry whole objects), if known; otherwise a `modified` event is itself the sparse delta. */
export function changesOf(mo, prev) {
  const a = mo.attributes || {};
  if (mo.status === "deleted") return [];
  const created = mo.status === "created" || !mo.status;
  const skip = created ? CREATED_NOISE : NOISE;
  const out = [];
  for (const [k, v] of Object.entries(a)) {
    if (skip.has(k) || (created && v === "")) continue;
    if (prev && !created) {
      if (prev[k] === v) continue;
      if (k in prev) {
        out.push({ k, v, old: prev[k] });
        continue;
      }
    }
    out.push({ k, v });
  }
  if (out.length === 0 && prev && !created) {
    // Nothing but bookkeeping changed: say which, rather than show an empty row.
    for (const k of NOISE) {
      if (k in a && k !== "status" && k !== "dn" && prev[k] !== a[k]) out.push({ k, v: a[k], old: prev[k] });
    }
  }
  return out.sort(byRank);
}
