#!/usr/bin/env bash
# `make test`: every suite, each timed; a table of the suites' wall times at the end,
# whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
#
# Three phases. First, side by side, each on ports and in a run directory of its own
# (LOCALPLATFORM_PORT_OFFSET, LOCALPLATFORM_RUN_DIR; README "Ports"): the main suite, the
# Spark job's tests with the benchmarks' smoke runs, and the images suite. Alone, the main
# suite left 47 % of the 2 cores idle (its servers mostly wait) and the images suite mostly
# waits on downloads and disk. Then the local platform's suite, alone; then the real
# node's, alone, and its teardown. Both bring up a whole platform whose idle cost
# (schedulers, API servers, brokers) grows with their wall time: run beside other suites
# (measured 2026-12-03) they stretched 2-3x and the whole took longer, not less.
# The side suites' output is printed, whole, after the main suite's. TEST_SUITES_SERIAL=1
# runs every suite one after the other (in the order of the table).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=${PYTEST:-.venv/bin/pytest}
# The slowest tests of each pytest run, so a CI log says where a suite's time went.
export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:-} --durations=15"
RUN=$PWD/.run
main='not e2e and not images and not reliability and not node'

# name|command
first="main (unit, chart, integration, gitops)|$PYTEST -m '$main' --ignore=tests/spark --ignore=tests/bench"
beside=(
  "Spark job, benchmark smoke (beside main)|LOCALPLATFORM_PORT_OFFSET=800 LOCALPLATFORM_RUN_DIR=$RUN/beside-spark $PYTEST -m '$main' tests/spark tests/bench"
  "images (beside main)|LOCALPLATFORM_PORT_OFFSET=400 LOCALPLATFORM_RUN_DIR=$RUN/beside-images $MAKE --no-print-directory test-images"
)
after=(
  "local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
  "real node|$MAKE --no-print-directory e2e-node"
  "real node teardown|$MAKE --no-print-directory e2e-node-down"
)

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
run_started=$(date +%s)
# A CI run stopped at its time limit still says where the time went: on TERM or INT the
# suites that ended so far (and those running, with their time so far) are printed.
print_so_far() {
  trap - TERM INT
  echo
  echo "=== make test stopped after $(( $(date +%s) - run_started )) s; suites that ended:"
  cat "$records" ${logs:+"$logs"/*.records} 2>/dev/null | awk -F'|' '{printf "  %-56s %8d  rc %s\n", $1, $2, $3}'
  exit 143
}
trap print_so_far TERM INT
if [[ ${TEST_SUITES_SERIAL:-0} == 1 ]]; then
  run_suites "$records" "$first" "${beside[@]}"
else
  logs=$(mktemp -d) pids=()
  echo "=== in the background (output below when the main suite ends): ${beside[*]%%|*}"
  for i in "${!beside[@]}"; do
    run_suites "$logs/$i.records" "${beside[$i]}" >"$logs/$i.log" 2>&1 &
    pids+=($!)
  done
  run_suites "$records" "$first"
  wait "${pids[@]}"
  for i in "${!beside[@]}"; do
    echo "=== output of: ${beside[$i]%%|*}"
    cat "$logs/$i.log"
    cat "$logs/$i.records" >>"$records"
  done
  rm -rf "$logs"
fi
run_suites "$records" "${after[@]}"

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
printf '%-58s %8d  (%d min %d s; the first three overlap)\n' "total (wall clock)" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
