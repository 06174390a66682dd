"""GoldToClickHouseOperator: the touched dates of gold.daily_revenue into the dashboard table.

    load = GoldToClickHouseOperator(
        task_id="load_clickhouse",
        touched_dates=spark.output["touched_dates"],     # from the Spark job's metrics
        iceberg_catalog=config.iceberg.catalog,
        gold_table=f"{config.iceberg.gold_namespace}.daily_revenue",
        clickhouse_conn_id=config.clickhouse.connection_id,
        database=config.clickhouse.database,
        table=config.clickhouse.table,
    )

Reads exactly the touched dates from gold with pyiceberg (an `In("date", ...)` filter, at
the table's current snapshot or a given `snapshot_id`) and replaces those partitions in
ClickHouse (orders_etl.clickhouse_load). Returns a small dict of counts (an XCom).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from orders_contract.catalog import load_catalog_file, pyiceberg_properties
from orders_etl import clickhouse_load
from orders_etl.hooks.clickhouse import ClickHouseHook

if TYPE_CHECKING:
    from airflow.sdk import Context


def coerce_dates(value: Any) -> list[dt.date]:
    """Touched dates from a list, or from a rendered template string (JSON/Python list, CSV)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                # A Jinja-rendered Python list: ['2026-01-01', ...]. literal_eval only
                # evaluates literals, never code.
                value = ast.literal_eval(text)
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Mapping) or not isinstance(value, Sequence | set | frozenset):
        raise TypeError(f"touched_dates must be a list of ISO dates, got {type(value).__name__}")
    return clickhouse_load.parse_dates(value)


class GoldToClickHouseOperator(BaseOperator):
    """Replace the dashboard table's partitions for the touched dates with gold's rows.

    :param touched_dates: ISO dates (templated); typically the Spark job's touched dates.
    :param iceberg_catalog: the Iceberg catalog's name.
    :param catalog_file: the catalog as data (orders_contract.catalog, the chart's
        iceberg-catalog.json), opened with its login from the environment; None: pyiceberg's
        own configuration by name (PYICEBERG_CATALOG__*, .pyiceberg.yaml).
    :param gold_table: Iceberg table identifier, ``<namespace>.daily_revenue``.
    :param clickhouse_conn_id: Airflow connection for ClickHouseHook.
    :param database: ClickHouse database of the dashboard table.
    :param table: the dashboard table.
    :param snapshot_id: read gold at this Iceberg snapshot (templated); default current.
    :param catalog_properties: explicit catalog properties (tests); default: by name.
    :param create_table: create the dashboard table if it does not exist.
    """

    template_fields: Sequence[str] = ("touched_dates", "snapshot_id")
    ui_color = "#fdf5d0"

    def __init__(
        self,
        *,
        touched_dates: Any,
        iceberg_catalog: str,
        gold_table: str,
        clickhouse_conn_id: str = ClickHouseHook.default_conn_name,
        database: str,
        table: str,
        snapshot_id: int | str | None = None,
        catalog_file: str | None = None,
        catalog_properties: Mapping[str, str] | None = None,
        create_table: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        clickhouse_load.validate_identifier(database, "database")
        clickhouse_load.validate_identifier(table, "table")
        self.touched_dates = touched_dates
        self.iceberg_catalog = iceberg_catalog
        self.gold_table = gold_table
        self.clickhouse_conn_id = clickhouse_conn_id
        self.database = database
        self.table = table
        self.snapshot_id = snapshot_id
        self.catalog_file = catalog_file
        self.catalog_properties = dict(catalog_properties) if catalog_properties else None
        self.create_table = create_table

    def _catalog_properties(self) -> dict[str, str]:
        if self.catalog_properties is not None:
            return self.catalog_properties
        if not self.catalog_file:
            return {}
        catalog = load_catalog_file(self.catalog_file)
        if catalog.name != self.iceberg_catalog:
            raise ValueError(
                f"{self.catalog_file} describes catalog {catalog.name!r}, the pipeline reads "
                f"{self.iceberg_catalog!r}: set spark.catalog.name and iceberg.catalog alike"
            )
        return pyiceberg_properties(catalog.with_credentials_from_env())

    def read_gold(self, dates: Sequence[dt.date]) -> list[dict[str, Any]]:
        """Gold rows for exactly `dates` (pyiceberg, partition-pruned by the date filter)."""
        from pyiceberg.catalog import load_catalog
        from pyiceberg.expressions import BooleanExpression, In

        # In's constructor takes (term, literals) at run time; its pydantic-generated
        # signature does not say so to mypy.
        is_in: Callable[..., BooleanExpression] = In

        catalog = load_catalog(self.iceberg_catalog, **self._catalog_properties())
        gold = catalog.load_table(self.gold_table)
        snapshot = int(self.snapshot_id) if self.snapshot_id not in (None, "", "None") else None
        scan = gold.scan(
            row_filter=is_in("date", list(dates)),
            selected_fields=clickhouse_load.COLUMNS,
            snapshot_id=snapshot,
        )
        rows: list[dict[str, Any]] = scan.to_arrow().to_pylist()
        return rows

    def execute(self, context: Context) -> dict[str, int]:
        dates = coerce_dates(self.touched_dates)
        if not dates:
            self.log.info("No touched dates: nothing to load into %s.%s", self.database, self.table)
            return clickhouse_load.LoadResult(0, 0, 0, (), ()).as_dict()
        rows = self.read_gold(dates)
        self.log.info(
            "Read %d gold rows from %s for %d touched dates (%s .. %s)",
            len(rows),
            self.gold_table,
            len(dates),
            dates[0],
            dates[-1],
        )
        client = ClickHouseHook(self.clickhouse_conn_id).get_client()
        try:
            if self.create_table:
                clickhouse_load.ensure_table(client, self.database, self.table)
            stale = clickhouse_load.drop_stale_staging_tables(client, self.database, self.table)
            if stale:
                self.log.warning("Dropped stale staging tables of killed loads: %s", stale)
            result = clickhouse_load.replace_partitions(
                client, self.database, self.table, rows, dates
            )
        finally:
            client.close()
        self.log.info(
            "%s.%s: %d rows written, %d partitions replaced, %d dropped",
            self.database,
            self.table,
            result.rows_written,
            result.partitions_replaced,
            result.partitions_dropped,
        )
        return result.as_dict()
