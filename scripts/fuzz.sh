#!/usr/bin/env bash
# Fuzzes every parser of the protocol layer and the query builder with cargo-fuzz (libFuzzer),
# each target for a bounded time, and prints a table of executions and crashes per target
# (also written to target/fuzz/report.md). Needs a nightly toolchain; without one it says so and
# exits 0. Installs cargo-fuzz when missing. Exits non-zero when a target crashed; the crashing
# input is kept in fuzz/artifacts/<target>/ and replays with
#   cargo +nightly fuzz run -a <target> fuzz/artifacts/<target>/<file>
#
#   bash scripts/fuzz.sh                  # every target, 60 s each
#   bash scripts/fuzz.sh --seconds 120    # longer
#   bash scripts/fuzz.sh --seconds 10 login store   # some targets only
#
# Seeds come from tests/fixtures/captures.jsonl (the real device payloads the tests use) and are
# written into fuzz/corpus/<target>/ at every run; the corpus grows there from run to run.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_TARGET=60
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) SECONDS_PER_TARGET="${1#--seconds=}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) ONLY+=("$1"); shift ;;
  esac
done
case "$SECONDS_PER_TARGET" in
  ''|*[!0-9]*) echo "fuzz: --seconds takes a whole number" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly), cargo-fuzz needs one"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "fuzz: could not install cargo-fuzz" >&2; exit 1; }
fi

OUT="$ROOT/target/fuzz"
mkdir -p "$OUT"

# Seed corpora from the fixtures. Targets that read "status + body" take two leading bytes that
# select the HTTP status (see fuzz/src/lib.rs, status_and_body).
node - "$ROOT" <<'EOF' || { echo "fuzz: could not write the seed corpora (node)" >&2; exit 1; }
const fs = require("fs"), path = require("path");
const root = process.argv[2];
const lines = fs.readFileSync(path.join(root, "tests/fixtures/captures.jsonl"), "utf8")
  .split("\n").filter((l) => l.trim());
const caps = lines.map((l) => JSON.parse(l));
const write = (target, name, buf) => {
  const dir = path.join(root, "fuzz/corpus", target);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "seed-" + name), buf);
};
const withStatus = (status, body) => {
  const pick = 0x8000 | (status - 100);
  return Buffer.concat([Buffer.from([pick & 0xff, pick >> 8]), Buffer.from(body, "utf8")]);
};
for (const c of caps) {
  const xml = c.body.trimStart().startsWith("<");
  const status = c.http_status || 200;
  if (c.kind === "notification" || c.kind === "mo" || c.kind === "subscribe-response") {
    write(xml ? "notification_xml" : "notification_json", c.id, c.body);
  }
  if (xml) write("notification_xml", c.id, c.body);
  if (c.kind === "login-response" || c.kind === "error-response") {
    write("login", c.id, withStatus(status, c.body));
  }
  if (c.kind === "subscribe-response" || c.kind === "mo" || c.kind === "error-response") {
    write("query_response", c.id, withStatus(status, c.body));
  }
  if (c.kind === "refresh-response" || c.kind === "error-response") {
    write("refresh_response", c.id, withStatus(status, c.body));
  }
}
// XML shapes no capture has (login in XML, a subscribe answer in XML, an empty refresh body).
write("login", "xml-login", withStatus(200,
  '<?xml version="1.0" encoding="UTF-8"?><imdata totalCount="1"><aaaLogin token="T0k3n+/=" ' +
  'refreshTimeoutSeconds="600" maximumLifetimeSeconds="86400" urlToken="U" version="5.2(1g)"/></imdata>'));
write("query_response", "xml-subscribe", withStatus(200,
  '<imdata totalCount="1" subscriptionId="72057598349803564"><fvTenant dn="uni/tn-a" status="">' +
  '<fvBD rn="BD-web" name="w &amp; b"/></fvTenant></imdata>'));
write("refresh_response", "empty", withStatus(200, ""));
EOF

TARGETS=(notification_json notification_xml login query_response refresh_response error_response query_builder store)
if [ ${#ONLY[@]} -gt 0 ]; then TARGETS=("${ONLY[@]}"); fi

echo "fuzz: building ${#TARGETS[@]} targets (nightly, address sanitizer, debug assertions)"
if ! (cd fuzz && cargo +nightly fuzz build -a >"$OUT/build.log" 2>&1); then
  tail -n 40 "$OUT/build.log"; echo "fuzz: build failed" >&2; exit 1
fi

rows=()
total_crashes=0
for t in "${TARGETS[@]}"; do
  log="$OUT/$t.log"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  (cd fuzz && cargo +nightly fuzz run -a "$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 -max_len=8192) \
      >"$log" 2>&1
  rc=$?
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  [ -n "$execs" ] || execs=0
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  after=$(ls "fuzz/artifacts/$t" | wc -l)
  crashes=$((after - before))
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi
  total_crashes=$((total_crashes + crashes))
  note=""
  if [ "$crashes" != 0 ]; then
    note=$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
    grep -E "panicked|ERROR: |SUMMARY" "$log" | head -n 5
  fi
  rows+=("| \`$t\` | $execs | $corpus | $crashes | ${note} |")
done

{
  echo "Fuzzing with \`bash scripts/fuzz.sh --seconds $SECONDS_PER_TARGET${ONLY[*]:+ ${ONLY[*]}}\` ($(rustc +nightly --version | cut -d' ' -f1-2), cargo-fuzz $(cargo +nightly fuzz --version 2>/dev/null | awk '{print $2}'), $(nproc) cores, $(date -u +%Y-%m-%d)), ${SECONDS_PER_TARGET} s per target:"
  echo
  echo "| target | executions | corpus | crashes | artifact |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} >"$OUT/report.md"
echo
cat "$OUT/report.md"
echo
echo "fuzz: ${#TARGETS[@]} targets, $total_crashes crashes (logs and report in target/fuzz/)"
[ "$total_crashes" = 0 ]
