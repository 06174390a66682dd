#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# The images suite runs beside the local platform's suite: it has its own ports and run
# directory (`make test-images`: LOCALPLATFORM_PORT_OFFSET, LOCALPLATFORM_RUN_DIR) and the
# platform's tests mostly wait on Airflow, so the two overlap instead of adding up. Its
# output is printed, whole, after the platform suite's. TEST_SUITES_SERIAL=1 runs them
# one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=.venv/bin/pytest

# name|command|beside: "beside" starts in the background with the next suite.
suites=(
  "main (unit, chart, integration, spark, gitops, bench smoke)|$PYTEST -m 'not e2e and not images and not reliability and not node'|"
  "images (beside the local platform)|$MAKE --no-print-directory test-images|beside"
  "local platform (e2e, reliability)|$MAKE --no-print-directory test-platform|"
  "real node|$MAKE --no-print-directory e2e-node|"
  "real node teardown|$MAKE --no-print-directory e2e-node-down|"
)

names=() seconds=() results=()
failed=0
record() { # name seconds rc
  names+=("$1") seconds+=("$2")
  if [[ $3 -eq 0 ]]; then results+=(passed); else results+=(FAILED); failed=1; fi
}

run_started=$(date +%s)
background_pid="" background_name="" background_started=0 background_log=""
for entry in "${suites[@]}"; do
  IFS='|' read -r name command mode <<<"$entry"
  if [[ $mode == beside && ${TEST_SUITES_SERIAL:-0} != 1 ]]; then
    background_name=$name background_started=$(date +%s)
    background_log=$(mktemp)
    echo "=== suite (in the background, output below when it ends): $name: $command"
    bash -c "$command" >"$background_log" 2>&1 &
    background_pid=$!
    continue
  fi
  echo "=== suite: $name: $command"
  started=$(date +%s)
  bash -c "$command"
  rc=$?
  record "$name" $(( $(date +%s) - started )) "$rc"
  if [[ -n $background_pid ]]; then
    wait "$background_pid"
    rc=$?
    # The background suite's wall time ends when it did, not when it was waited for.
    ended=$(stat -c %Y "$background_log")
    echo "=== output of the suite run in the background: $background_name"
    cat "$background_log"
    rm -f "$background_log"
    record "$background_name" $(( ended - background_started )) "$rc"
    background_pid=""
  fi
done

total=$(( $(date +%s) - run_started ))
echo
echo "=== make test: wall time per suite"
printf '%-58s %8s  %s\n' "suite" "seconds" "result"
for i in "${!names[@]}"; do
  printf '%-58s %8d  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
done
printf '%-58s %8d  (%d min %d s; overlapping suites counted once)\n' "total (wall clock)" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
