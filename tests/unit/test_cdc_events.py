"""The demo's CDC generator produces the data contract's hard cases, deterministically."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from localplatform.cdc_events import generate, read_messages, write

pytestmark = pytest.mark.unit


def test_same_seed_same_files_and_every_hard_case_present(tmp_path: Path) -> None:
    write(generate(300, seed=11), tmp_path / "a")
    write(generate(300, seed=11), tmp_path / "b")
    for name in ("orders.jsonl", "line_items.jsonl", "customers.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    orders = list(read_messages(tmp_path / "a", "orders"))
    values = [json.loads(v) for k, v in orders if k is not None and v is not None]
    ops = Counter(v.get("op") for v in values)
    assert ops["c"] >= 300
    assert ops["u"] > 0
    assert ops["d"] > 0
    assert any(k is not None and v is None for k, v in orders), "tombstones"
    assert any(k is None for k, _ in orders), "a raw, non-JSON message"
    lsns = [v["source"]["lsn"] for v in values if "lsn" in v.get("source", {})]
    assert len(lsns) != len(set(lsns)), "exact duplicates (same lsn)"
    by_key: dict[int, list[int]] = {}
    well_formed = [
        v
        for v in values
        if "lsn" in v.get("source", {})
        and v.get("op") in ("c", "u", "d")
        and (v.get("after") or v.get("before"))
    ]
    for v in well_formed:
        row = v["after"] or v["before"]
        if isinstance(row.get("id"), int):
            by_key.setdefault(row["id"], []).append(v["source"]["lsn"])
    assert any(seq != sorted(seq) for seq in by_key.values()), "an out-of-order pair"
    prices = [
        json.loads(v)["after"]["unit_price"]
        for _, v in read_messages(tmp_path / "a", "line_items")
        if v and json.loads(v)["after"]
    ]
    assert all(len(p.split(".")[1]) == 2 for p in prices)
