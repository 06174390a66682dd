"""HA components survive being killed mid-run (issue: reliability). On the local platform:
real schedulers and triggerers sharing Postgres, kill -9 by PID, the run completes and
the dashboard still equals the independent computation.

The platform is the session's (conftest.py): wiped and brought up once, stopped at the end.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from localplatform import cdc_events
from localplatform.demo import Demo

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from faults import component, task_state, wait_for
from oracle import daily_revenue

# The session's platform comes up inside the first test's setup, and pytest-timeout counts
# fixture setup: bring-up (3-5 min on a busy 2-core runner) plus a whole run plus a failover.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1500)]


def test_killing_a_scheduler_mid_run(demo: Demo, published: list[Path], tmp_path: Path) -> None:
    events = tmp_path / "events"
    cdc_events.write(cdc_events.generate(60, seed=301), events)
    demo.publish(events)
    published.append(events)
    demo.trigger("ha__scheduler")
    victim = component(demo, "scheduler-0")
    wait_for(
        lambda: (
            task_state(demo, "ha__scheduler", "verify_staging") is not None
            or task_state(demo, "ha__scheduler", "consume") == "success"
        ),
        120,
        "consume",
    )
    pid = victim.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    result = demo.wait_run("ha__scheduler", timeout=900)
    assert result.state == "success", "the surviving scheduler must finish the run"
    assert demo.dashboard_rows() == daily_revenue(published)
    victim.start()  # back to two schedulers for the next test


def test_the_other_triggerer_resumes_a_deferred_wait(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    first, second = component(demo, "triggerer-0"), component(demo, "triggerer-1")
    second.stop()  # only triggerer-0 can pick the wait up...
    events = tmp_path / "events"
    cdc_events.write(cdc_events.generate(40, seed=302, start_id=10_000), events)
    demo.publish(events)
    published.append(events)
    demo.trigger("ha__triggerer")
    wait_for(
        lambda: task_state(demo, "ha__triggerer", "spark_transform") == "deferred",
        300,
        "spark_transform to defer",
    )

    def claimed() -> bool:  # triggerer-0 picks new triggers up on its next loop
        with demo._db() as conn, conn.cursor() as cur:
            cur.execute("select count(*) from trigger where triggerer_id is not null")
            return bool(cur.fetchone()[0] >= 1)

    wait_for(claimed, 60, "triggerer-0 to take the wait")
    second.start()  # ...then the second one comes up, and the holder dies
    pid = first.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not first.running(), 30, "triggerer-0 to die")
    # The wait had not ended when its only holder died, so a success below can only be
    # triggerer-1 resuming it (else the test would prove nothing about failover).
    assert task_state(demo, "ha__triggerer", "spark_transform") == "deferred"
    result = demo.wait_run("ha__triggerer", timeout=900)
    assert result.state == "success", "triggerer-1 must resume the wait and the task succeed"
    assert demo.dashboard_rows() == daily_revenue(published)
    first.start()
