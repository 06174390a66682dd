# ---- benchmarks (issue 9): bench/, results in docs/benchmarks.md ---------------------
# Own platform beside the demo's: ports shifted by 1000, state in .run-bench.
BENCH_ENV := LOCALPLATFORM_PORT_OFFSET=$${LOCALPLATFORM_PORT_OFFSET:-1000} \
  LOCALPLATFORM_RUN_DIR=$${LOCALPLATFORM_RUN_DIR:-$(CURDIR)/.run-bench}

.PHONY: bench
bench: setup ## Run every benchmark at full size (< 60 min) and regenerate docs/benchmarks.md
	$(BENCH_ENV) $(PY) -m bench.run_all

.PHONY: bench-report
bench-report: venv ## Regenerate docs/benchmarks.md and its plot from docs/benchmarks/*.json
	$(PY) -m bench.report

.PHONY: bench-smoke
bench-smoke: setup ## A quick smoke run of each benchmark script (pytest -m bench; part of make test)
	$(VENV)/bin/pytest -m bench

.PHONY: bench-down
bench-down: ## Stop the benchmark platform (by PID) and delete its data
	@if [ -x $(PY) ]; then $(BENCH_ENV) $(PY) -m bench.platform down; fi

