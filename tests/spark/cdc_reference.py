"""The data contract, written the obvious way in pandas: expected silver and gold.

Input: the valid events a set of batches delivered (from cdc_scenario, which knows them
without parsing). State rule: per key, the event with the highest lsn; if it is a delete
the key is a tombstone. Gold: per UTC date of created_at, over live paid/shipped orders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from cdc_scenario import Message

FIELDS = {
    "orders": ["customer_id", "status", "currency", "created_at", "updated_at"],
    "line_items": ["order_id", "sku", "quantity", "unit_price"],
    "customers": ["email", "country", "created_at"],
}
CENT = Decimal("0.01")


def current_state(messages: list[Message], table: str) -> pd.DataFrame:
    """One row per key: id, fields, is_deleted, lsn (sorted by id)."""
    events = [m.event for m in messages if m.kind == "event" and m.table == table]
    columns = ["id", *FIELDS[table], "is_deleted", "lsn"]
    if not events:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        [
            {
                "id": e["id"],
                "lsn": e["lsn"],
                "is_deleted": e["op"] == "d",
                **{f: (e["row"] or {}).get(f) for f in FIELDS[table]},
            }
            for e in events
        ],
        dtype=object,
    )
    frame["lsn"] = frame["lsn"].astype("int64")
    frame["is_deleted"] = frame["is_deleted"].astype(bool)
    latest = frame.sort_values("lsn").groupby("id", as_index=False).tail(1).copy()
    for name in FIELDS[table]:
        latest[name] = latest[name].astype(object).where(~latest["is_deleted"], None)
    return latest[columns].sort_values("id").reset_index(drop=True)


def daily_revenue(messages: list[Message]) -> pd.DataFrame:
    orders = current_state(messages, "orders")
    items = current_state(messages, "line_items")
    orders = orders[~orders["is_deleted"].astype(bool)]
    orders = orders[orders["status"].isin(["paid", "shipped"])].copy()
    items = items[~items["is_deleted"].astype(bool)].copy()
    columns = ["date", "revenue", "orders", "items", "customers"]
    if orders.empty:
        return pd.DataFrame(columns=columns)
    orders["date"] = pd.to_datetime(orders["created_at"].astype("int64"), unit="us").dt.date
    items["amount"] = [Decimal(int(q)) * p for q, p in zip(items["quantity"], items["unit_price"],
                                                           strict=True)]  # fmt: skip
    per_order = items.groupby("order_id").agg(
        amount=("amount", lambda s: sum(s, Decimal(0))), qty=("quantity", "sum")
    )
    joined = orders.merge(per_order, left_on="id", right_index=True, how="left")
    joined["amount"] = joined["amount"].apply(lambda v: v if isinstance(v, Decimal) else Decimal(0))
    joined["qty"] = joined["qty"].fillna(0).astype("int64")
    gold = joined.groupby("date").agg(
        revenue=("amount", lambda s: sum(s, Decimal(0)).quantize(CENT)),
        orders=("id", "count"),
        items=("qty", "sum"),
        customers=("customer_id", "nunique"),
    )
    return gold.reset_index()[columns].sort_values("date").reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as plain tuples (ints as int, None for missing) for exact comparison."""
    out = []
    for row in frame.itertuples(index=False):
        out.append(tuple(_plain(v) for v in row))
    return out


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, Decimal):
        return value.item()
    return value
