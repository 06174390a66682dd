"""orders_cdc.parse: every malformed message gets a reason, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orders_cdc.parse import parse_message
from orders_cdc.schemas import MAX_VALUE_BYTES

pytestmark = pytest.mark.unit

ORDER = {
    "id": 1,
    "customer_id": 2,
    "status": "paid",
    "currency": "EUR",
    "created_at": "2026-11-03T23:30:00-02:00",
    "updated_at": "2026-11-04T01:30:00Z",
}
ITEM = {"id": 1, "order_id": 1, "sku": "a", "quantity": 1, "unit_price": "1.00"}
CUSTOMER = {"id": 1, "email": "e", "country": "DE", "created_at": "2026-11-01T00:00:00Z"}


def envelope(after: Any = ORDER, op: str = "c", **extra: Any) -> bytes:
    body = {"before": None, "after": after, "op": op, "ts_ms": 5, "source": {"lsn": 42}}
    body.update(extra)
    return json.dumps(body).encode()


def test_a_valid_create_is_typed() -> None:
    parsed = parse_message("orders", envelope({**ORDER, "new_column": [1]}))
    assert parsed.kind == "event"
    assert (parsed.op, parsed.lsn, parsed.ts_ms) == ("c", 42, 5)
    # 2026-11-04T01:30:00Z, in UTC epoch micros, whatever offset the text used.
    assert parsed.row["created_at"] == parsed.row["updated_at"] == 1_793_755_800_000_000
    assert "new_column" not in parsed.row


def test_a_large_message_under_the_limit_is_still_an_event() -> None:
    value = envelope({**ORDER, "note": "x" * (MAX_VALUE_BYTES - 1024)})
    assert len(value) <= MAX_VALUE_BYTES
    assert parse_message("orders", value).kind == "event"
    assert parse_message("orders", value + b" " * MAX_VALUE_BYTES).reason == "too_large"


def test_a_delete_needs_only_the_key_and_a_tombstone_is_no_error() -> None:
    parsed = parse_message("orders", envelope(None, "d", before={"id": 9}))
    assert (parsed.kind, parsed.row) == ("event", {"id": 9})
    assert parse_message("orders", None).kind == "tombstone"


@pytest.mark.parametrize(
    ("table", "value", "reason"),
    [
        ("orders", b"{not json", "invalid_json"),
        ("orders", b"\xff\xfe", "invalid_json"),
        ("orders", b"42", "invalid_envelope"),
        ("orders", envelope(op="z"), "unknown_op"),
        ("orders", envelope(op=None), "missing_field"),
        ("orders", envelope(source={"lsn": "42"}), "wrong_type"),
        ("orders", envelope(source={"lsn": True}), "wrong_type"),
        ("orders", envelope(source={"lsn": 2**63}), "wrong_type"),
        ("orders", envelope(source=None), "missing_field"),
        ("orders", envelope(after=[1]), "invalid_envelope"),
        ("orders", envelope(None, "u"), "null_after"),
        ("orders", envelope(None, "d"), "null_before"),
        ("orders", envelope({**ORDER, "status": "lost"}), "invalid_value"),
        ("orders", envelope({**ORDER, "created_at": "yesterday"}), "invalid_value"),
        ("orders", envelope({**ORDER, "created_at": "2026-11-03T10:00:00"}), "invalid_value"),
        ("orders", envelope({**ORDER, "customer_id": 2.0}), "wrong_type"),
        ("orders", envelope({k: v for k, v in ORDER.items() if k != "currency"}), "missing_field"),
        ("line_items", envelope({**ITEM, "quantity": 2**31}), "wrong_type"),
        ("line_items", envelope({**ITEM, "unit_price": 1.5}), "wrong_type"),
        ("line_items", envelope({**ITEM, "unit_price": "1e3"}), "invalid_value"),
        ("line_items", envelope({**ITEM, "unit_price": "1.001"}), "invalid_value"),
        ("customers", envelope({**CUSTOMER, "country": "de"}), "invalid_value"),
        # Well-formed JSON, but 2 MiB: not parsed at all.
        ("orders", envelope({**ORDER, "note": "x" * (2 * 1024 * 1024)}), "too_large"),
    ],
)
def test_malformed_messages_are_quarantined_with_a_reason(
    table: str, value: bytes, reason: str
) -> None:
    parsed = parse_message(table, value)
    assert (parsed.kind, parsed.reason) == ("quarantine", reason), parsed.detail
    assert parsed.detail
