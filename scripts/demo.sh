#!/usr/bin/env bash
# The main job: set up, build the release package into pkg/, and report its size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/env.sh

bash scripts/build-pkg.sh
