"""The Spark job alone, before and after: one batch per size through `orders_cdc` as the
chart's SparkApplication runs it, this checkout's job against a baseline's.

    python -m bench.spark_job [--events 10000,100000,1000000] [--baseline REV] [--out DIR]
                              [--smoke]

Per size (ascending): generate exactly N Debezium events (localplatform.cdc_events),
produce them to fresh topics and stage them as one batch with the project's consume
(orders_etl.staging.stager.TopicStager) on the local Kafka and S3 server. Then each
variant runs that batch with `spark-submit`, exactly as the spark-operator stand-in's
local mode submits the chart's SparkApplication (`helm template` of the chart with
values/local.yaml: its sparkConf, driver and executor memory, plus the catalog settings
the transform task adds; local[2]):

- **baseline**: the job and `orders_contract` of git revision REV (`git archive`),
  shipped first on the Python path;
- **current**: this checkout's.

Each variant writes its own namespaces of the local JDBC catalog, fresh per benchmark
run, so both see the same history: the sizes in ascending order on the same tables.
Figures per run: spark-submit's wall time (JVM start to exit, what spark_transform waits
for), the job's own duration and its metrics document's steps (wall time and Spark jobs);
both variants' tables are compared afterwards (same rows, or the run fails).
`--smoke` checks the chart render and the baseline's checkout only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

from bench import cdc_load, job_profile, machine, results, table
from localplatform import paths
from localplatform.services import LocalServices
from localplatform.spark import spark_jars
from orders_contract.catalog import load_catalog_file, pyiceberg_properties, spark_conf
from orders_contract.s3uri import split_s3_uri
from orders_contract.staging import StagingLocation
from orders_etl.sparkapp import render_application
from orders_etl.staging.stager import TopicStager
from spark_operator_standin.submit import SubmitSettings, command, local_spark_env

#: The job before issue 25's changes to it (the last commit of the previous session).
BASELINE = "a9a2e95"
VARIANTS = ("baseline", "current")
TABLES = ("orders", "line_items", "customers")
BUCKET = "staging"
CHART = paths.REPO_ROOT / "charts" / "orders-etl"
SPARK_TEMPLATE = "templates/spark/configmap-sparkapplication-template.yaml"
#: Targets (issue 25), for the Spark stage of a run of 10,000 events and of 1,000,000.
TARGET_SPARK_10K = 15.0


def chart_application(catalog_file: Path) -> dict[str, Any]:
    """The chart's SparkApplication template (values/local.yaml) and its catalog file."""
    out = subprocess.run(
        [str(paths.tool("helm")), "template", "oe", str(CHART),
         "-f", str(paths.REPO_ROOT / "values" / "local.yaml"), "--show-only", SPARK_TEMPLATE],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    data = yaml.safe_load(out)["data"]
    catalog_file.write_text(data["iceberg-catalog.json"])
    template: dict[str, Any] = yaml.safe_load(data["sparkapplication.yaml"])
    return template


def baseline_tree(rev: str, directory: Path) -> Path:
    """spark-jobs/ and orders_contract of `rev`, as a --py-files zip (main.py beside it)."""
    done = subprocess.run(
        ["git", "-C", str(paths.REPO_ROOT), "archive", "--format=tar", rev,
         "spark-jobs", "src/orders_contract"],
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(
            f"baseline {rev}: git archive failed ({done.stderr.decode().strip()}); a shallow "
            "clone may not hold it: pass --baseline <a revision it has>"
        )
    archive = done.stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    target = directory / "job.zip"
    with zipfile.ZipFile(target, "w") as zipped:
        for package, root in (("orders_cdc", "spark-jobs"), ("orders_contract", "src")):
            for source in sorted((directory / root / package).glob("*.py")):
                zipped.write(source, f"{package}/{source.name}")
    return directory / "spark-jobs" / "main.py"


def stage_batch(services: LocalServices, events: int, tag: str, start_id: int) -> dict[str, Any]:
    """N events produced to fresh topics and staged as one batch; the manifests' URIs."""
    topics = {t: f"benchspark{tag}.public.{t}" for t in TABLES}
    services.kafka.create_topics(topics.values(), partitions=3)
    t0 = time.monotonic()
    stream = cdc_load.generate_exact(events, seed=11, start_id=start_id)
    cdc_load.produce(stream, topics, services.kafka.bootstrap)
    del stream
    publish = time.monotonic() - t0
    group = f"bench-spark-{tag}"

    consumer = cdc_load.staging_consumers(services.kafka.bootstrap, group)

    location = StagingLocation(BUCKET, prefix=f"bench-spark-{tag}")
    stager = TopicStager(consumer, services.s3.client(), location, group)
    batch_id = f"bench_spark_{tag}"
    t0 = time.monotonic()
    manifests = [stager.stage(batch_id, topic) for topic in topics.values()]
    stage = time.monotonic() - t0
    staged = sum(m.rows for m in manifests)
    if staged != events:
        raise RuntimeError(f"staged {staged} events, produced {events}")
    return {
        "batch_id": batch_id,
        "location": location,
        "manifests": [location.uri(location.manifest_key(batch_id, t)) for t in topics.values()],
        "publish_seconds": publish,
        "stage_seconds": stage,
        "topics": list(topics.values()),
    }


def run_variant(
    variant: str,
    app: dict[str, Any],
    batch: dict[str, Any],
    size: int,
    namespaces: dict[str, str],
    main: Path,
    pythonpath: str,
    env: dict[str, str],
    s3: Any,
) -> dict[str, Any]:
    location: StagingLocation = batch["location"]
    metrics = location.uri(f"{location.batch_prefix(batch['batch_id'])}/{variant}/_metrics.json")
    arguments = ["--batch-id", batch["batch_id"], "--metrics-uri", metrics]
    for uri in batch["manifests"]:
        arguments += ["--manifest", uri]
    for layer, namespace in namespaces.items():
        arguments += [f"--{layer}-namespace", namespace]
    app = {**app, "spec": {**app["spec"], "arguments": arguments}}
    settings = SubmitSettings(
        spark_submit=str(Path(local_spark_env()["SPARK_HOME"]) / "bin" / "spark-submit"),
        path_map={"/opt/orders-etl/spark-jobs/main.py": str(main)},
        extra_jars=tuple(str(j) for j in spark_jars()),
    )
    argv = command(app, settings)
    child_env = {**os.environ, **env, **local_spark_env(), "PYTHONPATH": pythonpath}
    started = time.monotonic()
    done = subprocess.run(argv, env=child_env, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant} {size:,}: spark-submit failed:\n{done.stderr[-4000:]}")
    bucket, key = split_s3_uri(metrics)
    # The document as the job wrote it (the baseline's may lack newer fields).
    body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return {
        "variant": variant,
        "events": size,
        "submit_wall_seconds": wall,
        "job_seconds": body["duration_seconds"],
        "step_seconds": body["step_seconds"],
        "step_spark_jobs": body.get("step_spark_jobs", {}),
        "totals": body["totals"],
        "touched_dates": len(body["touched_dates"]),
    }


def table_rows(catalog: Path, namespace: str, name: str) -> list[Any]:
    """Every row of a table, sorted (pyiceberg, the load task's reader)."""
    from pyiceberg.catalog import load_catalog

    config = load_catalog_file(catalog).with_credentials_from_env()
    opened = load_catalog(config.name, **pyiceberg_properties(config))
    rows = opened.load_table(f"{namespace}.{name}").scan().to_arrow().to_pylist()
    for row in rows:
        row.pop("batch_id", None)  # names the variant's batch: the same id in both
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def summary(body: dict[str, Any]) -> str:
    rows = []
    for run in body["runs"]:
        steps, jobs = run["step_seconds"], run["step_spark_jobs"]
        rows.append([f"{run['events']:,}", run["variant"], f"{run['submit_wall_seconds']:.1f}",
                     f"{run['job_seconds']:.1f}", *job_profile.step_cells(steps, jobs),
                     f"{job_profile.rest_seconds(run['job_seconds'], steps):.1f}",
                     job_profile.total_jobs(jobs)])  # fmt: skip
    return table.render(
        ["events", "variant", "spark-submit s", "job s", *job_profile.JOB_STEPS, "rest",
         "Spark jobs"], rows,
    )  # fmt: skip


def targets_for(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def wall(variant: str, events: int) -> float | None:
        for run in body["runs"]:
            if run["variant"] == variant and run["events"] == events:
                return float(run["submit_wall_seconds"])
        return None

    targets: dict[str, dict[str, Any]] = {}
    now, before = wall("current", 10_000), wall("baseline", 10_000)
    if now is not None:
        targets["Spark job for 10,000 events < 15 s (spark-submit, JVM start to exit)"] = {
            "value": f"{now:.1f} s" + ("" if before is None else f" (baseline {before:.1f} s)"),
            "met": now < TARGET_SPARK_10K,
        }
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spark_job", description=__doc__)
    parser.add_argument("--events", default="10000,100000,1000000")
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the 'before'")
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.events.split(","))
    print(machine.headline(machine.describe()))
    services = LocalServices()
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = Path(tmp)
        catalog_file = work / "iceberg-catalog.json"
        template = chart_application(catalog_file)
        baseline_main = baseline_tree(args.baseline, work / "baseline")
        if args.smoke:
            print(f"chart template: {template['kind']}; baseline {args.baseline}: {baseline_main}")
            return 0
        if not services.is_up():
            print("error: the data services are not running (make services-up)", file=sys.stderr)
            return 1
        catalog = services.catalog_config()
        # As the chart has it: the catalog file without the login, the login in env.
        catalog_file.write_text(json.dumps(catalog.to_dict()))
        app = render_application(
            template, name="bench-spark-job", namespace="bench", arguments=[], labels={},
            spark_conf=spark_conf(load_catalog_file(catalog_file)),
        )  # fmt: skip
        env = {
            "AWS_ACCESS_KEY_ID": services.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": services.s3.secret_key,
            "AWS_REGION": "us-east-1",
            "ICEBERG_JDBC_USER": catalog.jdbc_user or "",
            "ICEBERG_JDBC_PASSWORD": catalog.jdbc_password or "",
        }
        os.environ.update(env)
        s3 = services.s3.client()
        tag = f"{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4]}"
        trees = {
            "baseline": (baseline_main, str(work / "baseline" / "job.zip")),
            "current": (paths.REPO_ROOT / "spark-jobs" / "main.py",
                        str(paths.REPO_ROOT / "spark-jobs")),
        }  # fmt: skip
        namespaces = {
            v: {layer: f"b{tag}_{v}_{layer}" for layer in ("bronze", "silver", "gold")}
            for v in VARIANTS
        }
        runs: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        next_id = 20_000_000
        for size in sizes:
            batch = stage_batch(services, size, f"{tag}n{size}", next_id)
            next_id += size * 2
            batches.append({k: v for k, v in batch.items() if k != "location"})
            print(f"{size:,} events staged in {batch['stage_seconds']:.1f} s")
            for variant in VARIANTS:
                main_file, pythonpath = trees[variant]
                run = run_variant(
                    variant,
                    app,
                    batch,
                    size,
                    namespaces[variant],
                    main_file,
                    pythonpath,
                    env,
                    s3,
                )
                print(f"  {variant}: spark-submit {run['submit_wall_seconds']:.1f} s, "
                      f"job {run['job_seconds']:.1f} s")  # fmt: skip
                runs.append(run)
        for name in ("orders_clean", "line_items_clean", "customers_clean"):
            same = table_rows(catalog_file, namespaces["baseline"]["silver"], name) == table_rows(
                catalog_file, namespaces["current"]["silver"], name
            )
            if not same:
                raise RuntimeError(f"silver.{name} differs between baseline and current")
        gold = [table_rows(catalog_file, namespaces[v]["gold"], "daily_revenue")
                for v in VARIANTS]  # fmt: skip
        if gold[0] != gold[1]:
            raise RuntimeError("gold.daily_revenue differs between baseline and current")
    body: dict[str, Any] = {
        "baseline": args.baseline,
        "sizes": sizes,
        "runs": runs,
        "batches": batches,
        "tables_equal": True,
        "smoke": False,
    }
    body["targets"] = targets_for(body)
    print(summary(body))
    print(results.target_lines(body["targets"]))
    results.write(args.out, "spark_job", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
