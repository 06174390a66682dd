#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# Two lanes after the main suite. The local platform's suite runs in the foreground; the
# images suite, then the real node's, then its teardown run one after the other beside
# it, each on ports and in a run directory of their own (LOCALPLATFORM_PORT_OFFSET,
# LOCALPLATFORM_RUN_DIR; see README "Ports"): those suites mostly wait on Airflow, pods
# and image builds, so the lanes overlap instead of adding up. The side lane's output is
# printed, whole, after the platform suite's. TEST_SUITES_SERIAL=1 runs every suite one
# after the other (in the order of the table).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=.venv/bin/pytest
# The slowest tests of each pytest run, so a CI log says where a suite's time went.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --durations=15"
RUN=$PWD/.run

# name|command: the suites of each lane, in order.
main_suites=(
  "main (unit, chart, integration, spark, gitops, bench smoke)|$PYTEST -m 'not e2e and not images and not reliability and not node'"
)
platform_suites=(
  "local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
)
# The side lane's suites run one at a time, so they share one port offset.
side_env="LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/side"
side_suites=(
  "images (beside the local platform)|LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/side/images $MAKE --no-print-directory test-images"
  "real node (beside the local platform)|$side_env $MAKE --no-print-directory e2e-node"
  "real node teardown|$side_env $MAKE --no-print-directory e2e-node-down"
)

# run_lane FILE SUITE...: runs the suites one after the other, appending
# "name|seconds|rc" per suite to FILE.
run_lane() {
  local file=$1 entry name command started rc; shift
  for entry in "$@"; do
    IFS='|' read -r name command <<<"$entry"
    echo "=== suite: $name: $command"
    started=$(date +%s)
    bash -c "$command"
    rc=$?
    echo "$name|$(( $(date +%s) - started ))|$rc" >>"$file"
    echo "=== suite ended: $name (rc $rc)"
  done
}

records=$(mktemp)
run_started=$(date +%s)
run_lane "$records" "${main_suites[@]}"
if [[ ${TEST_SUITES_SERIAL:-0} == 1 ]]; then
  run_lane "$records" "${platform_suites[@]}" "${side_suites[@]}"
else
  side_log=$(mktemp) side_records=$(mktemp)
  echo "=== side lane (in the background, output below when the platform suite ends): ${side_suites[*]%%|*}"
  run_lane "$side_records" "${side_suites[@]}" >"$side_log" 2>&1 &
  side_pid=$!
  run_lane "$records" "${platform_suites[@]}"
  wait "$side_pid"
  echo "=== output of the side lane"
  cat "$side_log"
  cat "$side_records" >>"$records"
  rm -f "$side_log" "$side_records"
fi

total=$(( $(date +%s) - run_started ))
failed=0
echo
echo "=== make test: wall time per suite"
printf '%-58s %8s  %s\n' "suite" "seconds" "result"
while IFS='|' read -r name seconds rc; do
  result=passed
  if [[ $rc -ne 0 ]]; then result=FAILED failed=1; fi
  printf '%-58s %8d  %s\n' "$name" "$seconds" "$result"
done <"$records"
rm -f "$records"
printf '%-58s %8d  (%d min %d s; suites in the two lanes overlap)\n' "total (wall clock)" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
