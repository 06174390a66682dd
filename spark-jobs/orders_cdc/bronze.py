"""Bronze (every valid event) and the quarantine (every malformed message), idempotently.

Idempotency: an insert-only MERGE keyed on the Kafka coordinates (topic, partition,
offset). A Kafka message is identified by its coordinates, whatever batch staged it, so a
rerun of a batch (same offsets, by the staging contract) inserts nothing and commits
nothing (the job skips the MERGE when the batch has no rows, and Iceberg's insert-only
MERGE appends only the unmatched rows). Delete-then-insert by batch_id was rejected: it
rewrites history on every rerun, and if the same offsets were ever staged under two
batch ids it would duplicate them. After the MERGE the job counts the table's rows of
this batch_id and fails if they differ from the batch's events, which catches offsets
that an earlier, different batch already wrote (a staging-contract violation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orders_cdc.tables import source_view

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

COORDINATES = "t.topic = s.topic AND t.`partition` = s.`partition` AND t.`offset` = s.`offset`"


def _merge_insert_only(spark: SparkSession, source: DataFrame, target: str) -> None:
    view = source_view(target, "insert")
    source.createOrReplaceTempView(view)
    spark.sql(
        f"MERGE INTO {target} t USING {view} s ON {COORDINATES} WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def bronze_rows(parsed: DataFrame, batch_id: str) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.where(F.col("kind") == "event").select(
        F.lit(batch_id).alias("batch_id"),
        "topic",
        "partition",
        "offset",
        F.timestamp_millis("kafka_timestamp_ms").alias("kafka_timestamp"),
        "key",
        "op",
        "lsn",
        "tx_id",
        "source_ts_ms",
        "ts_ms",
        F.col("row_id").alias("id"),
        F.col("value").cast("string").alias("value"),
    )


def quarantine_rows(parsed: DataFrame, batch_id: str) -> DataFrame:
    from pyspark.sql import functions as F

    return parsed.where(F.col("kind") == "quarantine").select(
        F.lit(batch_id).alias("batch_id"),
        "topic",
        "partition",
        "offset",
        F.timestamp_millis("kafka_timestamp_ms").alias("kafka_timestamp"),
        "key",
        "value",
        "reason",
        "detail",
    )


def write(
    spark: SparkSession,
    rows: DataFrame,
    target: str,
    expected: int,
    batch_id: str,
    kafka_span_ms: tuple[int, int] | None = None,
) -> int:
    """MERGE `rows` (`expected` of them) into `target`; returns the rows of batch_id there.

    `kafka_span_ms`: the lowest and highest Kafka timestamp of `rows`. The count then
    reads only the files that can hold them (the tables are partitioned by the day of
    kafka_timestamp and Iceberg keeps each file's bounds): without it, it reads every
    file the table ever got. A row of this batch written by an earlier attempt has the
    same offsets, so the same timestamps; the count is the same either way."""
    from pyspark.sql import functions as F

    if expected:
        _merge_insert_only(spark, rows, target)
    mine = spark.table(target).where(F.col("batch_id") == batch_id)
    if kafka_span_ms is not None:
        low, high = kafka_span_ms
        mine = mine.where(
            F.col("kafka_timestamp").between(
                F.timestamp_millis(F.lit(low)), F.timestamp_millis(F.lit(high))
            )
            | F.col("kafka_timestamp").isNull()
        )
    stored: int = mine.count()
    return stored
