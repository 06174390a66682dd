"""GoldToClickHouseOperator's argument handling (no services)."""

from __future__ import annotations

import datetime as dt

import pytest

from orders_etl.operators.clickhouse import GoldToClickHouseOperator, coerce_dates

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        ["2026-11-02", "2026-11-01", "2026-11-02"],
        '["2026-11-01", "2026-11-02"]',
        "['2026-11-01', '2026-11-02']",
        "2026-11-01, 2026-11-02",
        (dt.date(2026, 11, 2), dt.date(2026, 11, 1)),
    ],
)
def test_touched_dates_from_lists_and_rendered_templates(value: object) -> None:
    assert coerce_dates(value) == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]


@pytest.mark.parametrize("value", [None, "", [], "[]"])
def test_no_touched_dates(value: object) -> None:
    assert coerce_dates(value) == []


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2026-01-01') DROP TABLE x --", ValueError),
        (["2026-13-01"], ValueError),
        ("[__import__('os').system('true')]", ValueError),
        ({"date": "2026-01-01"}, TypeError),
        (20261101, TypeError),
    ],
)
def test_bad_touched_dates_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        coerce_dates(value)


def test_touched_dates_is_templated_and_identifiers_checked() -> None:
    assert "touched_dates" in GoldToClickHouseOperator.template_fields
    with pytest.raises(ValueError, match="refusing ClickHouse database"):
        GoldToClickHouseOperator(
            task_id="t",
            touched_dates=[],
            iceberg_catalog="lakehouse",
            gold_table="gold.daily_revenue",
            database="x; DROP DATABASE y",
            table="daily_revenue",
        )
