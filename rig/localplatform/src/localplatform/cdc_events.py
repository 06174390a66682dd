"""Seeded Debezium CDC events for the demo and the end-to-end test (DESIGN.md's contract).

    python -m localplatform.cdc_events generate --orders 200 --seed 7 --out DIR
    python -m localplatform.cdc_events publish --events-dir DIR --bootstrap 127.0.0.1:19092

`generate` writes EVENTS_DIR files (orders.jsonl, line_items.jsonl, customers.jsonl): one
message per line, `{"key": {...}, "value": {...} | null}`, in publish order. The stream
has creates, updates, deletes followed by tombstones, exact duplicates (same lsn),
out-of-order pairs (an older lsn published after a newer one for the same key), line
items published before their order, and a few malformed messages (a line that is not
JSON is published as raw bytes). `publish` sends the files in file order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from orders_contract.topics import DEFAULT_TOPICS

#: table -> topic: the data contract's default Debezium topics.
TOPICS = DEFAULT_TOPICS

STATUSES = ("pending", "paid", "shipped", "cancelled", "refunded")
BASE_DAY = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class Stream:
    """Messages per table, in publish order; `raw` marks lines that are not JSON."""

    rng: random.Random
    messages: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TOPICS})
    lsn: int = 100_000_000

    def next_lsn(self) -> int:
        self.lsn += self.rng.randint(1, 50)
        return self.lsn

    def event(
        self, table: str, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> str:
        lsn = self.next_lsn()
        ts = int(BASE_DAY.timestamp() * 1000) + lsn // 10
        key = {"id": (after or before or {})["id"]}
        value = {
            "before": before,
            "after": after,
            "op": op,
            "ts_ms": ts,
            "source": {
                "connector": "postgresql",
                "db": "shop",
                "schema": "public",
                "table": table,
                "lsn": lsn,
                "txId": lsn // 7,
                "ts_ms": ts - 1,
            },
        }
        return json.dumps({"key": key, "value": value}, separators=(",", ":"))

    def tombstone(self, table: str, key_id: int) -> str:
        return json.dumps({"key": {"id": key_id}, "value": None})


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate(
    orders: int, seed: int, start_id: int = 1, malformed: int = 4, lsn_base: int | None = None
) -> Stream:
    """A seeded stream for `orders` orders (about 8-12 messages per order).

    Ids start at `start_id`. A later batch that revises existing orders uses the same ids
    with a higher `lsn_base`, so its events are newer than everything before them.
    """
    # Test data, not secrets: a seeded PRNG is the point.
    base = lsn_base if lsn_base is not None else 100_000_000 + start_id * 1000
    stream = Stream(rng=random.Random(seed), lsn=base)  # noqa: S311
    rng = stream.rng
    customers: list[dict[str, Any]] = []
    for cid in range(start_id, start_id + max(1, orders // 3)):
        row = {
            "id": cid,
            "email": f"c{cid}@example.com",
            "country": rng.choice(["DE", "FR", "PL", "US", "NL"]),
            "created_at": _iso(BASE_DAY - dt.timedelta(days=30)),
        }
        customers.append(row)
        stream.messages["customers"].append(stream.event("customers", "c", None, row))
    item_id = start_id * 10
    for oid in range(start_id, start_id + orders):
        created = BASE_DAY + dt.timedelta(days=rng.randint(0, 6), seconds=rng.randint(0, 86_399))
        order = {
            "id": oid,
            "customer_id": rng.choice(customers)["id"],
            "status": "pending",
            "currency": "EUR",
            "created_at": _iso(created),
            "updated_at": _iso(created),
        }
        items = []
        for _ in range(rng.randint(1, 4)):
            item_id += 1
            items.append(
                {
                    "id": item_id,
                    "order_id": oid,
                    "sku": f"SKU-{rng.randint(1, 50)}",
                    "quantity": rng.randint(1, 5),
                    "unit_price": f"{Decimal(rng.randint(100, 9999)) / 100:.2f}",
                }
            )
        # Sometimes a line item is published before its order.
        early = items[0] if rng.random() < 0.2 else None
        if early:
            stream.messages["line_items"].append(stream.event("line_items", "c", None, early))
        stream.messages["orders"].append(stream.event("orders", "c", None, order))
        for item in items:
            if item is not early:
                stream.messages["line_items"].append(stream.event("line_items", "c", None, item))
        _evolve(stream, order, items)
    for index in range(malformed):  # every kind of malformed message, in turn
        stream.messages["orders"].append(_MALFORMED[index % len(_MALFORMED)])
    return stream


_MALFORMED = (
    "this is not json {",
    json.dumps({"key": {"id": 999999}, "value": {"op": "c", "after": {"id": 999999}}}),
    json.dumps(
        {
            "key": {"id": 999998},
            "value": {
                "before": None,
                "after": {
                    "id": "not-a-number",
                    "customer_id": 1,
                    "status": "paid",
                    "currency": "EUR",
                    "created_at": "2026-11-01T00:00:00Z",
                    "updated_at": "2026-11-01T00:00:00Z",
                },
                "op": "x",
                "ts_ms": 1,
                "source": {"lsn": 1},
            },
        }
    ),
    json.dumps(
        {
            "key": {"id": 999997},
            "value": {"before": None, "after": None, "op": "c", "ts_ms": 1, "source": {"lsn": 2}},
        }
    ),
)


def _evolve(stream: Stream, order: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Status changes, an item update or delete, sometimes an order delete; plus a
    duplicate and an out-of-order pair, all for this order's keys."""
    rng = stream.rng
    msgs = stream.messages
    created = dt.datetime.strptime(order["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    path = rng.choice([["paid"], ["paid", "shipped"], ["cancelled"], ["paid", "refunded"], []])
    for status in path:
        before = dict(order)
        order["status"] = status
        created += dt.timedelta(minutes=rng.randint(1, 600))
        order["updated_at"] = _iso(created)
        msgs["orders"].append(stream.event("orders", "u", before, dict(order)))
    if rng.random() < 0.3 and items:
        item = rng.choice(items)
        before = dict(item)
        item["quantity"] = item["quantity"] + 1
        msgs["line_items"].append(stream.event("line_items", "u", before, dict(item)))
    if rng.random() < 0.1 and len(items) > 1:
        gone = items.pop()
        msgs["line_items"].append(stream.event("line_items", "d", gone, None))
        msgs["line_items"].append(stream.tombstone("line_items", gone["id"]))
    if rng.random() < 0.05:
        msgs["orders"].append(stream.event("orders", "d", dict(order), None))
        msgs["orders"].append(stream.tombstone("orders", order["id"]))
    if rng.random() < 0.15 and msgs["orders"]:
        msgs["orders"].append(msgs["orders"][-1])  # an exact duplicate (same lsn)
    if rng.random() < 0.15 and len(path) >= 1:
        # The last two events of this order swap places: the older lsn arrives last.
        tail = msgs["orders"]
        if len(tail) >= 2 and all(json.loads(m)["key"]["id"] == order["id"] for m in tail[-2:]):
            tail[-1], tail[-2] = tail[-2], tail[-1]


def write(stream: Stream, directory: Path) -> dict[str, int]:
    directory.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table, lines in stream.messages.items():
        (directory / f"{table}.jsonl").write_text("".join(f"{line}\n" for line in lines))
        counts[table] = len(lines)
    return counts


def read_messages(directory: Path, table: str) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) bytes per line; a line that is not JSON is a raw value with no key."""
    path = directory / f"{table}.jsonl"
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key, value = record["key"], record["value"]
        except (json.JSONDecodeError, KeyError, TypeError):
            yield None, line.encode()
            continue
        yield (
            json.dumps(key).encode() if key is not None else None,
            json.dumps(value).encode() if value is not None else None,
        )


def publish(directory: Path, bootstrap: str) -> dict[str, int]:
    """Produce every file's messages in file order (idempotent producer, acks=all)."""
    return publish_bursts(directory, bootstrap, bursts=1, interval=0.0)


def publish_bursts(directory: Path, bootstrap: str, bursts: int, interval: float) -> dict[str, int]:
    """Produce every file's messages in file order, as `bursts` slices of each file
    published `interval` seconds apart (a stream arriving in bursts)."""
    from confluent_kafka import Producer

    if bursts < 1:
        raise ValueError("bursts must be at least 1")
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 10}
    )
    messages = {t: list(read_messages(directory, t)) for t in TOPICS}
    counts = {topic: 0 for topic in TOPICS.values()}
    for burst in range(bursts):
        if burst:
            time.sleep(interval)
        for table, topic in TOPICS.items():
            lines = messages[table]
            lo, hi = len(lines) * burst // bursts, len(lines) * (burst + 1) // bursts
            for key, value in lines[lo:hi]:
                while True:
                    try:
                        producer.produce(topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.5)
                counts[topic] += 1
        if producer.flush(60) != 0:
            raise RuntimeError("not every CDC event was acknowledged by Kafka within 60 s")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplatform.cdc_events")
    sub = parser.add_subparsers(dest="action", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--orders", type=int, default=200)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--start-id", type=int, default=1)
    gen.add_argument("--lsn-base", type=int)
    gen.add_argument("--out", type=Path, required=True)
    pub = sub.add_parser("publish")
    pub.add_argument("--events-dir", type=Path, required=True)
    pub.add_argument("--bootstrap", required=True)
    args = parser.parse_args(argv)
    if args.action == "generate":
        counts = write(
            generate(args.orders, args.seed, args.start_id, lsn_base=args.lsn_base), args.out
        )
        print(json.dumps(counts))
    else:
        print(json.dumps(publish(args.events_dir, args.bootstrap)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
