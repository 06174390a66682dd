"""The metrics document (orders_contract.metrics): one definition, strict to read, and
invariants that fail, each naming its rule, when a count does not add up."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from orders_contract.metrics import FORMAT, JobMetrics, MetricsFormatError, check_invariants

pytestmark = pytest.mark.unit


def valid() -> dict[str, Any]:
    """A batch that adds up: orders 10 read (7 events, 2 quarantined, 1 tombstone),
    line_items 5 events, customers nothing."""
    topics = {
        "orders.public.orders": {
            "table": "orders", "manifest": "s3://staging/m1", "manifest_rows": 10,
            "objects": 1, "read": 10, "events": 7, "quarantined": 2, "tombstones": 1,
            "unclassified": 0, "quarantined_by_reason": {"invalid_json": 1, "unknown_op": 1},
        },
        "orders.public.line_items": {
            "table": "line_items", "manifest": "s3://staging/m2", "manifest_rows": 5,
            "objects": 1, "read": 5, "events": 5, "quarantined": 0, "tombstones": 0,
            "unclassified": 0, "quarantined_by_reason": {},
        },
        "orders.public.customers": {
            "table": "customers", "manifest": None, "manifest_rows": 0, "objects": 0,
            "read": 0, "events": 0, "quarantined": 0, "tombstones": 0, "unclassified": 0,
            "quarantined_by_reason": {},
        },
    }  # fmt: skip
    silver = {
        "silver.orders_clean": {
            "events_in": 7, "keys_in": 5, "superseded_in_batch": 2, "merged_this_attempt": 4,
            "upserts_applied": 3, "deletes_applied": 1, "stale_or_duplicate": 1, "missing": 0,
        },
        "silver.line_items_clean": {
            "events_in": 5, "keys_in": 5, "superseded_in_batch": 0, "merged_this_attempt": 5,
            "upserts_applied": 5, "deletes_applied": 0, "stale_or_duplicate": 0, "missing": 0,
        },
        "silver.customers_clean": {
            "events_in": 0, "keys_in": 0, "superseded_in_batch": 0, "merged_this_attempt": 0,
            "upserts_applied": 0, "deletes_applied": 0, "stale_or_duplicate": 0, "missing": 0,
        },
    }  # fmt: skip
    return {
        "format": FORMAT,
        "batch_id": "b1",
        "catalog": "lakehouse",
        "manifests": ["s3://staging/m1", "s3://staging/m2"],
        "tables_written": [],
        "topics": topics,
        "bronze": {
            "bronze.orders_raw": {"rows_in": 7, "stored_for_batch": 7},
            "bronze.line_items_raw": {"rows_in": 5, "stored_for_batch": 5},
            "bronze.customers_raw": {"rows_in": 0, "stored_for_batch": 0},
        },
        "quarantine_table": "silver.quarantine",
        "quarantine": {"rows_in": 2, "stored_for_batch": 2},
        "quarantined_by_reason": {"invalid_json": 1, "unknown_op": 1},
        "silver": silver,
        "gold_table": "gold.daily_revenue",
        "gold": {"touched_dates": 3, "rows_out": 2, "rows_stored": 2, "committed": True},
        "totals": {"events_in": 15, "bronze": 12, "quarantined": 2, "tombstones": 1},
        "touched_dates": ["2026-11-01", "2026-11-02", "2026-11-03"],
        "dates_from_record": 1,
        "started_at": "2026-12-01T00:00:00+00:00",
        "finished_at": "2026-12-01T00:00:09+00:00",
        "duration_seconds": 9.0,
        "step_seconds": {"gold": 1.0},
        "step_spark_jobs": {"gold": 3},
        "shuffle_partitions": 2,
        "maintenance": {
            "silver.orders_clean": {
                "data_files_before": 40,
                "delete_files_before": 12,
                "snapshots_before": 30,
                "data_files_after": 16,
                "delete_files_after": 0,
                "snapshots_after": 31,
                "rewritten_data_files": 40,
                "rewritten_delete_files": 12,
            }
        },
        "maintenance_errors": [],
        "violations": [],
        "status": "succeeded",
    }


def test_a_document_that_adds_up_has_no_violations_and_round_trips() -> None:
    doc = JobMetrics.from_dict(valid())
    assert check_invariants(doc) == []
    assert JobMetrics.from_json(doc.to_json()) == doc
    assert doc.to_dict() == valid()
    assert doc.rows_per_table() == {
        "bronze.orders_raw": 7,
        "bronze.line_items_raw": 5,
        "bronze.customers_raw": 0,
        "silver.quarantine": 2,
        "silver.orders_clean": 4,
        "silver.line_items_clean": 5,
        "silver.customers_clean": 0,
        "gold.daily_revenue": 2,
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, leaf = path.split("/")
        node = doc
        for part in parents:
            node = node[part]
        node[leaf] = value

    return change


ORDERS = "topics/orders.public.orders"
SILVER_ORDERS = "silver/silver.orders_clean"

VIOLATIONS = [
    # (what breaks, the change, the rule named in the message)
    ("fewer rows read than staged", _set(f"{ORDERS}/read", 9), "read == manifest"),
    ("a row the parser did not classify", _set(f"{ORDERS}/unclassified", 1),
     "every message classified"),
    ("events miscounted", _set(f"{ORDERS}/events", 6), "read == events + quarantined + tombstones"),
    ("reasons do not add up", _set(f"{ORDERS}/quarantined_by_reason", {"invalid_json": 1}),
     "quarantine reasons add up"),
    ("bronze sent fewer than the events", _set("bronze/bronze.orders_raw/rows_in", 6),
     "bronze gets every event"),
    ("bronze stored fewer than sent", _set("bronze/bronze.line_items_raw/stored_for_batch", 4),
     "stored == sent"),
    ("the quarantine lost a row", _set("quarantine/stored_for_batch", 1), "stored == sent"),
    ("the quarantine was sent fewer", _set("quarantine/rows_in", 1),
     "every quarantined message is kept"),
    ("silver saw fewer events", _set(f"{SILVER_ORDERS}/events_in", 6), "silver gets every event"),
    ("superseded miscounted", _set(f"{SILVER_ORDERS}/superseded_in_batch", 1),
     "events == keys + superseded"),
    ("an applied key unaccounted", _set(f"{SILVER_ORDERS}/upserts_applied", 2),
     "keys == applied + stale + missing"),
    ("a key lost in silver", _set(f"{SILVER_ORDERS}/missing", 1), "no key lost"),
    ("gold skipped a touched date", _set("gold/touched_dates", 2),
     "gold recomputes every touched date"),
    ("gold stored fewer rows than computed", _set("gold/rows_stored", 1),
     "gold stored == computed"),
    ("more gold rows than dates", _set("gold/rows_out", 4), "one gold row per date"),
    ("totals.bronze off", _set("totals/bronze", 11), "totals.bronze == sum of bronze stored"),
    ("totals.events_in off", _set("totals/events_in", 16), "totals.events_in"),
    ("totals.quarantined off", _set("totals/quarantined", 3), "totals.quarantined"),
    ("totals.tombstones off", _set("totals/tombstones", 0), "totals.tombstones"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "rule"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_each_invariant_fails_naming_its_rule(
    what: str, change: Callable[[dict[str, Any]], None], rule: str
) -> None:
    body = copy.deepcopy(valid())
    change(body)
    problems = check_invariants(JobMetrics.from_dict(body))
    assert problems, f"{what}: no violation reported"
    assert any(p.startswith(rule) for p in problems), (rule, problems)


def test_in_equals_out_plus_quarantined_is_checked_on_its_own() -> None:
    """Every per-topic rule holds, the totals do not: the sum rule reports it."""
    body = copy.deepcopy(valid())
    body["totals"] = {"events_in": 15, "bronze": 12, "quarantined": 2, "tombstones": 2}
    problems = check_invariants(JobMetrics.from_dict(body))
    assert any(p.startswith("in == bronze + quarantined + tombstones") for p in problems)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("format", 1), "metrics format 1, expected 2"),
        (_set("surprise", 1), "unknown fields ['surprise']"),
        (_set("gold/extra", 1), "metrics.gold: unknown fields ['extra']"),
        (lambda d: d.pop("touched_dates"), "missing fields ['touched_dates']"),
        (lambda d: d["silver"]["silver.orders_clean"].pop("missing"), "missing fields ['missing']"),
        (_set("topics", []), "metrics.topics: an object of entries"),
    ],
)
def test_a_document_of_another_shape_is_refused(
    change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    body = copy.deepcopy(valid())
    change(body)
    with pytest.raises(MetricsFormatError) as raised:
        JobMetrics.from_dict(body)
    assert message in str(raised.value)


def test_not_json_is_refused() -> None:
    with pytest.raises(MetricsFormatError, match="not JSON"):
        JobMetrics.from_json("{")
    with pytest.raises(MetricsFormatError, match="is an object"):
        JobMetrics.from_json(json.dumps([1]))


def test_a_batch_that_changed_orders_but_reached_no_dashboard_date_is_a_gap() -> None:
    from orders_etl.notify import dashboard_gap

    body = valid()
    job = JobMetrics.from_dict(body)
    assert dashboard_gap(job, {"dates_touched": 3}) is None
    assert dashboard_gap(job, {"dates_touched": 2}) == (
        "batch b1 touched 3 dates but the dashboard load covered 2"
    )
    # The recovery bug this guards: a retry that found silver already changed reported
    # no dates, and the load wrote nothing.
    body["touched_dates"] = []
    body["gold"]["touched_dates"] = 0
    body["gold"]["rows_out"] = body["gold"]["rows_stored"] = 0
    gap = dashboard_gap(JobMetrics.from_dict(body), {"dates_touched": 0})
    assert gap == "batch b1 changed 4 orders but touched no date: the dashboard was not updated"
    # Line items of orders not seen yet have no date: nothing to load, not a gap.
    body["silver"]["silver.orders_clean"].update(upserts_applied=0, deletes_applied=0)
    assert dashboard_gap(JobMetrics.from_dict(body), {"dates_touched": 0}) is None
