"""Entry point: one batch of staged CDC messages into bronze, silver and gold.

    spark-submit [--conf spark.sql.catalog.<name>...] --py-files orders_cdc.zip main.py \
        --batch-id B --manifest s3://staging/cdc/batch=B/topic=T/_manifest.json [...] \
        --metrics-uri s3://staging/cdc/batch=B/_metrics.json \
        [--catalog lakehouse] [--bronze-namespace bronze] [--silver-namespace silver] \
        [--gold-namespace gold] [--compact-above-files 64] \
        [--snapshot-retention-hours 24] [--keep-snapshots 100]

The Iceberg catalog is configured outside the job (the SparkApplication's sparkConf);
the job only names it. Exit status 0 means every table is written and the metrics add up.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from orders_cdc import bronze, gold, maintenance, silver
from orders_cdc.documents import (
    RECORD_NAME,
    read_record,
    sibling_uri,
    write_record,
    write_text,
)
from orders_cdc.inputs import (
    OBJECT_DDL,
    S3Options,
    StagedTopic,
    read_and_parse,
    read_manifests,
)
from orders_cdc.schemas import REASONS, TABLES, parsed_ddl
from orders_cdc.tables import Tables, ensure_tables
from orders_contract.catalog import CREDENTIAL_ENV
from orders_contract.metrics import (
    KINDS,
    GoldCounts,
    InvariantError,
    JobMetrics,
    SilverCounts,
    StoredCounts,
    TopicCounts,
    Totals,
    check_invariants,
)
from orders_contract.topics import DEFAULT_TOPICS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T = TypeVar("T")


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
    parser.add_argument(
        "--dates-record-uri",
        default=None,
        help="where the batch's affected dates are kept across attempts "
        f"(default: {RECORD_NAME} beside --metrics-uri)",
    )
    parser.add_argument("--catalog", default="lakehouse")
    parser.add_argument("--bronze-namespace", default="bronze")
    parser.add_argument("--silver-namespace", default="silver")
    parser.add_argument("--gold-namespace", default="gold")
    parser.add_argument(
        "--compact-above-files",
        type=int,
        default=64,
        help="compact a table holding more files compaction has yet to do (small data "
        "files, delete files) than this at the end of the run (0: never)",
    )
    parser.add_argument(
        "--snapshot-retention-hours",
        type=float,
        default=24.0,
        help="expire snapshots older than this (the newest --keep-snapshots always stay)",
    )
    parser.add_argument(
        "--keep-snapshots",
        type=int,
        default=100,
        help="snapshots every table keeps whatever their age (0: never expire)",
    )
    args = parser.parse_args(argv)
    for name in ("compact_above_files", "keep_snapshots", "snapshot_retention_hours"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    return args


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
def apply_catalog_credentials(spark: SparkSession, catalog: str) -> None:
    for env, prop in CREDENTIAL_ENV.items():
        value = os.environ.get(env)
        key = f"spark.sql.catalog.{catalog}.{prop}"
        if value and not spark.conf.get(key, None):
            spark.conf.set(key, value)


#: The job group prefix of a run's Spark jobs (counted per step from Spark's own status
#: tracker). Each run has a group of its own: the tracker keeps only the last
#: spark.ui.retainedJobs jobs of a session, so in a long-lived session the count of a
#: shared group would drop as older runs' jobs are evicted.
JOB_GROUP = "orders-cdc"
#: Shuffle partitions per this many rows of the batch, when the deployment does not set
#: spark.sql.shuffle.partitions (Spark's default, 200, is sized for large data: a small
#: batch then plans, schedules and coalesces hundreds of empty partitions per shuffle).
ROWS_PER_SHUFFLE_PARTITION = 250_000
MAX_SHUFFLE_PARTITIONS = 200


class _Steps:
    """Wall time and Spark jobs per step of the job (kept in the metrics document)."""

    def __init__(self, spark: SparkSession, session_seconds: float | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.jobs: dict[str, int] = {}
        if session_seconds is not None:
            self.seconds["session_start"] = round(session_seconds, 3)
        self._context = spark.sparkContext
        self._group = f"{JOB_GROUP}-{uuid.uuid4().hex[:12]}"
        self._context.setJobGroup(self._group, "orders_cdc batch")
        self._last = time.monotonic()
        self._last_jobs = self._job_count()

    def _job_count(self) -> int:
        return len(self._context.statusTracker().getJobIdsForGroup(self._group))

    def done(self, step: str) -> None:
        now, jobs = time.monotonic(), self._job_count()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - self._last, 3)
        self.jobs[step] = self.jobs.get(step, 0) + jobs - self._last_jobs
        self._last, self._last_jobs = now, jobs


def size_shuffles(spark: SparkSession, rows: int) -> int:
    """spark.sql.shuffle.partitions for a batch of `rows`: one per
    ROWS_PER_SHUFFLE_PARTITION, at least two per core (Spark's default parallelism), at
    most MAX_SHUFFLE_PARTITIONS; unless the deployment set it: then that value stays.
    Returns the value the run uses."""
    if spark.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):
        return int(spark.conf.get("spark.sql.shuffle.partitions"))
    wanted = -(-rows // ROWS_PER_SHUFFLE_PARTITION)  # ceiling
    floor = 2 * spark.sparkContext.defaultParallelism
    partitions = min(max(wanted, floor), MAX_SHUFFLE_PARTITIONS)
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    return partitions


#: Threads for the tables' work within a step: one per table (three topics) plus the
#: quarantine's write. The Spark jobs of a small batch spend most of their wall time on
#: the driver (planning, the catalog's and the object store's round trips of each
#: Iceberg commit), not on the cores, so the tables' jobs overlap. Each table's work
#: touches only its own table; a step ends when all of its tables' work has (the
#: order between steps is what the job's semantics rest on).
TABLE_THREADS = len(TABLES) + 1


#: The name side_by_side gives the quarantine's write beside the tables'.
QUARANTINE = "quarantine"


def start_side_by_side(
    pool: ThreadPoolExecutor, work: Callable[[str], T], names: Iterable[str] = TABLES
) -> dict[str, Future[T]]:
    """`work(name)` for every name, started concurrently on `pool`. The threads inherit
    the caller's Spark job group (pyspark's inheritable_thread_target), so their Spark
    jobs count in the step."""
    from pyspark import inheritable_thread_target

    return {
        name: pool.submit(inheritable_thread_target(functools.partial(work, name)))
        for name in names
    }


def gather(futures: dict[str, Future[T]]) -> dict[str, T]:
    """The results by name once every one is over; the first failure (in the names'
    order) is raised only then, so no work is left running unobserved."""
    wait(futures.values())
    for future in futures.values():
        if (error := future.exception()) is not None:
            raise error
    return {name: future.result() for name, future in futures.items()}


def side_by_side(
    pool: ThreadPoolExecutor, work: Callable[[str], T], names: Iterable[str] = TABLES
) -> dict[str, T]:
    """`work(name)` for every name, concurrently; the results by name (gather)."""
    return gather(start_side_by_side(pool, work, names))


#: The Kafka timestamps (epoch ms) of a topic's rows, per kind: (lowest, highest).
TimestampRanges = dict[str, tuple[int, int]]


def _topic_counts(
    frame: DataFrame, staged: StagedTopic | None, table: str
) -> tuple[TopicCounts, TimestampRanges]:
    from pyspark.sql import functions as F

    rows = (
        frame.groupBy("kind", "reason")
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.min("kafka_timestamp_ms").alias("first_ms"),
            F.max("kafka_timestamp_ms").alias("last_ms"),
        )
        .collect()
    )
    by_kind = dict.fromkeys(KINDS, 0)
    unclassified = 0
    by_reason: dict[str, int] = {}
    ranges: TimestampRanges = {}
    for row in rows:
        if row["kind"] in by_kind:
            by_kind[row["kind"]] += row["count"]
        else:
            unclassified += row["count"]
        if row["kind"] == "quarantine":
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
        if row["first_ms"] is not None:
            low, high = ranges.get(row["kind"], (row["first_ms"], row["last_ms"]))
            ranges[row["kind"]] = (min(low, row["first_ms"]), max(high, row["last_ms"]))
    read = int(frame.agg(F.count(F.lit(1))).first()[0])
    counts = TopicCounts(
        table=table,
        manifest=staged.manifest_uri if staged else None,
        manifest_rows=staged.rows if staged else 0,
        objects=len(staged.objects) if staged else 0,
        read=read,
        events=by_kind["event"],
        quarantined=by_kind["quarantine"],
        tombstones=by_kind["tombstone"],
        unclassified=unclassified,
        quarantined_by_reason=dict(sorted(by_reason.items())),
    )
    return counts, ranges


def _span(ranges: list[TimestampRanges], kind: str) -> tuple[int, int] | None:
    found = [r[kind] for r in ranges if kind in r]
    return (min(f[0] for f in found), max(f[1] for f in found)) if found else None


def _dates_of_batch(
    spark: SparkSession, tables: Tables, results: dict[str, silver.SilverResult]
) -> set[dt.date]:
    """The dates (in silver as it is now) of the batch's orders and of the orders the
    batch's line items belong to."""
    from pyspark.sql import functions as F

    items = results["line_items"]
    item_orders = (
        silver.within(gold.live(spark, tables.silver("line_items")), "id", items.key_range)
        .join(items.latest.select("id"), "id", "left_semi")
        .select(F.col("order_id").alias("id"))
    )
    order_ids = results["orders"].latest.select("id").union(item_orders)
    return gold.order_dates(spark, tables.silver("orders"), order_ids)


def run(
    spark: SparkSession, argv: list[str] | None = None, session_seconds: float | None = None
) -> dict[str, Any]:
    """Process one batch; returns the metrics document (also written to --metrics-uri).
    `session_seconds`: how long getting the Spark session took (main), reported as the
    step `session_start`."""
    args = parse_args(argv)
    with ThreadPoolExecutor(max_workers=TABLE_THREADS, thread_name_prefix="orders-cdc") as pool:
        return _run(spark, args, pool, session_seconds)


def _run(
    spark: SparkSession,
    args: argparse.Namespace,
    pool: ThreadPoolExecutor,
    session_seconds: float | None,
) -> dict[str, Any]:
    from pyspark.sql import functions as F

    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    steps = _Steps(spark, session_seconds)
    apply_catalog_credentials(spark, args.catalog)
    conf = dict(spark.sparkContext.getConf().getAll())
    if not spark.conf.get(f"spark.sql.catalog.{args.catalog}", None):
        raise SystemExit(f"catalog {args.catalog!r} is not configured (spark.sql.catalog.*)")
    s3 = S3Options.from_catalog_conf(conf, args.catalog)
    tables = Tables(args.catalog, args.bronze_namespace, args.silver_namespace, args.gold_namespace)
    record_uri = args.dates_record_uri or sibling_uri(args.metrics_uri, RECORD_NAME)

    staged = {t.table: t for t in read_manifests(s3.client(), args.manifest, args.batch_id)}
    shuffle_partitions = size_shuffles(spark, sum(t.rows for t in staged.values()))

    # The staged objects are read and parsed (on Python workers, the first of which take
    # seconds to start), one thread per topic, while the driver creates or loads the
    # tables (catalog round trips): neither needs the other. The parse's Spark jobs count
    # in the step they start in; the counts' jobs in read_and_parse.
    reading = start_side_by_side(
        pool, lambda table: _parsed_topic(spark, staged.get(table), table, s3)
    )
    ensure_tables(spark, tables)
    steps.done("manifests_and_tables")
    parsed = gather(reading)
    counted = side_by_side(
        pool, lambda table: _topic_counts(parsed[table], staged.get(table), table)
    )
    ranges = {table: found for table, (_, found) in counted.items()}
    # Each table's topic is the one its manifest names (the deployment's kafka.topics);
    # a table with no manifest in the batch is reported under its default topic.
    topic_of = {t: staged[t].topic if t in staged else DEFAULT_TOPICS[t] for t in TABLES}
    topics = {topic_of[table]: counts for table, (counts, _) in counted.items()}
    steps.done("read_and_parse")

    # Bronze and the quarantine (insert-only MERGE on Kafka coordinates).
    def short(name: str) -> str:
        return name.split(".", 1)[1]

    quarantine_source = functools.reduce(
        lambda a, b: a.union(b),
        (bronze.quarantine_rows(parsed[table], args.batch_id) for table in TABLES),
    )
    quarantined = sum(t.quarantined for t in topics.values())

    def store(name: str) -> StoredCounts:
        if name == QUARANTINE:
            rows, target, expected = quarantine_source, tables.quarantine, quarantined
            span = _span(list(ranges.values()), "quarantine")
        else:
            rows = bronze.bronze_rows(parsed[name], args.batch_id)
            target, expected = tables.bronze(name), topics[topic_of[name]].events
            span = _span([ranges[name]], "event")
        return StoredCounts(
            expected, bronze.write(spark, rows, target, expected, args.batch_id, span)
        )

    stored = side_by_side(pool, store, (*TABLES, QUARANTINE))
    bronze_counts = {short(tables.bronze(t)): stored[t] for t in TABLES}
    quarantine_counts = stored[QUARANTINE]
    steps.done("bronze_and_quarantine")

    # Silver. The dates the batch affects are taken before the first MERGE, added to the
    # batch's record (which keeps them for any later attempt: after a partial failure
    # silver no longer shows them), then again after the MERGEs.
    results = side_by_side(
        pool,
        lambda table: silver.merge(
            spark,
            parsed[table].where(F.col("kind") == "event"),
            table,
            tables.silver(table),
            args.batch_id,
        ),
    )
    dates_before = _dates_of_batch(spark, tables, results)
    recorded = read_record(record_uri, args.batch_id, s3)
    if not dates_before <= recorded:
        write_record(record_uri, args.batch_id, recorded | dates_before, s3)
    steps.done("silver_prepare")
    side_by_side(pool, lambda table: silver.apply(spark, results[table], tables.silver(table)))
    steps.done("silver_merge")
    # Every key looked up again in silver, and the batch's dates in silver as it is now:
    # both only read the tables the MERGEs wrote.
    checking = start_side_by_side(
        pool,
        lambda table: silver.applied(spark, results[table], tables.silver(table), args.batch_id),
    )
    dates_after = _dates_of_batch(spark, tables, results)
    applied_by_table = gather(checking)
    silver_counts: dict[str, SilverCounts] = {}
    for table in TABLES:
        result, applied = results[table], applied_by_table[table]
        silver_counts[short(tables.silver(table))] = SilverCounts(
            events_in=result.events_in,
            keys_in=result.keys_in,
            superseded_in_batch=result.superseded_in_batch,
            merged_this_attempt=result.merged,
            upserts_applied=applied.upserts,
            deletes_applied=applied.deletes,
            stale_or_duplicate=applied.stale_or_duplicate,
            missing=applied.missing,
        )
    touched = sorted(recorded | dates_before | dates_after)
    steps.done("silver_check")

    written = gold.replace_dates(
        spark, tables.silver("orders"), tables.silver("line_items"), tables.daily_revenue, touched
    )
    steps.done("gold")

    policy = maintenance.Policy(
        compact_above_files=args.compact_above_files,
        retention=dt.timedelta(hours=args.snapshot_retention_hours),
        keep_snapshots=args.keep_snapshots,
    )
    maintained, maintenance_errors = maintenance.maintain(
        spark,
        tables.all(),
        {tables.silver(t) for t in TABLES},
        policy,
        each=lambda work, names: side_by_side(pool, work, names),
    )
    steps.done("maintenance")

    metrics = JobMetrics(
        batch_id=args.batch_id,
        catalog=args.catalog,
        manifests=list(args.manifest),
        tables_written=tables.all(),
        topics=topics,
        bronze=bronze_counts,
        quarantine_table=short(tables.quarantine),
        quarantine=quarantine_counts,
        quarantined_by_reason={
            reason: n
            for reason in REASONS
            if (n := sum(t.quarantined_by_reason.get(reason, 0) for t in topics.values()))
        },
        silver=silver_counts,
        gold_table=short(tables.daily_revenue),
        gold=GoldCounts(
            touched_dates=len(touched),
            rows_out=written.rows_out,
            rows_stored=written.rows_stored,
            committed=written.committed,
        ),
        totals=Totals(
            events_in=sum(t.read for t in topics.values()),
            bronze=sum(b.stored_for_batch for b in bronze_counts.values()),
            quarantined=quarantine_counts.stored_for_batch,
            tombstones=sum(t.tombstones for t in topics.values()),
        ),
        touched_dates=[d.isoformat() for d in touched],
        dates_from_record=len(recorded - dates_before - dates_after),
        started_at=started_at.isoformat(),
        finished_at="",
        duration_seconds=0.0,
        step_seconds=steps.seconds,
        step_spark_jobs=steps.jobs,
        shuffle_partitions=shuffle_partitions,
        maintenance=maintained,
        maintenance_errors=maintenance_errors,
        violations=[],
        status="running",
    )
    violations = check_invariants(metrics)
    metrics = dataclasses.replace(
        metrics,
        violations=violations,
        status="failed" if violations else "succeeded",
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        duration_seconds=round(time.monotonic() - started, 3),
    )
    write_text(args.metrics_uri, metrics.to_json(), s3)
    for result in results.values():
        result.effective.unpersist()
        result.latest.unpersist()
    for frame in parsed.values():
        frame.unpersist()
    if violations:
        raise InvariantError("; ".join(violations))
    return metrics.to_dict()


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    asked = time.monotonic()
    spark = SparkSession.builder.appName("orders-cdc").getOrCreate()
    try:
        metrics = run(spark, argv, session_seconds=time.monotonic() - asked)
    finally:
        spark.stop()
    print(
        f"orders_cdc batch {metrics['batch_id']}: {metrics['totals']} "
        f"touched_dates={len(metrics['touched_dates'])} "
        f"(from the record only: {metrics['dates_from_record']}) in {metrics['duration_seconds']} s"
    )
    return 0
