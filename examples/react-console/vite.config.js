// JSX through Vite's own esbuild (the automatic runtime), no plugin needed. The package's wasm is
// found by `new URL("dme_events_bg.wasm", import.meta.url)` in its glue, which Vite copies as an
// asset; `base: "./"` keeps the build servable from any path.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic" },
  build: { target: "es2022", chunkSizeWarningLimit: 1000 },
});
