"""Exactly N generated Debezium events (localplatform.cdc_events), produced to Kafka.

The generator makes about 5.7 events per order; we generate enough orders and keep
each table's first messages in proportion, so the total is exactly N."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from confluent_kafka import Consumer, Producer

from localplatform import cdc_events
from orders_etl.staging.consumer_settings import STAGING_CONSUMER_SETTINGS

#: Events per order the generator makes (measured: 57,295 events for 10,000 orders).
EVENTS_PER_ORDER = 5.7


def generate_exact(events: int, seed: int = 7, start_id: int = 1) -> cdc_events.Stream:
    """A seeded stream of exactly `events` messages over the three tables."""
    orders = max(1, math.ceil(events / EVENTS_PER_ORDER * 1.05))
    stream = cdc_events.generate(orders, seed, start_id=start_id)
    total = sum(len(lines) for lines in stream.messages.values())
    if total < events:
        raise RuntimeError(f"generated {total} events for {orders} orders, wanted {events}")
    kept = {t: len(lines) * events // total for t, lines in stream.messages.items()}
    kept["orders"] += events - sum(kept.values())
    stream.messages = {t: lines[: kept[t]] for t, lines in stream.messages.items()}
    return stream


def write_exact(events: int, directory: Path, seed: int = 7, start_id: int = 1) -> dict[str, int]:
    """EVENTS_DIR files (the demo's format) holding exactly `events` messages."""
    return cdc_events.write(generate_exact(events, seed, start_id), directory)


def produce(stream: cdc_events.Stream, topics: Mapping[str, str], bootstrap: str) -> dict[str, int]:
    """Produce every table's messages to `topics[table]`, in order, as the demo's
    publisher does (cdc_events.read_messages decides key and value bytes)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20}
    )
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cdc-") as tmp:
        cdc_events.write(stream, Path(tmp))
        for table, topic in topics.items():
            counts[topic] = 0
            for key, value in cdc_events.read_messages(Path(tmp), table):
                while True:
                    try:
                        producer.produce(topic, key=key, value=value)
                        break
                    except BufferError:
                        producer.poll(0.2)
                counts[topic] += 1
                if counts[topic] % 10_000 == 0:
                    producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("not every event was acknowledged by Kafka within 120 s")
    return counts


def staging_consumers(bootstrap: str, group: str) -> Callable[[], Consumer]:
    """Consumers for orders_etl.staging.stager.TopicStager with the settings the consume
    task's hook forces (STAGING_CONSUMER_SETTINGS), on a local broker."""

    def consumer() -> Consumer:
        return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         **STAGING_CONSUMER_SETTINGS})  # fmt: skip

    return consumer
