"""gold.daily_revenue, exactly per the data contract, recomputed for the dates a batch touched.

A date is touched when an order that counts (or counted) for it may have changed:
- before the silver MERGE: the created_at dates of live orders whose row changes in this
  batch, and of the orders that changed line items belonged to (an item moving away,
  being deleted or re-priced changes its old order's date);
- after the MERGE: the dates of the changed orders (new created_at, new status) and of the
  orders the changed line items now belong to.
Customers do not enter gold (the `customers` column counts distinct orders.customer_id).
Dates come from the UTC instant (epoch arithmetic, independent of the session time zone).

The touched dates' rows are replaced in one commit: overwrite by filter `date IN (...)` on
the identity-partitioned table, so a date that no longer has a counted order loses its row.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from orders_cdc.schemas import REVENUE_STATUSES

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
    rows = (
        live(spark, orders_table)
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
    orders = (
        live(spark, orders_table)
        .where(F.col("status").isin(*REVENUE_STATUSES))
        .select("id", "customer_id", utc_date("created_at").alias("date"))
        .join(F.broadcast(touched), "date", "left_semi")
    )
    items = (
        live(spark, items_table)
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


def replace_dates(
    spark: SparkSession, orders_table: str, items_table: str, target: str, dates: list[dt.date]
) -> int:
    """Recompute `dates` and replace their rows in `target` in one commit; rows written."""
    from pyspark.sql import functions as F

    if not dates:
        return 0
    result = compute(spark, orders_table, items_table, dates).localCheckpoint(eager=True)
    result.writeTo(target).overwrite(F.col("date").isin(*dates))
    return int(result.count())
