// Gaps kept in view: each subscription card carries a line for its last gap, open ("reconciling")
// until the reconciliation or fresh snapshot, then with what it found, even "0 differences".
import { clock } from "./dom.js";

/** The card's gap line: `rec.el.gap`; `rec.gapOpen` tells the rest of the page a gap is open. */
export function gapOpened(rec, reason) {
  rec.gapOpen = true;
  rec.gapReason = reason;
  rec.gapAt = Date.now();
  render(rec, `gap · ${reason} · ${rec.store ? "reconciling…" : "waiting for a fresh snapshot…"}`, true);
}

/** The gap is over: `text` says what the recovery found. */
export function gapClosed(rec, text) {
  if (!rec.gapOpen) return;
  rec.gapOpen = false;
  render(rec, `gap · ${rec.gapReason} at ${clock(rec.gapAt)} · ${text}`, false);
}

/** Store mode: the text for a reconciliation that found `n` differences. */
export const reconciledText = (n) => `reconciled: ${n} difference${n === 1 ? "" : "s"}`;

function render(rec, text, open) {
  const el = rec.el?.gap;
  if (!el) return;
  el.hidden = false;
  el.textContent = text;
  el.classList.toggle("open", open);
}
