"""A RE-IMPLEMENTATION of the capstone's consume design, for comparison only.

Not this project's code and never used by the pipeline. It follows the design of
`consume_kafka` in the course capstone (/work/shared/reference/000_128acb30452c11da.txt,
"Phase 1"): subscribe a consumer group to the topic, `poll()` ONE message at a time,
`json.loads` each value, keep the events of the data interval in a Python list, then
upload the whole list as ONE JSON object (put to a .tmp key, copy, delete).

Where the capstone text cannot run as written, its intent is kept and the benchmark is
generous to it:
- it loops for a fixed 60 s; here it stops as soon as every partition reached the high
  watermark taken at the start (its best case: no idle polling, nothing left behind);
- `datetime.fromisoformat(event["ts_ms"])` fails on an int: ts_ms is read as epoch ms;
- tombstones (null values) and malformed JSON would raise: they are skipped and counted;
- SASL settings and Airflow Variables are replaced by the local broker and S3 server.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition


@dataclass(frozen=True)
class CapstoneResult:
    topic: str
    records: int
    skipped: int
    s3_key: str
    bytes_uploaded: int


def consume_topic(
    topic: str,
    bootstrap: str,
    s3: Any,
    bucket: str,
    prefix: str,
    ds: str,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
) -> CapstoneResult:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"airflow-{topic}-{ds}-{prefix}",  # deterministic group id
            "auto.offset.reset": "earliest",
        }
    )
    high = _high_watermarks(consumer, topic)
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    skipped = 0
    reached = {p: hw <= 0 for p, hw in high.items()}
    try:
        while not all(reached.values()):
            msg = consumer.poll(timeout=5.0)
            if msg is None:
                continue
            if msg.error():
                continue
            partition, offset = msg.partition(), msg.offset()
            if partition is not None and offset is not None and offset + 1 >= high[partition]:
                reached[partition] = True
            try:
                event = json.loads(msg.value())  # type: ignore[arg-type]
                event_ts = dt.datetime.fromtimestamp(event["ts_ms"] / 1000, tz=dt.UTC)
            except (TypeError, ValueError, KeyError):
                skipped += 1  # a tombstone or malformed message: the capstone would crash
                continue
            if interval_start <= event_ts < interval_end:
                records.append(event)
    finally:
        consumer.close()
    topic_short = topic.split(".")[-1]
    s3_key = f"{prefix}/staging/{topic_short}/dt={ds}/part-00000.json"
    tmp_key = f"{s3_key}.tmp"
    body = json.dumps(records).encode()
    s3.put_object(Bucket=bucket, Key=tmp_key, Body=body, ContentType="application/json")
    s3.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": tmp_key}, Key=s3_key)
    s3.delete_object(Bucket=bucket, Key=tmp_key)
    return CapstoneResult(topic, len(records), skipped, s3_key, len(body))


def _high_watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=30)
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for p in metadata.topics[topic].partitions
    }
