"""The Slack run summary is built from the figures given, nothing else."""

from __future__ import annotations

import pytest

from orders_etl.notify import RunFigures, build_message

pytestmark = pytest.mark.unit


def figures(**overrides: object) -> RunFigures:
    base: dict[str, object] = {
        "dag_id": "orders_etl",
        "run_id": "manual__2026-11-24T10:00:00+00:00",
        "events_per_topic": {
            "orders.public.orders": 1200,
            "orders.public.line_items": 3400,
            "orders.public.customers": 50,
        },
        "rows_per_table": {
            "bronze.orders_raw": 4650,
            "silver.orders_clean": 1180,
            "gold.daily_revenue": 3,
        },
        "quarantined": 2,
        "clickhouse_rows": 3,
        "touched_dates": ["2026-11-02", "2026-11-01", "2026-11-03", "2026-11-02"],
        "clickhouse_table": "dashboards.daily_revenue",
        "partitions_replaced": 3,
        "partitions_dropped": 1,
        "tombstones": 4,
        "duration_seconds": 73.25,
    }
    base.update(overrides)
    return RunFigures(**base)  # type: ignore[arg-type]


def test_message_carries_the_real_figures() -> None:
    text = build_message(figures())
    assert text.splitlines() == [
        ":white_check_mark: *orders_etl* run `manual__2026-11-24T10:00:00+00:00` finished",
        "• Kafka events: 4,650 (orders.public.customers 50, orders.public.line_items 3,400, "
        "orders.public.orders 1,200)",
        "• Tombstones skipped: 4",
        "• Iceberg rows: bronze.orders_raw 4,650, gold.daily_revenue 3, silver.orders_clean 1,180",
        "• Quarantined: 2",
        "• dashboards.daily_revenue: 3 rows written, 3 partitions replaced, 1 dropped",
        "• Touched dates: 3 (2026-11-01, 2026-11-02, 2026-11-03)",
        "• Duration: 73.2 s",
    ]


def test_unknown_figures_are_left_out_not_invented() -> None:
    text = build_message(
        figures(
            tombstones=None,
            duration_seconds=None,
            partitions_replaced=None,
            partitions_dropped=None,
        )
    )
    assert "Tombstones" not in text
    assert "Duration" not in text
    assert "• dashboards.daily_revenue: 3 rows written" in text.splitlines()
    skipped = build_message(figures(clickhouse_rows=None))
    assert "• dashboards.daily_revenue: not loaded" in skipped.splitlines()


def test_many_dates_are_summarised() -> None:
    dates = [f"2026-10-{day:02d}" for day in range(1, 32)]
    assert "• Touched dates: 31 (2026-10-01 .. 2026-10-31)" in build_message(
        figures(touched_dates=dates)
    )


def test_nothing_to_do() -> None:
    text = build_message(
        figures(
            events_per_topic={"orders.public.orders": 0}, rows_per_table={}, clickhouse_rows=None
        )
    )
    assert text.startswith(":zzz: *orders_etl* run")
    assert "nothing to do" in text


def test_slack_control_characters_escaped() -> None:
    text = build_message(figures(run_id="<!channel> & co"))
    assert "`&lt;!channel&gt; &amp; co`" in text
    assert "<!channel>" not in text


def test_table_maintenance_and_its_failures_are_in_the_summary() -> None:
    import dataclasses

    from orders_contract.metrics import JobMetrics, TableMaintenance
    from orders_etl.notify import maintenance_lines

    from .test_metrics_contract import valid

    job = JobMetrics.from_dict(valid())
    calm = dataclasses.replace(job, maintenance={}, maintenance_errors=[])
    assert maintenance_lines(calm) == {}
    done = TableMaintenance(40, 12, 30, 16, 0, 1, 40, 12)
    failed = dataclasses.replace(
        job,
        maintenance={"silver.orders_clean": done},
        maintenance_errors=["lakehouse.silver.customers_clean: ValidationException: conflict"],
    )
    lines = maintenance_lines(failed)
    assert lines["Table maintenance"] == ("silver.orders_clean 52 to 16 files, 30 to 1 snapshots")
    figures = RunFigures("orders_etl", "r1", {"t": 1}, {"x": 1}, 0, 1, extra=lines)
    text = build_message(figures)
    assert "52 to 16 files" in text
    assert "Table maintenance failed (the next run tries again): lakehouse.silver" in text
