// Session queries and writes (query, lookupByDn, lookupByClass, pages, commit, delete) outside
// the browser: the same flow (tests/edge/queries-flow.mjs) in Node, Deno and workerd (miniflare),
// each against its own dme-sim.
//
//   node --experimental-websocket tests/edge/queries.test.mjs node|deno|workerd   # needs pkg/
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, assert, copyWorkerPackage, runner, startSim } from "./harness.mjs";

const runtime = process.argv[2];
if (!["workerd", "deno", "node"].includes(runtime)) {
  console.error("usage: queries.test.mjs workerd|deno|node");
  process.exit(2);
}
const PKG = process.env.DME_PKG ?? join(ROOT, "pkg");
const WORK = join(ROOT, `target/edge/queries-${runtime}`);
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
const FLOW = join(ROOT, "tests/edge/queries-flow.mjs");

async function inNode(url) {
  const pkg = await import(pathToFileURL(join(PKG, "node.js")).href);
  const { queriesFlow } = await import(pathToFileURL(FLOW).href);
  return queriesFlow(pkg, url);
}

async function inDeno(url) {
  const main = join(WORK, "main.mjs");
  writeFileSync(
    main,
    `import init, * as pkg from ${JSON.stringify(pathToFileURL(join(PKG, "index.js")).href)};
import { queriesFlow } from ${JSON.stringify(pathToFileURL(FLOW).href)};
await init();
console.log(JSON.stringify(await queriesFlow(pkg, Deno.args[0])));\n`,
  );
  const deno = process.env.DENO_BIN ?? join(ROOT, "node_modules/.bin/deno");
  const child = spawn(deno, ["run", "--allow-net", "--allow-read", "--no-prompt", main, url], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((r) => child.on("exit", r));
  assert(code === 0, `deno exited ${code}: ${stderr.slice(-2000)}`);
  return JSON.parse(stdout.trim().split("\n").pop());
}

async function inWorkerd(url) {
  const { Miniflare } = await import("miniflare");
  copyWorkerPackage(PKG, WORK);
  copyFileSync(FLOW, join(WORK, "queries-flow.js"));
  writeFileSync(
    join(WORK, "main.mjs"),
    `import * as pkg from "./workerd.js";
import { queriesFlow } from "./queries-flow.js";
export default { async fetch(req) {
  try { return Response.json({ ok: await queriesFlow(pkg, new URL(req.url).searchParams.get("device")) }); }
  catch (e) { return Response.json({ error: String(e?.stack ?? e) }); }
} };\n`,
  );
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(WORK, "main.mjs"),
    modulesRoot: WORK,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }, { type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: "2025-06-01",
  });
  try {
    const res = await mf.dispatchFetch(`http://probe/?device=${encodeURIComponent(url)}`);
    const body = await res.json();
    assert(body.ok, body.error);
    return body.ok;
  } finally {
    await mf.dispose();
  }
}

const sim = await startSim(["--flavor", "apic", "--throttle", "0", "--sub-lifetime", "6", "--max-result", "200"]);
const t = runner(`edge queries (${runtime})`);
t.test("pages, lookups, nested children, a watched commit and refusals", 90_000, async () => {
  const run = { node: inNode, deno: inDeno, workerd: inWorkerd }[runtime];
  const out = await run(sim.url);
  assert(out.paged === 250 && out.pushes >= 3, JSON.stringify(out));
});
const failed = await t.run(() => sim.stop());
process.exit(failed ? 1 : 0);
