#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: installs what the project needs and skips what is
# already there at the right version. Both README commands call it; run it alone with
#   bash scripts/setup.sh
# Installs: the wasm32 Rust target, wasm-bindgen-cli at exactly the wasm-bindgen version of
# Cargo.lock, wasm-pack, Debian's chromium, chromium-driver and firefox-esr, geckodriver, and the
# npm packages of package-lock.json (binaryen's wasm-opt, playwright-core, deno, miniflare,
# esbuild). It leaves the clone as it found it: `git status` stays clean.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

say() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Rust toolchain and the wasm32 target.
command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli at exactly the version in Cargo.lock (Cargo.toml pins it with "=").
want_wbg=$(awk '$1=="name" && $3=="\"wasm-bindgen\"" {getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
have_wbg=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_wbg" != "$want_wbg" ]; then
  say "installing wasm-bindgen-cli $want_wbg (found: ${have_wbg:-none}); this takes a few minutes"
  cargo install wasm-bindgen-cli --version "$want_wbg" --locked --force \
    || cargo install wasm-bindgen-cli --version "$want_wbg" --force
fi

# 3. wasm-pack, built from source (its npm package downloads a binary, which cannot work here).
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack; this takes a few minutes"
  cargo install wasm-pack --locked || cargo install wasm-pack
fi

# 4. Chromium, its driver and Firefox ESR, from Debian.
# Another apt run (an unattended upgrade) may hold the lock for a while: wait for it.
apt_install() {
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}
want_deb=()
command -v chromium >/dev/null || want_deb+=(chromium)
command -v chromedriver >/dev/null || want_deb+=(chromium-driver)
command -v firefox-esr >/dev/null || want_deb+=(firefox-esr)
if [ ${#want_deb[@]} -gt 0 ]; then
  say "installing ${want_deb[*]}"
  apt_install "${want_deb[@]}"
fi

# 5. geckodriver (Firefox's WebDriver), built from source at a known version: Debian has no
# package of it, and its release binaries are downloads.
want_gd=0.37.1
have_gd=$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}' || true)
if [ "$have_gd" != "$want_gd" ]; then
  say "installing geckodriver $want_gd (found: ${have_gd:-none}); this takes a few minutes"
  cargo install geckodriver --version "$want_gd" --locked --force
fi

# 6. npm packages, exactly as package-lock.json lists them, reinstalled only when it changed.
# `npm ci` never writes the lock, which lists every platform's optional binaries (deno's,
# esbuild's, workerd's) so that it installs unchanged on any of them.
stamp="node_modules/.dme-lock-sha"
lock_sha=$(sha256sum package-lock.json | awk '{print $1}')
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sha" > "$stamp"
fi
command -v wasm-opt >/dev/null || { echo "wasm-opt missing after npm ci" >&2; exit 1; }
# The React example's own packages (examples/react-console/), installed once per change of its
# lock so that npm's cache holds them: its test then installs them with `npm ci --offline`.
stamp="node_modules/.dme-react-console-lock-sha"
lock_sha=$(sha256sum examples/react-console/package-lock.json | awk '{print $1}')
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing the React example's npm packages"
  (cd examples/react-console && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
  echo "$lock_sha" > "$stamp"
fi

say "ready: $(rustc --version | awk '{print $1, $2}'), wasm-bindgen $(wasm-bindgen --version | awk '{print $2}'), $(wasm-pack --version), wasm-opt $(wasm-opt --version | awk '{print $3}'), $(chromium --version 2>/dev/null | awk '{print $1, $2}'), $(firefox-esr --version 2>/dev/null | awk '{print $2, $3}'), geckodriver $(geckodriver --version | awk 'NR==1 {print $2}'), node $(node --version)"
