#!/usr/bin/env bash
# The whole test suite: formatting, lints (native and wasm32), native tests, browser tests in
# headless Chromium. Runs every step even after a failure, and ends with one line:
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

# A check step counts as one test.
check() {
  local name="$1"; shift
  echo "== $name"
  if "$@" >"$LOGDIR/$name.log" 2>&1; then
    passed=$((passed + 1))
  else
    cat "$LOGDIR/$name.log"
    failed=$((failed + 1)); failed_steps+=("$name")
  fi
}

# A test step counts the tests its runner reports ("test result: ... N passed; M failed").
tests() {
  local name="$1"; shift
  echo "== $name"
  "$@" 2>&1 | tee "$LOGDIR/$name.log" | grep -E '^(test result|     Running|running [0-9]+ test|.*FAILED|.*panicked)' || true
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '[0-9]+ passed' "$LOGDIR/$name.log" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$LOGDIR/$name.log" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ]; then
    [ "$f" = 0 ] && failed=$((failed + 1))
    failed_steps+=("$name")
    tail -n 40 "$LOGDIR/$name.log"
  fi
}

check fmt cargo fmt --all --check
check clippy-native cargo clippy --workspace --all-targets --locked -- -D warnings
check clippy-wasm32 cargo clippy -p dme-events --all-targets --target wasm32-unknown-unknown --locked -- -D warnings
tests native cargo test --workspace --locked
tests browser wasm-pack test --headless --chrome --chromedriver "$CHROMEDRIVER" . -- --locked

if [ ${#failed_steps[@]} -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]} (logs in target/test-logs/)"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#failed_steps[@]} = 0 ]
