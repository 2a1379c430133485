// Tiny DOM helpers. Every string a caller passes becomes a text node or a property value:
// nothing here ever parses HTML, so device data cannot become markup or script.

/** h("div", { className: "x", title: "t", onclick: fn, dataset: {k: "v"} }, "text", node, ...) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "className" || k === "title" || k === "value" || k === "type" || k === "id" ||
               k === "checked" || k === "disabled" || k === "hidden" || k === "placeholder" ||
               k === "htmlFor" || k === "name" || k === "min" || k === "max" || k === "step" ||
               k === "colSpan" || k === "selected" || k === "autocomplete" || k === "spellcheck")
        el[k] = v;
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's content with text or nodes. */
export function setContent(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** 14:03:07.123 */
export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "42s", "3m 05s", "1h 02m" */
export function duration(ms) {
  if (ms == null || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

export function compact(n) {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}
