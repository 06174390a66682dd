"""Table names, partition specs and properties; created if missing (format version 2).

Write modes, chosen per layer:
- bronze.*_raw and the quarantine are insert-only (MERGE ... WHEN NOT MATCHED THEN INSERT
  compiles to an append), so the row-level mode never matters; copy-on-write is set so
  an occasional manual fix (DELETE of a bad batch) leaves no delete files behind.
- silver.*_clean: merge-on-read. Each batch updates a few keys scattered over the whole
  table; copy-on-write would rewrite every data file holding one of them on every batch,
  merge-on-read writes small position-delete files instead (v2). The cost moves to reads
  and is paid back by compaction (rewrite_data_files / rewrite_position_delete_files),
  which the job runs itself once a table has grown enough files (orders_cdc.maintenance).
- gold.daily_revenue: copy-on-write. The job replaces whole date partitions (overwrite by
  a filter on the identity partition column), which is file-level anyway; readers
  (the ClickHouse load) then never see delete files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_cdc.schemas import (
    BRONZE_COLUMNS,
    GOLD_DAILY_REVENUE_COLUMNS,
    QUARANTINE_COLUMNS,
    TABLES,
    silver_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

COMMON = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.distribution-mode": "hash",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}
COPY_ON_WRITE = {
    "write.delete.mode": "copy-on-write",
    "write.update.mode": "copy-on-write",
    "write.merge.mode": "copy-on-write",
}
MERGE_ON_READ = {
    "write.delete.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.merge.mode": "merge-on-read",
}
#: Silver buckets: enough to spread a large table, few enough for small batches.
SILVER_BUCKETS = 16


@dataclass(frozen=True)
class Tables:
    catalog: str
    bronze_ns: str
    silver_ns: str
    gold_ns: str

    def bronze(self, table: str) -> str:
        return f"{self.catalog}.{self.bronze_ns}.{table}_raw"

    def silver(self, table: str) -> str:
        return f"{self.catalog}.{self.silver_ns}.{table}_clean"

    @property
    def quarantine(self) -> str:
        return f"{self.catalog}.{self.silver_ns}.quarantine"

    @property
    def daily_revenue(self) -> str:
        return f"{self.catalog}.{self.gold_ns}.daily_revenue"

    def all(self) -> list[str]:
        return [
            *(self.bronze(t) for t in TABLES),
            self.quarantine,
            *(self.silver(t) for t in TABLES),
            self.daily_revenue,
        ]


def source_view(target: str, purpose: str) -> str:
    """A temporary view's name of its own per target table: the job writes its tables
    from concurrent threads of one session, whose temporary views they share."""
    return f"orders_cdc_{purpose}_" + target.replace(".", "_").replace("`", "")


def _props(*groups: dict[str, str]) -> str:
    merged: dict[str, str] = {}
    for group in groups:
        merged.update(group)
    return ", ".join(f"'{k}'='{v}'" for k, v in sorted(merged.items()))


def ensure_tables(spark: SparkSession, tables: Tables) -> None:
    for ns in {tables.bronze_ns, tables.silver_ns, tables.gold_ns}:
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {tables.catalog}.{ns}")
    for table in TABLES:
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {tables.bronze(table)} ({BRONZE_COLUMNS}) USING iceberg "
            f"PARTITIONED BY (days(kafka_timestamp)) "
            f"TBLPROPERTIES ({_props(COMMON, COPY_ON_WRITE)})"
        )
        bucket_column = "order_id" if table == "line_items" else "id"
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {tables.silver(table)} ({silver_columns(table)}) "
            f"USING iceberg PARTITIONED BY (bucket({SILVER_BUCKETS}, {bucket_column})) "
            f"TBLPROPERTIES ({_props(COMMON, MERGE_ON_READ)})"
        )
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {tables.quarantine} ({QUARANTINE_COLUMNS}) USING iceberg "
        f"PARTITIONED BY (topic, days(kafka_timestamp)) "
        f"TBLPROPERTIES ({_props(COMMON, COPY_ON_WRITE)})"
    )
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {tables.daily_revenue} ({GOLD_DAILY_REVENUE_COLUMNS}) "
        f"USING iceberg PARTITIONED BY (date) "
        f"TBLPROPERTIES ({_props(COMMON, COPY_ON_WRITE)})"
    )
