"""The dashboard computed independently from the raw CDC files, in pandas.

Parses the EVENTS_DIR JSONL itself (shares no code with the pipeline), applies the data
contract's state rule (per key, the event with the highest source.lsn; a delete removes
the key) and aggregates daily revenue over current paid/shipped orders by the UTC date
of created_at. Messages that are not well-formed events are ignored here; the pipeline
must quarantine them, which the test checks separately.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

OPS = {"c", "u", "d", "r"}


def _events(directories: list[Path], table: str) -> list[dict[str, Any]]:
    events = []
    for directory in directories:
        path = directory / f"{table}.jsonl"
        for line in path.read_text().splitlines():
            try:
                value = json.loads(line)["value"]
                op, lsn = value["op"], value["source"]["lsn"]
                row = value["after"] if op != "d" else value["before"]
                key = int(row["id"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if op not in OPS or not isinstance(lsn, int):
                continue
            events.append({"id": key, "lsn": lsn, "deleted": op == "d", **row})
    return events


def current(directories: list[Path], table: str) -> pd.DataFrame:
    frame = pd.DataFrame(_events(directories, table))
    latest = frame.sort_values("lsn").groupby("id", as_index=False).tail(1)
    return latest[~latest["deleted"]]


def daily_revenue(directories: list[Path]) -> list[tuple[str, str, int, int, int]]:
    orders = current(directories, "orders")
    orders = orders[orders["status"].isin(["paid", "shipped"])].copy()
    orders["date"] = pd.to_datetime(orders["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    items = current(directories, "line_items")
    items = items.assign(
        amount=[Decimal(p) * q for p, q in zip(items["unit_price"], items["quantity"], strict=True)]
    )
    per_order = items.groupby("order_id").agg(revenue=("amount", "sum"), items=("quantity", "sum"))
    joined = orders.merge(per_order, left_on="id", right_index=True, how="left")
    joined["revenue"] = joined["revenue"].apply(
        lambda v: v if isinstance(v, Decimal) else Decimal(0)
    )
    joined["items"] = joined["items"].fillna(0).astype(int)
    rows = []
    for date, group in joined.groupby("date"):
        rows.append(
            (
                str(date),
                f"{sum(group['revenue'], Decimal(0)):.2f}",
                len(group),
                int(group["items"].sum()),
                int(group["customer_id"].nunique()),
            )
        )
    return sorted(rows)
