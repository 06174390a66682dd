"""Recovery never loses a date (issue: recovery): a run that fails halfway and is retried
or cleared ends with gold and the dashboard equal to the independent computation.

Each scenario breaks one step of a real run on the demo platform, from outside, the way
it breaks in production:

- the Spark driver's JVM is SIGKILLed after the job's first silver commit and before
  gold (watched in the Iceberg JDBC catalog): the task's retry runs the job again;
- the job completes and writes its metrics, which are deleted before the operator
  reads them (an S3 read that fails once): the retry runs the job again;
- ClickHouse is unreachable for every try of load_clickhouse: the run fails and pages;
  ClickHouse comes back, the whole run is cleared through the REST API with
  `reset_dag_runs: true` (the UI's Clear), runs again and loads the batch; a second clear
  changes nothing.

Before the fix, each retry found silver already up to date, reported no touched dates,
and `load_clickhouse` loaded nothing: every run ended green with a stale dashboard.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from localplatform import cdc_events
from localplatform.demo import DAG_ID, Demo
from orders_contract.staging import batch_id_for_run

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from faults import task_tries, wait_for
from oracle import daily_revenue

pytestmark = pytest.mark.reliability


def catalog_locations(demo: Demo) -> dict[str, str]:
    """`<namespace>.<table>` -> current metadata location, from the Iceberg JDBC catalog
    (empty before the first run has created the catalog's tables)."""
    with psycopg2.connect(demo.services.postgres.url("iceberg")) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('iceberg_tables') is not null")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("select table_namespace, table_name, metadata_location from iceberg_tables")
        return {f"{ns}.{name}": location for ns, name, location in cur.fetchall()}


def spark_submit_pids(batch_id: str) -> list[int]:
    """The JVMs of spark-submit (SparkSubmit) running this batch's job."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"org.apache.spark.deploy.SparkSubmit" in argv and batch_id.encode() in argv:
                pids.append(int(entry.name))
    return pids


def publish_batch(
    demo: Demo, published: list[Path], tmp_path: Path, seed: int, start: int, revise: int
) -> None:
    """One batch: 40 new orders from `start`, and newer versions of the 20 orders from
    `revise` (an earlier scenario's, when the module runs in order), so orders move
    between dates and in and out of paid/shipped, away from dates only silver's state
    before the batch knew."""
    events = tmp_path / "events"
    cdc_events.write(cdc_events.generate(40, seed=seed, start_id=start), events)
    cdc_events.write(
        cdc_events.generate(20, seed=seed + 1, start_id=revise, lsn_base=900_000_000 + seed * 1000),
        events,
    )
    demo.publish(events)
    published.append(events)


def slack_alerts(demo: Demo) -> list[str]:
    path = demo.run_dir / "slack.jsonl"
    if not path.exists():
        return []
    return [json.dumps(json.loads(line)) for line in path.read_text().splitlines() if line]


@pytest.mark.timeout(1500)
def test_driver_killed_between_silver_and_gold_is_recovered_by_the_retry(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    if not any(t.startswith("silver.") for t in catalog_locations(demo)):
        # First on a fresh platform: a run creates the tables (a table's creation is a
        # catalog change too, and the kill must land after a MERGE, not a CREATE).
        warm_up = tmp_path / "warm-up"
        cdc_events.write(cdc_events.generate(10, seed=400, start_id=39_000), warm_up)
        demo.publish(warm_up)
        published.append(warm_up)
        demo.trigger("rel__warm_up")
        assert demo.wait_run("rel__warm_up", timeout=900, progress=False).state == "success"
    publish_batch(demo, published, tmp_path, seed=401, start=40_000, revise=30_000)
    run_id = "rel__kill_before_gold"
    batch_id = batch_id_for_run(DAG_ID, run_id)
    before = catalog_locations(demo)
    silver = [t for t in before if t.startswith("silver.") and t.endswith("_clean")]
    assert len(silver) == 3, f"the silver tables are not all in the catalog: {sorted(before)}"

    demo.trigger(run_id)

    def silver_committed() -> bool:
        now = catalog_locations(demo)
        return any(now.get(t) != before.get(t) for t in silver)

    wait_for(silver_committed, 600, "the job's first silver commit", every=0.05)
    victims = spark_submit_pids(batch_id)
    assert victims, "no spark-submit JVM runs this batch"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    at_kill = catalog_locations(demo)
    assert at_kill.get("gold.daily_revenue") == before.get("gold.daily_revenue"), (
        "gold was committed before the kill landed: the scenario did not happen"
    )
    print(f"\nkilled spark-submit {victims} after a silver commit, before gold")

    result = demo.wait_run(run_id, timeout=900, progress=False)
    assert result.state == "success"
    assert [t for _, _, t in task_tries(demo, run_id, "spark_transform")] == [2]
    metrics = demo.metrics(run_id)
    assert metrics.touched_dates, "the retry must recompute the batch's dates"
    assert demo.dashboard_rows() == daily_revenue(published)


@pytest.mark.timeout(1500)
def test_metrics_unreadable_once_after_the_job_completed_is_recovered_by_the_retry(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    publish_batch(demo, published, tmp_path, seed=402, start=41_000, revise=40_000)
    run_id = "rel__metrics_lost"
    batch_id = batch_id_for_run(DAG_ID, run_id)
    s3 = demo.services.s3.client()
    key = f"cdc/batch={batch_id}/_metrics.json"

    def metrics_written() -> bool:
        return "Contents" in s3.list_objects_v2(Bucket="staging", Prefix=key)

    demo.trigger(run_id)
    wait_for(metrics_written, 600, "the job's metrics document", every=0.05)
    s3.delete_object(Bucket="staging", Key=key)  # the operator's read fails, once
    print("\ndeleted the metrics document before the operator read it")

    result = demo.wait_run(run_id, timeout=900, progress=False)
    assert result.state == "success"
    tries = [t for _, _, t in task_tries(demo, run_id, "spark_transform")]
    assert tries == [2], f"spark_transform must have failed once on the read: {tries}"
    metrics = demo.metrics(run_id)
    assert metrics.touched_dates, "the retry must report the batch's dates"
    assert demo.dashboard_rows() == daily_revenue(published)


@contextlib.contextmanager
def clickhouse_unreachable(demo: Demo) -> Any:
    """chdb's data directory replaced by a file: every load fails to open it."""
    path = demo.services.chdb_path
    away = path.with_name(path.name + ".away")
    path.rename(away)
    path.write_text("ClickHouse is down (reliability test)\n")
    try:
        yield
    finally:
        path.unlink()
        away.rename(path)


@pytest.mark.timeout(1800)
def test_clickhouse_down_for_every_try_then_the_cleared_run_loads_the_batch(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    publish_batch(demo, published, tmp_path, seed=403, start=42_000, revise=41_000)
    run_id = "rel__clickhouse_down"
    alerts_before = len(slack_alerts(demo))
    with clickhouse_unreachable(demo):
        demo.trigger(run_id)
        result = demo.wait_run(run_id, timeout=900, progress=False)
        assert result.state == "failed"
        assert result.task_states["load_clickhouse"] == "failed"
        assert result.task_states["spark_transform"] == "success"
        tries = [t for _, _, t in task_tries(demo, run_id, "load_clickhouse")]
        assert tries == [4], f"load_clickhouse must have used all its tries: {tries}"
    new_alerts = slack_alerts(demo)[alerts_before:]
    pages = [a for a in new_alerts if "[PAGE]" in a and "load_clickhouse" in a]
    assert pages, f"no page for the failed load: {new_alerts}"

    # ClickHouse is back. The operator's usual move: clear the whole run (the UI's Clear,
    # which resets the run: Airflow 3.3 answered 500 here while the run had a deadline).
    status = demo.clear(run_id)
    assert status == 200
    result = demo.wait_run(run_id, timeout=900, progress=False)
    assert result.state == "success"
    expected = daily_revenue(published)
    assert demo.dashboard_rows() == expected

    assert demo.clear(run_id) == 200  # again: same batch, same offsets, same dashboard
    assert demo.wait_run(run_id, timeout=900, progress=False).state == "success"
    assert demo.dashboard_rows() == expected
