"""Parse and validate one Kafka message: an event, a tombstone, or a quarantined message.

Pure Python (no Spark), so it is unit-tested directly and runs on executors inside
mapInArrow. Never raises on bad input: every malformed message becomes a `Parsed` with
kind "quarantine", a reason code (schemas.REASONS) and a human detail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from orders_cdc.schemas import MAX_VALUE_BYTES, OPS, ORDER_STATUSES, ROW_FIELDS, Field

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
_DECIMAL_18_2 = re.compile(r"^-?\d{1,16}(\.\d{1,2})?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Parsed:
    kind: str  # event | tombstone | quarantine
    reason: str | None = None
    detail: str | None = None
    op: str | None = None
    lsn: int | None = None
    tx_id: int | None = None
    source_ts_ms: int | None = None
    ts_ms: int | None = None
    #: Typed row values (timestamps as UTC epoch micros, decimals as canonical strings).
    #: For a delete, only "id".
    row: dict[str, Any] = field(default_factory=dict)


class Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_message(table: str, value: bytes | None) -> Parsed:
    """Classify and parse one message value of `table`'s topic."""
    if value is None:
        return Parsed("tombstone")
    try:
        return _parse(table, value)
    except Invalid as bad:
        return Parsed("quarantine", reason=bad.reason, detail=bad.detail)


def _parse(table: str, value: bytes) -> Parsed:
    if len(value) > MAX_VALUE_BYTES:
        raise Invalid("too_large", f"{len(value)} bytes, over the {MAX_VALUE_BYTES}-byte limit")
    try:
        envelope = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid("invalid_json", f"not UTF-8 JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise Invalid("invalid_envelope", f"envelope is a JSON {type(envelope).__name__}")

    op = envelope.get("op")
    if op is None:
        raise Invalid("missing_field", "op")
    if op not in OPS:
        raise Invalid("unknown_op", f"op {op!r}")

    source = envelope.get("source")
    if source is None:
        raise Invalid("missing_field", "source")
    if not isinstance(source, dict):
        raise Invalid("invalid_envelope", "source is not an object")
    lsn = _integer(source, "lsn", INT64, "source.lsn", required=True)
    tx_id = _integer(source, "txId", INT64, "source.txId", required=False)
    source_ts_ms = _integer(source, "ts_ms", INT64, "source.ts_ms", required=False)
    ts_ms = _integer(envelope, "ts_ms", INT64, "ts_ms", required=False)

    for side in ("before", "after"):
        if envelope.get(side) is not None and not isinstance(envelope[side], dict):
            raise Invalid("invalid_envelope", f"{side} is not an object")

    fields = ROW_FIELDS[table]
    if op == "d":
        before = envelope.get("before")
        if before is None:
            raise Invalid("null_before", "a delete needs before (at least the key)")
        row = {"id": _value(before, fields[0], "before")}
    else:
        after = envelope.get("after")
        if after is None:
            raise Invalid("null_after", f"op {op!r} with after null")
        row = {f.name: _value(after, f, "after") for f in fields}
    return Parsed(
        "event",
        op=op,
        lsn=lsn,
        tx_id=tx_id,
        source_ts_ms=source_ts_ms,
        ts_ms=ts_ms,
        row=row,
    )


def _integer(
    obj: dict[str, Any], name: str, bounds: tuple[int, int], label: str, required: bool
) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Invalid("missing_field", label)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("wrong_type", f"{label}: expected an integer, got {type(value).__name__}")
    if not bounds[0] <= value <= bounds[1]:
        raise Invalid("wrong_type", f"{label}: {value} out of range")
    return value


def _value(row: dict[str, Any], spec: Field, side: str) -> Any:
    label = f"{side}.{spec.name}"
    if spec.kind in ("long", "int"):
        return _integer(row, spec.name, INT64 if spec.kind == "long" else INT32, label, True)
    value = row.get(spec.name)
    if value is None:
        raise Invalid("missing_field", label)
    if not isinstance(value, str):
        raise Invalid("wrong_type", f"{label}: expected a string, got {type(value).__name__}")
    if spec.kind == "timestamp":
        return _timestamp_micros(value, label)
    if spec.kind == "decimal":
        if not _DECIMAL_18_2.match(value):
            raise Invalid("invalid_value", f"{label}: {value!r} is not a decimal(18,2)")
        return value
    if spec.kind == "status" and value not in ORDER_STATUSES:
        raise Invalid("invalid_value", f"{label}: unknown status {value!r}")
    if spec.kind == "country" and not _COUNTRY.match(value):
        raise Invalid("invalid_value", f"{label}: {value!r} is not an ISO-3166 alpha-2 code")
    return value


def _timestamp_micros(text: str, label: str) -> int:
    """ISO-8601 with an explicit offset (Z or +hh:mm) -> UTC epoch microseconds."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("invalid_value", f"{label}: {text!r} is not ISO-8601") from None
    if parsed.tzinfo is None:
        raise Invalid("invalid_value", f"{label}: {text!r} has no UTC offset")
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
