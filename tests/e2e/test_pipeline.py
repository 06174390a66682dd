"""End to end on the local platform: CDC events in Kafka become the ClickHouse dashboard
through the chart's Airflow configuration, a SparkApplication (run by the stand-in) and
Iceberg. Asserted against an independent pandas computation from the raw events.

On the session's shared platform (tests/conftest.py): the dashboard is compared with the
computation over every batch published in the session.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from localplatform import cdc_events
from localplatform.demo import Demo, RunResult

sys.path.insert(0, str(Path(__file__).parent))
from oracle import daily_revenue

# Several DAG runs in one test, each bounded by wait_run's own timeout: the session-wide
# 600 s would cut it short on a loaded machine (a CI run beside other jobs took 12 min).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def run(demo: Demo, run_id: str, trigger: bool = True) -> RunResult:
    started = time.monotonic()
    if trigger:
        demo.trigger(run_id)
    result = demo.wait_run(run_id, timeout=900)
    print(f"{run_id}: {result.state} in {time.monotonic() - started:.1f} s {result.stage_seconds}")
    assert result.state == "success"
    return result


def test_batches_rerun_and_increments_match_an_independent_computation(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    batch1, batch2 = tmp_path / "batch1", tmp_path / "batch2"
    cdc_events.write(cdc_events.generate(120, seed=101, start_id=60_000), batch1)
    # Batch 2 revises the first 60 orders (newer lsns: status, created_at and items
    # change, so orders move between dates and in and out of paid/shipped) and adds none.
    revisions = cdc_events.generate(60, seed=202, start_id=60_000, lsn_base=900_000_000)
    cdc_events.write(revisions, batch2)

    counts = demo.publish(batch1)
    published.append(batch1)
    run(demo, "e2e__batch1")
    expected1 = daily_revenue(published)
    assert demo.dashboard_rows() == expected1
    metrics = demo.metrics("e2e__batch1")
    totals = metrics.totals
    assert totals.events_in == sum(counts.values())
    assert totals.events_in == totals.bronze + totals.quarantined + totals.tombstones
    assert totals.quarantined == 4  # the generator's four malformed messages
    assert (metrics.status, metrics.violations) == ("succeeded", [])

    demo.clear("e2e__batch1")  # the same run again: same batch id, same offsets
    run(demo, "e2e__batch1", trigger=False)
    assert demo.dashboard_rows() == expected1, "clearing and rerunning changed the dashboard"

    demo.publish(batch2)
    published.append(batch2)
    run(demo, "e2e__batch2")
    expected2 = daily_revenue(published)
    assert expected2 != expected1  # the second batch really changes the dashboard
    assert demo.dashboard_rows() == expected2

    # No new event on any topic: the run succeeds, says so, and changes nothing.
    empty = run(demo, "e2e__nothing_new")
    assert {s for k, s in empty.task_states.items() if k.startswith("consume")} == {"success"}
    assert {k: s for k, s in empty.task_states.items() if not k.startswith("consume")} == {
        "verify_staging": "skipped",
        "spark_transform": "skipped",
        "load_clickhouse": "skipped",
        "notify": "skipped",
    }
    logs = [
        p
        for p in (demo.run_dir / "airflow" / "logs").rglob("*.log")
        if "run_id=e2e__nothing_new" in str(p) and "task_id=verify_staging" in str(p)
    ]
    assert any("nothing to do: no new offsets" in p.read_text() for p in logs), logs
    assert demo.dashboard_rows() == expected2

    assert_no_credential_leaked(demo)

    csv_path = tmp_path / "daily_revenue.csv"
    assert demo.write_csv(csv_path) == len(expected2)
    assert csv_path.read_text().splitlines()[0] == "date,revenue,orders,items,customers"


def assert_no_credential_leaked(demo: Demo) -> None:
    """No generated password or key appears in any task log, Spark log or XCom."""
    creds = demo.services.credentials
    secrets = [creds[name] for name in creds.NAMES]
    keys = json.loads((demo.run_dir / "airflow" / "keys.json").read_text())
    secrets += list(keys.values())
    logs = [
        *(demo.run_dir / "airflow" / "logs").rglob("*.log"),
        *(demo.run_dir / "spark").rglob("*.log"),
        *(demo.run_dir / "logs").glob("*.log"),
    ]
    assert logs, "expected task and Spark logs to scan"
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [s[:4] + "..." for s in secrets if s in text]
        assert not leaked, f"{path} contains a credential ({leaked})"
    with demo._db() as conn, conn.cursor() as cur:
        cur.execute("select task_id, key, value::text from xcom where dag_id = 'orders_etl'")
        rows = cur.fetchall()
    assert rows, "expected XComs to scan"
    for task_id, key, value in rows:
        assert not any(s in (value or "") for s in secrets), f"XCom {task_id}/{key} leaks"
