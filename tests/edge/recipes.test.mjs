// The runtime table of docs/edge.md and the npm README's esbuild recipes, checked as written. The
// package is packed and installed offline into a fresh project; Node and Deno import it there, and
// the README's esbuild commands (taken from the installed README, run with the repository's
// esbuild) bundle it for a page and for a Worker; the Worker bundle then runs in workerd
// (miniflare). Each runtime's entry must be the one the table names.
//
//   node tests/edge/recipes.test.mjs      # needs the built package in pkg/ (scripts/build-pkg.sh)
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { ROOT, assert, runner } from "./harness.mjs";

const exec = promisify(execFile);
const PKG = process.env.DME_PKG ?? join(ROOT, "pkg");
const BIN = join(ROOT, "node_modules/.bin");
const env = {
  ...process.env,
  PATH: `${BIN}:${process.env.PATH}`,
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
  DENO_NO_UPDATE_CHECK: "1",
  DENO_NO_PROMPT: "1",
};
const sh = (cmd, args, opts = {}) => exec(cmd, args, { env, maxBuffer: 1 << 24, timeout: 120_000, ...opts });

const ENTRIES = ["index.js", "node.js", "workerd.js"];
const work = mkdtempSync(join(tmpdir(), "dme-events-recipes-"));
const app = join(work, "app");

/** The entry that the runtime table of docs/edge.md names in the row starting with `runtime`. */
function documented(runtime) {
  const md = readFileSync(join(ROOT, "docs/edge.md"), "utf8");
  const row = md.split("\n").find((l) => l.startsWith(`| ${runtime}`));
  assert(row, `docs/edge.md has a table row for ${runtime}`);
  const named = ENTRIES.filter((e) => row.split("|")[2].includes(`\`${e}\``));
  assert(named.length === 1, `the ${runtime} row names one entry: ${row}`);
  return named[0];
}

/** The one esbuild command of the installed npm README (in a sh block) that contains `marker`. */
function recipe(marker) {
  const md = readFileSync(join(app, "node_modules/dme-events/README.md"), "utf8");
  const lines = [...md.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].split("\n"))
    .filter((l) => l.startsWith("esbuild ") && l.includes(marker));
  assert(lines.length === 1, `one esbuild command with ${marker} in the npm README: ${JSON.stringify(lines)}`);
  return lines[0].trim().split(/\s+/);
}

/** Runs an esbuild command line as written, with the repository's esbuild. */
async function esbuild(argv) {
  assert(argv[0] === "esbuild", argv.join(" "));
  await sh(join(BIN, "esbuild"), [...argv.slice(1), "--log-level=warning"], { cwd: app });
}

/** The package's entry modules a bundle holds (esbuild heads each module with a path comment). */
function bundled(file) {
  const text = readFileSync(file, "utf8");
  return ENTRIES.filter((e) => text.includes(`// node_modules/dme-events/${e}\n`));
}

/** Starts `script` in workerd with the modules rule the README gives; returns its answer. */
async function runWorker(dir, script) {
  const stderr = [];
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, script),
    modulesRoot: dir,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-06-01",
    handleRuntimeStdio(out, err) {
      out.resume();
      err.on("data", (d) => stderr.push(String(d)));
    },
  });
  try {
    const res = await mf.dispatchFetch("http://probe/");
    return { status: res.status, body: await res.text(), stderr: stderr.join("") };
  } catch (e) {
    return { error: String(e?.message ?? e), stderr: stderr.join("") };
  } finally {
    await mf.dispose().catch(() => {});
  }
}

// Imported as an application would: which file the bare specifier resolved to, and whether the
// classes work with no init() (the synchronous entries) or not yet (index.js).
const PROBE = `const m = await import("dme-events");
let ready;
try { ready = new m.ClassQuery("fvTenant").toString() === "/api/class/fvTenant.json"; } catch { ready = false; }
await m.default();
const after = new m.ClassQuery("fvTenant").toString();
console.log(JSON.stringify({ resolved: import.meta.resolve("dme-events"), ready, after }));
`;
const probe = (out) => {
  const r = JSON.parse(out.trim().split("\n").pop());
  assert(r.after === "/api/class/fvTenant.json", `the package works after init(): ${out}`);
  return { entry: r.resolved.split("/").pop(), ready: r.ready, resolved: r.resolved };
};

// A Worker written against the package as the README's Workers section shows it.
const WORKER = `import { ClassQuery, EventChannel, Session } from "dme-events";
export default {
  async fetch() {
    const q = new ClassQuery("faultInst", { filter: 'eq(faultInst.lc,"raised")' });
    return Response.json({ path: q.toString(), login: typeof Session.login, ec: typeof EventChannel });
  },
};
`;

const t = runner("edge recipes");

t.test("the package installs offline into a fresh project", 120_000, async () => {
  const { stdout } = await sh("npm", ["pack", "--json", "--pack-destination", work], { cwd: PKG });
  const [packed] = JSON.parse(stdout);
  mkdirSync(join(app, "src"), { recursive: true });
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "recipes-app", private: true, type: "module" }));
  await sh("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", join(work, packed.filename)], { cwd: app });
  writeFileSync(join(app, "probe.mjs"), PROBE);
  writeFileSync(join(app, "src/worker.js"), WORKER);
  // The page source is the README's own, from the js block of its page recipe.
  const md = readFileSync(join(app, "node_modules/dme-events/README.md"), "utf8");
  const page = [...md.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes("dme-events/dme_events_bg.wasm\""));
  assert(page.length === 1, `one page recipe in the npm README: ${page.length}`);
  writeFileSync(join(app, "src/main.js"), page[0]);
});

t.test("Node.js resolves the entry the table names, ready without init()", 30_000, async () => {
  const got = probe((await sh(process.execPath, ["probe.mjs"], { cwd: app })).stdout);
  const want = documented("Node.js");
  assert(got.entry === want, `Node.js resolved ${got.resolved}; docs/edge.md says ${want}`);
  assert(got.ready, "node.js instantiates the wasm at import: the classes work before init()");
});

t.test("Deno resolves the entry the table names (from node_modules)", 60_000, async () => {
  const got = probe((await sh("deno", ["run", "--allow-read", "probe.mjs"], { cwd: app })).stdout);
  const want = documented("Deno");
  assert(got.entry === want, `Deno resolved ${got.resolved}; docs/edge.md says ${want}`);
  assert(got.ready === (want !== "index.js"), `ready before init(): ${got.ready} with ${want}`);
});

t.test("the page recipe (esbuild, .wasm as a file) bundles the entry the table names", 60_000, async () => {
  await esbuild(recipe("--loader:.wasm=file"));
  const got = bundled(join(app, "dist/main.js"));
  const want = documented("browsers");
  assert(got.length === 1 && got[0] === want, `the page bundle holds ${got}; docs/edge.md says ${want}`);
  assert(readdirSync(join(app, "dist")).some((f) => f.endsWith(".wasm")), "the .wasm is emitted next to the bundle");
});

t.test("the Worker recipe as written: the entry the table names, and it runs in workerd", 60_000, async () => {
  const argv = recipe("--conditions=workerd");
  rmSync(join(app, "dist"), { recursive: true, force: true });
  await esbuild(argv);
  const dist = join(app, "dist");
  const got = bundled(join(dist, "worker.js"));
  const want = documented("Cloudflare Workers");
  assert(got.length === 1 && got[0] === want, `the Worker bundle holds ${got}; docs/edge.md says ${want}`);
  const readme = readFileSync(join(app, "node_modules/dme-events/README.md"), "utf8");
  assert(/modulesRules: \[\{ type:\s+"CompiledWasm", include: \["\*\*\/\*\.wasm"\] \}\]/.test(readme),
    "the README gives the modules rule this test uses");
  const out = await runWorker(dist, "worker.js");
  assert(out.status === 200, JSON.stringify(out));
  const body = JSON.parse(out.body);
  assert(body.path === "/api/class/faultInst.json?query-target-filter=eq(faultInst.lc,%22raised%22)", out.body);
  assert(body.login === "function" && body.ec === "function", out.body);
});

t.test("why the Worker recipe copies the .wasm: as a file, workerd fails at start", 60_000, async () => {
  const argv = recipe("--conditions=workerd").map((a) => (a === "--loader:.wasm=copy" ? "--loader:.wasm=file" : a));
  assert(argv.includes("--loader:.wasm=file"), argv.join(" "));
  const dist = join(app, "dist");
  rmSync(dist, { recursive: true, force: true });
  await esbuild(argv);
  const out = await runWorker(dist, "worker.js");
  assert(out.status !== 200, `the Worker should not start: ${JSON.stringify(out)}`);
  assert(/Argument 0 must be a buffer source/.test(`${out.error} ${out.body} ${out.stderr}`), JSON.stringify(out));
});

const failed = await t.run(() => rmSync(work, { recursive: true, force: true }));
process.exit(failed ? 1 : 0);
