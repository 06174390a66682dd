"""Load gold.daily_revenue's touched dates into the ClickHouse dashboard table, atomically per date.

    ensure_table(client, "dashboards", "daily_revenue")
    result = replace_partitions(client, "dashboards", "daily_revenue", rows, touched_dates)

Pure logic over a clickhouse-connect client (a ClickHouse server over HTTP or chdb in
process; only the client's DSN differs). No Airflow import: the operator in
orders_etl.operators.clickhouse reads gold with pyiceberg and calls this.

How a load runs, and what readers see:

1. Everything slow happens before anything is visible. The touched dates and rows are
   validated, a staging table is created `AS` the dashboard table (same structure, engine
   and partition key, which REPLACE PARTITION requires), all rows are inserted into it and
   the staging contents are counted per date and checked against the input.
2. The switch is ONE `ALTER TABLE` statement made of metadata-only partition commands:
   `REPLACE PARTITION <d> FROM staging` for every touched date that has gold rows, then
   `DROP PARTITION <d>` for every touched date that has none (an order moved out of it,
   was cancelled or deleted). Each command swaps or removes one partition atomically
   (hard-linked parts), so a reader sees every partition either old or new, never empty
   or half-written. The statement holds no data transfer and no client round trips, so
   the interval in which some touched dates are new and others still old is the few
   milliseconds the server needs to run it (ClickHouse has no multi-partition atomicity;
   this is the shortest window it allows). Replacements come before drops: the REPLACE
   commands are the ones that can still fail on data (e.g. a staging partition missing),
   and failing there leaves nothing removed; a DROP of a partition that is already gone
   is a no-op. If the switch fails half way, the task fails and its retry reruns the
   whole load, which converges on the right state (see idempotence below).
   The seed's DROP-then-INSERT showed readers an empty dashboard for the whole insert.
   Crash of the engine itself (SIGKILL, measured with chdb 26.x: tests/integration/
   test_clickhouse_load_faults.py): killed before the ALTER, the dashboard is the old one
   and a staging table is left; killed after it returned, the new one survives whole;
   killed inside it, each date is old or new except that REPLACE PARTITION commits the
   new part before the empty part covering the old ones, so the one partition being
   swapped at that instant can come back holding both rows until the retry replaces it.
3. The destination is counted per touched date and compared with the input; the staging
   table is dropped in every case (stale ones from a killed process can be removed with
   drop_stale_staging_tables).

Idempotent: the result depends only on (rows, dates), so rerunning a load replaces the
same partitions with identical contents and drops already-absent ones: nothing changes.
Identifiers are checked against a strict regex (hostile names raise ValueError); dates
must be real ISO dates and reach SQL only as bound query parameters, never formatted in.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: The dashboard table's columns, in order (the data contract, DESIGN.md).
COLUMNS: tuple[str, ...] = ("date", "revenue", "orders", "items", "customers")
COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("date", "Date"),
    ("revenue", "Decimal(18, 2)"),
    ("orders", "UInt64"),
    ("items", "UInt64"),
    ("customers", "UInt64"),
)
STAGING_INFIX = "__staging_"
#: Partition commands per ALTER statement (a very large backfill is split, in date order).
MAX_COMMANDS_PER_ALTER = 200
#: ClickHouse refuses an INSERT block touching more partitions than this by default.
_MAX_PARTITIONS_PER_INSERT = 100

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UINT64_MAX = 2**64 - 1
_REVENUE_MAX = Decimal("9999999999999999.99")  # Decimal(18, 2)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class LoadResult:
    """What a load did, counted from ClickHouse itself."""

    rows_written: int
    partitions_replaced: int
    partitions_dropped: int
    dates_replaced: tuple[str, ...]
    #: Touched dates with no gold rows (their partitions are absent after the load).
    dates_emptied: tuple[str, ...]

    def as_dict(self) -> dict[str, int]:
        """Counts only: a small XCom whatever the number of dates (they are in the metrics)."""
        return {
            "rows_written": self.rows_written,
            "partitions_replaced": self.partitions_replaced,
            "partitions_dropped": self.partitions_dropped,
            "dates_touched": len(self.dates_replaced) + len(self.dates_emptied),
        }


def validate_identifier(name: str, what: str = "identifier") -> str:
    """`name` if it is a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 chars)."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(
            f"refusing ClickHouse {what} {name!r}: only [A-Za-z_][A-Za-z0-9_]* (max 64) allowed"
        )
    return name


def parse_date(value: str | dt.date) -> dt.date:
    """A real calendar date from a date or a strict YYYY-MM-DD string; ValueError otherwise."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date, got a datetime: {value!r}")
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"refusing partition value {value!r}: not an ISO date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"refusing partition value {value!r}: not a real date") from None


def parse_dates(values: Iterable[str | dt.date]) -> list[dt.date]:
    """Validated, de-duplicated and sorted dates."""
    if isinstance(values, str | dt.date):
        raise TypeError("expected a collection of dates, got a single value")
    return sorted({parse_date(value) for value in values})


def _table_sql(database: str, table: str) -> str:
    return f"{validate_identifier(database, 'database')}.{validate_identifier(table, 'table')}"


def ensure_table(client: Client, database: str, table: str) -> None:
    """Create the database and dashboard table if missing; refuse an incompatible one."""
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    columns = ", ".join(f"{name} {type_}" for name, type_ in COLUMN_TYPES)
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {_table_sql(database, table)} ({columns}) "
        "ENGINE = MergeTree PARTITION BY date ORDER BY date"
    )
    found = client.query(
        "SELECT name, type FROM system.columns "
        "WHERE database = %(database)s AND table = %(table)s ORDER BY position",
        parameters={"database": database, "table": table},
    ).result_rows
    expected = [(name, type_.replace(" ", "")) for name, type_ in COLUMN_TYPES]
    if [(name, type_.replace(" ", "")) for name, type_ in found] != expected:
        raise ValueError(
            f"{database}.{table} exists with columns {found}, expected {list(COLUMN_TYPES)}"
        )
    partition_key = client.query(
        "SELECT partition_key FROM system.tables "
        "WHERE database = %(database)s AND name = %(table)s",
        parameters={"database": database, "table": table},
    ).result_rows
    if not partition_key or partition_key[0][0].strip() != "date":
        raise ValueError(f"{database}.{table} must be PARTITION BY date, found {partition_key}")


def _normalise_row(row: Mapping[str, Any], touched: set[dt.date]) -> list[Any]:
    missing = [column for column in COLUMNS if column not in row]
    if missing:
        raise ValueError(f"gold row {dict(row)!r} lacks columns {missing}")
    day = row["date"]
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise ValueError(f"gold row date {day!r} is not a date")
    if day not in touched:
        raise ValueError(f"gold row for {day.isoformat()} is outside the touched dates")
    try:
        revenue = Decimal(row["revenue"])
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"gold row revenue {row['revenue']!r} is not a decimal") from None
    if not revenue.is_finite() or revenue != revenue.quantize(_CENT) or abs(revenue) > _REVENUE_MAX:
        raise ValueError(f"gold row revenue {revenue!r} does not fit Decimal(18, 2)")
    counts = []
    for column in ("orders", "items", "customers"):
        value = row[column]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT64_MAX:
            raise ValueError(f"gold row {column} {value!r} is not a UInt64")
        counts.append(value)
    return [day, revenue, *counts]


def _count_by_date(
    client: Client, database: str, table: str, dates: Sequence[dt.date]
) -> dict[dt.date, int]:
    result = client.query(
        # Identifiers validated by _table_sql; the dates are a bound parameter.
        f"SELECT date, count() FROM {_table_sql(database, table)} "  # noqa: S608
        "WHERE date IN %(dates)s GROUP BY date",
        parameters={"dates": [day.isoformat() for day in dates]},
    )
    return {day: int(count) for day, count in result.result_rows}


def _existing_partitions(
    client: Client, database: str, table: str, dates: Sequence[dt.date]
) -> set[str]:
    if not dates:
        return set()
    result = client.query(
        "SELECT DISTINCT partition FROM system.parts WHERE database = %(database)s "
        "AND table = %(table)s AND active AND partition IN %(partitions)s",
        parameters={
            "database": database,
            "table": table,
            "partitions": [day.isoformat() for day in dates],
        },
    )
    return {str(row[0]) for row in result.result_rows}


def replace_partitions(
    client: Client,
    database: str,
    table: str,
    rows: Iterable[Mapping[str, Any]],
    dates: Iterable[str | dt.date],
) -> LoadResult:
    """Make the touched `dates` of `database.table` hold exactly `rows` (see the module doc).

    `rows` are gold rows (mappings with COLUMNS); each must fall on a touched date. A
    touched date without rows ends with its partition removed. The table must exist
    (ensure_table). Returns counts measured in ClickHouse.
    """
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    touched = parse_dates(dates)
    touched_set = set(touched)
    by_date: dict[dt.date, list[list[Any]]] = defaultdict(list)
    for row in rows:
        normalised = _normalise_row(row, touched_set)
        by_date[normalised[0]].append(normalised)
    for day, day_rows in by_date.items():
        if len(day_rows) != 1:
            # One row per date is the contract (gold is keyed by date); duplicates would
            # double revenue on the dashboard, so they are refused, not loaded.
            raise ValueError(f"gold has {len(day_rows)} rows for {day.isoformat()}, expected 1")
    if not touched:
        return LoadResult(0, 0, 0, (), ())
    replaced = [day for day in touched if day in by_date]
    emptied = [day for day in touched if day not in by_date]

    staging = f"{table}{STAGING_INFIX}{uuid.uuid4().hex[:12]}"
    validate_identifier(staging, "staging table")
    staged = 0
    try:
        if replaced:
            client.command(
                f"CREATE TABLE {_table_sql(database, staging)} AS {_table_sql(database, table)}"
            )
            for start in range(0, len(replaced), _MAX_PARTITIONS_PER_INSERT):
                chunk = replaced[start : start + _MAX_PARTITIONS_PER_INSERT]
                client.insert(
                    staging,
                    [r for day in chunk for r in by_date[day]],
                    column_names=list(COLUMNS),
                    database=database,
                )
            counted = _count_by_date(client, database, staging, replaced)
            expected = {day: len(by_date[day]) for day in replaced}
            if counted != expected:
                raise RuntimeError(f"staging {staging} holds {counted}, expected {expected}")
            staged = sum(counted.values())

        present_before = _existing_partitions(client, database, table, emptied)
        commands: list[tuple[str, str]] = [("REPLACE", day.isoformat()) for day in replaced]
        commands += [("DROP", day.isoformat()) for day in emptied]
        for start in range(0, len(commands), MAX_COMMANDS_PER_ALTER):
            _switch(
                client, database, table, staging, commands[start : start + MAX_COMMANDS_PER_ALTER]
            )

        after = _count_by_date(client, database, table, touched)
        wanted = {day: len(by_date[day]) for day in replaced}
        if after != wanted:
            raise RuntimeError(
                f"{database}.{table} holds {after} for the touched dates after the load, "
                f"expected {wanted} (a concurrent writer?)"
            )
    finally:
        if replaced:
            client.command(f"DROP TABLE IF EXISTS {_table_sql(database, staging)}")
    return LoadResult(
        rows_written=staged,
        partitions_replaced=len(replaced),
        partitions_dropped=len(present_before),
        dates_replaced=tuple(day.isoformat() for day in replaced),
        dates_emptied=tuple(day.isoformat() for day in emptied),
    )


def _switch(
    client: Client, database: str, table: str, staging: str, commands: Sequence[tuple[str, str]]
) -> None:
    """One ALTER statement; partition values are bound parameters (%(pN)s), never formatted."""
    parts = []
    parameters: dict[str, str] = {}
    for index, (kind, day) in enumerate(commands):
        key = f"p{index}"
        parameters[key] = parse_date(day).isoformat()
        if kind == "REPLACE":
            parts.append(f"REPLACE PARTITION %({key})s FROM {_table_sql(database, staging)}")
        else:
            parts.append(f"DROP PARTITION %({key})s")
    client.command(
        f"ALTER TABLE {_table_sql(database, table)} " + ", ".join(parts), parameters=parameters
    )


def drop_stale_staging_tables(
    client: Client, database: str, table: str, older_than: dt.timedelta = dt.timedelta(hours=6)
) -> list[str]:
    """Drop staging tables of `table` left by killed loads (older than `older_than`)."""
    validate_identifier(database, "database")
    validate_identifier(table, "table")
    result = client.query(
        "SELECT name FROM system.tables WHERE database = %(database)s "
        "AND startsWith(name, %(prefix)s) "
        "AND metadata_modification_time < now() - toIntervalSecond(%(age)s)",
        parameters={
            "database": database,
            "prefix": f"{table}{STAGING_INFIX}",
            "age": int(older_than.total_seconds()),
        },
    )
    dropped = []
    for (name,) in result.result_rows:
        validate_identifier(name, "staging table")
        client.command(f"DROP TABLE IF EXISTS {_table_sql(database, name)}")
        dropped.append(name)
    return dropped
