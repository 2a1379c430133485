// Runs the relay Worker locally in workerd (through miniflare, offline), the way `wrangler dev`
// would: bundles it (build.mjs), starts workerd with the Durable Object, starts the relay, and
// prints its status every few seconds. Ctrl-C stops the relay (logout) and workerd.
//
//   node examples/relay/dev.mjs --device http://127.0.0.1:8000 --webhook http://127.0.0.1:9000/hook \
//        [--user admin] [--flavor apic|nxos] [--port 8787] [--pkg DIR]
//
// The password comes from DEVICE_PASSWORD in the environment (default: dme-sim's). The Worker
// requires RELAY_TOKEN: taken from the environment when set there, else a random one made for
// this run and printed with a ready curl line, since calling the Worker needs it.
import { Miniflare } from "miniflare";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildWorker } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/** A fresh RELAY_TOKEN: 32 random bytes, base64url. */
export const randomToken = () => randomBytes(32).toString("base64url");

/**
 * Starts the Worker in workerd. Returns { mf, url, call(path, method, auth) }; `call` sends `auth`
 * as the Authorization header (null: none), by default `Bearer <token>`, and resolves
 * { status, body (parsed JSON or null), text }.
 * @param {object} o { device, webhook, user, password, flavor, token (RELAY_TOKEN; none: the
 *   Worker refuses every call), pkgDir, outDir, port, log, watchdogMs }
 */
export async function startWorker(o) {
  const script = await buildWorker({ pkgDir: o.pkgDir, outDir: o.outDir ?? join(here, "dist") });
  const outDir = dirname(script);
  const mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: outDir,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-06-01",
    durableObjects: { RELAY: "Relay" },
    bindings: {
      DEVICE_URL: o.device,
      DEVICE_USER: o.user ?? "admin",
      DEVICE_PASSWORD: o.password ?? "ins3965!",
      DEVICE_FLAVOR: o.flavor ?? "apic",
      WEBHOOK_URL: o.webhook,
      ...(o.token !== undefined ? { RELAY_TOKEN: o.token } : {}),
      ...(o.watchdogMs ? { WATCHDOG_MS: String(o.watchdogMs) } : {}),
    },
    host: "127.0.0.1",
    port: o.port ?? 0,
    // workerd's own console output (the relay's JSON lines) goes to this process's stdout.
    ...(o.log ? { handleRuntimeStdio: o.log } : {}),
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const call = async (path, method = "GET", auth = o.token !== undefined ? `Bearer ${o.token}` : null) => {
    const headers = auth === null ? {} : { Authorization: auth };
    const res = await mf.dispatchFetch(`http://relay${path}`, { method, headers });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body, text };
  };
  return { mf, url, call };
}

if (process.argv[1] && process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const device = arg("--device");
  const webhook = arg("--webhook");
  if (!device || !webhook) {
    console.error("usage: node examples/relay/dev.mjs --device URL --webhook URL [--user U] [--flavor apic|nxos] [--port N] [--pkg DIR] (password in DEVICE_PASSWORD)");
    process.exit(2);
  }
  if (process.argv.some((a) => a.startsWith("--password"))) {
    console.error("dev.mjs takes the password from DEVICE_PASSWORD only (a command line is visible to every local user)");
    process.exit(2);
  }
  const token = process.env.RELAY_TOKEN || randomToken();
  const w = await startWorker({
    device,
    webhook,
    user: arg("--user", "admin"),
    password: process.env.DEVICE_PASSWORD ?? "ins3965!",
    token,
    flavor: arg("--flavor", "apic"),
    port: Number(arg("--port", "8787")),
    pkgDir: arg("--pkg"),
  });
  console.log(`worker on ${w.url} (POST /start, GET /status, POST /stop)`);
  // A token the user brought stays unprinted (it may be a real one); a generated one is shown.
  if (process.env.RELAY_TOKEN) {
    console.log(`RELAY_TOKEN from the environment:\n  curl -H "Authorization: Bearer $RELAY_TOKEN" ${w.url}/status`);
  } else {
    console.log(`RELAY_TOKEN for this run: ${token}\n  curl -H 'Authorization: Bearer ${token}' ${w.url}/status`);
  }
  const started = await w.call("/start", "POST");
  console.log(started.body ? JSON.stringify(started.body) : `${started.status} ${started.text.trimEnd()}`);
  const timer = setInterval(async () => console.log(JSON.stringify((await w.call("/status")).body)), 10_000);
  const stop = async () => {
    clearInterval(timer);
    await w.call("/stop", "POST").catch(() => {});
    await w.mf.dispose();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
