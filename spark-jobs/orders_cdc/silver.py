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
   Nothing effective: no MERGE, no snapshot (a rerun leaves silver untouched).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_cdc.schemas import ROW_FIELDS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


@dataclass
class SilverResult:
    effective: DataFrame  # the rows merged (silver columns), materialised
    events_in: int
    keys_in: int
    upserts: int
    deletes: int

    @property
    def stale_or_duplicate(self) -> int:
        """Keys whose newest event in the batch was not newer than silver's."""
        return self.keys_in - self.upserts - self.deletes

    @property
    def superseded_in_batch(self) -> int:
        """Events that lost to a newer (or equal-lsn earlier) event of the same key."""
        return self.events_in - self.keys_in

    def as_metrics(self) -> dict[str, int]:
        return {
            "events_in": self.events_in,
            "keys_in": self.keys_in,
            "superseded_in_batch": self.superseded_in_batch,
            "stale_or_duplicate": self.stale_or_duplicate,
            "upserts_applied": self.upserts,
            "deletes_applied": self.deletes,
        }


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
    latest = source.withColumn("_rank", F.row_number().over(order)).where("_rank = 1")
    stored = spark.table(target).select("id", F.col("lsn").alias("_stored_lsn"))
    columns = [c for c in spark.table(target).columns]
    effective = (
        latest.join(stored, "id", "left")
        .where(F.col("_stored_lsn").isNull() | (F.col("lsn") > F.col("_stored_lsn")))
        .select(*columns)
        .localCheckpoint(eager=True)
    )
    counts = source.agg(F.count("*").alias("events"), F.countDistinct("id").alias("keys")).first()
    applied = {
        row["is_deleted"]: row["n"]
        for row in effective.groupBy("is_deleted").agg(F.count("*").alias("n")).collect()
    }
    result = SilverResult(
        effective=effective,
        events_in=int(counts["events"]),
        keys_in=int(counts["keys"]),
        upserts=int(applied.get(False, 0)),
        deletes=int(applied.get(True, 0)),
    )
    return result


def apply(spark: SparkSession, result: SilverResult, target: str) -> None:
    if result.upserts + result.deletes == 0:
        return
    view = "orders_cdc_silver_source"
    result.effective.createOrReplaceTempView(view)
    spark.sql(
        f"MERGE INTO {target} t USING {view} s ON t.id = s.id "
        "WHEN MATCHED AND s.lsn > t.lsn THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)
