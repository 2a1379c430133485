#!/usr/bin/env bash
# How scripts/steps.sh counts: a runner that fails counts as failed whatever it printed, a runner
# that reports failures counts them even when it exits 0, and passes are summed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT
passed=0
failed=0
failed_steps=()
source "$ROOT/scripts/steps.sh"

tests silent-crash bash -c 'echo "FAIL the first test"; exit 1' >/dev/null
tests reported bash -c 'echo "2 passed, 1 failed"; exit 0' >/dev/null
tests ok bash -c 'echo "test result: ok. 3 passed; 0 failed"' >/dev/null
check check-ok true >/dev/null
check check-fails false >/dev/null

want="passed=6 failed=3 steps=silent-crash reported check-fails"
got="passed=$passed failed=$failed steps=${failed_steps[*]}"
if [ "$got" != "$want" ]; then
  echo "steps.sh counted: $got"
  echo "expected:         $want"
  exit 1
fi
echo "steps.sh counts: $got"
