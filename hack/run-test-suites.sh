#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# Three lanes from the start, each on ports and in a run directory of its own
# (LOCALPLATFORM_PORT_OFFSET, LOCALPLATFORM_RUN_DIR; see README "Ports"):
#   1. the main suite, then the local platform's (default ports, in the foreground);
#   2. the Spark job's tests and the benchmarks' smoke runs (their own data services);
#   3. the images suite, then the real node's, then its teardown.
# Measured on 2 cores, the main suite alone left half the CPU idle (its servers mostly
# wait), and the other lanes wait on image builds, pods and Airflow: run side by side they
# overlap instead of adding up. The background lanes' output is printed, whole, after the
# foreground's. TEST_SUITES_SERIAL=1 runs every suite one after the other (in the order of
# the table).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=.venv/bin/pytest
# The slowest tests of each pytest run, so a CI log says where a suite's time went.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --durations=15"
RUN=$PWD/.run

# name|command: the suites of each lane, in order.
main='not e2e and not images and not reliability and not node'
lane1=(
  "main (unit, chart, integration, gitops)|$PYTEST -m '$main' --ignore=tests/spark --ignore=tests/bench"
  "local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
)
lane2=(
  "Spark job, benchmark smoke (lane 2)|LOCALPLATFORM_PORT_OFFSET=800 LOCALPLATFORM_RUN_DIR=$RUN/lane2 $PYTEST -m '$main' tests/spark tests/bench"
)
# One suite at a time in lane 3, so its suites share one port offset.
lane3_env="LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/lane3"
lane3=(
  "images (lane 3)|LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/lane3/images $MAKE --no-print-directory test-images"
  "real node (lane 3)|$lane3_env $MAKE --no-print-directory e2e-node"
  "real node teardown (lane 3)|$lane3_env $MAKE --no-print-directory e2e-node-down"
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
if [[ ${TEST_SUITES_SERIAL:-0} == 1 ]]; then
  run_lane "$records" "${lane1[@]}" "${lane2[@]}" "${lane3[@]}"
else
  logs=$(mktemp -d)
  echo "=== lanes 2 and 3 in the background (their output below when lane 1 ends)"
  run_lane "$logs/2.records" "${lane2[@]}" >"$logs/2.log" 2>&1 &
  lane2_pid=$!
  run_lane "$logs/3.records" "${lane3[@]}" >"$logs/3.log" 2>&1 &
  lane3_pid=$!
  run_lane "$records" "${lane1[@]}"
  wait "$lane2_pid" "$lane3_pid"
  for lane in 2 3; do
    echo "=== output of lane $lane"
    cat "$logs/$lane.log"
    cat "$logs/$lane.records" >>"$records"
  done
  rm -rf "$logs"
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
printf '%-58s %8d  (%d min %d s; suites in lanes overlap)\n' "total (wall clock)" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
