"""Silver: the current state per key, by the data contract's state rule (highest source.lsn).

Each silver table holds one row per key ever seen, live or deleted:
`is_deleted` marks a key whose highest-lsn event is a delete (its row fields are null), and
`lsn` is the high-water mark of the key. Keeping the tombstone is what stops a late, older
insert from resurrecting a deleted key (a delete that arrives before its insert, in the
same batch or an earlier one). Consumers read `WHERE NOT is_deleted`.

Per batch and table:
1. latest event per key in the batch: highest lsn; same lsn = a duplicate delivery, the
   first by (partition, offset) wins (they carry the same change).
2. effective = those whose key is unknown or whose lsn is strictly above the stored lsn
   (an lsn already applied is a duplicate; an older one never overwrites a newer one).
   Materialised once (localCheckpoint), because gold needs the same set after the MERGE
   has changed the table it was computed against.
3. MERGE INTO ... ON id WHEN MATCHED AND s.lsn > t.lsn UPDATE SET * WHEN NOT MATCHED INSERT *
   (the lsn guard is repeated so a concurrent writer cannot be overwritten by older data).
   Every read of silver here (2, 3 and 4) is limited to the batch's key range (`within`),
   which Iceberg prunes by its files' bounds.
   Nothing effective: no MERGE, no snapshot (a rerun leaves silver untouched).
4. after the MERGE every key of the batch is looked up again (`applied`): silver holds this
   batch's event, a newer one (or the same lsn from another batch), or an older state,
   which would be a lost event. The job's invariants check these counts add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_cdc.schemas import ROW_FIELDS
from orders_cdc.tables import source_view

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row, SparkSession


#: The lowest and highest key of a batch's events for a table (None: it has none).
KeyRange = tuple[int, int] | None


def within(frame: DataFrame, column: str, keys: KeyRange) -> DataFrame:
    """`frame`'s rows whose `column` lies in the range `keys`: every lookup of a batch's keys
    in silver reads silver through it. Iceberg answers the range from its data files'
    column bounds, so the lookup opens only the files that may hold one of the keys (keys
    are handed out in order, and a batch's are mostly recent ones) instead of every file
    the table's history has left; the join after it finds the same rows."""
    from pyspark.sql import functions as F

    if keys is None:
        return frame.where(F.lit(False))
    return frame.where(F.col(column).between(*keys))


def _bounds(row: Row | None) -> KeyRange:
    return None if row is None or row["low"] is None else (int(row["low"]), int(row["high"]))


def key_range(frame: DataFrame, column: str) -> KeyRange:
    """The lowest and highest `column` of `frame` (one Spark job)."""
    from pyspark.sql import functions as F

    return _bounds(frame.agg(F.min(column).alias("low"), F.max(column).alias("high")).first())


@dataclass
class SilverResult:
    latest: DataFrame  # the batch's newest event per key (silver columns)
    effective: DataFrame  # those newer than silver's row: what the MERGE writes, materialised
    events_in: int
    keys_in: int
    superseded_in_batch: int
    merged: int
    key_range: KeyRange  # the batch's lowest and highest key (None: no event)


@dataclass(frozen=True)
class Applied:
    """Every key of the batch, looked up in silver after the MERGE."""

    upserts: int  # the table holds this batch's event, live
    deletes: int  # the table holds this batch's delete
    stale_or_duplicate: int  # a newer event, or the same lsn from another batch
    missing: int  # an older state or no row: the batch's event was lost


def _typed(table: str, name: str, kind: str) -> Column:
    from pyspark.sql import functions as F

    col = F.col(f"row_{name}")
    if kind == "timestamp":
        return F.timestamp_micros(col)
    if kind == "decimal":
        return col.cast("decimal(18,2)")
    return col


def silver_source(parsed_events: DataFrame, table: str, batch_id: str) -> DataFrame:
    """Events of the batch as silver rows (delete -> tombstone row), all events kept."""
    from pyspark.sql import functions as F

    deleted = F.col("op") == "d"
    fields = [
        F.when(deleted, F.lit(None)).otherwise(_typed(table, f.name, f.kind)).alias(f.name)
        for f in ROW_FIELDS[table]
        if f.name != "id"
    ]
    return parsed_events.select(
        F.col("row_id").alias("id"),
        *fields,
        deleted.alias("is_deleted"),
        "lsn",
        "op",
        "source_ts_ms",
        F.lit(batch_id).alias("batch_id"),
        "partition",
        "offset",
    )


def merge(
    spark: SparkSession, parsed_events: DataFrame, table: str, target: str, batch_id: str
) -> SilverResult:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    source = silver_source(parsed_events, table, batch_id)
    order = Window.partitionBy("id").orderBy(
        F.col("lsn").desc(), F.col("partition").asc(), F.col("offset").asc()
    )
    ranked = source.withColumn("_rank", F.row_number().over(order))
    columns = list(spark.table(target).columns)
    latest = ranked.where("_rank = 1").select(*columns).localCheckpoint(eager=True)
    counts = ranked.agg(
        F.count("*").alias("events"),
        F.countDistinct("id").alias("keys"),
        F.sum((F.col("_rank") > 1).cast("int")).alias("superseded"),
        F.min("id").alias("low"),
        F.max("id").alias("high"),
    ).first()
    keys = _bounds(counts)
    stored = within(spark.table(target), "id", keys).select("id", F.col("lsn").alias("_stored_lsn"))
    effective = (
        latest.join(stored, "id", "left")
        .where(F.col("_stored_lsn").isNull() | (F.col("lsn") > F.col("_stored_lsn")))
        .select(*columns)
        .localCheckpoint(eager=True)
    )
    return SilverResult(
        latest=latest,
        effective=effective,
        events_in=int(counts["events"]),
        keys_in=int(counts["keys"]),
        superseded_in_batch=int(counts["superseded"] or 0),
        merged=int(effective.count()),
        key_range=keys,
    )


def apply(spark: SparkSession, result: SilverResult, target: str) -> None:
    if result.merged == 0 or result.key_range is None:
        return
    view = source_view(target, "merge")
    result.effective.createOrReplaceTempView(view)
    low, high = result.key_range
    # The range on t (every key of s lies in it) is pushed to the target's scan: the MERGE
    # reads only the files that may hold one of the batch's keys (see `within`).
    spark.sql(
        f"MERGE INTO {target} t USING {view} s "
        f"ON t.id = s.id AND t.id BETWEEN {low:d} AND {high:d} "
        "WHEN MATCHED AND s.lsn > t.lsn THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def applied(spark: SparkSession, result: SilverResult, target: str, batch_id: str) -> Applied:
    """Classify every key of the batch by what silver holds for it now (after the MERGE,
    and after any earlier attempt's): counted from the table, not from what was sent."""
    from pyspark.sql import functions as F

    stored = within(spark.table(target), "id", result.key_range).select(
        "id",
        F.col("lsn").alias("_s_lsn"),
        F.col("batch_id").alias("_s_batch"),
        F.col("is_deleted").alias("_s_deleted"),
    )
    verdict = (
        F.when(F.col("_s_lsn").isNull() | (F.col("_s_lsn") < F.col("lsn")), "missing")
        .when(
            (F.col("_s_lsn") == F.col("lsn")) & (F.col("_s_batch") == batch_id),
            F.when(F.col("_s_deleted"), "delete").otherwise("upsert"),
        )
        .otherwise("stale")
    )
    rows = (
        result.latest.select("id", "lsn")
        .join(stored, "id", "left")
        .groupBy(verdict.alias("verdict"))
        .count()
        .collect()
    )
    by = {row["verdict"]: int(row["count"]) for row in rows}
    return Applied(
        upserts=by.get("upsert", 0),
        deletes=by.get("delete", 0),
        stale_or_duplicate=by.get("stale", 0),
        missing=by.get("missing", 0),
    )
