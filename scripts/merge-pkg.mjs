// Turns wasm-pack's pkg/ into the npm package: merges pkg-template/package.json over the
// package.json wasm-pack wrote (name and version stay wasm-pack's, from Cargo.toml) and copies
// the template's entry modules, typings and README next to the glue.
import { readFileSync, writeFileSync, copyFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";

const [pkgDir, templateDir, licenseFile] = process.argv.slice(2);
const generated = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const template = JSON.parse(readFileSync(join(templateDir, "package.json"), "utf8"));
const merged = { name: generated.name, version: generated.version, ...template };
writeFileSync(join(pkgDir, "package.json"), JSON.stringify(merged, null, 2) + "\n");
for (const f of readdirSync(templateDir)) {
  if (f !== "package.json") copyFileSync(join(templateDir, f), join(pkgDir, f));
}
if (licenseFile) copyFileSync(licenseFile, join(pkgDir, "LICENSE"));
for (const f of template.files) {
  if (!existsSync(join(pkgDir, f))) {
    console.error(`pkg/ lacks ${f}, which package.json lists`);
    process.exit(1);
  }
}
