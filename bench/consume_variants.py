"""One consume variant, run in its own process so its peak RSS is its own.

    python -m bench.consume_variants {project,capstone,raw} --topics T1,T2,T3 --tag TAG

Prints one JSON line: {"variant", "events", "seconds", "consume_cpu_seconds",
"vm_hwm_mib", ...} (its own peak RSS, exact at exit); `seconds` covers the consume work
only (from the first consumer to the last upload), not interpreter start;
`consume_cpu_seconds` is the process's CPU (every thread: librdkafka's, the S3
transfer's) over the variant's call, without the interpreter start and the imports every
variant shares (about 3 s here, more than the raw variant's own work on 300,000 events).
Endpoints come from the running local services (LOCALPLATFORM_* environment)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench import capstone_consume, cdc_load, procstat
from localplatform.services import LocalServices
from orders_contract.staging import StagingLocation
from orders_etl.staging.stager import TopicStager

BUCKET = "staging"


def project(services: LocalServices, topics: list[str], tag: str) -> dict[str, Any]:
    """This project's consume (orders_etl.staging.stager.TopicStager), one topic after the
    other, with the consumer settings the operator forces."""
    group = f"bench-{tag}"

    consumer = cdc_load.staging_consumers(services.kafka.bootstrap, group)

    location = StagingLocation(BUCKET, prefix=f"bench-project-{tag}")
    stager = TopicStager(consumer, services.s3.client(), location, group)
    started = time.monotonic()
    rows = {topic: stager.stage(f"bench_{tag}", topic).rows for topic in topics}
    seconds = time.monotonic() - started
    return {"events": sum(rows.values()), "seconds": seconds, "per_topic": rows}


def capstone(services: LocalServices, topics: list[str], tag: str) -> dict[str, Any]:
    """The capstone's design, re-implemented for comparison (bench.capstone_consume)."""
    s3 = services.s3.client()
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # an interval that keeps every event
    started = time.monotonic()
    results = [
        capstone_consume.consume_topic(
            topic,
            services.kafka.bootstrap,
            s3,
            BUCKET,
            f"bench-capstone-{tag}",
            "2026-11-24",
            start,
            end,
        )
        for topic in topics
    ]
    seconds = time.monotonic() - started
    return {
        "events": sum(r.records + r.skipped for r in results),
        "seconds": seconds,
        "kept": sum(r.records for r in results),
        "skipped_null_or_malformed": sum(r.skipped for r in results),
        "bytes_uploaded": sum(r.bytes_uploaded for r in results),
    }


def raw(services: LocalServices, topics: list[str], tag: str) -> dict[str, Any]:
    """librdkafka's limit: consume(10,000) batches of every partition, nothing done
    with the messages beyond counting them."""
    consumer = Consumer(
        {"bootstrap.servers": services.kafka.bootstrap, "group.id": f"bench-raw-{tag}"}
    )
    started = time.monotonic()
    high: dict[tuple[str, int], int] = {}
    for topic in topics:
        for partition in consumer.list_topics(topic, timeout=30).topics[topic].partitions:
            tp = TopicPartition(topic, partition)
            high[(topic, partition)] = consumer.get_watermark_offsets(tp, timeout=30)[1]
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in high])
    remaining = {tp for tp, hw in high.items() if hw > 0}
    events = 0
    while remaining:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is not None:
                continue
            events += 1
            name, partition, offset = message.topic(), message.partition(), message.offset()
            if name is None or partition is None or offset is None:
                continue
            if offset + 1 >= high[(name, partition)]:
                remaining.discard((name, partition))
    seconds = time.monotonic() - started
    consumer.close()
    return {"events": events, "seconds": seconds}


VARIANTS = {"project": project, "capstone": capstone, "raw": raw}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consume_variants")
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--topics", required=True)
    parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    services = LocalServices()
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = VARIANTS[args.variant](services, args.topics.split(","), args.tag)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["consume_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    print(json.dumps({"variant": args.variant, **result, "vm_hwm_mib": procstat.vm_hwm_mib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
