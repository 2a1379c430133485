// The object view: the current state of every object of a store-mode subscription, kept from
// the subscription's snapshot and its (full-object) events, with a detail pane for one object.
import { h, clock, setContent } from "./dom.js";
import { dnCell } from "./dn.js";

const MAX_SHOWN = 400;
/** Attributes worth a column-like summary, by class (first present wins the space). */
const SUMMARY = ["name", "id", "operSt", "adminSt", "severity", "lc", "code", "descr", "state",
  "speed", "operSpeed", "addr", "mac", "ip", "encap", "pcTag", "role", "version"];

export class ObjectView {
  constructor({ select, filterInput, tbody, countLabel, detail, detailActions }) {
    this.detailActions = detailActions ?? (() => null);
    this.select = select;
    this.filterInput = filterInput;
    this.tbody = tbody;
    this.countLabel = countLabel;
    this.detail = detail;
    this.stores = new Map(); // handle -> { label, objects: Map(dn -> { mo, t }) }
    this.current = null;
    this.selectedDn = null;
    this.dirty = false;
    select.addEventListener("change", () => this.show(Number(select.value) || null));
    filterInput.addEventListener("input", () => this.markDirty());
    setInterval(() => this.dirty && this.render(), 400);
    this.renderDetail();
  }

  /** Registers a store-mode subscription with its initial snapshot. */
  add(handle, label, initial) {
    const objects = new Map();
    const t = Date.now();
    const walk = (mo) => {
      const { children, ...flat } = mo;
      objects.set(mo.dn, { mo: flat, t: 0 });
      children?.forEach(walk);
    };
    initial.forEach(walk);
    this.stores.set(handle, { label, objects, t });
    this.select.appendChild(h("option", { value: String(handle) }, `#${handle} ${label}`));
    if (this.current === null) this.show(handle);
  }

  remove(handle) {
    this.stores.delete(handle);
    for (const o of [...this.select.options]) if (o.value === String(handle)) o.remove();
    if (this.current === handle) this.show(this.stores.keys().next().value ?? null);
  }

  clear() {
    for (const h of [...this.stores.keys()]) this.remove(h);
  }

  /** Previous attributes of an object (for the event table's old → new). */
  prev(handle, dn) {
    return this.stores.get(handle)?.objects.get(dn)?.mo.attributes;
  }

  /** Applies full objects delivered in store mode. */
  apply(handle, mos) {
    const s = this.stores.get(handle);
    if (!s) return;
    const t = Date.now();
    for (const mo of mos) {
      if (mo.status === "deleted") s.objects.delete(mo.dn);
      else s.objects.set(mo.dn, { mo, t });
    }
    if (handle === this.current) this.markDirty();
  }

  show(handle) {
    this.current = handle;
    this.select.value = handle === null ? "" : String(handle);
    this.selectedDn = null;
    this.renderDetail();
    this.render();
  }

  markDirty() {
    this.dirty = true;
  }

  render() {
    this.dirty = false;
    const s = this.stores.get(this.current);
    if (!s) {
      this.tbody.replaceChildren(h("tr", { className: "empty" },
        h("td", { colSpan: 4 }, "Subscribe with “store” checked to see the current state of each object here.")));
      this.countLabel.textContent = "";
      return;
    }
    const f = this.filterInput.value.trim().toLowerCase();
    const now = Date.now();
    const all = [...s.objects.values()];
    const hits = f ? all.filter(({ mo }) => rowText(mo).includes(f)) : all;
    // Recently changed first, then by DN.
    hits.sort((a, b) => b.t - a.t || (a.mo.dn < b.mo.dn ? -1 : a.mo.dn > b.mo.dn ? 1 : 0));
    const frag = document.createDocumentFragment();
    for (const { mo, t } of hits.slice(0, MAX_SHOWN)) {
      const tr = h("tr", {
        className: `${t && now - t < 3000 ? "fresh" : ""} ${mo.dn === this.selectedDn ? "selected" : ""}`,
        onclick: () => {
          this.selectedDn = mo.dn;
          this.renderDetail();
          this.render();
        },
      },
      dnCell(mo.dn),
      h("td", { className: "cls" }, mo.className),
      h("td", { className: "summary" }, summary(mo)),
      h("td", { className: "time" }, t ? clock(t) : "snapshot"));
      frag.appendChild(tr);
    }
    this.tbody.replaceChildren(frag);
    this.countLabel.textContent =
      `${s.objects.size} objects` + (f ? `, ${hits.length} match` : "") +
      (hits.length > MAX_SHOWN ? ` (first ${MAX_SHOWN} shown)` : "");
    if (this.selectedDn) this.renderDetail();
    // Keep the "fresh" highlight fading out.
    if (hits.some(({ t }) => t && now - t < 3000)) this.markDirty();
  }

  renderDetail() {
    const s = this.stores.get(this.current);
    const entry = s && this.selectedDn ? s.objects.get(this.selectedDn) : null;
    if (!entry) {
      setContent(this.detail, h("p", { className: "hint" },
        this.selectedDn ? "This object was deleted." : "Click an object to see all its attributes."));
      return;
    }
    const { mo, t } = entry;
    const dl = h("dl");
    for (const k of Object.keys(mo.attributes).sort()) {
      dl.append(h("dt", null, k), h("dd", null, mo.attributes[k]));
    }
    setContent(this.detail,
      h("div", { className: "detail-head" },
        h("div", { className: "cls" }, mo.className),
        h("div", { className: "dn" }, mo.dn),
        h("div", { className: "hint" }, t ? `updated ${clock(t)}` : "from the snapshot")),
      this.detailActions(mo),
      dl);
  }
}

function rowText(mo) {
  let s = `${mo.dn} ${mo.className}`;
  for (const v of Object.values(mo.attributes)) s += ` ${v}`;
  return s.toLowerCase();
}

function summary(mo) {
  const a = mo.attributes;
  const out = [];
  for (const k of SUMMARY) {
    if (a[k] === undefined || a[k] === "") continue;
    out.push(h("span", { className: "chg" }, h("span", { className: "k" }, k), "=", h("span", { className: `v ${valueClass(k, a[k])}` }, a[k])));
    if (out.length >= 4) break;
  }
  return out;
}

/** Colour hints for well-known values. */
export function valueClass(k, v) {
  if (k === "operSt" || k === "adminSt" || k === "state") {
    if (v === "up" || v === "established" || v === "enabled" || v === "formed") return "good";
    if (v === "down" || v === "idle" || v === "disabled" || v === "failed") return "bad";
  }
  if (k === "severity") return `sev-${v}`;
  return "";
}
