// The package's workerd entry, checked in a real workerd (miniflare): why it exists (workerd
// refuses to compile wasm from bytes), that the `workerd` export condition selects it, and that
// it loads synchronously, with no init(), from the wasm imported as a module.
//
//   node tests/edge/workerd.test.mjs      # needs the built package in pkg/
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, assert, copyWorkerPackage, runner } from "./harness.mjs";

const PKG = process.env.DME_PKG ?? join(ROOT, "pkg");
const WORK = join(ROOT, "target/edge/workerd-entry");
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

async function runWorker(files, rules) {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(WORK, name), text);
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(WORK, "main.mjs"),
    modulesRoot: WORK,
    modulesRules: rules,
    compatibilityDate: "2025-06-01",
  });
  try {
    const res = await mf.dispatchFetch("http://probe/");
    return await res.json();
  } finally {
    await mf.dispose();
  }
}

const t = runner("edge workerd entry");

t.test("workerd refuses to compile wasm from bytes (so the entry cannot use init())", 30_000, async () => {
  copyFileSync(join(PKG, "dme_events_bg.wasm"), join(WORK, "bytes.bin"));
  const out = await runWorker(
    {
      "main.mjs": `import bytes from "./bytes.bin";
export default { async fetch() {
  const out = {};
  try { new WebAssembly.Module(bytes); out.sync = "compiled"; } catch (e) { out.sync = String(e); }
  try { await WebAssembly.compile(bytes); out.async = "compiled"; } catch (e) { out.async = String(e); }
  return Response.json(out);
} };`,
    },
    [{ type: "Data", include: ["**/*.bin"] }],
  );
  assert(/disallowed/.test(out.sync) && /disallowed/.test(out.async), JSON.stringify(out));
});

t.test("the workerd export condition selects workerd.js; node, deno and browser keep theirs", 20_000, async () => {
  const dir = join(WORK, "resolve");
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  symlinkSync(PKG, join(dir, "node_modules/dme-events"), "dir");
  writeFileSync(join(dir, "entry.js"), `export * from "dme-events";\n`);
  const picked = async (conditions, platform = "neutral") => {
    const r = await build({
      entryPoints: [join(dir, "entry.js")],
      bundle: true,
      write: false,
      metafile: true,
      format: "esm",
      platform,
      conditions,
      external: ["*.wasm", "node:*"],
      logLevel: "silent",
    });
    const entries = Object.keys(r.metafile.inputs).map((p) => p.split("/").pop());
    return ["workerd.js", "node.js", "index.js"].find((e) => entries.includes(e));
  };
  const got = {
    workerd: await picked(["workerd", "worker", "browser"]),
    node: await picked(["node"], "node"),
    deno: await picked(["deno"]),
    browser: await picked(["browser"], "browser"),
  };
  const want = { workerd: "workerd.js", node: "node.js", deno: "index.js", browser: "index.js" };
  assert(JSON.stringify(got) === JSON.stringify(want), `${JSON.stringify(got)} (${relative(ROOT, dir)})`);
});

t.test("workerd.js loads synchronously from the wasm module: no init(), queries render", 30_000, async () => {
  copyWorkerPackage(PKG, WORK);
  const out = await runWorker(
    {
      "main.mjs": `import { ClassQuery, Session, EventChannel } from "./workerd.js";
export default { async fetch() {
  const q = new ClassQuery("faultInst", { filter: 'eq(faultInst.lc,"raised")' });
  return Response.json({ path: q.toString(), login: typeof Session.login, ec: typeof EventChannel,
    iter: typeof EventChannel.prototype[Symbol.dispose] });
} };`,
    },
    [{ type: "CompiledWasm", include: ["**/*.wasm"] }, { type: "ESModule", include: ["**/*.js"] }],
  );
  assert(out.path === "/api/class/faultInst.json?query-target-filter=eq(faultInst.lc,%22raised%22)", JSON.stringify(out));
  assert(out.login === "function" && out.ec === "function" && out.iter === "function", JSON.stringify(out));
});

const failed = await t.run(() => {});
process.exit(failed ? 1 : 0);
