#!/usr/bin/env bash
# The main command: set up, build the release npm package into pkg/, then run dme-sim serving the
# live console (www/) and the package (pkg/) on 127.0.0.1, in the foreground until Ctrl-C.
#
#   bash scripts/demo.sh                      # a simulated APIC fabric with realistic churn
#   bash scripts/demo.sh --nxos               # a simulated NX-OS switch instead
#   bash scripts/demo.sh --upstream https://apic1   # a real device, proxied same-origin
#   bash scripts/demo.sh --port 0 --churn 20  # any free port, more activity
#   bash scripts/demo.sh --tls                # HTTPS and WSS like a device (self-signed certificate)
set -euo pipefail

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'USAGE'
Options:
  --nxos            simulate an NX-OS switch (default: an APIC controller)
  --upstream URL    proxy /api/* and /socket* to a real device (its certificate is not verified);
                    the page stays same-origin, log in with the device's credentials
  --port N          listen on 127.0.0.1:N (default 8000; 0 picks a free port)
  --churn N         simulated changes per second (default 5; 0 for a quiet fabric)
  --objects N       approximate size of the simulated tree (default 3000)
  --tls             serve https:// and wss:// only, with a self-signed certificate made at start
                    (the browser asks to accept it; its SHA-256 fingerprint is printed to compare)
  -h, --help        this help
USAGE
}

flavor=apic
upstream=""
port=8000
churn=5
objects=3000
tls=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nxos) flavor=nxos ;;
    --apic) flavor=apic ;;
    --upstream) upstream="${2:?--upstream needs a URL}"; shift ;;
    --upstream=*) upstream="${1#*=}" ;;
    --port) port="${2:?--port needs a number}"; shift ;;
    --port=*) port="${1#*=}" ;;
    --churn) churn="${2:?--churn needs a number}"; shift ;;
    --churn=*) churn="${1#*=}" ;;
    --objects) objects="${2:?--objects needs a number}"; shift ;;
    --objects=*) objects="${1#*=}" ;;
    --tls) tls=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/env.sh

# 1. The npm package, release build (what `npm install dme-events` would give you).
bash scripts/build-pkg.sh

# 2. The simulator. Its dev build is quick to compile and idles at well under 1% of a core with
#    churn on, so the demo does not wait for an optimised build.
echo "[demo] building dme-sim"
cargo build -p dme-sim --locked --quiet

args=(--flavor "$flavor" --bind "127.0.0.1:$port" --churn "$churn" --objects "$objects" --www www --pkg pkg)
[ -n "$upstream" ] && args+=(--upstream "$upstream")
[ -n "$tls" ] && args+=(--tls)

LOG="$ROOT/target/demo-sim.log"
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
target/debug/dme-sim "${args[@]}" >"$LOG" 2>&1 &
SIM_PID=$!
stop() { kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; }
trap 'echo; echo "[demo] stopping dme-sim"; stop; exit 0' INT TERM
trap stop EXIT

url=""
for _ in $(seq 1 100); do
  url=$(grep -Eo 'https?://127\.0\.0\.1:[0-9]+' "$LOG" | head -n 1 || true)
  [ -n "$url" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  cat "$LOG" >&2
  echo "[demo] dme-sim did not start (is port $port in use? try --port 0)" >&2
  exit 1
fi

page="$url/"
[ "$flavor" = nxos ] && page="$url/?flavor=nxos"
if [ -n "$upstream" ]; then
  what="proxying $upstream (log in with the device's own credentials)"
else
  what="simulated $([ "$flavor" = nxos ] && echo "NX-OS switch" || echo "APIC fabric"), $churn changes/s, user admin / ins3965!"
fi
cat <<BANNER

  ┌───────────────────────────────────────────────────────────────────────
  │  dme-events live console
  │
  │    open  $page
  │
  │  $what
  │  Press Connect; "Break it" injects faults. Ctrl-C stops.${tls:+
  │  TLS: the certificate is self-signed; accept it in the browser if its
  │  SHA-256 fingerprint matches the one printed below.}
  └───────────────────────────────────────────────────────────────────────

BANNER

# Keep the simulator's own output visible, and run until it stops or Ctrl-C.
tail -n +2 -f --pid="$SIM_PID" "$LOG" &
wait "$SIM_PID"
