#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# Two phases, each a suite in the foreground and lanes of suites beside it, every lane on
# ports and in a run directory of its own (LOCALPLATFORM_PORT_OFFSET, LOCALPLATFORM_RUN_DIR;
# README "Ports"). The lanes' output is printed, whole, after the foreground suite's.
#   1. The main suite; beside it the Spark job's tests with the benchmarks' smoke runs,
#      and the images suite followed by what the real node needs built (CoreDNS, the
#      airflow-local image, the archives; node-up then finds them fresh). Alone, the main
#      suite left 47 % of the 2 cores idle; together the three keep both cores busy.
#   2. The local platform's suite (TEST_SUITES_NODE=beside: the real node's beside it,
#      offset 1200). Each brings up a whole platform that mostly waits (measured
#      2026-12-04: the platform's suite left 45-75 % of the CPU idle); their idle cost
#      (schedulers, API servers, brokers) grows with wall time, so they never share the
#      machine with the CPU-bound first phase (measured 2026-12-03: 2-3x stretched).
#   Then the real node's suite (unless beside), and its teardown, always.
# TEST_SUITES_SERIAL=1 runs every suite one after the other (in the order of the table).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=${PYTEST:-.venv/bin/pytest}
# The slowest tests of each pytest run, so a CI log says where a suite's time went.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --durations=15"
RUN=$PWD/.run
main='not e2e and not images and not reliability and not node'
node_beside=${TEST_SUITES_NODE:-alone}

# Suites: "name|command".
main_suite="main (unit, chart, integration, gitops)|$PYTEST -m '$main' --ignore=tests/spark --ignore=tests/bench"
lane_spark=(
  "Spark job, benchmark smoke (beside main)|LOCALPLATFORM_PORT_OFFSET=800 LOCALPLATFORM_RUN_DIR=$RUN/beside-spark $PYTEST -m '$main' tests/spark tests/bench"
)
lane_images=(
  "images (beside main)|LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/beside-images $MAKE --no-print-directory test-images"
  "real node: CoreDNS, images, archives (beside main)|$MAKE --no-print-directory node-prepare"
)
platform_suite="local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
if [[ $node_beside == beside ]]; then
  node_env="LOCALPLATFORM_PORT_OFFSET=1200 LOCALPLATFORM_RUN_DIR=$RUN/beside-node"
  node_where=" (beside the platform)"
else
  node_env="" node_where=""
fi
lane_node=("real node$node_where|$node_env $MAKE --no-print-directory e2e-node")
node_down="real node teardown|$node_env $MAKE --no-print-directory e2e-node-down"

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
if [[ $node_beside == beside ]]; then
  run_phase "$platform_suite" lane_node
else
  run_phase "$platform_suite"
  run_suites "$records" "${lane_node[@]}"
fi
run_suites "$records" "$node_down"

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
