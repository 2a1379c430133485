// The session, its channel and the two subscriptions the console shows, plus the connection state
// as a tiny external store (the same contract as the package's views).
import { Session, EventChannel, ClassQuery } from "dme-events";

export async function connect({ url, user, password }) {
  const listeners = new Set();
  let state = { state: "connecting" };
  const status = {
    get: () => state,
    subscribe: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
  const session = await Session.login({ url, user, password, flavor: "apic", backoffCapMs: 2000 });
  const ec = new EventChannel(session, {
    onState: (s) => {
      state = s;
      listeners.forEach((fn) => fn());
    },
    onError: (e) => console.warn(e.code, e.message),
  });
  state = ec.state;
  // Store mode with a view: no onEvent needed, the components read the views.
  const faults = await ec.subscribe(new ClassQuery("faultInst"), { store: true, view: true });
  const tenants = await ec.subscribe(new ClassQuery("fvTenant"), { store: true, view: true });
  return {
    session, ec, faults, tenants, status,
    close: async () => {
      await session.logout().catch(() => {});
      ec.close();
    },
  };
}
