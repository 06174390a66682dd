#!/usr/bin/env bash
# `make test`: every suite in order, each timed; a table of the suites' wall times at the
# end, whatever failed. Exits non-zero if any suite failed (later suites still run, so one
# failure does not hide another; the real node is always torn down).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PYTEST=.venv/bin/pytest

suites=(
  "main (unit, chart, integration, spark, gitops, bench smoke)|$PYTEST -m 'not e2e and not images and not reliability and not node'"
  "local platform (e2e, reliability)|$MAKE --no-print-directory test-platform"
  "images|$MAKE --no-print-directory test-images"
  "real node|$MAKE --no-print-directory e2e-node"
  "real node teardown|$MAKE --no-print-directory e2e-node-down"
)

names=() seconds=() results=()
failed=0
for entry in "${suites[@]}"; do
  name=${entry%%|*}
  command=${entry#*|}
  echo "=== suite: $name: $command"
  started=$(date +%s)
  if bash -c "$command"; then result=passed; else result=FAILED; failed=1; fi
  names+=("$name") seconds+=($(( $(date +%s) - started ))) results+=("$result")
done

total=0
echo
echo "=== make test: wall time per suite"
printf '%-58s %8s  %s\n' "suite" "seconds" "result"
for i in "${!names[@]}"; do
  printf '%-58s %8d  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
  total=$(( total + seconds[i] ))
done
printf '%-58s %8d  (%d min %d s)\n' "total" "$total" $(( total / 60 )) $(( total % 60 ))
exit "$failed"
