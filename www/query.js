// The query box and the fault "Acknowledge" action: one-off questions and one change, made with
// the session the console already holds (session.lookupByDn / lookupByClass / commit).
import { h, setContent } from "./dom.js";

const SHOWN = 50;

/** Wires the query box: a class name or a DN, an optional filter, the answer as a list. */
export function setupQueryBox({ form, target, filter, out, getSession }) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const session = getSession();
    if (!session) return setContent(out, h("p", { className: "hint" }, "Connect first."));
    const what = target.value.trim();
    const f = filter.value.trim();
    setContent(out, h("p", { className: "hint" }, "asking…"));
    try {
      // A DN has a slash; a class name never does.
      const mos = what.includes("/")
        ? [await session.lookupByDn(what, { rspSubtree: "children" })].filter(Boolean)
        : await session.lookupByClass(what, f ? { filter: f } : {});
      const items = mos.slice(0, SHOWN).map((mo) =>
        h("li", null, h("span", { className: "cls" }, mo.className), " ", h("span", { className: "dn" }, mo.dn),
          mo.children?.length ? h("span", { className: "muted" }, ` · ${mo.children.length} children`) : null));
      setContent(out,
        h("p", { className: "hint", id: "query-count" },
          `${mos.length} object${mos.length === 1 ? "" : "s"}` + (mos.length > SHOWN ? ` (first ${SHOWN} shown)` : "")),
        h("ul", { className: "query-list" }, items));
    } catch (err) {
      setContent(out, h("p", { className: "error" }, `${err.code ?? "error"}: ${err.message}`));
    }
  });
}

/** For the object detail pane: an "Acknowledge" button on an unacknowledged fault. The change
 * comes back through the subscription like any other. */
export function ackAction(mo, getSession) {
  if (mo.className !== "faultInst" || mo.attributes.ack === "yes") return null;
  const note = h("span", { className: "muted" });
  const button = h("button", {
    type: "button", className: "ack",
    onclick: async () => {
      button.disabled = true;
      try {
        // "modified": a fault is the device's to create, a client only changes it.
        await getSession()?.commit({ className: "faultInst", dn: mo.dn, attributes: { ack: "yes" }, status: "modified" });
        note.textContent = " acknowledged";
      } catch (err) {
        button.disabled = false;
        note.textContent = ` ${err.code ?? "error"}: ${err.message}`;
      }
    },
  }, "Acknowledge");
  return h("div", { className: "detail-actions" }, button, note);
}
