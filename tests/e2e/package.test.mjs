// The npm package as a user gets it: `npm pack` of pkg/, installed from the tarball into a fresh
// project (offline: the package has no dependencies), then used from Node.js, from a page bundled
// with esbuild and loaded in Chromium, and from Deno (run and type-check), each against dme-sim.
//   node tests/e2e/package.test.mjs        (needs pkg/ built and target/debug/dme-sim)
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, test, run, startSim, launchBrowser, assert, atExit } from "./lib.mjs";

const exec = promisify(execFile);
const PKG = join(ROOT, "pkg");
const BIN = join(ROOT, "node_modules", ".bin");
const env = {
  ...process.env,
  PATH: `${BIN}:${process.env.PATH}`,
  npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false",
  DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1",
};
const sh = (cmd, args, opts = {}) => exec(cmd, args, { env, maxBuffer: 1 << 24, timeout: 120000, ...opts });

const work = mkdtempSync(join(tmpdir(), "dme-events-pkg-"));
atExit(() => rmSync(work, { recursive: true, force: true }));
const app = join(work, "app");
let tarball;
let packed;
let sim;

test("npm pack: the tarball holds the package's files", async () => {
  const { stdout } = await sh("npm", ["pack", "--json", "--pack-destination", work], { cwd: PKG });
  [packed] = JSON.parse(stdout);
  tarball = join(work, packed.filename);
  const files = packed.files.map((f) => f.path).sort();
  for (const f of ["package.json", "README.md", "LICENSE", "index.js", "index.d.ts", "node.js", "extras.js",
    "dme_events.js", "dme_events.d.ts", "dme_events_bg.wasm"]) {
    assert(files.includes(f), `${f} is in the tarball (${files.join(", ")})`);
  }
  assert(!files.some((f) => f.startsWith(".") || f.endsWith(".log")), `no stray files: ${files.join(", ")}`);
  console.log(`     ${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked`);
});

test("package.json: exports with types and runtime conditions, engines, metadata", async () => {
  const p = JSON.parse(readFileSync(join(PKG, "package.json"), "utf8"));
  const dot = p.exports?.["."];
  assert(dot && Object.keys(dot)[0] === "types", `"types" comes first in exports["."]: ${JSON.stringify(dot)}`);
  for (const c of ["node", "deno", "browser", "worker", "default"]) assert(dot[c], `exports["."].${c}`);
  assert(p.engines?.node, "engines.node");
  assert(p.type === "module", "type: module");
  for (const k of ["description", "license", "repository", "keywords", "sideEffects", "types"]) assert(p[k], `${k} is set`);
  assert(p.exports["./dme_events_bg.wasm"], "the .wasm is exported for bundlers");
  const readme = readFileSync(join(PKG, "README.md"), "utf8");
  for (const w of ["Deno", "Node", "esbuild", "Vite", "onGap", "store"]) assert(readme.includes(w), `the npm README covers ${w}`);
});

test("npm install of the tarball into a fresh project (offline)", async () => {
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "console-app", private: true, type: "module" }, null, 2));
  await sh("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", tarball], { cwd: app });
  const installed = JSON.parse(readFileSync(join(app, "node_modules", "dme-events", "package.json"), "utf8"));
  assert(installed.version === packed.version, `installed ${installed.version}`);
  const deps = JSON.parse(readFileSync(join(app, "package.json"), "utf8")).dependencies;
  assert(deps?.["dme-events"], `the app depends on it: ${JSON.stringify(deps)}`);
  cpSync(join(ROOT, "tests", "e2e", "fixtures", "scenario.mjs"), join(app, "scenario.mjs"));
});

test("Node.js: import \"dme-events\" (the node condition) and receive a push", async () => {
  writeFileSync(join(app, "node-app.mjs"), `import * as m from "dme-events";
import { scenario } from "./scenario.mjs";
console.log("ok", await scenario(m, process.argv[2], "pkgnode"));
`);
  // Node 22+ has a global WebSocket; Node 20 needs the flag (harmless on 22+).
  const flags = Number(process.versions.node.split(".")[0]) < 22 ? ["--experimental-websocket"] : [];
  const { stdout } = await sh(process.execPath, [...flags, "node-app.mjs", sim.url], { cwd: app, timeout: 30000 });
  assert(/^ok .* created uni\/tn-pkgnode/m.test(stdout), stdout);
});

test("esbuild: a bundled page in Chromium receives a push", async () => {
  const src = join(app, "src");
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, "main.js"), `import * as m from "dme-events";
import wasmUrl from "dme-events/dme_events_bg.wasm";
import { scenario } from "../scenario.mjs";
const out = document.getElementById("out");
const pkg = { ...m, default: () => m.default({ module_or_path: wasmUrl }) };
scenario(pkg, location.origin, "pkgbundle", (t) => (out.textContent += t + "\\n"))
  .then((r) => { window.__result = "ok " + r; })
  .catch((e) => { window.__result = "error " + (e.code ? e.code + ": " : "") + e.message; });
`);
  const dist = join(app, "dist");
  await sh("esbuild", ["src/main.js", "--bundle", "--format=esm", "--platform=browser", "--outdir=dist",
    "--loader:.wasm=file", "--log-level=warning"], { cwd: app });
  writeFileSync(join(dist, "index.html"),
    `<!doctype html><meta charset="utf-8"><title>bundled</title><pre id="out"></pre><script type="module" src="main.js"></script>\n`);
  const bundle = readFileSync(join(dist, "main.js"), "utf8");
  assert(!bundle.includes("node:fs"), "the browser bundle does not pull the Node entry");
  // Served by its own dme-sim, so the page and the device share one origin.
  const pageSim = await startSim(["--flavor", "apic", "--throttle", "0", "--objects", "400", "--www", dist], { exitAfter: 120 });
  const browser = await launchBrowser();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${pageSim.url}/`);
  const handle = await page.waitForFunction(() => window.__result, null, { timeout: 20000 });
  const result = await handle.jsonValue();
  assert(/^ok .* created uni\/tn-pkgbundle$/.test(result), `${result} ${errors.join("; ")}`);
  await pageSim.stop();
});

test("Deno: import \"dme-events\" from node_modules and receive a push", async () => {
  writeFileSync(join(app, "deno-app.mjs"), `import * as m from "dme-events";
import { scenario } from "./scenario.mjs";
console.log("ok", await scenario(m, Deno.args[0], "pkgdeno"));
`);
  const { stdout } = await sh("deno", ["run", "--allow-net=127.0.0.1", "--allow-read", "deno-app.mjs", sim.url],
    { cwd: app, timeout: 60000 });
  assert(/^ok .* created uni\/tn-pkgdeno/m.test(stdout), stdout);
});

test("Deno: the typings type-check a TypeScript consumer (and reject misuse)", async () => {
  writeFileSync(join(app, "typed.ts"), `import init, { ClassQuery, DnQuery, EventChannel, Session } from "dme-events";
import type { ConnectionState, DmeError, GapEvent, Mo, StoreSnapshot } from "dme-events";

export async function watch(url: string): Promise<number> {
  await init();
  const session: Session = await Session.login({ url, user: "admin", password: "x", flavor: "nxos" });
  const states: ConnectionState["state"][] = [];
  const ec = new EventChannel(session, {
    onState: (s) => { states.push(s.state); if (s.state === "reconnecting") states.push(s.attempt > 0 ? "live" : "failed"); },
    onError: (e: DmeError) => console.warn(e.code, e.httpStatus),
  });
  const sub = await ec.subscribe(new ClassQuery("l1PhysIf", { queryTargetFilter: 'eq(l1PhysIf.adminSt,"up")' }), {
    store: true,
    onEvent: (mos: Mo[]) => mos.forEach((mo) => console.log(mo.status, mo.dn, mo.attributes.adminSt)),
    onGap: (g: GapEvent) => console.log(g.reason),
  });
  await ec.subscribe(new DnQuery("sys/bgp/inst", { queryTarget: "subtree", targetSubtreeClass: ["bgpPeerEntry"] }));
  const id: string = sub.subid;
  const next: number | null | undefined = sub.info()?.nextRefreshAt;
  for await (const ev of sub) { if (ev.type === "gap") break; }
  // The live view, as a framework takes it: detached functions.
  const { snapshot, onChange, subscribe } = sub;
  const snap: StoreSnapshot = snapshot();
  const stop: () => void = onChange(() => console.log(snapshot().size, snap.gap ?? "no gap"));
  subscribe((s) => console.log(s.get("sys/intf/phys-[eth1/1]")?.attributes.adminSt, s.list.length, s.reconciled));
  stop();
  // @ts-expect-error a snapshot is read-only
  snap.list.push(sub.initial[0]);
  // @ts-expect-error a query object is required, not a class name
  await ec.subscribe("fvTenant");
  // @ts-expect-error flavors are "apic" | "nxos"
  await Session.login({ url, user: "a", password: "b", flavor: "ios" });
  // @ts-expect-error attribute values are strings
  const n: number = sub.initial[0].attributes.name;
  await session.logout();
  return id.length + (next ?? 0) + Number(n);
}
`);
  const { stdout, stderr } = await sh("deno", ["check", "typed.ts"], { cwd: app, timeout: 90000 })
    .catch((e) => { throw new Error(`deno check failed:\n${e.stdout}\n${e.stderr}`); });
  assert(!/error/i.test(stdout), stdout + stderr);
});

if (!existsSync(join(PKG, "package.json"))) {
  console.log("pkg/ is not built: run bash scripts/build-pkg.sh");
  console.log("0 passed, 1 failed");
  process.exit(1);
}
sim = await startSim(["--flavor", "apic", "--throttle", "0", "--objects", "400"]);
await run("e2e-package", { totalTimeoutMs: 300000 });
