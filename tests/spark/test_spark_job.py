"""The orders CDC Spark job against real Iceberg (JDBC catalog on Postgres, S3 warehouse).

One module-scoped Spark session; each scenario runs in its own Iceberg namespaces and
staging prefix, so tests never collide with each other or with other people's runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cdc_jobfiles import SPARK_JOBS, job_zip
from cdc_reference import current_state, daily_revenue, records
from cdc_scenario import Message, Scenario, build_scenario, write_staging

from localplatform.spark import spark_jars
from orders_contract.catalog import spark_conf
from orders_contract.metrics import JobMetrics
from orders_contract.staging import StagingLocation
from spark_operator_standin.submit import local_spark_env

pytestmark = pytest.mark.integration

SILVER_FIELDS = {
    "orders": "customer_id, status, currency, unix_micros(created_at), unix_micros(updated_at)",
    "line_items": "order_id, sku, quantity, unit_price",
    "customers": "email, country, unix_micros(created_at)",
}
TABLES = ("orders", "line_items", "customers")


@dataclass
class Lake:
    """One test's namespaces and staging prefix."""

    spark: Any
    services: Any
    name: str
    location: StagingLocation = field(init=False)

    def __post_init__(self) -> None:
        self.location = StagingLocation("staging", f"test-spark-job/{self.name}")

    @property
    def ns(self) -> dict[str, str]:
        return {layer: f"t_{self.name}_{layer}" for layer in ("bronze", "silver", "gold")}

    def stage(
        self, batch_id: str, messages: list[Message], topics: dict[str, str] | None = None
    ) -> list[str]:
        s3 = self.services.s3.client()
        if topics is None:
            return write_staging(s3, self.location, batch_id, messages)
        return write_staging(s3, self.location, batch_id, messages, topics)

    def args(
        self,
        batch_id: str,
        manifests: list[str],
        metrics_uri: str,
        record_uri: str | None = None,
        extra: list[str] | None = None,
    ) -> list[str]:
        argv = ["--batch-id", batch_id, "--metrics-uri", metrics_uri, "--catalog", "lakehouse"]
        argv += extra or []
        if record_uri:
            argv += ["--dates-record-uri", record_uri]
        for manifest in manifests:
            argv += ["--manifest", manifest]
        for layer, ns in self.ns.items():
            argv += [f"--{layer}-namespace", ns]
        return argv

    def run(
        self,
        batch_id: str,
        messages: list[Message] | None,
        tmp: Path,
        topics: dict[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> dict[str, Any]:
        from orders_cdc.job import run

        manifests = self.stage(batch_id, messages, topics) if messages is not None else []
        metrics_path = tmp / f"{batch_id}-{time.monotonic_ns()}.json"
        record = tmp / f"{self.name}-{batch_id}-dates.json"  # one per batch, like staging's
        argv = self.args(batch_id, manifests, str(metrics_path), str(record), extra)
        returned = run(self.spark, argv)
        written = JobMetrics.from_json(metrics_path.read_text()).to_dict()
        assert written == returned
        return written

    def table(self, layer: str, name: str) -> str:
        return f"lakehouse.{self.ns[layer]}.{name}"

    def silver(self, table: str) -> list[tuple[Any, ...]]:
        rows = self.spark.sql(
            f"SELECT id, {SILVER_FIELDS[table]}, is_deleted, lsn "
            f"FROM {self.table('silver', table + '_clean')} ORDER BY id"
        ).collect()
        return [tuple(r) for r in rows]

    def gold(self) -> list[tuple[Any, ...]]:
        rows = self.spark.sql(
            f"SELECT date, revenue, orders, items, customers "
            f"FROM {self.table('gold', 'daily_revenue')} ORDER BY date"
        ).collect()
        return [tuple(r) for r in rows]

    def bronze(self, table: str) -> list[tuple[Any, ...]]:
        rows = self.spark.sql(
            "SELECT topic, `partition`, `offset`, op, lsn, id, value "
            f"FROM {self.table('bronze', table + '_raw')} ORDER BY `partition`, `offset`"
        ).collect()
        return [tuple(r) for r in rows]

    def quarantine(self) -> list[tuple[Any, ...]]:
        rows = self.spark.sql(
            "SELECT topic, `partition`, `offset`, reason, value "
            f"FROM {self.table('silver', 'quarantine')} ORDER BY topic, `partition`, `offset`"
        ).collect()
        return [tuple(r) for r in rows]

    def contents(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"silver.{t}": self.silver(t) for t in TABLES}
        out.update({f"bronze.{t}": self.bronze(t) for t in TABLES})
        out["quarantine"] = self.quarantine()
        out["gold"] = self.gold()
        return out

    def snapshots(self) -> dict[str, list[int]]:
        names = [f"silver.{t}_clean" for t in TABLES] + ["gold.daily_revenue"]
        out = {}
        for name in names:
            layer, table = name.split(".")
            out[name] = [
                r.snapshot_id
                for r in self.spark.sql(
                    f"SELECT snapshot_id FROM {self.table(layer, table)}.snapshots"
                ).collect()
            ]
        return out


def assert_matches_reference(lake: Lake, messages: list[Message]) -> None:
    for table in TABLES:
        expected = records(current_state(messages, table))
        assert lake.silver(table) == expected, f"silver.{table}_clean differs from the reference"
    assert lake.gold() == records(daily_revenue(messages))


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario()


@pytest.fixture(scope="module")
def sequential(spark: Any, services: Any, scenario: Scenario, tmp_path_factory: Any) -> Any:
    """Batch 1, batch 1 again, then batch 2, in one set of namespaces (state after each)."""
    tmp = tmp_path_factory.mktemp("sequential")
    lake = Lake(spark, services, f"seq_{os.urandom(4).hex()}")
    first = lake.run("b1", scenario.batch(1), tmp)
    after_first = lake.contents()
    snapshots_first = lake.snapshots()
    rerun = lake.run("b1", scenario.batch(1), tmp)
    after_rerun = lake.contents()
    snapshots_rerun = lake.snapshots()
    second = lake.run("b2", scenario.batch(2), tmp)
    return {
        "lake": lake,
        "metrics": (first, rerun, second),
        "contents": (after_first, after_rerun, lake.contents()),
        "snapshots": (snapshots_first, snapshots_rerun),
    }


def test_scenario_covers_the_contract(scenario: Scenario) -> None:
    one = scenario.batch(1)
    ops = Counter(m.event["op"] for m in one if m.event)
    assert set(ops) == {"c", "u", "d", "r"}
    assert any(m.kind == "tombstone" for m in one)
    from orders_cdc.schemas import REASONS  # spark-jobs/ is on the path (conftest.py)

    assert {m.reason for m in scenario.messages if m.kind == "quarantine"} == set(REASONS)
    lsns = [(m.table, m.event["id"], m.event["lsn"]) for m in scenario.messages if m.event]
    assert len(lsns) > len(set(lsns)), "duplicates are delivered"


def test_first_batch_matches_the_reference(sequential: Any, scenario: Scenario) -> None:
    lake = Lake(sequential["lake"].spark, sequential["lake"].services, sequential["lake"].name)
    first = sequential["contents"][0]
    one = scenario.batch(1)
    for table in TABLES:
        assert first[f"silver.{table}"] == records(current_state(one, table)), table
    assert first["gold"] == records(daily_revenue(one))
    assert first["gold"], "the first batch must produce revenue"
    assert lake is not None


def test_rerun_of_a_batch_changes_nothing(sequential: Any) -> None:
    after_first, after_rerun, _ = sequential["contents"]
    assert after_rerun == after_first
    before, after = sequential["snapshots"]
    assert after == before, "a rerun must not commit to silver or gold"
    first, rerun = sequential["metrics"][0], sequential["metrics"][1]
    assert rerun["violations"] == []
    # The dates are the batch's: a rerun recomputes (and the load reloads) the same ones.
    assert rerun["touched_dates"] == first["touched_dates"] != []
    assert rerun["gold"]["committed"] is False
    assert rerun["gold"]["rows_out"] == first["gold"]["rows_out"]
    for table in TABLES:
        name = f"{sequential['lake'].ns['silver']}.{table}_clean"
        assert rerun["silver"][name]["merged_this_attempt"] == 0
        for key in ("upserts_applied", "deletes_applied", "stale_or_duplicate"):
            assert rerun["silver"][name][key] == first["silver"][name][key], (name, key)


def test_second_batch_matches_the_reference_for_both(sequential: Any, scenario: Scenario) -> None:
    lake = sequential["lake"]
    assert_matches_reference(lake, scenario.batch(1, 2))
    second = sequential["metrics"][2]
    assert (second["status"], second["violations"]) == ("succeeded", [])


def test_one_batch_holding_both_equals_two_in_sequence(
    spark: Any, services: Any, scenario: Scenario, sequential: Any, tmp_path: Path
) -> None:
    lake = Lake(spark, services, f"one_{os.urandom(4).hex()}")
    lake.run("both", scenario.batch(1, 2), tmp_path)
    assert lake.contents() == sequential["contents"][2]


def test_batches_applied_in_reverse_order_reach_the_same_tables(
    spark: Any, services: Any, scenario: Scenario, sequential: Any, tmp_path: Path
) -> None:
    """Runs may overlap (dag.max_active_runs > 1), so a later batch can reach Spark first:
    the state rule (highest lsn wins) and gold's recompute of every touched date from
    silver make batches commute. Batch 2 before batch 1 ends in the very tables batch 1
    then batch 2 do, the dashboard's source (gold) included."""
    lake = Lake(spark, services, f"reverse_{os.urandom(4).hex()}")
    later = lake.run("b2", scenario.batch(2), tmp_path)
    assert lake.contents() != sequential["contents"][2], "batch 2 alone is not the end state"
    earlier = lake.run("b1", scenario.batch(1), tmp_path)
    for metrics in (later, earlier):
        assert (metrics["status"], metrics["violations"]) == ("succeeded", [])
    assert lake.contents() == sequential["contents"][2]
    assert_matches_reference(lake, scenario.batch(1, 2))
    # Batch 1 arrived late: some of its events were older than silver's and were not applied.
    stale = sum(c["stale_or_duplicate"] for c in earlier["silver"].values())
    assert stale > sum(c["stale_or_duplicate"] for c in sequential["metrics"][0]["silver"].values())


def test_maintenance_compacts_and_expires_without_changing_the_tables(
    spark: Any, services: Any, scenario: Scenario, sequential: Any, tmp_path: Path
) -> None:
    """With thresholds low enough to be due, the job compacts every table past them
    (silver's position deletes applied and removed) and expires old snapshots; the tables
    hold exactly what the same batches give without maintenance, and a rerun afterwards
    still changes nothing."""
    lake = Lake(spark, services, f"maint_{os.urandom(4).hex()}")
    due = ["--compact-above-files", "4", "--snapshot-retention-hours", "0", "--keep-snapshots", "1"]
    first = lake.run("b1", scenario.batch(1), tmp_path)
    assert first["maintenance"] == {}, "the defaults are far from due for a small table"
    of_batch_1 = lake.snapshots()
    second = lake.run("b2", scenario.batch(2), tmp_path, extra=due)
    assert second["maintenance_errors"] == []
    for layer, table in (("silver", f"{t}_clean") for t in TABLES):
        name = lake.table(layer, table)
        done = second["maintenance"][name]
        assert done["data_files_after"] < done["data_files_before"], name
        assert done["rewritten_data_files"] > 0
    orders = second["maintenance"][lake.table("silver", "orders_clean")]
    assert orders["delete_files_before"] > 0, "batch 2 updates and deletes stored orders"
    assert orders["delete_files_after"] == 0
    # Expired: no snapshot from before the cutoff is left (the compaction's own commits
    # came after it and stay).
    for name, ids in lake.snapshots().items():
        assert not set(ids) & set(of_batch_1[name]), f"{name} kept batch 1's snapshot"
    gold_table = second["maintenance"][lake.table("gold", "daily_revenue")]
    assert gold_table["rewritten_data_files"] == 0, "gold holds one file per date: not due"
    assert gold_table["snapshots_after"] == 1 < gold_table["snapshots_before"]
    assert lake.contents() == sequential["contents"][2]
    assert_matches_reference(lake, scenario.batch(1, 2))
    # Nothing due any more: a rerun of batch 2 commits nothing and maintains nothing.
    snapshots = lake.snapshots()
    calm = ["--compact-above-files", "1000", "--keep-snapshots", "1000"]
    rerun = lake.run("b2", scenario.batch(2), tmp_path, extra=calm)
    assert (rerun["maintenance"], rerun["violations"]) == ({}, [])
    assert lake.snapshots() == snapshots
    assert lake.contents() == sequential["contents"][2]


def test_compaction_counts_only_the_files_it_has_not_compacted_yet(
    spark: Any, services: Any, scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grown table's compacted files do not make compaction due again: only small data
    files and delete files count towards `compact_above_files`, or a table past it would
    be rewritten by every run. (Here every data file counts as compacted.)"""
    from orders_cdc import maintenance

    monkeypatch.setattr(maintenance, "COMPACTED_FILE_BYTES", 1)
    lake = Lake(spark, services, f"maintbig_{os.urandom(4).hex()}")
    due = ["--compact-above-files", "4", "--keep-snapshots", "0"]
    first = lake.run("b1", scenario.batch(1), tmp_path, extra=due)
    silver_orders = lake.table("silver", "orders_clean")
    state = maintenance.table_state(spark, silver_orders, dt.datetime.now(dt.UTC))
    assert (state.data_files > 4, state.delete_files) == (True, 0)
    assert first["maintenance"] == {}, "no delete file, no small data file: nothing due"
    second = lake.run("b2", scenario.batch(2), tmp_path, extra=due)
    assert second["maintenance_errors"] == []
    orders = second["maintenance"][silver_orders]
    assert orders["delete_files_before"] > 4, "batch 2 updates and deletes stored orders"
    assert (orders["delete_files_after"], orders["rewritten_data_files"] > 0) == (0, True)


def new_customers(batches: list[range]) -> Scenario:
    """Batch i+1 creates the customers of `batches[i]` (nothing else)."""
    story = Scenario()
    story.split_lsn = 0  # every change names its batch
    for batch, ids in enumerate(batches, start=1):
        for cid in ids:
            row = {"id": cid, "email": f"c{cid}@example.com", "country": "DE",
                   "created_at": "2026-11-02T10:00:00Z"}  # fmt: skip
            story.change("customers", "c", row, batch=batch)
    story.deliver()
    return story


def test_a_batch_opens_only_the_silver_files_its_keys_may_be_in(
    spark: Any, services: Any, tmp_path: Path
) -> None:
    """Every read of silver for a batch's keys (the lookup before the MERGE, the MERGE's
    own scan, the check after it) is limited to the keys' range, which Iceberg answers from
    its files' column bounds: a batch of new customers does not open the files of the
    customers stored before it. Shown by deleting those files from the object store: one
    read of them would fail the job."""
    lake = Lake(spark, services, f"prune_{os.urandom(4).hex()}")
    story = new_customers([range(1, 41), range(1_000, 1_040)])
    first = lake.run("k1", story.batch(1), tmp_path)
    assert first["status"] == "succeeded"
    customers = lake.table("silver", "customers_clean")
    paths = [r[0] for r in spark.sql(f"SELECT file_path FROM {customers}.files").collect()]
    assert paths, "batch 1 wrote silver.customers"
    s3 = services.s3.client()
    for uri in paths:
        bucket, key = uri.split("://", 1)[1].split("/", 1)
        s3.delete_object(Bucket=bucket, Key=key)
    second = lake.run("k2", story.batch(2), tmp_path)
    assert (second["status"], second["violations"]) == ("succeeded", [])
    counts = second["silver"][f"{lake.ns['silver']}.customers_clean"]
    assert (counts["upserts_applied"], counts["missing"]) == (40, 0)


def test_a_failing_maintenance_is_reported_and_the_batch_still_succeeds(
    spark: Any,
    services: Any,
    sequential: Any,
    scenario: Scenario,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compaction that fails (here: made to raise, as a commit conflict would) leaves the
    batch committed and whole; the failure is in the metrics, named per table."""
    from orders_cdc import maintenance

    def conflict(spark: Any, table: str, merge_on_read: bool) -> dict[str, int]:
        raise RuntimeError(f"injected: commit conflict on {table}")

    monkeypatch.setattr(maintenance, "compact", conflict)
    lake = Lake(spark, services, f"maintfail_{os.urandom(4).hex()}")
    metrics = lake.run("b1", scenario.batch(1), tmp_path, extra=["--compact-above-files", "4"])
    assert (metrics["status"], metrics["violations"]) == ("succeeded", [])
    failed = {e.split(":", 1)[0] for e in metrics["maintenance_errors"]}
    assert lake.table("silver", "orders_clean") in failed
    assert failed == set(metrics["maintenance"]), "every table due is reported"
    assert all("injected: commit conflict" in e for e in metrics["maintenance_errors"])
    assert lake.contents() == sequential["contents"][0]


def test_topics_renamed_in_the_config_reach_the_same_tables(
    spark: Any, services: Any, scenario: Scenario, sequential: Any, tmp_path: Path
) -> None:
    """`kafka.topics` is configurable (another Debezium topic prefix): the job takes each
    manifest's topic and maps it to its table by the contract, not by a list of its own."""
    lake = Lake(spark, services, f"renamed_{os.urandom(4).hex()}")
    renamed = {table: f"shop-eu.sales.{table}" for table in TABLES}
    metrics = lake.run("r1", scenario.batch(1), tmp_path, topics=renamed)
    assert (metrics["status"], metrics["violations"]) == ("succeeded", [])
    assert set(metrics["topics"]) == set(renamed.values())
    first = sequential["contents"][0]
    for table in TABLES:
        assert lake.silver(table) == first[f"silver.{table}"], table
    assert lake.gold() == first["gold"]
    assert {row[0] for row in lake.bronze("orders")} == {renamed["orders"]}


def test_quarantine_and_metrics_are_real(sequential: Any, scenario: Scenario) -> None:
    first = sequential["metrics"][0]
    one = scenario.batch(1)
    expected_reasons = Counter(m.reason for m in one if m.kind == "quarantine")
    assert first["quarantined_by_reason"] == dict(expected_reasons)
    tombstones = sum(m.kind == "tombstone" for m in one)
    assert first["totals"] == {
        "events_in": len(one),
        "bronze": sum(m.kind == "event" for m in one),
        "quarantined": sum(expected_reasons.values()),
        "tombstones": tombstones,
    }
    ns = sequential["lake"].ns
    for table in TABLES:
        delivered = [m for m in one if m.table == table]
        bronze = first["bronze"][f"{ns['bronze']}.{table}_raw"]
        assert bronze["rows_in"] == bronze["stored_for_batch"]
        assert bronze["rows_in"] == sum(m.kind == "event" for m in delivered)
        silver = first["silver"][f"{ns['silver']}.{table}_clean"]
        assert silver["events_in"] == bronze["rows_in"]
        keys = {m.event["id"] for m in delivered if m.event}
        assert silver["keys_in"] == len(keys)
        assert silver["superseded_in_batch"] == silver["events_in"] - len(keys)
        assert silver["missing"] == 0
        live = sum(1 for row in sequential["contents"][0][f"silver.{table}"] if not row[-2])
        assert silver["upserts_applied"] == live, "every live key in silver came from batch 1"
    touched = set(first["touched_dates"])
    assert {d.isoformat() for d, *_ in sequential["contents"][0]["gold"]} <= touched
    assert first["gold"]["rows_stored"] == len(sequential["contents"][0]["gold"])
    assert first["duration_seconds"] > 0
    assert set(first["step_seconds"]) >= {"read_and_parse", "silver_merge", "gold"}
    # Spark's status tracker saw the steps' jobs: reading runs a job per table at least.
    assert set(first["step_spark_jobs"]) == set(first["step_seconds"]) - {"session_start"}
    assert first["step_spark_jobs"]["read_and_parse"] >= len(TABLES)
    # The test session sets spark.sql.shuffle.partitions (4): a configured value stays.
    assert first["shuffle_partitions"] == 4
    assert first["violations"] == []
    quarantine = sequential["contents"][0]["quarantine"]
    assert Counter(r[3] for r in quarantine) == expected_reasons
    raw = sorted(bytes(r[4]) for r in quarantine)
    assert raw == sorted(m.value for m in one if m.kind == "quarantine"), "raw bytes are kept"


def test_a_retry_after_silver_committed_recomputes_the_dates_gold_missed(
    spark: Any,
    services: Any,
    scenario: Scenario,
    sequential: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    """The job dies after its silver MERGEs and before gold: silver shows batch 2, gold
    still batch 1. The retry finds nothing new for silver, yet recomputes every date
    batch 2 affects (those from before its MERGEs come from the batch's record)."""
    from orders_cdc import gold

    lake = Lake(spark, services, f"crash_{os.urandom(4).hex()}")
    lake.run("c1", scenario.batch(1), tmp_path)
    real = gold.replace_dates

    def killed_before_gold(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("driver killed before gold (test)")

    monkeypatch.setattr(gold, "replace_dates", killed_before_gold)
    with pytest.raises(RuntimeError, match="killed before gold"):
        lake.run("c2", scenario.batch(2), tmp_path)
    monkeypatch.setattr(gold, "replace_dates", real)
    both = scenario.batch(1, 2)
    for table in TABLES:
        assert lake.silver(table) == records(current_state(both, table))
    assert lake.gold() != records(daily_revenue(both)), "the crash must leave gold stale"

    retry = lake.run("c2", scenario.batch(2), tmp_path)
    assert_matches_reference(lake, both)
    assert retry["violations"] == []
    assert retry["gold"]["committed"] is True
    assert all(s["merged_this_attempt"] == 0 for s in retry["silver"].values())
    # The same dates as batch 2 without the crash (the sequential fixture: b1, b1, b2).
    assert retry["touched_dates"] == sequential["metrics"][2]["touched_dates"]
    again = lake.run("c2", scenario.batch(2), tmp_path)
    assert again["touched_dates"] == retry["touched_dates"]
    assert again["gold"]["committed"] is False
    assert_matches_reference(lake, both)


def test_an_empty_batch_succeeds_with_zero_metrics(
    spark: Any, services: Any, tmp_path: Path
) -> None:
    lake = Lake(spark, services, f"empty_{os.urandom(4).hex()}")
    metrics = lake.run("empty", [], tmp_path)
    assert metrics["totals"] == {"events_in": 0, "bronze": 0, "quarantined": 0, "tombstones": 0}
    assert metrics["touched_dates"] == []
    assert (metrics["status"], metrics["violations"]) == ("succeeded", [])
    assert all(t["manifest_rows"] == 0 for t in metrics["topics"].values())
    assert lake.gold() == []
    assert all(lake.silver(t) == [] for t in TABLES)


def test_spark_submit_runs_the_job_like_the_spark_application(
    services: Any, scenario: Scenario, tmp_path: Path
) -> None:
    """A real spark-submit (its own JVM), catalog only through --conf, metrics to S3."""
    config = services.catalog_config()
    name = f"submit_{os.urandom(4).hex()}"
    lake = Lake(None, services, name)
    messages = scenario.batch(1)
    manifests = lake.stage("s1", messages)
    metrics_uri = f"s3://staging/test-spark-job/{name}/metrics.json"
    conf = {
        **spark_conf(config),
        "spark.jars": ",".join(str(j) for j in spark_jars()),
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
    }
    submit = Path(sys.executable).parent.parent / (
        "lib/python3.11/site-packages/pyspark/bin/spark-submit"
    )
    command = [str(submit), "--master", "local[2]", "--py-files", str(job_zip(tmp_path))]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(SPARK_JOBS / "main.py"), *lake.args("s1", manifests, metrics_uri)]
    env = {**os.environ, **local_spark_env()}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=420)
    assert done.returncode == 0, done.stderr[-4000:]
    body = services.s3.client().get_object(
        Bucket="staging", Key=metrics_uri[len("s3://staging/") :]
    )
    metrics = json.loads(body["Body"].read())
    assert metrics["status"] == "succeeded"
    assert metrics["totals"]["events_in"] == len(messages)
    expected_gold = [
        [d.isoformat(), str(r), o, i, c] for d, r, o, i, c in records(daily_revenue(messages))
    ]
    assert "orders_cdc batch s1:" in done.stdout
    from pyiceberg.catalog import load_catalog

    from orders_contract.catalog import pyiceberg_properties

    catalog = load_catalog(config.name, **pyiceberg_properties(config))
    gold = catalog.load_table(f"{lake.ns['gold']}.daily_revenue").scan().to_arrow().to_pylist()
    got = sorted(
        [[g["date"].isoformat(), str(g["revenue"]), g["orders"], g["items"], g["customers"]]
         for g in gold]
    )  # fmt: skip
    assert got == expected_gold


def test_a_steps_tables_run_side_by_side_in_its_job_group(spark: Any) -> None:
    """The job runs a step's per-table work on threads (orders_cdc.job.side_by_side):
    their Spark jobs carry the step's job group (what the per-step job counts read), the
    results come back by name, and a failure is raised only once every other table's work
    is over (none still writing while the job reports the failure)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from orders_cdc.job import side_by_side

    group = f"side-by-side-{os.urandom(4).hex()}"
    spark.sparkContext.setJobGroup(group, "test")
    slow_finished = threading.Event()

    def work(name: str) -> int:
        rows = int(spark.range(int(name)).count())
        if name == "1":
            raise ValueError("table 1 failed (test)")
        if name == "3":
            time.sleep(1.0)
            slow_finished.set()
        return rows

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            assert side_by_side(pool, work, ("2", "3")) == {"2": 2, "3": 3}
            slow_finished.clear()
            with pytest.raises(ValueError, match="table 1 failed"):
                side_by_side(pool, work, ("1", "2", "3"))
            assert slow_finished.is_set(), "the failure was raised while table 3 still ran"
        jobs = spark.sparkContext.statusTracker().getJobIdsForGroup(group)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert len(jobs) >= 5, "the threads' Spark jobs left the step's job group"
