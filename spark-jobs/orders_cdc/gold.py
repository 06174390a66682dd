"""gold.daily_revenue, exactly per the data contract, recomputed for the dates a batch touched.

A date is touched when an order that counts (or counted) for it may have changed: the
created_at dates of the batch's orders and of the orders the batch's line items belong
to, looked up in silver before the batch's MERGEs (an item moving away, being deleted or
re-priced changes its old order's date) and after them (new created_at, new status, the
order an item now belongs to). Every key of the batch counts, not only those whose event
is newer than silver: a retry after a partial failure finds silver already changed, so
the dates from before the batch's first silver commit come from the affected-dates
record (orders_cdc.documents) that every attempt updates before it commits.
Customers do not enter gold (the `customers` column counts distinct orders.customer_id).
Dates come from the UTC instant (epoch arithmetic, independent of the session time zone).

The touched dates' rows are replaced in one commit: overwrite by filter `date IN (...)` on
the identity-partitioned table, so a date that no longer has a counted order loses its row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_cdc.schemas import REVENUE_STATUSES
from orders_cdc.silver import key_range, within

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MICROS_PER_DAY = 86_400_000_000


def utc_date(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.date_from_unix_date(
        F.floor(F.unix_micros(F.col(column)) / F.lit(MICROS_PER_DAY)).cast("int")
    )


def live(spark: SparkSession, table: str) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.table(table).where(~F.col("is_deleted"))


def order_dates(spark: SparkSession, orders_table: str, order_ids: DataFrame) -> set[dt.date]:
    """UTC created_at dates of the live orders among `order_ids` (column `id`)."""
    from pyspark.sql import functions as F

    ids = order_ids.select("id").where(F.col("id").isNotNull()).distinct()
    ids = ids.localCheckpoint(eager=True)
    rows = (
        within(live(spark, orders_table), "id", key_range(ids, "id"))
        .join(ids, "id", "left_semi")
        .select(utc_date("created_at").alias("date"))
        .distinct()
        .collect()
    )
    return {row["date"] for row in rows}


def compute(
    spark: SparkSession, orders_table: str, items_table: str, dates: list[dt.date]
) -> DataFrame:
    from pyspark.sql import functions as F

    touched = spark.createDataFrame([(d,) for d in dates], "date date")
    # Pushed to the scans and answered from the files' column bounds (silver.within): the
    # touched dates' span of created_at, then the span of those orders' ids in the items.
    first = dt.datetime.combine(min(dates), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(max(dates), dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=1)
    orders = (
        live(spark, orders_table)
        .where((F.col("created_at") >= F.lit(first)) & (F.col("created_at") < F.lit(end)))
        .where(F.col("status").isin(*REVENUE_STATUSES))
        .select("id", "customer_id", utc_date("created_at").alias("date"))
        .join(F.broadcast(touched), "date", "left_semi")
        .localCheckpoint(eager=True)
    )
    items = (
        within(live(spark, items_table), "order_id", key_range(orders, "id"))
        .groupBy(F.col("order_id").alias("id"))
        .agg(
            F.sum(F.col("quantity").cast("decimal(10,0)") * F.col("unit_price")).alias("rev"),
            F.sum(F.col("quantity").cast("bigint")).alias("qty"),
        )
    )
    return (
        orders.join(items, "id", "left")
        .groupBy("date")
        .agg(
            F.coalesce(F.sum("rev"), F.lit(0)).cast("decimal(18,2)").alias("revenue"),
            F.count("id").alias("orders"),
            F.coalesce(F.sum("qty"), F.lit(0)).cast("bigint").alias("items"),
            F.countDistinct("customer_id").alias("customers"),
        )
        .select("date", "revenue", "orders", "items", "customers")
    )


@dataclass(frozen=True)
class GoldWrite:
    rows_out: int  # rows computed for the dates
    rows_stored: int  # rows the table holds for the dates after the write (counted there)
    committed: bool  # False when the table already held exactly these rows


def replace_dates(
    spark: SparkSession, orders_table: str, items_table: str, target: str, dates: list[dt.date]
) -> GoldWrite:
    """Recompute `dates` and replace their rows in `target` in one commit.

    A recompute that equals what the table holds for those dates commits nothing, so a
    retry or a rerun of a batch that already reached gold leaves gold's history alone."""
    from pyspark.sql import functions as F

    if not dates:
        return GoldWrite(0, 0, committed=False)
    result = compute(spark, orders_table, items_table, dates).localCheckpoint(eager=True)
    in_dates = F.col("date").isin(*dates)
    current = spark.table(target).where(in_dates).select(*result.columns)
    rows_out = int(result.count())
    same = (
        int(current.count()) == rows_out
        and result.exceptAll(current).isEmpty()
        and current.exceptAll(result).isEmpty()
    )
    if not same:
        result.writeTo(target).overwrite(in_dates)
    rows_stored = int(spark.table(target).where(in_dates).count())
    result.unpersist()
    return GoldWrite(rows_out, rows_stored, committed=not same)
