// Runs the relay Worker locally in workerd (through miniflare, offline), the way `wrangler dev`
// would: bundles it (build.mjs), starts workerd with the Durable Object, starts the relay, and
// prints its status every few seconds. Ctrl-C stops the relay (logout) and workerd.
//
//   node examples/relay/dev.mjs --device http://127.0.0.1:8000 --webhook http://127.0.0.1:9000/hook \
//        [--user admin] [--password 'ins3965!'] [--flavor apic|nxos] [--port 8787] [--pkg DIR]
//
// The password can also come from DEVICE_PASSWORD in the environment.
import { Miniflare } from "miniflare";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildWorker } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts the Worker in workerd. Returns { mf, url, call(path, method) }.
 * @param {object} o { device, webhook, user, password, flavor, pkgDir, outDir, port, log, watchdogMs }
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
      ...(o.watchdogMs ? { WATCHDOG_MS: String(o.watchdogMs) } : {}),
    },
    host: "127.0.0.1",
    port: o.port ?? 0,
    // workerd's own console output (the relay's JSON lines) goes to this process's stdout.
    ...(o.log ? { handleRuntimeStdio: o.log } : {}),
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const call = async (path, method = "GET") => {
    const res = await mf.dispatchFetch(`http://relay${path}`, { method });
    return { status: res.status, body: await res.json().catch(() => null) };
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
    console.error("usage: node examples/relay/dev.mjs --device URL --webhook URL [--user U] [--password P] [--flavor apic|nxos] [--port N] [--pkg DIR]");
    process.exit(2);
  }
  const w = await startWorker({
    device,
    webhook,
    user: arg("--user", "admin"),
    password: arg("--password", process.env.DEVICE_PASSWORD ?? "ins3965!"),
    flavor: arg("--flavor", "apic"),
    port: Number(arg("--port", "8787")),
    pkgDir: arg("--pkg"),
  });
  console.log(`worker on ${w.url} (POST /start, GET /status, POST /stop)`);
  const started = await w.call("/start", "POST");
  console.log(JSON.stringify(started.body));
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
