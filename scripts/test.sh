#!/usr/bin/env bash
# The whole test suite: formatting, lints (native and wasm32), native tests, browser tests in
# headless Chromium and Firefox ESR. Runs every step even after a failure, and ends with one line:
#   tests: N passed, M failed
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
source scripts/env.sh

LOGDIR="$ROOT/target/test-logs"
mkdir -p "$LOGDIR"
passed=0
failed=0
failed_steps=()

source scripts/steps.sh

check steps-counting bash tests/scripts/steps.test.sh
check fmt cargo fmt --all --check
check clippy-native cargo clippy --workspace --all-targets --locked -- -D warnings
check clippy-wasm32 cargo clippy -p dme-events --all-targets --target wasm32-unknown-unknown --locked -- -D warnings
tests native cargo test --workspace --locked --no-fail-fast
# The live view's module (src/js/view.js) in Node: seeded batches against a reference Map.
check view-props node --no-warnings tests/view/props.mjs
# Browser tests run against real simulators on loopback (they stop by themselves, and on exit).
SIM_PIDS=()
cleanup() { for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start_sim() {
  local name="$1"; shift
  local log="$LOGDIR/sim-$name.log"
  target/debug/dme-sim --bind 127.0.0.1:0 --exit-after 1800 "$@" >"$log" 2>&1 &
  SIM_PIDS+=($!)
  for _ in $(seq 1 100); do
    url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$log" | head -n 1)
    [ -n "$url" ] && { SIM_URL="$url"; return 0; }
    sleep 0.1
  done
  echo "dme-sim ($name) did not start; see $log" >&2
  return 1
}
SIM_FLAGS=(--cors --throttle 0 --objects 400 --sub-lifetime 4 --refresh-timeout 12 --token-grace 2)
# Sessions that live 30 s: the package rotates them during a test (tests/web/disruptions.rs).
LIFETIMES_FLAGS=(--cors --throttle 0 --objects 400 --sub-lifetime 4 --refresh-timeout 30 --token-grace 2 --max-lifetime 30)
if cargo build -p dme-sim --locked >"$LOGDIR/sim-build.log" 2>&1 \
  && start_sim apic --flavor apic "${SIM_FLAGS[@]}" && DME_SIM_URL="$SIM_URL" \
  && start_sim nxos --flavor nxos "${SIM_FLAGS[@]}" && DME_SIM_NXOS_URL="$SIM_URL" \
  && start_sim lifetimes --flavor apic "${LIFETIMES_FLAGS[@]}" \
  && DME_SIM_LIFETIMES_URL="$SIM_URL"; then
  export DME_SIM_URL DME_SIM_NXOS_URL DME_SIM_LIFETIMES_URL
  # The test runner gives a whole browser run 20 s unless told otherwise; the browser tests take
  # turns (they share the simulators' faults) and together take longer than that.
  export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
  tests browser wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER" . --locked
  # Firefox ESR, kept off the network: a release Firefox ignores the prefs that point its
  # background services elsewhere unless it is told that it runs under test.
  tests browser-firefox env MOZ_DISABLE_NONLOCAL_CONNECTIONS=1 \
    wasm-pack test --headless --firefox --geckodriver "$(command -v geckodriver)" . --locked
  # The built npm package outside the browser.
  check package-build bash scripts/build-pkg.sh
  check runtime-node node --experimental-websocket tests/runtimes/smoke.mjs "$ROOT/pkg/node.js" "$DME_SIM_URL"
  check runtime-deno deno run --allow-net --allow-read tests/runtimes/smoke.mjs "file://$ROOT/pkg/index.js" "$DME_SIM_URL"
  # End to end: the live console (www/) in Chromium against its own dme-sim (screenshot in
  # target/e2e-artifacts/), and the npm package packed, installed offline into a fresh project and
  # used from Node.js, an esbuild bundle in Chromium and Deno.
  tests e2e-console node tests/e2e/console.test.mjs
  # The same console and package over HTTPS and WSS (dme-sim --tls, its self-signed certificate).
  tests e2e-console-tls node tests/e2e/console-tls.test.mjs
  tests e2e-package node tests/e2e/package.test.mjs
  # The React example (examples/react-console/): npm ci --offline from its lock, vite build, and
  # the built app in Chromium against its own dme-sim (live faults, a write, a dropped socket).
  tests e2e-react-console node tests/e2e/react-console.test.mjs
  # Leaks: 1,000 EventChannel open/close and 10,000 subscribe/close cycles in Chromium leave
  # memory flat and no timer, listener or socket behind.
  tests e2e-leak node tests/e2e/leak.test.mjs
  # Chaos, short run: seeded fault schedules (socket drops, restarts, token and subscription
  # expiry, 400/405/503, slow, duplicated, batched and malformed frames, hidden and frozen tab,
  # clock jumps) against store-mode subscriptions; the stores must equal the simulator's truth
  # within two refresh periods. The long run is `bash scripts/chaos.sh --schedules 200`.
  tests chaos node tests/chaos/run.mjs --schedules 4 --parallel 2 --faults 8 --self-check
  # At the edge: the example fault relay (examples/relay/) as a Worker with a Durable Object in
  # workerd (through miniflare), and as a script in Deno and Node, each against its own dme-sim
  # and a local webhook receiver.
  tests edge-workerd-entry node tests/edge/workerd.test.mjs
  # The runtime table and the esbuild recipes of the npm README, run exactly as written.
  tests edge-recipes node tests/edge/recipes.test.mjs
  tests edge-webworker node tests/edge/webworker.test.mjs
  tests edge-workerd node tests/edge/relay.test.mjs workerd
  tests edge-deno node tests/edge/relay.test.mjs deno
  tests edge-node node --experimental-websocket tests/edge/relay.test.mjs node
  tests edge-nosocket node tests/edge/nosocket.test.mjs
  # Session queries and writes (pages, lookups, a watched commit, refusals) in each runtime.
  tests edge-queries-node node --experimental-websocket tests/edge/queries.test.mjs node
  tests edge-queries-deno node tests/edge/queries.test.mjs deno
  tests edge-queries-workerd node tests/edge/queries.test.mjs workerd
else
  cat "$LOGDIR/sim-build.log"; failed=$((failed + 1)); failed_steps+=("browser (no simulator)")
fi

if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]} (logs in target/test-logs/)"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#failed_steps[@]} = 0 ]
