# The two kinds of step of scripts/test.sh, sourced by it (and by tests/scripts/steps.test.sh).
# They add to the caller's `passed`, `failed` and `failed_steps`, and write each step's output to
# "$LOGDIR/<name>.log".

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
  # The runner's status is read from PIPESTATUS at once: a `|| true` after the pipeline would
  # replace it with its own whenever grep printed nothing.
  "$@" 2>&1 | tee "$LOGDIR/$name.log" | grep -E '^(test result|     Running|running [0-9]+ test|.*FAILED|.*panicked)'
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -Eo '[0-9]+ passed' "$LOGDIR/$name.log" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$LOGDIR/$name.log" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ] || [ "$f" != 0 ]; then
    [ "$f" = 0 ] && failed=$((failed + 1))
    failed_steps+=("$name")
    tail -n 40 "$LOGDIR/$name.log"
  fi
}
