"""A quick smoke run of each benchmark script (`make bench` measures; this only checks
that every script runs, prints its table and writes JSON the report can use).

The scripts run as `python -m bench.<name> --smoke --out <tmp>` from the repository root,
against the session's local servers where they need any; sizes are tiny."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localplatform import paths
from localplatform.cluster import Cluster
from localplatform.services import LocalServices

pytestmark = pytest.mark.bench


def run_bench(name: str, out: Path, *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--smoke", "--out", str(out), *args],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"bench.{name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.startswith("machine: "), result.stdout
    return result.stdout


def test_chart_and_parse_and_report(tmp_path: Path) -> None:
    out = run_bench("chart", tmp_path)
    assert "default install" in out
    chart = json.loads((tmp_path / "chart.json").read_text())
    assert chart["default"]["pods"] > 0
    assert chart["default"]["cpu_cores"] > 0

    out = run_bench("parse", tmp_path, "--repeats", "1")
    assert "target DAG parse < 0.2 s" in out
    parse = json.loads((tmp_path / "parse.json").read_text())
    assert parse["runs"][0]["tasks"] >= 5

    doc = tmp_path / "benchmarks.md"
    report = subprocess.run(
        [sys.executable, "-m", "bench.report", "--results", str(tmp_path), "--doc", str(doc)],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "wrote" in report.stdout
    assert (tmp_path / "benchmarks.png").stat().st_size > 0
    # smoke results are never published as figures
    assert "Not measured yet" in doc.read_text()


def test_consume(tmp_path: Path, data_services: LocalServices) -> None:
    out = run_bench("consume", tmp_path, timeout=180)
    body = json.loads((tmp_path / "consume.json").read_text())
    assert {v: f["events"] for v, f in body["variants"].items()} == {
        "raw": 3_000,
        "project": 3_000,
        "capstone": 3_000,
    }
    assert "| project " in out


def test_ledger(tmp_path: Path, data_services: LocalServices) -> None:
    out = run_bench("ledger", tmp_path)
    body = json.loads((tmp_path / "ledger.json").read_text())
    assert body["earlier_claims"] == 50
    assert body["keys_listed_per_claim_max"] <= 2, "a claim must not list the whole ledger"
    assert "keys listed" in out


def test_freshness(tmp_path: Path, data_services: LocalServices) -> None:
    # The full streams need the whole Airflow platform (make bench); the smoke paces a
    # 2 s stream into the session's Kafka and checks the table and the JSON rows.
    out = run_bench("freshness", tmp_path, timeout=180)
    rows = json.loads((tmp_path / "freshness.json").read_text())["rows"]
    keys = {"events_per_s", "duration_s", "p50_s", "p95_s", "max_s", "runs", "empty_runs"}
    assert keys <= set(rows[0])
    assert rows[0]["events"] == 40
    assert "| before (AwaitMessageTrigger" in out


def test_e2e_and_triggerer_plans(tmp_path: Path, local_cluster: Cluster) -> None:
    # The full runs need the whole Airflow platform (make bench); the smoke checks the
    # plan, the benchmark DAG file and the API server's metrics endpoint.
    assert "1,000,000" in run_bench("e2e", tmp_path)
    assert "compiles" in run_bench("triggerer", tmp_path)


def test_spark_job_plan(tmp_path: Path) -> None:
    # The full runs need the data services and minutes of Spark (make bench); the smoke
    # renders the chart's SparkApplication and checks out a baseline's job (HEAD: a
    # shallow clone may not hold the default baseline revision).
    out = run_bench("spark_job", tmp_path, "--baseline", "HEAD")
    assert "chart template: SparkApplication" in out


def test_table_history_plan(tmp_path: Path) -> None:
    # The full runs need the data services and minutes of Spark (make bench); the smoke
    # builds the batches' events and the maintenance arguments the DAG would pass.
    out = run_bench("table_history", tmp_path)
    assert "batches planned" in out
    assert "--compact-above-files" in out
