"""The Celery worker dies (kill -9 of the worker and every process it started) while consume
is staging a batch; the worker comes back; the run completes with every offset staged
exactly once and the dashboard equal to the independent computation.

Airflow 3 notices a task whose worker died only when its heartbeats stop for
`[scheduler] task_instance_heartbeat_timeout`: values/local.yaml sets it to 30 s (the
default, 300 s, is for clusters), rendered by the chart into the airflow.cfg the demo
runs. The retry delay is the demo's pipeline overlay's (5 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from localplatform import cdc_events
from localplatform.demo import Demo
from orders_contract.staging import StagingLocation, batch_id_for_run
from orders_etl.config import parse_config

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from faults import (
    assert_exactly_once,
    component,
    kill_session,
    staged_topics,
    task_tries,
    wait_for,
)
from oracle import daily_revenue

pytestmark = pytest.mark.reliability


@pytest.mark.timeout(1500)  # bring-up (if first), a whole run and the outage, 2 cores
def test_killing_the_worker_during_consume(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    events = tmp_path / "events"
    cdc_events.write(cdc_events.generate(80, seed=303, start_id=20_000), events)
    counts = demo.publish(events)
    published.append(events)
    run_id = "rel__worker_kill"
    batch_id = batch_id_for_run("orders_etl", run_id)
    staging = parse_config().staging
    location = StagingLocation(staging.bucket, staging.prefix)
    s3 = demo.services.s3.client()
    worker = component(demo, "celery-worker")

    def in_flight() -> list[str]:
        """Topics whose offsets are claimed in the ledger but not staged yet."""
        found = staged_topics(s3, location, batch_id)
        return sorted(t for t, names in found.items() if "_manifest.json" not in names)

    demo.trigger(run_id)
    wait_for(lambda: bool(in_flight()), 240, "consume to claim a topic's offsets", every=0.1)
    killed = kill_session(worker)
    at_kill = staged_topics(s3, location, batch_id)
    unfinished = sorted(t for t in counts if "_manifest.json" not in at_kill.get(t, set()))
    assert unfinished, f"consume finished before the kill landed: {at_kill}"
    tries_at_kill = {m: t for m, _, t in task_tries(demo, run_id, "consume")}
    print(f"\nkilled {len(killed)} worker processes; unstaged topics: {unfinished}")

    time.sleep(2)  # the worker is gone for a while, as a pod being rescheduled is
    worker.start()
    result = demo.wait_run(run_id, timeout=600, progress=False)
    assert result.state == "success", "the retried consume must complete the run"

    tries = task_tries(demo, run_id, "consume")
    assert all(state == "success" for _, state, _ in tries), tries
    retried = [m for m, _, t in tries if t > tries_at_kill.get(m, 1)]
    assert retried, f"no consume instance was retried after the kill: {tries}"
    with demo._db() as conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) from log where run_id = %s and event = 'heartbeat timeout'",
            (run_id,),
        )
        assert cur.fetchone()[0] >= 1, "the scheduler must have noticed the missing heartbeats"

    assert_exactly_once(s3, location, batch_id, counts)
    assert demo.dashboard_rows() == daily_revenue(published)
