"""The ClickHouse loader on chdb (ClickHouse's engine in process): REPLACE/DROP PARTITION."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from orders_etl.clickhouse_load import (
    STAGING_INFIX,
    drop_stale_staging_tables,
    ensure_table,
    replace_partitions,
)

pytestmark = pytest.mark.integration

D1, D2, D3, D4 = (dt.date(2026, 11, day) for day in (1, 2, 3, 4))


def gold(day: dt.date, revenue: str, orders: int, items: int, customers: int) -> dict[str, Any]:
    return {
        "date": day,
        "revenue": Decimal(revenue),
        "orders": orders,
        "items": items,
        "customers": customers,
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # chdb allows one engine path per process and one process per path: a fresh directory
    # for this module, closed at its end, never the shared services' one.
    path: Path = tmp_path_factory.mktemp("chdb-load")
    ch = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    yield ch
    ch.close()


@pytest.fixture
def db(client: Client) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    ensure_table(client, name, "daily_revenue")
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def contents(client: Client, db: str) -> list[tuple[Any, ...]]:
    rows = client.query(
        f"SELECT date, revenue, orders, items, customers FROM {db}.daily_revenue ORDER BY date"
    ).result_rows
    return [tuple(row) for row in rows]


def parts(client: Client, db: str) -> list[tuple[str, str]]:
    """(partition, part name) of active parts: a rerun that rewrote anything changes these."""
    rows = client.query(
        "SELECT partition, name FROM system.parts WHERE database = %(db)s "
        "AND table = 'daily_revenue' AND active ORDER BY partition, name",
        parameters={"db": db},
    ).result_rows
    return [(str(p), str(n)) for p, n in rows]


def tables(client: Client, db: str) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = %(db)s ORDER BY name",
        parameters={"db": db},
    ).result_rows
    return [row[0] for row in rows]


def seed(client: Client, db: str) -> None:
    result = replace_partitions(
        client,
        db,
        "daily_revenue",
        [
            gold(D1, "10.50", 1, 2, 1),
            gold(D2, "20.00", 2, 3, 2),
            gold(D3, "30.25", 3, 4, 3),
        ],
        ["2026-11-01", "2026-11-02", "2026-11-03"],
    )
    assert (result.rows_written, result.partitions_replaced, result.partitions_dropped) == (3, 3, 0)


def test_touched_partitions_replaced_others_untouched_empty_date_removed(
    client: Client, db: str
) -> None:
    seed(client, db)
    untouched_parts = [p for p in parts(client, db) if p[0] == "2026-11-01"]

    # An order moved from 11-03 to 11-04 and 11-02 changed: touched = 02, 03, 04.
    result = replace_partitions(
        client,
        db,
        "daily_revenue",
        [gold(D2, "99.99", 7, 8, 5), gold(D4, "30.25", 3, 4, 3)],
        [D2, "2026-11-03", D4],
    )

    assert contents(client, db) == [
        (D1, Decimal("10.50"), 1, 2, 1),
        (D2, Decimal("99.99"), 7, 8, 5),
        (D4, Decimal("30.25"), 3, 4, 3),
    ]
    assert [p for p in parts(client, db) if p[0] == "2026-11-01"] == untouched_parts
    assert result.rows_written == 2
    assert result.partitions_replaced == 2
    assert result.partitions_dropped == 1
    assert result.dates_replaced == ("2026-11-02", "2026-11-04")
    assert result.dates_emptied == ("2026-11-03",)
    assert result.as_dict() == {
        "rows_written": 2,
        "partitions_replaced": 2,
        "partitions_dropped": 1,
        "dates_touched": 3,
    }
    assert tables(client, db) == ["daily_revenue"], "the staging table must be cleaned up"


def test_rerun_changes_nothing(client: Client, db: str) -> None:
    seed(client, db)
    rows = [gold(D2, "99.99", 7, 8, 5)]
    dates = [D2, D3]
    replace_partitions(client, db, "daily_revenue", rows, dates)
    before = (contents(client, db), tables(client, db))

    again = replace_partitions(client, db, "daily_revenue", rows, dates)

    assert (contents(client, db), tables(client, db)) == before
    # The already-removed partition is not counted as dropped again.
    assert (again.rows_written, again.partitions_replaced, again.partitions_dropped) == (1, 1, 0)


def test_no_touched_dates_is_a_no_op(client: Client, db: str) -> None:
    seed(client, db)
    before = parts(client, db)
    result = replace_partitions(client, db, "daily_revenue", [], [])
    assert result.as_dict()["dates_touched"] == 0
    assert parts(client, db) == before


@pytest.mark.parametrize(
    "hostile",
    [
        "2026-01-01') DROP TABLE x --",
        "2026-11-01' OR 1=1 --",
        "2026-02-30",
        "20261101",
        "2026-11-1",
    ],
)
def test_hostile_or_invalid_partition_value_refused(client: Client, db: str, hostile: str) -> None:
    seed(client, db)
    before = contents(client, db)
    with pytest.raises(ValueError, match="refusing partition value"):
        replace_partitions(client, db, "daily_revenue", [], [hostile])
    assert contents(client, db) == before
    assert tables(client, db) == ["daily_revenue"]


@pytest.mark.parametrize(
    ("database", "table"),
    [
        ("dashboards; DROP DATABASE system", "daily_revenue"),
        ("dashboards", "daily_revenue FORMAT TSV"),
        ("dashboards", "x`; DROP TABLE y; --"),
        ("`dashboards`", "daily_revenue"),
        ("", "daily_revenue"),
        ("dashboards", "a" * 65),
    ],
)
def test_hostile_identifiers_refused(client: Client, database: str, table: str) -> None:
    with pytest.raises(ValueError, match="refusing ClickHouse"):
        ensure_table(client, database, table)
    with pytest.raises(ValueError, match="refusing ClickHouse"):
        replace_partitions(client, database, table, [], [D1])


def test_rows_outside_touched_dates_or_duplicated_are_refused(client: Client, db: str) -> None:
    seed(client, db)
    before = contents(client, db)
    with pytest.raises(ValueError, match="outside the touched dates"):
        replace_partitions(client, db, "daily_revenue", [gold(D4, "1.00", 1, 1, 1)], [D2])
    with pytest.raises(ValueError, match="expected 1"):
        replace_partitions(client, db, "daily_revenue", [gold(D2, "1.00", 1, 1, 1)] * 2, [D2])
    with pytest.raises(ValueError, match="Decimal"):
        replace_partitions(client, db, "daily_revenue", [gold(D2, "1.001", 1, 1, 1)], [D2])
    assert contents(client, db) == before
    assert tables(client, db) == ["daily_revenue"]


def test_incompatible_existing_table_is_refused(client: Client) -> None:
    name = f"t_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE DATABASE {name}")
    client.command(
        f"CREATE TABLE {name}.daily_revenue (date Date, revenue Float64) "
        "ENGINE = MergeTree PARTITION BY date ORDER BY date"
    )
    try:
        with pytest.raises(ValueError, match="exists with columns"):
            ensure_table(client, name, "daily_revenue")
    finally:
        client.command(f"DROP DATABASE {name}")


def test_stale_staging_tables_are_dropped(client: Client, db: str) -> None:
    stale = f"daily_revenue{STAGING_INFIX}deadbeef0000"
    client.command(f"CREATE TABLE {db}.{stale} AS {db}.daily_revenue")
    assert drop_stale_staging_tables(client, db, "daily_revenue", dt.timedelta(hours=1)) == []
    assert drop_stale_staging_tables(client, db, "daily_revenue", dt.timedelta(0)) in ([stale], [])
    # metadata_modification_time has one-second resolution: wait it out rather than race it.
    if stale in tables(client, db):
        import time

        time.sleep(1.1)
        assert drop_stale_staging_tables(client, db, "daily_revenue", dt.timedelta(0)) == [stale]
    assert tables(client, db) == ["daily_revenue"]
