"""The freshness benchmark's per-run job times and its table (python -m bench.freshness
runs against the benchmark platform, part of `make bench`; these check what its table is
built from, and that results written before the job times were kept still render)."""

from __future__ import annotations

import sys

import pytest

from localplatform import paths

if str(paths.REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(paths.REPO_ROOT))

from bench import freshness

pytestmark = pytest.mark.bench

ROW = {
    "events_per_s": 200.0, "duration_s": 600.0, "p50_s": 90.0, "p95_s": 130.0,
    "max_s": 150.0, "runs": 3, "runs_per_minute": 0.9, "empty_runs": 0,
    "triggerer_cpu_percent": 3.0,
}  # fmt: skip


def test_the_job_times_of_the_loaded_runs_are_summarised() -> None:
    assert freshness.job_spread([]) is None
    assert freshness.job_spread([41.25, 22.5, 80.0, 30.0]) == {
        "min": 22.5,
        "median": 35.6,
        "max": 80.0,
    }


def test_the_table_shows_the_job_times_and_renders_older_results() -> None:
    spread = freshness.job_spread([22.5, 30.0, 80.0])
    table = freshness.summary({"rows": [{**ROW, "job_seconds": spread}, ROW]})
    now, older = table.splitlines()[-2:]
    assert now.rstrip(" |").endswith("22.5 / 30.0 / 80.0")
    assert older.rstrip().endswith("|")
    assert "/" not in older.split("|")[-2], "a result without job times has an empty cell"
