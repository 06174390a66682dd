"""The loader's validation: refused before any statement reaches ClickHouse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from orders_etl.clickhouse_load import parse_date, parse_dates, replace_partitions

pytestmark = pytest.mark.unit


class NoClient:
    """Fails the test if the loader talks to ClickHouse before validating."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"ClickHouse was called ({name}) before validation")


def row(**overrides: Any) -> dict[str, Any]:
    base = {
        "date": dt.date(2026, 11, 1),
        "revenue": Decimal("1.00"),
        "orders": 1,
        "items": 1,
        "customers": 1,
    }
    return {**base, **overrides}


def test_dates_are_strict_real_iso_dates() -> None:
    assert parse_date("2026-02-28") == dt.date(2026, 2, 28)
    assert parse_dates(["2026-11-02", dt.date(2026, 11, 1), "2026-11-02"]) == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 2),
    ]
    for bad in ("2026-02-29", "2026-1-01", "2026-01-01T00:00", " 2026-01-01", "today", 20260101):
        with pytest.raises(ValueError, match="refusing partition value"):
            parse_date(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="datetime"):
        parse_date(dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        parse_dates("2026-01-01")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row(revenue="abc")], "not a decimal"),
        ([row(revenue=Decimal("1.005"))], "Decimal"),
        ([row(revenue=Decimal("1e20"))], "Decimal"),
        ([row(orders=-1)], "UInt64"),
        ([row(items=1.5)], "UInt64"),
        ([row(customers=True)], "UInt64"),
        ([row(date="2026-11-01")], "not a date"),
        ([row(date=dt.date(2026, 11, 9))], "outside the touched dates"),
        ([{"date": dt.date(2026, 11, 1)}], "lacks columns"),
        ([row(), row()], "expected 1"),
    ],
)
def test_bad_rows_refused_before_any_statement(rows: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace_partitions(NoClient(), "dashboards", "daily_revenue", rows, ["2026-11-01"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("database", "table"),
    [("dash boards", "t"), ("d", "t;DROP TABLE x"), ("d", "1t"), ("d.x", "t"), ("d", "")],
)
def test_hostile_identifiers_refused_before_any_statement(database: str, table: str) -> None:
    with pytest.raises(ValueError, match="refusing ClickHouse"):
        replace_partitions(NoClient(), database, table, [], ["2026-11-01"])  # type: ignore[arg-type]
