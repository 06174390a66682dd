"""The whole pipeline on one machine: `make demo` (and the end-to-end test) drive this.

    python -m localplatform.demo up        # platform + chart + Airflow + stand-in
    python -m localplatform.demo run [--events-dir DIR | --orders N --seed S]
    python -m localplatform.demo down      # stops everything `up` started

1. the local control plane and data services;
2. the chart installed with values/local.yaml (plus the ports of this machine's
   servers) into a namespace under PodSecurity `restricted`; the rendered airflow.cfg,
   SparkApplication template and pools are read back from the installed release;
3. Airflow 3 as local processes with that configuration (api-server, 2 schedulers,
   dag-processor, 2 triggerers, a Celery worker), every task on CeleryExecutor: kwok
   pods never run code, so nothing is handed to KubernetesExecutor here;
4. the spark-operator stand-in (local mode) for the SparkApplications the DAG creates;
5. CDC events published to Kafka, progress shown, a summary printed and the dashboard
   table written to out/daily_revenue.csv.

Runs start as users' runs do (`--trigger events`, `make demo`): the DAG is active once
parsed and the backlog watcher in the triggerer starts a run per pending batch. With
`--trigger api` (`DEMO_TRIGGER=api make demo`; what the tests that need exact batches
use) the watcher is off and each run is triggered through the CLI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import yaml

from localplatform import cdc_events, paths, procs
from localplatform.airflow_local import AirflowLocalConfig, LocalAirflow
from localplatform.cluster import Cluster
from localplatform.services import LocalServices
from orders_contract.metrics import JobMetrics

RELEASE = "orders-etl"
NAMESPACE = "orders-etl"
DAG_ID = "orders_etl"
CHART = paths.REPO_ROOT / "charts" / "orders-etl"
SLACK_PORT = paths.port("slack_sink", 28090)
STAGES = ("consume", "verify_staging", "spark_transform", "load_clickhouse", "notify")
#: How runs start: "events" (the backlog watcher, the product's default) or "api".
TRIGGER_MODES = ("events", "api")


@dataclass
class RunResult:
    run_id: str
    state: str
    seconds: float
    stage_seconds: dict[str, float]
    #: Final state per task instance ("consume[0]", "notify", ...).
    task_states: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DagRun:
    run_id: str
    run_type: str
    state: str
    queued_at: float | None
    start: float | None
    end: float | None


class Demo:
    def __init__(self, run_dir: Path = paths.RUN_DIR / "demo", trigger: str = "api") -> None:
        if trigger not in TRIGGER_MODES:
            raise ValueError(f"trigger must be one of {TRIGGER_MODES}, not {trigger!r}")
        self.run_dir = run_dir
        self.trigger_mode = trigger
        self.cluster = Cluster()
        self.services = LocalServices()
        self.config_dir = run_dir / "config"

    # -- the chart ------------------------------------------------------------------------
    def local_values(self) -> dict[str, Any]:
        """What differs from values/local.yaml on this machine: its servers' ports."""
        s = self.services
        return {
            "s3": {"endpoint": s.s3.endpoint},
            "spark": {
                "catalog": {
                    "name": "lakehouse",
                    "type": "jdbc",
                    "uri": f"jdbc:postgresql://127.0.0.1:{s.postgres.port}/iceberg",
                    "warehouse": "s3://warehouse/",
                }
            },
        }

    def install_chart(self) -> None:
        k = self.cluster.kubectl
        ns = k("get", "namespace", NAMESPACE, check=False)
        if ns.returncode != 0:
            k("create", "namespace", NAMESPACE)
        k(
            "label",
            "--overwrite",
            "namespace",
            NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
        )
        k("apply", "--server-side", "-f", str(paths.TOOLS_SHARE / "spark-crds"))
        secret = k(
            "create",
            "secret",
            "generic",
            "orders-etl-db",
            "-n",
            NAMESPACE,
            f"--from-literal=connection={self.services.postgres.url('airflow')}",
            "--dry-run=client",
            "-o",
            "yaml",
        ).stdout
        k("apply", "-f", "-", input=secret)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        overlay = self.config_dir / "local-ports.yaml"
        overlay.write_text(yaml.safe_dump(self.local_values()))
        procs.run_checked(
            "helm upgrade --install",
            [
                str(paths.tool("helm")),
                "upgrade",
                "--install",
                RELEASE,
                str(CHART),
                "--namespace",
                NAMESPACE,
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "-f",
                str(paths.REPO_ROOT / "values" / "local.yaml"),
                "-f",
                str(overlay),
                "--wait",
                "--timeout",
                "5m",
            ],
            timeout=400,
        )

    def release_config(self) -> dict[str, Any]:
        """airflow.cfg, the SparkApplication template and pools, read back from the cluster."""

        def configmap(name: str) -> dict[str, str]:
            out = self.cluster.kubectl("get", "configmap", name, "-n", NAMESPACE, "-o", "json")
            data: dict[str, str] = json.loads(out.stdout)["data"]
            return data

        cfg = configmap(f"{RELEASE}-config")
        spark = configmap(f"{RELEASE}-spark-template")
        pools: dict[str, Any] = {}
        listed = self.cluster.kubectl("get", "configmap", "-n", NAMESPACE, "-o", "json")
        for item in json.loads(listed.stdout)["items"]:
            if "pools.json" in item.get("data", {}):
                pools = json.loads(item["data"]["pools.json"])
        template = yaml.safe_load(spark["sparkapplication.yaml"])
        return {
            "airflow_cfg": cfg["airflow.cfg"],
            "template": template,
            "jobs_namespace": spark.get("jobs-namespace") or template["metadata"]["namespace"],
            "catalog": spark["iceberg-catalog.json"],
            "pools": pools,
        }

    # -- Airflow and the stand-in ---------------------------------------------------------
    def airflow(self, release: dict[str, Any]) -> LocalAirflow:
        s = self.services
        catalog = s.catalog_config()
        template_path = self.config_dir / "sparkapplication-template.yaml"
        template_path.write_text(yaml.safe_dump(release["template"]))
        catalog_path = self.config_dir / "iceberg-catalog.json"
        catalog_path.write_text(release["catalog"])
        overlay = self.config_dir / "pipeline-local.yaml"
        overlay.write_text(
            yaml.safe_dump(
                {
                    "dag": {
                        "event_driven": self.trigger_mode == "events",
                        "retry_delay_seconds": 5,
                    },
                    "executors": {"light": "CeleryExecutor", "isolated": "CeleryExecutor"},
                    "spark": {
                        "namespace": release["jobs_namespace"],
                        "template_path": str(template_path),
                        "poll_interval_seconds": 2,
                    },
                    "iceberg": {"catalog": catalog.name, "catalog_file": str(catalog_path)},
                }
            )
        )
        db = s.postgres.url("airflow", driver="postgresql+psycopg2")
        conns = {
            "KAFKA_DEFAULT": {
                "conn_type": "kafka",
                "extra": {"bootstrap.servers": s.kafka.bootstrap},
            },
            "AWS_DEFAULT": {
                "conn_type": "aws",
                "login": s.s3.access_key,
                "password": s.s3.secret_key,
                "extra": {"endpoint_url": s.s3.endpoint, "region_name": "us-east-1"},
            },
            "KUBERNETES_DEFAULT": {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(self.cluster.kubeconfig)},
            },
            "CLICKHOUSE_DEFAULT": {
                "conn_type": "clickhouse",
                "extra": {"dsn": s.endpoints()["clickhouse"]["dsn"]},
            },
            "SLACK_WEBHOOK_DEFAULT": {
                "conn_type": "slackwebhook",
                "password": f"http://127.0.0.1:{SLACK_PORT}/hook",
            },
        }
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": s.redis.url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + s.postgres.url("airflow"),
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": "s3://aws_default@airflow/xcom",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "console"}),
            "ORDERS_ETL_CONFIG": str(overlay),
            **{f"AIRFLOW_CONN_{k}": json.dumps(v) for k, v in conns.items()},
            # The catalog's login, as spark.catalog.existingSecret gives it in a cluster;
            # S3 keys for pyiceberg's FileIO, as s3.existingSecret does.
            "ICEBERG_JDBC_USER": catalog.jdbc_user or "",
            "ICEBERG_JDBC_PASSWORD": catalog.jdbc_password or "",
            "AWS_ACCESS_KEY_ID": s.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s.s3.secret_key,
        }
        return LocalAirflow(
            AirflowLocalConfig(
                run_dir=self.run_dir / "airflow", airflow_cfg=release["airflow_cfg"], env=env
            )
        )

    def standin(self, jobs_namespace: str) -> procs.Proc:
        s = self.services
        catalog = s.catalog_config()
        env = {
            "AWS_ACCESS_KEY_ID": s.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s.s3.secret_key,
            "AWS_REGION": "us-east-1",
            "ICEBERG_JDBC_USER": catalog.jdbc_user or "",
            "ICEBERG_JDBC_PASSWORD": catalog.jdbc_password or "",
            "PYTHONPATH": str(paths.REPO_ROOT / "spark-jobs"),
        }
        return procs.Proc(
            "spark-operator-standin",
            [
                sys.executable,
                "-m",
                "spark_operator_standin",
                "--mode",
                "local",
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "--namespace",
                jobs_namespace,
                "--path-map",
                f"/opt/orders-etl/spark-jobs={paths.REPO_ROOT / 'spark-jobs'}",
                "--extra-jars-dir",
                str(paths.TOOLS_DIR / "spark-jars"),
                "--log-dir",
                str(self.run_dir / "spark"),
                "--poll-interval",
                "1",
            ],
            self.run_dir,
            env=env,
        )

    def slack_sink(self) -> procs.Proc:
        return procs.Proc(
            "slack-sink",
            [
                sys.executable,
                "-m",
                "localplatform.slack_sink",
                "--port",
                str(SLACK_PORT),
                "--out",
                str(self.run_dir / "slack.jsonl"),
            ],
            self.run_dir,
            ports=(SLACK_PORT,),
        )

    # -- lifecycle ------------------------------------------------------------------------
    def up(self) -> dict[str, float]:
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        timings["control plane"] = self.cluster.up()
        t1 = time.monotonic()
        self.services.up()
        timings["data services"] = time.monotonic() - t1
        t1 = time.monotonic()
        self.install_chart()
        release = self.release_config()
        (self.config_dir / "release.json").write_text(json.dumps(release, indent=2))
        timings["helm install"] = time.monotonic() - t1
        self.slack_sink().start()
        self.standin(release["jobs_namespace"]).start()
        t1 = time.monotonic()
        airflow = self.airflow(release)
        airflow.up()
        if release["pools"]:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as pools:
                json.dump(release["pools"], pools)
            airflow.cli("pools", "import", pools.name)
            Path(pools.name).unlink()
        (self.config_dir / "trigger-mode").write_text(self.trigger_mode)
        timings["airflow"] = time.monotonic() - t1
        timings["total"] = time.monotonic() - t0
        return timings

    def running_trigger_mode(self) -> str | None:
        """The mode the running Airflow was started with (None before `up`)."""
        path = self.config_dir / "trigger-mode"
        return path.read_text().strip() if path.exists() else None

    def use_trigger(self, mode: str) -> None:
        """Restart Airflow's processes with runs started by `mode` if they run another."""
        if mode not in TRIGGER_MODES:
            raise ValueError(f"trigger must be one of {TRIGGER_MODES}, not {mode!r}")
        self.trigger_mode = mode
        if self.running_trigger_mode() == mode:
            return
        airflow = self._airflow_from_disk()
        airflow.down()
        airflow.up()
        (self.config_dir / "trigger-mode").write_text(mode)

    def _airflow_from_disk(self) -> LocalAirflow:
        release = json.loads((self.config_dir / "release.json").read_text())
        return self.airflow(release)

    def down(self) -> list[int]:
        if (self.config_dir / "release.json").exists():
            self._airflow_from_disk().down()
        self.standin("-").stop()
        self.slack_sink().stop()
        self.services.down()
        self.cluster.down()
        return procs.pids_under(self.run_dir) + procs.pids_under(self.run_dir / "airflow")

    # -- a run ----------------------------------------------------------------------------
    def publish(self, events_dir: Path) -> dict[str, int]:
        return cdc_events.publish(events_dir, self.services.kafka.bootstrap)

    def _db(self) -> Any:
        return psycopg2.connect(self.services.postgres.url("airflow"))

    def wait_for_dag(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._db() as conn, conn.cursor() as cur:
                cur.execute("select count(*) from dag where dag_id = %s", (DAG_ID,))
                if cur.fetchone()[0]:
                    return
            time.sleep(2)
        raise TimeoutError(f"the dag-processor did not register {DAG_ID} in {timeout} s")

    def runs(self) -> list[DagRun]:
        """Every run of the DAG so far, oldest first (times: epoch seconds)."""
        with self._db() as conn, conn.cursor() as cur:
            cur.execute(
                "select run_id, run_type, state, extract(epoch from queued_at), "
                "extract(epoch from start_date), extract(epoch from end_date) from dag_run "
                "where dag_id = %s order by id",
                (DAG_ID,),
            )
            rows = cur.fetchall()
        return [
            DagRun(r, t, s, *(float(x) if x is not None else None for x in times))
            for r, t, s, *times in rows
        ]

    def task_spans(self, task_id: str) -> list[tuple[str, float, float]]:
        """(run_id, start, end) of the task's finished instances (its last try; a deferred
        wait is inside the span: resuming keeps start_date), by start."""
        with self._db() as conn, conn.cursor() as cur:
            cur.execute(
                "select run_id, extract(epoch from start_date), extract(epoch from end_date) "
                "from task_instance where dag_id = %s and task_id = %s "
                "and start_date is not null and end_date is not null order by start_date",
                (DAG_ID, task_id),
            )
            return [(r, float(s), float(e)) for r, s, e in cur.fetchall()]

    def wait_event_runs(
        self, known: set[str], quiet: float = 45, timeout: float = 1800, progress: bool = True
    ) -> list[RunResult]:
        """The runs the backlog watcher starts (none triggered here), each waited for,
        until no run is active and none has started for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        results: list[RunResult] = []
        idle_since = time.monotonic()
        while time.monotonic() < deadline:
            new = [r for r in self.runs() if r.run_id not in known]
            if not new:
                if results and time.monotonic() - idle_since >= quiet:
                    return results
                time.sleep(2)
                continue
            run = new[0]
            if progress:
                print(f"run {run.run_id} ({run.run_type}) started by itself", flush=True)
            results.append(self.wait_run(run.run_id, timeout=deadline - time.monotonic()))
            known.add(run.run_id)
            idle_since = time.monotonic()
        raise TimeoutError(f"runs did not settle within {timeout} s: {[r.run_id for r in results]}")

    def trigger(self, run_id: str) -> None:
        airflow = self._airflow_from_disk()
        self.wait_for_dag()
        airflow.cli("dags", "unpause", DAG_ID)
        airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id)

    def clear(self, run_id: str) -> int:
        """Clear every task of a run through the REST API, resetting the run as the UI's
        Clear does: it runs again as the same run (same run id, so the same batch and
        offsets). Returns the HTTP status (an error status raises HTTPError)."""
        airflow = self._airflow_from_disk()
        body = json.dumps(
            {"dry_run": False, "reset_dag_runs": True, "only_failed": False, "dag_run_id": run_id}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
            f"{airflow.api_url}/api/v2/dags/{DAG_ID}/clearTaskInstances",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._token(airflow)}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
            return int(response.status)

    def _token(self, airflow: LocalAirflow) -> str:
        """A JWT from the simple auth manager (all-admins mode on the local platform)."""
        url = f"{airflow.api_url}/auth/token"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return str(json.loads(response.read())["access_token"])

    def wait_run(self, run_id: str, timeout: float = 900, progress: bool = True) -> RunResult:
        started = time.monotonic()
        last = line = ""
        while time.monotonic() - started < timeout:
            with self._db() as conn, conn.cursor() as cur:
                cur.execute(
                    "select state from dag_run where dag_id=%s and run_id=%s", (DAG_ID, run_id)
                )
                row = cur.fetchone()
                cur.execute(
                    "select task_id, map_index, state, "
                    "extract(epoch from (end_date - start_date)) from task_instance "
                    "where dag_id=%s and run_id=%s order by task_id, map_index",
                    (DAG_ID, run_id),
                )
                tis = cur.fetchall()
            states = {f"{t}{'' if m < 0 else f'[{m}]'}": s or "none" for t, m, s, _ in tis}
            line = " ".join(f"{k}={v}" for k, v in states.items())
            if progress and line != last:
                print(f"  [{time.monotonic() - started:6.1f} s] {line}", flush=True)
                last = line
            if row and row[0] in ("success", "failed"):
                stage: dict[str, float] = {}
                for task_id, _, _, seconds in tis:
                    stage[task_id] = max(stage.get(task_id, 0.0), float(seconds or 0))
                return RunResult(run_id, row[0], time.monotonic() - started, stage, states)
            time.sleep(2)
        raise TimeoutError(f"run {run_id} did not finish in {timeout} s; task states: {line}")

    def dashboard_rows(self) -> list[tuple[str, str, int, int, int]]:
        """dashboards.daily_revenue read back from ClickHouse, in a short-lived process
        (chdb allows one process per data directory at a time)."""
        code = (
            "import clickhouse_connect, json, sys\n"
            "c = clickhouse_connect.get_client(dsn=sys.argv[1])\n"
            'exists = c.command("EXISTS TABLE dashboards.daily_revenue")\n'
            "rows = c.query('SELECT date, revenue, orders, items, customers "
            "FROM dashboards.daily_revenue ORDER BY date').result_rows if exists else []\n"
            "print(json.dumps([[d.isoformat(), f'{r:.2f}', o, i, cu]\n"
            "                  for d, r, o, i, cu in rows]))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, self.services.endpoints()["clickhouse"]["dsn"]],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]

    def write_csv(self, path: Path) -> int:
        rows = self.dashboard_rows()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["date", "revenue", "orders", "items", "customers"])
            writer.writerows(rows)
        return len(rows)

    def metrics(self, run_id: str) -> JobMetrics:
        """The Spark job's metrics document of a run (from the staging bucket)."""
        from orders_contract.staging import batch_id_for_run

        key = f"cdc/batch={batch_id_for_run(DAG_ID, run_id)}/_metrics.json"
        body = self.services.s3.client().get_object(Bucket="staging", Key=key)["Body"].read()
        return JobMetrics.from_json(body)


def _summary(demo: Demo, result: RunResult, published: dict[str, int], csv_path: Path) -> str:
    lines = [f"run {result.run_id}: {result.state} in {result.seconds:.1f} s"]
    lines.append("events published: " + ", ".join(f"{k}={v}" for k, v in published.items()))
    if result.state == "success":
        m = demo.metrics(result.run_id)
        lines.append(
            "rows per table: "
            + ", ".join(f"{k}={v}" for k, v in sorted(m.rows_per_table().items()))
        )
        lines.append(
            f"quarantined: {m.totals.quarantined} {m.quarantined_by_reason}; tombstones: "
            f"{m.totals.tombstones}; touched dates: {len(m.touched_dates)}"
        )
    rows = demo.dashboard_rows()
    lines.append(f"ClickHouse dashboards.daily_revenue: {len(rows)} rows")
    for date, revenue, orders, items, customers in rows:
        lines.append(
            f"  {date}  revenue {revenue:>12}  orders {orders:>4}  items {items:>5}"
            f"  customers {customers:>4}"
        )
    lines.append(
        "wall time per stage: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items())
    )
    lines.append(f"dashboard CSV: {csv_path}")
    lines.append(f"Airflow UI: {demo._airflow_from_disk().api_url}/")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplatform.demo")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    run = sub.add_parser("run")
    run.add_argument("--events-dir", type=Path)
    run.add_argument("--orders", type=int, default=200)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--csv", type=Path, default=paths.REPO_ROOT / "out" / "daily_revenue.csv")
    for command in (sub.choices["up"], run):
        command.add_argument(
            "--trigger",
            choices=TRIGGER_MODES,
            default=os.environ.get("DEMO_TRIGGER") or "events",
            help="events: the backlog watcher starts runs (default); api: each run triggered",
        )
    args = parser.parse_args(argv)
    demo = Demo(trigger=getattr(args, "trigger", "events"))
    try:
        if args.action == "up":
            timings = demo.up()
            print("local platform up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        elif args.action == "down":
            left = demo.down()
            print(
                "everything the demo started is stopped" if not left else f"STILL RUNNING: {left}"
            )
            return 1 if left else 0
        else:
            events_dir = args.events_dir
            if events_dir is None:
                events_dir = demo.run_dir / "events"
                cdc_events.write(cdc_events.generate(args.orders, args.seed), events_dir)
            if demo.running_trigger_mode() not in (None, demo.trigger_mode):
                demo.use_trigger(demo.trigger_mode)
            known = {r.run_id for r in demo.runs()} if demo.trigger_mode == "events" else set()
            published = demo.publish(events_dir)
            if demo.trigger_mode == "api":
                run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
                demo.trigger(run_id)
                results = [demo.wait_run(run_id)]
            else:
                print("events published; runs start on their own (backlog watcher)")
                results = demo.wait_event_runs(known)
            demo.write_csv(args.csv)
            for result in results[:-1]:
                print(f"run {result.run_id}: {result.state} in {result.seconds:.1f} s")
            print(_summary(demo, results[-1], published, args.csv))
            return 0 if all(r.state == "success" for r in results) else 1
    except (procs.StartupError, FileNotFoundError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
