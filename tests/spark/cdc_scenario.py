"""A deterministic CDC scenario for the Spark job's tests, and staging writers for it.

The scenario plays a small shop database forward (customers, orders, line items), emits
one Debezium message per change with a strictly increasing lsn, then delivers them the
way the data contract allows: out of order within a partition, duplicated, a delete
before its insert, line items before their order, tombstones, malformed messages and
extra columns. Every message knows what it is (event / tombstone / quarantine + reason),
so the reference in cdc_reference.py never has to look at the job's parsing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orders_contract.staging import Manifest, PartitionRange, StagingLocation, parquet_schema
from orders_contract.topics import DEFAULT_TOPICS as TOPICS

PARTITIONS = 3
KAFKA_EPOCH_MS = 1_795_000_000_000


@dataclass
class Message:
    table: str
    key: bytes | None
    value: bytes | None
    kind: str  # event | tombstone | quarantine
    batch: int  # 1 or 2: which of the two sequential batches delivers it
    arrival: float  # order within its partition and batch
    reason: str | None = None
    #: For events: id, lsn, op and the typed row (created_at as UTC micros, Decimal prices).
    event: dict[str, Any] | None = None
    partition: int = 0
    offset: int = -1

    @property
    def topic(self) -> str:
        return TOPICS[self.table]


def utc_micros(text: str) -> int:
    """Independent of the job's parser: pandas does the ISO-8601 arithmetic."""
    return int(pd.Timestamp(text).tz_convert("UTC").value // 1000)


@dataclass
class Scenario:
    seed: int = 7
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 (test data)
        self.lsn = 10_000
        self.db: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TOPICS}

    # ---- emitting ----------------------------------------------------------------------
    def _typed(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        typed = dict(row)
        for name in ("created_at", "updated_at"):
            if name in typed:
                typed[name] = utc_micros(typed[name])
        if "unit_price" in typed:
            typed["unit_price"] = Decimal(typed["unit_price"])
        return {k: v for k, v in typed.items() if not k.startswith("x_")}

    def change(
        self,
        table: str,
        op: str,
        row: dict[str, Any],
        batch: int | None = None,
        arrival: float | None = None,
    ) -> Message:
        """Apply a change to the fake database and emit its message (and tombstone)."""
        self.lsn += self.rng.randint(1, 5)
        key_id = row["id"]
        before = self.db[table].get(key_id)
        if op == "d":
            after = None
            before_img: dict[str, Any] | None = {"id": key_id}  # REPLICA IDENTITY DEFAULT
            self.db[table].pop(key_id, None)
        else:
            after = {k.removeprefix("x_"): v for k, v in row.items()}
            before_img = None if op in ("c", "r") else before
            self.db[table][key_id] = {k: v for k, v in row.items() if not k.startswith("x_")}
        envelope = {
            "before": before_img,
            "after": after,
            "op": op,
            "ts_ms": 1_795_000_000_000 + self.lsn,
            "source": {
                "connector": "postgresql",
                "db": "shop",
                "schema": "public",
                "table": table,
                "lsn": self.lsn,
                "txId": 900 + self.lsn // 10,
                "ts_ms": 1_795_000_000_000 + self.lsn - 1,
            },
        }
        batch = batch if batch is not None else (1 if self.lsn < self.split_lsn else 2)
        arrival = arrival if arrival is not None else self.lsn + self.rng.uniform(-6, 6)
        typed = None if op == "d" else self._typed(table, row)
        message = Message(
            table,
            json.dumps({"id": key_id}).encode(),
            json.dumps(envelope).encode(),
            "event",
            batch,
            arrival,
            event={"table": table, "id": key_id, "lsn": self.lsn, "op": op, "row": typed},
        )
        self.messages.append(message)
        if op == "d":
            self.messages.append(
                Message(table, message.key, None, "tombstone", batch, arrival + 0.5)
            )
        return message

    def bad(self, table: str, value: bytes, reason: str, key_id: int = 1) -> None:
        batch = self.rng.choice((1, 2))
        self.messages.append(
            Message(
                table,
                json.dumps({"id": key_id}).encode(),
                value,
                "quarantine",
                batch,
                self.rng.uniform(10_000, 10_000 + self.span),
                reason=reason,
            )
        )

    # ---- the story ---------------------------------------------------------------------
    def timestamp(self) -> str:
        day = self.rng.randint(1, 5)
        hour, minute = self.rng.randint(0, 23), self.rng.randint(0, 59)
        style = self.rng.randint(0, 2)
        base = dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)
        if style == 0:
            return base.strftime("%Y-%m-%dT%H:%M:%SZ")
        if style == 1:
            return base.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
        # Same instant with a +02:00 offset: near midnight this is another local date.
        return (base + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")

    def order_row(self, oid: int, **over: Any) -> dict[str, Any]:
        row = {
            "id": oid,
            "customer_id": self.rng.randint(1, 6),
            "status": self.rng.choice(("pending", "paid", "paid", "shipped", "cancelled")),
            "currency": "EUR",
            "created_at": self.timestamp(),
            "updated_at": self.timestamp(),
        }
        row.update(over)
        return row

    def item_row(self, iid: int, oid: int, **over: Any) -> dict[str, Any]:
        row = {
            "id": iid,
            "order_id": oid,
            "sku": f"SKU-{self.rng.randint(1, 30):03d}",
            "quantity": self.rng.randint(1, 5),
            "unit_price": f"{self.rng.randint(1, 9999) / 100:.2f}",
        }
        row.update(over)
        return row

    def build(self) -> Scenario:
        rng = self.rng
        self.split_lsn = 10_330
        self.span = 900
        for cid in range(1, 7):
            self.change(
                "customers",
                "r" if cid <= 2 else "c",
                {
                    "id": cid,
                    "email": f"c{cid}@example.com",
                    "country": rng.choice(("DE", "FR", "PL")),
                    "created_at": self.timestamp(),
                    **({"x_loyalty_tier": "gold"} if cid == 3 else {}),
                },
            )
        next_item = 1
        for oid in range(1, 21):
            extra = {"x_discount_code": "WELCOME"} if oid % 7 == 0 else {}
            self.change("orders", "c", {**self.order_row(oid), **extra})
            for _ in range(rng.randint(0, 3)):
                self.change("line_items", "c", self.item_row(next_item, oid))
                next_item += 1
        for _ in range(110):
            action = rng.choice(
                ("status", "status", "move_date", "qty", "price", "move_item", "del_item",
                 "del_order", "new_order", "customer")
            )  # fmt: skip
            orders = sorted(self.db["orders"])
            items = sorted(self.db["line_items"])
            if action in ("status", "move_date", "del_order") and orders:
                oid = rng.choice(orders)
                row = dict(self.db["orders"][oid])
                if action == "del_order":
                    self.change("orders", "d", {"id": oid})
                    continue
                if action == "status":
                    row["status"] = rng.choice(("pending", "paid", "shipped", "cancelled",
                                                "refunded"))  # fmt: skip
                else:
                    row["created_at"] = self.timestamp()
                row["updated_at"] = self.timestamp()
                self.change("orders", "u", row)
            elif action in ("qty", "price", "move_item", "del_item") and items:
                iid = rng.choice(items)
                row = dict(self.db["line_items"][iid])
                if action == "del_item":
                    self.change("line_items", "d", {"id": iid})
                    continue
                if action == "qty":
                    row["quantity"] = rng.randint(1, 9)
                elif action == "price":
                    row["unit_price"] = f"{rng.randint(1, 99999) / 100:.2f}"
                else:
                    row["order_id"] = rng.choice(orders or [1])
                self.change("line_items", "u", row)
            elif action == "new_order":
                oid = max([*self.db["orders"], 20]) + 1
                self.change("orders", "c", self.order_row(oid))
                for _ in range(rng.randint(1, 2)):
                    self.change("line_items", "c", self.item_row(next_item, oid))
                    next_item += 1
            elif action == "customer":
                cid = rng.choice(sorted(self.db["customers"]))
                row = dict(self.db["customers"][cid])
                row["email"] = f"c{cid}.{self.lsn}@example.com"
                self.change("customers", "u", row)
        self._special_cases(next_item)
        self._malformed()
        return self

    def _special_cases(self, next_item: int) -> None:
        # A delete that arrives (batch 1) before its insert (batch 2); the insert must not
        # resurrect the order, and its line item (arriving first) must not count.
        first_lsn = self.lsn + 1
        created = self.change(
            "orders", "c", self.order_row(500, status="paid"), batch=2, arrival=1e9
        )
        self.change("line_items", "c", self.item_row(next_item, 500), batch=1, arrival=0)
        self.change("orders", "d", {"id": 500}, batch=1, arrival=1)
        assert created.event is not None
        assert created.event["lsn"] >= first_lsn
        # The same within one batch: delete first, insert later in the partition.
        self.change("orders", "c", self.order_row(501, status="shipped"), batch=1, arrival=5e8)
        self.change("orders", "d", {"id": 501}, batch=1, arrival=2)
        # Line items before their order: items in batch 1, the paid order in batch 2.
        self.change("line_items", "c", self.item_row(next_item + 1, 600), batch=1, arrival=3)
        self.change("line_items", "c", self.item_row(next_item + 2, 600), batch=1, arrival=4)
        self.change("orders", "c", self.order_row(600, status="paid"), batch=2, arrival=2e9)
        # Out of order updates of one order: the newer (shipped) arrives first.
        self.change("orders", "c", self.order_row(700, status="pending"), batch=1, arrival=6)
        paid = self.change("orders", "u", self.order_row(700, status="paid"))
        shipped = self.change("orders", "u", self.order_row(700, status="shipped"))
        shipped.batch, shipped.arrival = 1, 7
        paid.batch, paid.arrival = 2, 3e9
        # Dates that lose their only order (cancelled) or move (created_at) in batch 2.
        lone = self.order_row(800, status="paid", created_at="2026-10-15T12:00:00Z")
        self.change("orders", "c", lone, batch=1, arrival=8)
        self.change("line_items", "c", self.item_row(next_item + 3, 800), batch=1, arrival=9)
        self.change("orders", "u", {**lone, "status": "cancelled"}, batch=2, arrival=4e9)
        moved = self.order_row(801, status="shipped", created_at="2026-10-20T23:59:59Z")
        self.change("orders", "c", moved, batch=1, arrival=10)
        self.change(
            "orders", "u", {**moved, "created_at": "2026-10-21T00:00:00+00:00"}, batch=2,
            arrival=5e9,
        )  # fmt: skip
        # Duplicates: redeliveries of already delivered events, same and later batch.
        events = [m for m in self.messages if m.kind == "event"]
        for original in self.rng.sample(events, 12):
            batch = self.rng.choice((original.batch, 2))
            self.messages.append(
                replace(original, batch=batch, arrival=original.arrival + self.rng.uniform(1, 50))
            )

    def _malformed(self) -> None:
        def envelope(table: str, op: str, after: Any, lsn: Any = 99_999, **kw: Any) -> bytes:
            body: dict[str, Any] = {
                "before": kw.get("before"),
                "after": after,
                "op": op,
                "ts_ms": 1,
                "source": {"table": table, "lsn": lsn, "txId": 1, "ts_ms": 1},
            }
            if kw.get("no_lsn"):
                del body["source"]["lsn"]
            return json.dumps(body).encode()

        order = self.order_row(1)
        item = self.item_row(1, 1)
        self.bad("orders", b"not json{", "invalid_json")
        self.bad("orders", b"\xff\xfe\x00garbage", "invalid_json")
        self.bad("orders", b"[1, 2]", "invalid_envelope")
        self.bad("orders", envelope("orders", "x", order), "unknown_op")
        self.bad("orders", envelope("orders", "u", order, no_lsn=True), "missing_field")
        self.bad("orders", envelope("orders", "u", {**order, "status": "lost"}), "invalid_value")
        self.bad("orders", envelope("orders", "c", None), "null_after")
        self.bad("orders", envelope("orders", "u", {**order, "customer_id": "7"}), "wrong_type")
        self.bad(
            "orders",
            envelope("orders", "u", {**order, "created_at": "2026-11-02T10:00:00"}),
            "invalid_value",
        )
        self.bad("line_items", envelope("line_items", "u", {**item, "quantity": "two"}),
                 "wrong_type")  # fmt: skip
        self.bad("line_items", envelope("line_items", "u", {**item, "unit_price": "1.234"}),
                 "invalid_value")  # fmt: skip
        no_sku = {k: v for k, v in item.items() if k != "sku"}
        self.bad("line_items", envelope("line_items", "c", no_sku), "missing_field")
        self.bad("line_items", envelope("line_items", "d", None), "null_before")
        self.bad(
            "customers",
            envelope("customers", "u", {"id": 1, "email": "e", "country": "germany",
                                        "created_at": "2026-11-01T00:00:00Z"}),
            "invalid_value",
        )  # fmt: skip
        self.bad("customers", envelope("customers", "c", {"id": 1}, lsn=True), "wrong_type")
        # A very large message (a 2 MiB column in an otherwise valid update).
        self.bad("orders", envelope("orders", "u", {**order, "blob": "x" * 2**21}), "too_large")

    # ---- delivery ----------------------------------------------------------------------
    def deliver(self) -> None:
        """Assign Kafka partitions and offsets: per partition, batch 1 first, by arrival."""
        by_partition: dict[tuple[str, int], list[Message]] = {}
        for message in self.messages:
            key_id = json.loads(message.key)["id"] if message.key else 0
            message.partition = key_id % PARTITIONS
            by_partition.setdefault((message.table, message.partition), []).append(message)
        for log in by_partition.values():
            log.sort(key=lambda m: (m.batch, m.arrival))
            for offset, message in enumerate(log):
                message.offset = offset

    def batch(self, *batches: int) -> list[Message]:
        return [m for m in self.messages if m.batch in batches]


def build_scenario(seed: int = 7) -> Scenario:
    scenario = Scenario(seed).build()
    scenario.deliver()
    return scenario


# ---- staging (src/orders_contract/staging.py's format) ----------------------------------------


def write_staging(
    s3: Any,
    location: StagingLocation,
    batch_id: str,
    messages: list[Message],
    topics: dict[str, str] = TOPICS,
) -> list[str]:
    """Stage `messages` as one batch: Parquet per partition + a manifest per topic
    (`topics`: table -> the topic it is staged under)."""
    uris = []
    for table, topic in topics.items():
        ranges = []
        for partition in range(PARTITIONS):
            rows = sorted(
                (m for m in messages if m.table == table and m.partition == partition),
                key=lambda m: m.offset,
            )
            if not rows:
                ranges.append(PartitionRange(partition, 0, 0, 0, None, None, 0))
                continue
            start, end = rows[0].offset, rows[-1].offset + 1
            assert [m.offset for m in rows] == list(range(start, end)), "offsets must be dense"
            data = pa.Table.from_pylist(
                [
                    {
                        "topic": topic,
                        "partition": partition,
                        "offset": m.offset,
                        "kafka_timestamp_ms": KAFKA_EPOCH_MS + m.offset * 1000,
                        "key": m.key,
                        "value": m.value,
                    }
                    for m in rows
                ],
                schema=parquet_schema(),
            )
            buffer = io.BytesIO()
            pq.write_table(data, buffer)
            body = buffer.getvalue()
            key = location.object_key(batch_id, topic, partition, start, end)
            s3.put_object(Bucket=location.bucket, Key=key, Body=body)
            ranges.append(
                PartitionRange(
                    partition, start, end, len(rows), location.uri(key),
                    hashlib.sha256(body).hexdigest(),
                    len(body),
                )
            )  # fmt: skip
        manifest = Manifest(batch_id, topic, tuple(ranges))
        key = location.manifest_key(batch_id, topic)
        s3.put_object(Bucket=location.bucket, Key=key, Body=manifest.to_json().encode())
        uris.append(location.uri(key))
    return uris
