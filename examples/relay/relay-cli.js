// The fault relay as a long-running script, for Deno or Node (22+, or 20 with
// --experimental-websocket). Same relay as the Worker (relay.js); one JSON line per happening
// on stdout; SIGINT / SIGTERM stop it cleanly (logout).
//
//   deno run --allow-net --allow-read --allow-env --config examples/relay/deno.json \
//     examples/relay/relay-cli.js --device http://127.0.0.1:8000 --webhook http://127.0.0.1:9000/hook
//   node relay-cli.js --device https://apic1 --user admin --webhook https://hooks.example/x
//
// Options (or environment): --device (DEVICE_URL), --user (DEVICE_USER, default admin),
// --flavor apic|nxos (DEVICE_FLAVOR), --webhook (WEBHOOK_URL), --filter (a query-target-filter
// on faultInst, e.g. 'ne(faultInst.severity,"warning")'). The password comes from
// DEVICE_PASSWORD only (a command line is visible to every local user) and is never printed.
import init, * as dme from "dme-events";
import { startRelay } from "./relay.js";

const isDeno = typeof globalThis.Deno !== "undefined";
const argv = isDeno ? Deno.args : process.argv.slice(2);
const env = (k) => (isDeno ? Deno.env.get(k) : process.env[k]);
const arg = (name, envName, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : (envName && env(envName)) || dflt;
};
const exit = (code) => (isDeno ? Deno.exit(code) : process.exit(code));

const usage =
  "usage: relay-cli.js --device URL --webhook URL [--user U] [--flavor apic|nxos] [--filter F] (password in DEVICE_PASSWORD)";
if (argv.some((a) => a.startsWith("--password"))) {
  console.error(`the password is taken from DEVICE_PASSWORD only, not from the command line\n${usage}`);
  exit(2);
}
const cfg = {
  url: arg("--device", "DEVICE_URL"),
  user: arg("--user", "DEVICE_USER", "admin"),
  password: env("DEVICE_PASSWORD"),
  flavor: arg("--flavor", "DEVICE_FLAVOR", "apic"),
  webhook: arg("--webhook", "WEBHOOK_URL"),
  filter: arg("--filter"),
};
if (!cfg.url || !cfg.password || !cfg.webhook) {
  console.error(usage);
  exit(2);
}

await init(); // Deno and browsers load the wasm here; in Node it is already loaded
let relay;
try {
  relay = await startRelay(dme, cfg);
} catch (e) {
  console.log(JSON.stringify({ event: "start-failed", code: e.code, message: e.message }));
  exit(1);
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await relay.stop();
  exit(0);
};
if (isDeno) {
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
} else {
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
