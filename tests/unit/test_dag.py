"""The DAG folder imports cleanly and the graph is what the pipeline intends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DAGS = Path(__file__).resolve().parents[2] / "dags"

#: Libraries the tasks need only when they run. The dag-processor parses the file in a
#: fresh process every `min_file_process_interval`, so importing one at the top of a module
#: the DAG imports adds its import time to every parse (bench/parse.py: 0.37 s -> 0.19 s
#: when slack_sdk, aiohttp and pyarrow left the parse).
RUN_TIME_ONLY = ("slack_sdk", "aiohttp", "pyarrow", "numpy", "pandas", "chdb", "pyiceberg")


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # A task's executor must be configured or the DAG fails to import (Airflow 3.3).
    monkeypatch_module.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor,KubernetesExecutor")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def monkeypatch_module():  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_dag_folder_imports_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert list(dagbag.dags) == ["orders_etl"]


def test_parsing_the_dag_file_imports_no_run_time_library() -> None:
    child = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor,KubernetesExecutor"}
    result = subprocess.run(
        [sys.executable, "-c", child, str(DAGS / "orders_etl.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert "orders_etl" in loaded
    assert sorted(loaded.intersection(RUN_TIME_ONLY)) == []


def test_graph_tasks_mapping_pools_executors_outlets(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["orders_etl"]
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {
        "consume",
        "verify_staging",
        "spark_transform",
        "load_clickhouse",
        "notify",
    }
    assert tasks["spark_transform"].downstream_task_ids == {"load_clickhouse", "notify"}
    assert tasks["load_clickhouse"].executor == "KubernetesExecutor"
    assert {a.name for a in tasks["load_clickhouse"].outlets} == {
        "clickhouse_dashboards_daily_revenue"
    }
    assert tasks["consume"].downstream_task_ids == {"verify_staging"}
    assert "spark_transform" in tasks["verify_staging"].downstream_task_ids
    # consume is mapped over the three CDC topics
    assert tasks["consume"].expand_input.value["topic"] == [
        "orders.public.orders",
        "orders.public.line_items",
        "orders.public.customers",
    ]
    assert tasks["spark_transform"].pool == "spark_submission_pool"
    # Runs may overlap (dag.max_active_runs); the Spark stage and the dashboard load never
    # do (one at a time per DAG).
    assert dag.max_active_runs == 1
    assert tasks["spark_transform"].max_active_tis_per_dag == 1
    assert tasks["load_clickhouse"].max_active_tis_per_dag == 1
    assert tasks["consume"].max_active_tis_per_dag is None
    assert tasks["consume"].executor == "CeleryExecutor"
    outlets = {a.name for a in tasks["spark_transform"].outlets}
    assert "iceberg_gold_daily_revenue" in outlets
    assert not dag.catchup
    assert dag.default_args["retry_exponential_backoff"] is True
    assert os.environ.get("AIRFLOW_HOME")  # conftest isolates Airflow's home


def test_event_driven_runs_start_on_any_one_topic() -> None:
    """A list of assets would schedule on all of them (AssetAll): a run would wait until
    every topic, customers included, had a new event."""
    from airflow.sdk import AssetAny

    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    config = parse_config()
    assert config.dag.event_driven
    condition = build_dag(config).timetable.asset_condition
    assert isinstance(condition, AssetAny)
    topics = {a.uri.rsplit("/", 1)[1]: a for a in condition.objects}
    assert sorted(topics) == sorted(config.kafka.topics)
    assert all(len(a.watchers) == 1 for a in topics.values())


def test_without_events_the_dag_runs_on_its_configured_schedule() -> None:
    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    config = parse_config("dag:\n  event_driven: false\n  schedule: '@hourly'\n")
    dag = build_dag(config)
    assert getattr(dag.timetable, "asset_condition", None) is None
    assert dag.schedule == "@hourly"


def test_consume_waits_on_the_broker_as_long_as_the_config_says() -> None:
    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    dag = build_dag(parse_config("kafka:\n  read_timeout_seconds: 45\n"))
    assert dag.get_task("consume").partial_kwargs["read_timeout"] == 45
    assert build_dag(parse_config()).get_task("consume").partial_kwargs["read_timeout"] == 120


def test_the_spark_wait_uses_the_shared_watch_unless_the_config_says_poll() -> None:
    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    assert build_dag(parse_config()).get_task("spark_transform").watch is True
    polling = build_dag(parse_config("spark:\n  watch: false\n"))
    assert polling.get_task("spark_transform").watch is False
