// The console: a connect form, then the connection state, the faults table and the tenants list.
import { useState, useSyncExternalStore } from "react";
import { connect } from "./connection.js";
import { Faults } from "./Faults.jsx";
import { Tenants } from "./Tenants.jsx";

export function App() {
  const [conn, setConn] = useState(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function onSubmit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError("");
    try {
      setConn(await connect({ url: f.get("url"), user: f.get("user"), password: f.get("password") }));
    } catch (err) {
      setError(`${err.code ?? "error"}: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  if (!conn) {
    return (
      <form className="login" onSubmit={onSubmit}>
        <h1>dme-events · React console</h1>
        <label>Device URL <input name="url" defaultValue={location.origin} /></label>
        <label>User <input name="user" defaultValue="admin" /></label>
        <label>Password <input name="password" type="password" defaultValue="ins3965!" /></label>
        <button type="submit" disabled={busy}>Connect</button>
        {error && <p className="error">{error}</p>}
      </form>
    );
  }
  return (
    <main>
      <header>
        <h1>dme-events · React console</h1>
        <State status={conn.status} />
        <button onClick={() => conn.close().then(() => setConn(null))}>Disconnect</button>
      </header>
      <div className="panes">
        <Faults sub={conn.faults} />
        <Tenants sub={conn.tenants} />
      </div>
    </main>
  );
}

function State({ status }) {
  const s = useSyncExternalStore(status.subscribe, status.get);
  return <span className={`state ${s.state}`}>{s.state}{s.state === "reconnecting" ? ` (attempt ${s.attempt})` : ""}</span>;
}
