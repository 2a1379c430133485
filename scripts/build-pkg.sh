#!/usr/bin/env bash
# Builds the release npm package into pkg/ (wasm-pack, then wasm-opt -Oz through the
# [package.metadata.wasm-pack.profile.release] flags of Cargo.toml), merges pkg-template/ into it
# (package.json fields, entry modules per runtime, typings, npm README) and prints its sizes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/env.sh

wasm-pack build --release --target web --out-dir pkg --out-name dme_events . -- --locked
node scripts/merge-pkg.mjs pkg pkg-template LICENSE

size_line() {
  local f="$1"
  printf '  %-28s %8d bytes raw %8d bytes gzip\n' "$(basename "$f")" "$(wc -c <"$f")" "$(gzip -9 -c "$f" | wc -c)"
}
echo "package sizes (pkg/):"
size_line pkg/dme_events_bg.wasm
size_line pkg/dme_events.js
total=$(( $(gzip -9 -c pkg/dme_events_bg.wasm | wc -c) + $(gzip -9 -c pkg/dme_events.js | wc -c) ))
echo "  total gzip (wasm + JS glue): $total bytes"
