// DNs shortened in the middle: the head gives way (ellipsis) and the last two RNs, where DNs of
// one class differ (the port, the fault code), always show. The cell's text and title stay the
// whole DN, so filters, copy and hover see all of it.
import { h } from "./dom.js";

/** Splits a DN at its last `keep` RN boundaries ("/" outside brackets): [head, tail]. */
export function splitDn(dn, keep = 2) {
  let depth = 0;
  const cuts = [];
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (c === "[") depth++;
    else if (c === "]") depth = Math.max(0, depth - 1);
    else if (c === "/" && depth === 0) cuts.push(i);
  }
  if (cuts.length < keep) return ["", dn];
  const at = cuts[cuts.length - keep] + 1;
  return [dn.slice(0, at), dn.slice(at)];
}

/** A table cell showing `dn` shortened in the middle, the whole DN in its title. */
export function dnCell(dn) {
  const [head, tail] = splitDn(dn);
  return h("td", { className: "dn", title: dn },
    h("span", { className: "dn-fit" },
      h("span", { className: "dn-head" }, head),
      h("span", { className: "dn-tail" }, tail)));
}
