#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# Phases, each a suite in the foreground and lanes of suites beside it, every lane on
# ports and in a run directory of its own (LOCALPLATFORM_PORT_OFFSET, LOCALPLATFORM_RUN_DIR;
# README "Ports"). The lanes' output is printed, whole, after the foreground suite's.
#   1. The main suite; beside it the Spark job's tests with the benchmarks' smoke runs and
#      the alerting plugin's (beside_main), and the images suite followed by what the real node needs built (CoreDNS, the
#      airflow-local image, the archives; node-up then finds them fresh). Alone, the main
#      suite left 47 % of the 2 cores idle; together the three keep both cores busy.
#   2. The local platform's suite, alone. 3. The real node's, alone, and its teardown.
#   Each of these two brings up a whole platform that mostly waits (the platform's suite
#   left 45-75 % of the CPU idle), but its idle cost (schedulers, API servers, brokers)
#   grows with its wall time: beside the first phase (2026-12-03) they stretched 2-3x, and
#   beside each other (2026-12-04) both cores were saturated, helm install on the node
#   took 204 s instead of 79 s and the platform's suite had run 2 of its 9 tests after
#   21 min (5 alone): no faster than one after the other.
# TEST_SUITES_SERIAL=1 runs every suite one after the other (in the order of the table).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=${PYTEST:-.venv/bin/pytest}
# The slowest tests of each pytest run, so a CI log says where a suite's time went.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --durations=15"
RUN=$PWD/.run
main='not e2e and not images and not reliability and not node'

# The main suite's tests that run in a lane beside it instead: the Spark job's (their own
# data services), the benchmarks' smoke runs, and the alerting plugin's (their own
# Airflow on sqlite; 190 s the main suite was the longest of the first phase for).
beside_main=(tests/spark tests/bench tests/integration/alerting)

# Suites: "name|command".
main_suite="main (unit, chart, integration, gitops)|$PYTEST -m '$main'$(printf ' --ignore=%s' "${beside_main[@]}")"
lane_spark=(
  "Spark job, benchmark smoke, alerting (beside main)|LOCALPLATFORM_PORT_OFFSET=800 LOCALPLATFORM_RUN_DIR=$RUN/beside-spark $PYTEST -m '$main' ${beside_main[*]}"
)
lane_images=(
  "images (beside main)|LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/beside-images $MAKE --no-print-directory test-images"
  "real node: CoreDNS, images, archives (beside main)|$MAKE --no-print-directory node-prepare"
)
platform_suite="local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
node_suite="real node|$MAKE --no-print-directory e2e-node"
node_down="real node teardown|$MAKE --no-print-directory e2e-node-down"

# run_suites FILE SUITE...: runs the suites one after the other, appending
# "name|seconds|rc" per suite to FILE.
run_suites() {
  local file=$1 entry name command started rc; shift
  for entry in "$@"; do
    IFS='|' read -r name command <<<"$entry"
    echo "=== suite: $name: $command"
    started=$(date +%s)
    bash -c "$command"
    rc=$?
    echo "$name|$(( $(date +%s) - started ))|$rc" >>"$file"
    echo "=== suite ended: $name (rc $rc, $(( $(date +%s) - started )) s; $(( $(date +%s) - run_started )) s since make test began)"
  done
}

records=$(mktemp)
logs=$(mktemp -d)
run_started=$(date +%s)
# A CI run stopped at its time limit still says where the time went: on TERM or INT the
# suites that ended so far are printed.
print_so_far() {
  trap - TERM INT
  echo
  echo "=== make test stopped after $(( $(date +%s) - run_started )) s; suites that ended:"
  cat "$records" "$logs"/*.records 2>/dev/null | awk -F'|' '{printf "  %-56s %8d  rc %s\n", $1, $2, $3}'
  exit 143
}
trap print_so_far TERM INT

# run_phase SUITE LANE...: SUITE in the foreground, each LANE (the name of an array of
# suites) in the background; then the lanes' output.
run_phase() {
  local first=$1 lane pids=(); shift
  if [[ ${TEST_SUITES_SERIAL:-0} == 1 ]]; then
    run_suites "$records" "$first"
    for lane in "$@"; do
      local -n suites=$lane
      run_suites "$records" "${suites[@]}"
      unset -n suites
    done
    return
  fi
  for lane in "$@"; do
    local -n suites=$lane
    echo "=== in the background (output below when the suite in front ends): ${suites[*]%%|*}"
    run_suites "$logs/$lane.records" "${suites[@]}" >"$logs/$lane.log" 2>&1 &
    pids+=($!)
    unset -n suites
  done
  run_suites "$records" "$first"
  [[ ${#pids[@]} -eq 0 ]] || wait "${pids[@]}"
  for lane in "$@"; do
    echo "=== output of the lane $lane"
    cat "$logs/$lane.log"
    cat "$logs/$lane.records" >>"$records"
    rm -f "$logs/$lane.log" "$logs/$lane.records"
  done
}

run_phase "$main_suite" lane_spark lane_images
run_phase "$platform_suite"
run_suites "$records" "$node_suite" "$node_down"

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
rm -rf "$records" "$logs"
printf '%-58s %8d  (%d min %d s; suites in a phase overlap)\n' "total (wall clock)" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
