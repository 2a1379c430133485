// The faults, live, most severe first, with a banner while a gap is being reconciled. Rows are
// memoised by object identity: an unchanged fault is the same object in the next snapshot.
import { memo, useMemo, useSyncExternalStore } from "react";

const RANK = { critical: 0, major: 1, minor: 2, warning: 3, info: 4, cleared: 5 };
const rank = (mo) => RANK[mo.attributes.severity] ?? 6;

export function Faults({ sub }) {
  const snap = useSyncExternalStore(sub.onChange, sub.snapshot);
  const rows = useMemo(
    () => [...snap.list].sort((a, b) => rank(a) - rank(b) || (a.dn < b.dn ? -1 : a.dn > b.dn ? 1 : 0)),
    [snap],
  );
  return (
    <section className="faults">
      <h2>Faults <span className="count">{snap.size}</span></h2>
      {snap.gap && (
        <p className="gap-banner" role="status">
          Gap ({snap.gap}): changes in between were missed; reconciling with the device…
        </p>
      )}
      {!snap.gap && snap.reconciled !== null && (
        <p className="reconciled">Last gap reconciled: {snap.reconciled} differences</p>
      )}
      <table>
        <thead><tr><th>severity</th><th>code</th><th>dn</th><th>description</th></tr></thead>
        <tbody>{rows.map((mo) => <FaultRow key={mo.dn} mo={mo} />)}</tbody>
      </table>
    </section>
  );
}

const FaultRow = memo(function FaultRow({ mo }) {
  const a = mo.attributes;
  return (
    <tr className={`sev-${a.severity}`} data-dn={mo.dn}>
      <td>{a.severity}</td><td>{a.code}</td><td className="dn" title={mo.dn}>{mo.dn}</td><td>{a.descr}</td>
    </tr>
  );
});
