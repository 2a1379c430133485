#!/usr/bin/env bash
# The chaos suite (issue 8): set-up, the package, dme-sim, then seeded fault schedules against
# store-mode subscriptions in headless Chromium (tests/chaos/run.mjs; options pass through).
#   bash scripts/chaos.sh                                   # 4 schedules, as in scripts/test.sh
#   bash scripts/chaos.sh --schedules 200 --parallel 3      # the long run (about 30 minutes)
#   bash scripts/chaos.sh --seed 42 --schedules 1           # replay one schedule
# Writes target/chaos/report.md (and report.md.json, every schedule in detail); exits non-zero
# when a schedule did not converge, missed a gap or threw.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/env.sh

bash scripts/build-pkg.sh
cargo build -p dme-sim --locked
node tests/chaos/run.mjs --self-check "$@"
