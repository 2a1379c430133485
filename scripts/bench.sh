#!/usr/bin/env bash
# The benchmark (issue 7): set-up, the release package, the release dme-sim, the engine's scale
# run (native, simulated time), then the in-browser measurements in headless Chromium. Prints a
# Markdown table and writes it to target/bench/report.md (report.json alongside).
#   bash scripts/bench.sh            # full run (about 3 minutes on 2 cores once built)
#   bash scripts/bench.sh --quick    # fewer rounds, 210 k objects for the memory figure
# Not part of scripts/test.sh (timings are noisy); exits non-zero only when the self-check fails
# (the package and the plain-JS baseline delivered different MO counts).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/env.sh

bash scripts/build-pkg.sh
cargo build -p dme-sim --release --locked
mkdir -p target/bench
cargo test -p dme-events --locked --test bench_scale -- --ignored --nocapture 2>&1 | grep -E '^\{|test result' || true
node bench/run.mjs --sim target/release/dme-sim --pkg pkg "$@"
