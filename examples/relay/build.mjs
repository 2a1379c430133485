// Bundles the relay Worker the way wrangler does: esbuild with the `workerd` export condition
// (so `import "dme-events"` picks the package's workerd.js entry) and `.wasm` imports kept as
// separate modules, copied next to the bundle, for workerd to load as `CompiledWasm`.
//
//   node examples/relay/build.mjs [--pkg DIR] [--out DIR]
//
// `--pkg` points at a built package. Without it: `node_modules/dme-events` next to this file when
// the package was installed there (`npm install dme-events`), else the repository's pkg/ (from
// scripts/build-pkg.sh).
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Builds `worker.js` into `outDir/worker.mjs` (+ the wasm); returns the bundle's path. */
export async function buildWorker({ pkgDir, outDir = join(here, "dist") } = {}) {
  const installed = join(here, "node_modules/dme-events");
  pkgDir ??= existsSync(installed) ? installed : join(here, "../../pkg");
  outDir = resolve(outDir);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  // Make `dme-events` resolvable as an installed package (its package.json `exports` decide
  // which entry a Worker gets), without touching any real node_modules.
  const modules = join(outDir, ".deps", "node_modules");
  mkdirSync(modules, { recursive: true });
  symlinkSync(resolve(pkgDir), join(modules, "dme-events"), "dir");
  const wasmFiles = new Set();
  await build({
    entryPoints: [join(here, "worker.js")],
    outfile: join(outDir, "worker.mjs"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    nodePaths: [modules],
    logLevel: "warning",
    plugins: [
      {
        name: "wasm-modules",
        setup(b) {
          // Keep each .wasm import as an import of a file next to the bundle.
          b.onResolve({ filter: /\.wasm$/ }, (args) => {
            const file = resolve(args.resolveDir, args.path);
            wasmFiles.add(file);
            return { path: `./${file.split("/").pop()}`, external: true };
          });
        },
      },
    ],
  });
  for (const f of wasmFiles) copyFileSync(f, join(outDir, f.split("/").pop()));
  rmSync(join(outDir, ".deps"), { recursive: true, force: true });
  return join(outDir, "worker.mjs");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const out = await buildWorker({ pkgDir: arg("--pkg"), outDir: arg("--out") });
  console.log(`built ${out}`);
}
