"""Entry point: one batch of staged CDC messages into bronze, silver and gold.

    spark-submit [--conf spark.sql.catalog.<name>...] --py-files orders_cdc.zip main.py \
        --batch-id B --manifest s3://staging/cdc/batch=B/topic=T/_manifest.json [...] \
        --metrics-uri s3://staging/cdc/batch=B/_metrics.json \
        [--catalog lakehouse] [--bronze-namespace bronze] [--silver-namespace silver] \
        [--gold-namespace gold]

The Iceberg catalog is configured outside the job (the SparkApplication's sparkConf);
the job only names it. Exit status 0 means every table is written and the metrics add up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from typing import TYPE_CHECKING, Any

from orders_cdc import bronze, gold, silver
from orders_cdc.inputs import (
    OBJECT_DDL,
    S3Options,
    StagedTopic,
    read_and_parse,
    read_manifests,
)
from orders_cdc.metrics import METRICS_FORMAT, InvariantError, check_invariants, write_metrics
from orders_cdc.schemas import REASONS, TABLES, TOPIC_TABLES, parsed_ddl
from orders_cdc.tables import Tables, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orders_cdc", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-id", required=True)
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        help="s3:// URI of a topic's _manifest.json (repeat per topic; none = empty batch)",
    )
    parser.add_argument("--metrics-uri", required=True, help="s3://bucket/key or a local path")
    parser.add_argument("--catalog", default="lakehouse")
    parser.add_argument("--bronze-namespace", default="bronze")
    parser.add_argument("--silver-namespace", default="silver")
    parser.add_argument("--gold-namespace", default="gold")
    return parser.parse_args(argv)


def _parsed_topic(
    spark: SparkSession, staged: StagedTopic | None, table: str, s3: S3Options
) -> DataFrame:
    ddl = parsed_ddl(table)
    if staged is None or not staged.objects:
        return spark.createDataFrame([], ddl)
    specs = [
        (
            o.topic,
            o.partition,
            o.start_offset,
            o.end_offset,
            o.rows,
            o.bucket,
            o.key,
            o.sha256,
            o.size,
        )
        for o in staged.objects
    ]
    rdd = spark.sparkContext.parallelize(specs, len(specs))
    objects = spark.createDataFrame(rdd, OBJECT_DDL)
    parsed = objects.mapInArrow(read_and_parse(table, s3), ddl)
    return parsed.localCheckpoint(eager=True)


#: Environment variables (from a Kubernetes Secret) -> catalog properties. The SparkApplication
#: template is a ConfigMap and carries no credential; catalogs load lazily, so setting
#: these before the first table access is enough. S3 credentials need no such step:
#: S3FileIO and boto3 read AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY themselves.
CATALOG_CREDENTIAL_ENV = {
    "ICEBERG_JDBC_USER": "jdbc.user",
    "ICEBERG_JDBC_PASSWORD": "jdbc.password",
    "ICEBERG_REST_TOKEN": "token",
}


def apply_catalog_credentials(spark: SparkSession, catalog: str) -> None:
    for env, prop in CATALOG_CREDENTIAL_ENV.items():
        value = os.environ.get(env)
        key = f"spark.sql.catalog.{catalog}.{prop}"
        if value and not spark.conf.get(key, None):
            spark.conf.set(key, value)


def run(spark: SparkSession, argv: list[str] | None = None) -> dict[str, Any]:
    """Process one batch; returns the metrics document (also written to --metrics-uri)."""
    from pyspark.sql import functions as F

    args = parse_args(argv)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    apply_catalog_credentials(spark, args.catalog)
    conf = dict(spark.sparkContext.getConf().getAll())
    if not spark.conf.get(f"spark.sql.catalog.{args.catalog}", None):
        raise SystemExit(f"catalog {args.catalog!r} is not configured (spark.sql.catalog.*)")
    s3 = S3Options.from_catalog_conf(conf, args.catalog)
    tables = Tables(args.catalog, args.bronze_namespace, args.silver_namespace, args.gold_namespace)

    staged = {t.table: t for t in read_manifests(s3.client(), args.manifest, args.batch_id)}
    ensure_tables(spark, tables)

    topics: dict[str, dict[str, Any]] = {}
    table_metrics: dict[str, dict[str, Any]] = {}
    parsed: dict[str, DataFrame] = {}
    quarantined_by_reason = dict.fromkeys(REASONS, 0)
    for topic, table in TOPIC_TABLES.items():
        parsed[table] = _parsed_topic(spark, staged.get(table), table, s3)
        counts = parsed[table].groupBy("kind", "reason").count().collect()
        by_kind = {"event": 0, "tombstone": 0, "quarantine": 0}
        by_reason: dict[str, int] = {}
        for row in counts:
            by_kind[row["kind"]] += row["count"]
            if row["kind"] == "quarantine":
                by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
                quarantined_by_reason[row["reason"]] += row["count"]
        st = staged.get(table)
        topics[topic] = {
            "table": table,
            "manifest": st.manifest_uri if st else None,
            "manifest_rows": st.rows if st else 0,
            "objects": len(st.objects) if st else 0,
            "read": sum(by_kind.values()),
            "events": by_kind["event"],
            "quarantined": by_kind["quarantine"],
            "tombstones": by_kind["tombstone"],
            "quarantined_by_reason": dict(sorted(by_reason.items())),
        }

    # Bronze and the quarantine (insert-only MERGE on Kafka coordinates).
    quarantine_source = None
    for topic, table in TOPIC_TABLES.items():
        events = topics[topic]["events"]
        stored = bronze.write(
            spark,
            bronze.bronze_rows(parsed[table], args.batch_id),
            tables.bronze(table),
            events,
            args.batch_id,
        )
        table_metrics[f"{args.bronze_namespace}.{table}_raw"] = {
            "rows_in": events,
            "stored_for_batch": stored,
        }
        rows = bronze.quarantine_rows(parsed[table], args.batch_id)
        quarantine_source = rows if quarantine_source is None else quarantine_source.union(rows)
    assert quarantine_source is not None
    quarantined = sum(t["quarantined"] for t in topics.values())
    table_metrics[f"{args.silver_namespace}.quarantine"] = {
        "rows_in": quarantined,
        "stored_for_batch": bronze.write(
            spark, quarantine_source, tables.quarantine, quarantined, args.batch_id
        ),
        "by_reason": {k: v for k, v in quarantined_by_reason.items() if v},
    }

    # Silver: effective changes first (against the tables as they were), then the dates
    # those changes move orders out of, then the MERGEs, then the dates they move into.
    results = {
        table: silver.merge(
            spark,
            parsed[table].where(F.col("kind") == "event"),
            table,
            tables.silver(table),
            args.batch_id,
        )
        for table in TABLES
    }
    orders_t, items_t = tables.silver("orders"), tables.silver("line_items")
    changed_orders = results["orders"].effective.select("id")
    changed_items = results["line_items"].effective
    old_item_orders = (
        gold.live(spark, items_t)
        .join(changed_items.select("id"), "id", "left_semi")
        .select(F.col("order_id").alias("id"))
    )
    dates_before = gold.order_dates(spark, orders_t, changed_orders.union(old_item_orders))
    for table in TABLES:
        silver.apply(spark, results[table], tables.silver(table))
        table_metrics[f"{args.silver_namespace}.{table}_clean"] = {
            "rows_in": results[table].events_in,
            "rows_out": results[table].upserts + results[table].deletes,
            **results[table].as_metrics(),
        }
    new_item_orders = changed_items.where(~F.col("is_deleted")).select(
        F.col("order_id").alias("id")
    )
    dates_after = gold.order_dates(spark, orders_t, changed_orders.union(new_item_orders))
    touched = sorted(dates_before | dates_after)

    gold_rows = gold.replace_dates(spark, orders_t, items_t, tables.daily_revenue, touched)
    table_metrics[f"{args.gold_namespace}.daily_revenue"] = {
        "touched_dates": len(touched),
        "rows_out": gold_rows,
        "dates_without_rows": len(touched) - gold_rows,
    }

    totals = {
        "events_in": sum(t["read"] for t in topics.values()),
        "bronze": sum(t["events"] for t in topics.values()),
        "quarantined": quarantined,
        "tombstones": sum(t["tombstones"] for t in topics.values()),
    }
    metrics: dict[str, Any] = {
        "format": METRICS_FORMAT,
        "batch_id": args.batch_id,
        "catalog": args.catalog,
        "tables_written": tables.all(),
        "manifests": list(args.manifest),
        "topics": topics,
        "tables": table_metrics,
        "totals": totals,
        "quarantined_by_reason": {k: v for k, v in quarantined_by_reason.items() if v},
        "tombstones_skipped": totals["tombstones"],
        "touched_dates": [d.isoformat() for d in touched],
        "started_at": started_at.isoformat(),
    }
    violations = check_invariants(metrics)
    metrics["invariants"] = {"ok": not violations, "violations": violations}
    metrics["status"] = "succeeded" if not violations else "failed"
    metrics["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    metrics["duration_seconds"] = round(time.monotonic() - started, 3)
    write_metrics(metrics, args.metrics_uri, s3)
    for result in results.values():
        result.effective.unpersist()
    for frame in parsed.values():
        frame.unpersist()
    if violations:
        raise InvariantError("; ".join(violations))
    return metrics


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("orders-cdc").getOrCreate()
    try:
        metrics = run(spark, argv)
    finally:
        spark.stop()
    print(
        f"orders_cdc batch {metrics['batch_id']}: {metrics['totals']} "
        f"touched_dates={len(metrics['touched_dates'])} in {metrics['duration_seconds']} s"
    )
    return 0
