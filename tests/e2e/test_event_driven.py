"""Event-driven end to end (issue 23): the DAG as the chart runs it by default. Nobody
triggers or unpauses anything: the DAG is active once parsed (is_paused_upon_creation
from the pipeline config) and the backlog watcher in the triggerer starts the runs.

A stream of CDC events is published in bursts; the runs start on their own; after the
stream no further run starts for 2 minutes (no empty run: 24 of the watcher's 5 s polls,
eight of its 15 s minimum intervals); the dashboard equals the independent computation;
the number of runs is at most dag.max_active_runs x stream duration / run duration + 2
(one run per pending batch, never one per message; with runs allowed to overlap, up to
max_active_runs batches are claimed per run duration). When runs overlap, their Spark stage
and dashboard load never do.

It runs first on the session's shared platform (tests/conftest.py), as installed: no run
triggered and nothing unpaused before it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from localplatform import cdc_events
from localplatform.demo import Demo
from orders_etl.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
import itertools

from oracle import daily_revenue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

BURSTS = 6
BURST_INTERVAL = 15.0
QUIET_AFTER = 120.0


def test_a_stream_in_bursts_starts_its_own_runs_and_none_after_it(
    event_driven_demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    demo = event_driven_demo
    events = tmp_path / "stream"
    cdc_events.write(cdc_events.generate(240, seed=23, start_id=50_000), events)
    demo.wait_for_dag()
    assert demo.runs() == [], "a run started before any event was published"

    stream_start = time.time()
    bootstrap = demo.services.kafka.bootstrap
    counts = cdc_events.publish_bursts(events, bootstrap, BURSTS, BURST_INTERVAL)
    published.append(events)
    stream_end = time.time()
    stream_seconds = stream_end - stream_start
    print(f"published {counts} in {BURSTS} bursts over {stream_seconds:.1f} s")

    results = demo.wait_event_runs(set(), quiet=QUIET_AFTER, timeout=1800)
    runs = demo.runs()
    assert [r.run_id for r in runs] == [r.run_id for r in results]
    assert {r.run_type for r in runs} == {"asset_triggered"}, "a run not started by the watcher"
    assert all(r.state == "success" for r in results), [(r.run_id, r.state) for r in results]

    # No empty run: every run staged something, so nothing after consume was skipped.
    for result in results:
        skipped = [k for k, s in result.task_states.items() if s == "skipped"]
        assert skipped == [], f"{result.run_id} had nothing to do: {result.task_states}"

    # After the stream: once the last run that claimed its events ended, no run started
    # for QUIET_AFTER seconds (wait_event_runs returned only after that much quiet).
    last_end = max(r.end or 0 for r in runs)
    assert time.time() - last_end >= QUIET_AFTER
    print(f"runs: {[(r.run_id, round((r.end or 0) - (r.start or 0), 1)) for r in runs]}")

    durations = [(r.end or 0) - (r.start or 0) for r in runs]
    mean_run = sum(durations) / len(durations)
    active = parse_config().dag.max_active_runs
    bound = active * stream_seconds / mean_run + 2
    assert len(runs) <= bound, f"{len(runs)} runs > {bound:.1f} ({active} x stream / run + 2)"

    # The next batch was consumed while Spark worked on the previous one, but one batch at
    # a time was in Spark, and one load at a time wrote the dashboard.
    overlapped = [
        (a.run_id, b.run_id)
        for a, b in itertools.pairwise(runs)
        if b.start is not None and a.end is not None and b.start < a.end
    ]
    print(f"overlapping runs: {overlapped}")
    for task_id in ("spark_transform", "load_clickhouse"):
        spans = demo.task_spans(task_id)
        assert len(spans) == len(runs), (task_id, spans)
        for (run_a, _, end_a), (run_b, start_b, _) in itertools.pairwise(spans):
            assert start_b >= end_a, f"{task_id} of {run_b} started before {run_a}'s ended"

    total = sum(demo.metrics(r.run_id).totals.events_in for r in runs)
    assert total == sum(counts.values()), "events were lost or staged twice"
    assert demo.dashboard_rows() == daily_revenue(published)
