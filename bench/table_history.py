"""The tables' history: many batches in a row, with and without the job's table maintenance.

    python -m bench.table_history [--batches 12] [--orders 400] [--out DIR] [--smoke]

A real-time pipeline runs a batch every minute or so, and every batch adds files to each
table and a snapshot to its history. This benchmark runs `--batches` consecutive batches
through the Spark job (`orders_cdc.job.run`, one warm local[2] session, so the JVM's start
does not hide the trend) on the local data services, twice, each variant into its own
fresh namespaces and on the very same staged batches:

- **maintenance off**: `--compact-above-files 0 --keep-snapshots 0` (the job before it
  kept its tables: files and snapshots only grow);
- **maintenance on**: the pipeline's defaults (`iceberg.maintenance` in
  orders_etl/defaults/pipeline.yaml, passed as the DAG passes them).

Batch i holds `--orders` orders (about 5.7 events each): half of them revise the orders
of batch i-1 (same ids, newer lsn: updates and deletes of stored keys, so silver gets
position deletes), half are new. Figures per batch and variant: the job's duration and
steps, and the files and snapshots of silver.orders_clean after it (its `snapshots`
metadata table). Afterwards both variants' silver and gold are compared row by row.
`--smoke` builds the batches' events only (no services, no Spark).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from typing import Any

from bench import cdc_load, job_profile, machine, results, table
from localplatform import cdc_events, paths
from localplatform.services import LocalServices
from orders_contract.staging import StagingLocation
from orders_etl.config import parse_config
from orders_etl.staging.stager import TopicStager

TABLES = ("orders", "line_items", "customers")
VARIANTS = ("maintenance off", "maintenance on")
BUCKET = "staging"
#: The job's first and last batches compared: mean duration of this many each.
EDGE = 4


def maintenance_arguments(variant: str) -> list[str]:
    if variant == "maintenance off":
        return ["--compact-above-files", "0", "--keep-snapshots", "0"]
    m = parse_config().iceberg.maintenance
    return [
        "--compact-above-files", str(m.compact_above_files),
        "--snapshot-retention-hours", str(m.snapshot_retention_hours),
        "--keep-snapshots", str(m.keep_snapshots),
    ]  # fmt: skip


def batch_stream(index: int, orders: int) -> cdc_events.Stream:
    """Batch `index`: ids from index * orders/2, so half revise the previous batch's
    orders (a higher lsn base than every earlier batch), half are new."""
    start = 1 + index * (orders // 2)
    return cdc_events.generate(
        orders, seed=1000 + index, start_id=start, lsn_base=100_000_000 + index * 10_000_000
    )


def stage_batches(services: LocalServices, batches: int, orders: int, tag: str) -> list[Any]:
    """Every batch produced to its topics and staged (the project's consume), in order."""
    topics = {t: f"benchhist{tag}.public.{t}" for t in TABLES}
    services.kafka.create_topics(topics.values(), partitions=3)
    group = f"bench-history-{tag}"

    consumer = cdc_load.staging_consumers(services.kafka.bootstrap, group)

    location = StagingLocation(BUCKET, prefix=f"bench-history-{tag}")
    stager = TopicStager(consumer, services.s3.client(), location, group)
    staged = []
    for index in range(batches):
        produced = cdc_load.produce(batch_stream(index, orders), topics, services.kafka.bootstrap)
        batch_id = f"hist_{tag}_{index:03d}"
        manifests = [stager.stage(batch_id, topic) for topic in topics.values()]
        if sum(m.rows for m in manifests) != sum(produced.values()):
            raise RuntimeError(f"batch {index}: staged rows differ from produced")
        staged.append(
            {
                "batch_id": batch_id,
                "events": sum(produced.values()),
                "manifests": [
                    location.uri(location.manifest_key(batch_id, t)) for t in topics.values()
                ],
                "metrics_dir": location.uri(location.batch_prefix(batch_id)),
            }
        )
    return staged


def files_and_snapshots(spark: Any, name: str) -> dict[str, int]:
    # spark-jobs/ is on the path (main), not on mypy's.
    from orders_cdc.maintenance import table_state  # type: ignore[import-not-found]

    state = table_state(spark, name, dt.datetime.now(dt.UTC))
    return {
        "data_files": state.data_files,
        "delete_files": state.delete_files,
        "snapshots": state.snapshots,
    }


def run_variant(
    spark: Any, variant: str, batches: list[Any], namespaces: dict[str, str]
) -> list[dict[str, Any]]:
    from orders_cdc.job import run  # type: ignore[import-not-found]

    runs = []
    slug = variant.replace(" ", "_")
    for batch in batches:
        argv = ["--batch-id", batch["batch_id"], "--catalog", "lakehouse",
                "--metrics-uri", f"{batch['metrics_dir']}/{slug}/_metrics.json",
                *maintenance_arguments(variant)]  # fmt: skip
        for uri in batch["manifests"]:
            argv += ["--manifest", uri]
        for layer, ns in namespaces.items():
            argv += [f"--{layer}-namespace", ns]
        started = time.monotonic()
        metrics = run(spark, argv)
        wall = time.monotonic() - started
        silver = files_and_snapshots(spark, f"lakehouse.{namespaces['silver']}.orders_clean")
        runs.append(
            {
                "variant": variant,
                "batch": batch["batch_id"],
                "events": batch["events"],
                "wall_seconds": wall,
                "job_seconds": metrics["duration_seconds"],
                "step_seconds": metrics["step_seconds"],
                "step_spark_jobs": metrics["step_spark_jobs"],
                "maintained_tables": len(metrics["maintenance"]),
                "maintenance_errors": metrics["maintenance_errors"],
                "silver_orders": silver,
            }
        )
        print(f"  {variant} {batch['batch_id']}: {metrics['duration_seconds']:.1f} s, "
              f"silver.orders {silver}, maintained {len(metrics['maintenance'])} tables",
              flush=True)  # fmt: skip
    return runs


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def figures(body: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per variant: mean job seconds of the first and last EDGE batches, the last batch's
    silver.orders_clean files and snapshots, maintenance seconds in all."""
    out: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        runs = [r for r in body["runs"] if r["variant"] == variant]
        if not runs:
            continue
        last = runs[-1]["silver_orders"]
        out[variant] = {
            "first_seconds": _mean([r["job_seconds"] for r in runs[:EDGE]]),
            "last_seconds": _mean([r["job_seconds"] for r in runs[-EDGE:]]),
            "files": last["data_files"] + last["delete_files"],
            "snapshots": last["snapshots"],
            "maintenance_seconds": sum(r["step_seconds"].get("maintenance", 0) for r in runs),
        }
    return out


def summary(body: dict[str, Any]) -> str:
    rows = []
    for variant, f in figures(body).items():
        rows.append([variant, f"{f['first_seconds']:.1f}", f"{f['last_seconds']:.1f}",
                     f"{f['files']:.0f}", f"{f['snapshots']:.0f}",
                     f"{f['maintenance_seconds']:.1f}"])  # fmt: skip
    head = table.render(
        ["variant", f"job s, first {EDGE} batches", f"job s, last {EDGE}",
         "silver.orders files after", "its snapshots", "maintenance s (all batches)"], rows,
    )  # fmt: skip
    per_batch = []
    by_variant = {v: [r for r in body["runs"] if r["variant"] == v] for v in VARIANTS}
    for i, off in enumerate(by_variant["maintenance off"]):
        on = by_variant["maintenance on"][i] if i < len(by_variant["maintenance on"]) else None
        cells = [
            str(i + 1),
            f"{off['events']:,}",
            f"{off['job_seconds']:.1f}",
            str(off["silver_orders"]["data_files"] + off["silver_orders"]["delete_files"]),
        ]
        if on:
            cells += [
                f"{on['job_seconds']:.1f}",
                str(on["silver_orders"]["data_files"] + on["silver_orders"]["delete_files"]),
                job_profile.step_cells(on["step_seconds"], on["step_spark_jobs"])[-1],
            ]
        per_batch.append(cells)  # fmt: skip
    rows_table = table.render(
        ["batch", "events", "off: job s", "off: silver.orders files", "on: job s",
         "on: silver.orders files", "on: maintenance s (jobs)"], per_batch,
    )  # fmt: skip
    return f"{head}\n\nPer batch:\n\n{rows_table}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table_history", description=__doc__)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--orders", type=int, default=400, help="orders per batch")
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    print(machine.headline(machine.describe()))
    if args.smoke:
        events = [sum(len(m) for m in batch_stream(i, 40).messages.values()) for i in range(2)]
        print(f"batches planned: {events} events; variants: {maintenance_arguments(VARIANTS[1])}")
        return 0
    services = LocalServices()
    if not services.is_up():
        print("error: the data services are not running (make services-up)", file=sys.stderr)
        return 1
    from localplatform.spark import local_session
    from orders_contract.catalog import spark_conf

    catalog = services.catalog_config()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": services.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": services.s3.secret_key,
            "AWS_REGION": "us-east-1",
            "PYSPARK_PYTHON": sys.executable,
            # The job's package for the Python workers (mapInArrow) and this process.
            "PYTHONPATH": os.pathsep.join(
                [str(paths.REPO_ROOT / "spark-jobs"), os.environ.get("PYTHONPATH", "")]
            ),
        }
    )
    sys.path.insert(0, str(paths.REPO_ROOT / "spark-jobs"))
    tag = f"{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4]}"
    t0 = time.monotonic()
    batches = stage_batches(services, args.batches, args.orders, tag)
    print(f"{len(batches)} batches staged in {time.monotonic() - t0:.0f} s")
    spark = local_session(spark_conf(catalog), "bench-table-history")
    runs: list[dict[str, Any]] = []
    namespaces = {
        v: {layer: f"h{tag}_{v.split()[-1]}_{layer}" for layer in ("bronze", "silver", "gold")}
        for v in VARIANTS
    }
    try:
        for variant in VARIANTS:
            runs += run_variant(spark, variant, batches, namespaces[variant])
        for name in ("silver", "gold"):
            tables = [f"{t}_clean" for t in TABLES] if name == "silver" else ["daily_revenue"]
            for t in tables:
                rows = [
                    sorted(
                        json.dumps(r.asDict(), sort_keys=True, default=str)
                        for r in spark.table(f"lakehouse.{namespaces[v][name]}.{t}")
                        .drop("batch_id")
                        .collect()
                    )
                    for v in VARIANTS
                ]
                if rows[0] != rows[1]:
                    raise RuntimeError(f"{name}.{t} differs between the variants")
    finally:
        spark.stop()
    body: dict[str, Any] = {
        "batches": args.batches,
        "orders_per_batch": args.orders,
        "runs": runs,
        "tables_equal": True,
        "smoke": False,
    }
    body["figures"] = figures(body)
    print(summary(body))
    results.write(args.out, "table_history", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
