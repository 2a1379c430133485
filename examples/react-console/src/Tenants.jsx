// The tenants, live, by name.
import { useMemo, useSyncExternalStore } from "react";

export function Tenants({ sub }) {
  const snap = useSyncExternalStore(sub.onChange, sub.snapshot);
  const names = useMemo(() => snap.list.map((mo) => mo.attributes.name).sort(), [snap]);
  return (
    <section className="tenants">
      <h2>Tenants <span className="count">{snap.size}</span></h2>
      <ul>{names.map((n) => <li key={n} data-name={n}>{n}</li>)}</ul>
    </section>
  );
}
