"""Consume stages exact, replayable, contiguous offset ranges from the real Kafka to the real S3."""

from __future__ import annotations

import io
import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer

from localplatform.services import LocalServices
from localplatform.services.s3 import ListingCounter
from orders_contract.staging import Manifest, StagingError, StagingLocation
from orders_etl.staging.stager import TopicStager

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(data_services: LocalServices) -> str:
    name = f"consume-{uuid.uuid4().hex[:8]}"
    data_services.kafka.create_topics([name], partitions=3)
    return name


@pytest.fixture
def location() -> StagingLocation:
    return StagingLocation(bucket="staging", prefix=f"test-{uuid.uuid4().hex[:8]}")


def produce(services: LocalServices, topic: str, start: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": services.kafka.bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, key=f'{{"id": {i}}}'.encode(), value=f'{{"n": {i}}}'.encode())
    producer.produce(topic, key=b'{"id": -1}', value=None)  # a tombstone is staged as-is
    assert producer.flush(30) == 0


def staging_consumer(services: LocalServices) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": services.kafka.bootstrap,
            "group.id": "orders-etl-staging-test",
            "enable.auto.commit": False,
        }
    )


def stager(
    services: LocalServices,
    location: StagingLocation,
    s3: Any = None,
    consumer_factory: Callable[[], Consumer] | None = None,
) -> TopicStager:
    return TopicStager(
        consumer_factory or (lambda: staging_consumer(services)),
        s3 or services.s3.client(),
        location,
        group_id="orders-etl-staging-test",
        timeout=30,
    )


def read_values(services: LocalServices, manifest: Manifest) -> list[bytes | None]:
    s3 = services.s3.client()
    values: list[bytes | None] = []
    for part in manifest.partitions:
        if part.object is None:
            continue
        bucket, key = part.object.removeprefix("s3://").split("/", 1)
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        assert table.num_rows == part.rows
        assert table["offset"].to_pylist() == list(range(part.start_offset, part.end_offset))
        values.extend(table["value"].to_pylist())
    return values


def test_ranges_are_exact_replayable_and_contiguous(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    produce(data_services, topic, 0, 500)
    first = stager(data_services, location).stage("run-1", topic)
    assert first.rows == 501
    assert all(p.start_offset == 0 for p in first.partitions)
    values = read_values(data_services, first)
    assert sorted(v for v in values if v is not None) == sorted(
        f'{{"n": {i}}}'.encode() for i in range(500)
    )
    assert values.count(None) == 1

    # More messages arrive; a rerun of run-1 still stages exactly its own range.
    produce(data_services, topic, 500, 300)
    again = stager(data_services, location).stage("run-1", topic)
    assert again == first

    second = stager(data_services, location).stage("run-2", topic)
    assert second.rows == 301
    for before, after in zip(first.partitions, second.partitions, strict=True):
        assert after.start_offset == before.end_offset  # no gap, no overlap

    empty = stager(data_services, location).stage("run-3", topic)
    assert empty.rows == 0
    assert all(p.object is None for p in empty.partitions)


def test_a_retry_after_a_failure_mid_write_restages_the_same_range(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    produce(data_services, topic, 0, 200)

    class FailingS3:
        """The real client, except that the manifest upload fails once."""

        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].endswith("_manifest.json"):
                raise ConnectionError("S3 went away")
            return self._real.put_object(**kwargs)

    with pytest.raises(ConnectionError):
        stager(data_services, location, s3=FailingS3(data_services.s3.client())).stage(
            "run-1", topic
        )
    s3 = data_services.s3.client()
    manifest_key = location.manifest_key("run-1", topic)
    assert "Contents" not in s3.list_objects_v2(Bucket="staging", Prefix=manifest_key)

    produce(data_services, topic, 200, 50)  # must not leak into the retried batch
    retried = stager(data_services, location).stage("run-1", topic)
    assert retried.rows == 201
    listed = s3.list_objects_v2(Bucket="staging", Prefix=location.topic_prefix("run-1", topic))
    parquet = [o for o in listed["Contents"] if o["Key"].endswith(".parquet")]
    assert len(parquet) == len([p for p in retried.partitions if p.object])
    assert len(read_values(data_services, retried)) == 201


def test_concurrent_runs_claim_disjoint_ranges(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    results: dict[str, Manifest] = {}

    def run(batch: str) -> None:
        results[batch] = stager(data_services, location).stage(batch, topic)

    produce(data_services, topic, 0, 300)
    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    for partition in range(3):
        spans = sorted(
            (m.partitions[partition].start_offset, m.partitions[partition].end_offset)
            for m in results.values()
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start == end, f"partition {partition}: ranges {spans} overlap or leave a gap"
    assert sum(m.rows for m in results.values()) == 301


def test_unknown_topic_fails_clearly(
    data_services: LocalServices, location: StagingLocation
) -> None:
    with pytest.raises(StagingError, match="is not available on the broker"):
        stager(data_services, location).stage("run-1", "no-such-topic")


def _seed_ledger(s3: Any, location: StagingLocation, topic: str, claims: int) -> None:
    """`claims` earlier contiguous claims of one partition, written as the ledger has them."""
    from orders_etl.staging.ledger import Claim, OffsetLedger

    ledger = OffsetLedger(s3, location)
    for seq in range(claims):
        body = Claim(seq, f"old-{seq}", {0: (seq * 10, seq * 10 + 10)}).to_json().encode()
        s3.put_object(Bucket=location.bucket, Key=ledger.key(topic, seq), Body=body)


def test_a_claim_reads_the_ledger_from_its_head_not_whole(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    """Each claim used to list the topic's whole ledger (one object per run). With a head,
    a claim after 300 earlier ones lists a handful of keys, continues the ranges exactly,
    and a retry finds its claim the same way."""
    from orders_etl.staging.ledger import OffsetLedger

    s3 = data_services.s3.client()
    _seed_ledger(s3, location, topic, 300)
    ledger = OffsetLedger(s3, location)
    # A ledger from before the head existed is listed whole once; the head is then written.
    assert ledger.last(topic).seq == 299  # type: ignore[union-attr]
    assert ledger.head(topic) == 299

    counting = ListingCounter(s3)
    assert OffsetLedger(counting, location).last(topic).seq == 299  # type: ignore[union-attr]
    assert counting.listed <= 2, f"listed {counting.listed} keys to find the newest claim"

    counting = ListingCounter(s3)
    fresh = stager(data_services, location, s3=counting)
    consumer = fresh._consumer_factory()
    try:
        claim = fresh._claim(consumer, "new-batch", topic)
    finally:
        consumer.close()
    assert claim.seq == 300
    assert claim.ranges[0] == (3000, 3000), "the new claim starts where claim 299 ended"
    assert counting.listed <= 2
    assert OffsetLedger(s3, location).head(topic) == 300

    s3.delete_object(
        Bucket=location.bucket, Key=fresh._claim_pointer_key("old-250", topic)
    )  # no pointer: the retry of batch old-250 scans the ledger's tail from the head
    counting = ListingCounter(s3)
    found = stager(data_services, location, s3=counting)._find_claim("old-250", topic)
    assert found is not None
    assert found.seq == 250
    assert counting.listed <= 202


def test_a_stale_or_missing_head_still_gives_the_newest_claim(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    from orders_etl.staging.ledger import OffsetLedger

    s3 = data_services.s3.client()
    _seed_ledger(s3, location, topic, 20)
    ledger = OffsetLedger(s3, location)
    ledger.advance_head(topic, 5)  # a racing writer left an older number last
    assert ledger.last(topic).seq == 19  # type: ignore[union-attr]
    ledger.advance_head(topic, 40)  # a head past the tail (the ledger was cut back)
    assert ledger.last(topic).seq == 19  # type: ignore[union-attr]
    assert (
        OffsetLedger(s3, StagingLocation("staging", location.prefix + "-none")).last(topic) is None
    )


def test_the_ledger_head_is_read_whole_while_other_runs_rewrite_it(
    data_services: LocalServices, location: StagingLocation
) -> None:
    """Every run rewrites the head after its claim, while other runs read it. A read that
    raced an overwrite on the S3 server (the body of one version, the checksum of another:
    botocore's FlexibleChecksumError) is read again, not a failed claim (CI, 2026-12-03:
    one of three concurrent runs died on it)."""
    from orders_etl.staging.ledger import OffsetLedger

    ledger = OffsetLedger(data_services.s3.client(), location)
    topic = "ledger-head"
    stop = threading.Event()
    written = {7}

    def rewrite() -> None:
        for seq in itertools.cycle([7, 1_000_000_007, 42, 123_456_789_012]):
            if stop.is_set():
                return
            written.add(seq)
            ledger.advance_head(topic, seq)

    ledger.advance_head(topic, 7)
    writers = [threading.Thread(target=rewrite) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        seen = [ledger.head(topic) for _ in range(400)]
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
    assert set(seen) <= written
    assert len(set(seen)) > 1, "the head never changed while it was read: the race was not run"


class RecordingConsumer:
    """A real Consumer that records what each consume() asked for (a spy, not a mock:
    every call goes to the broker)."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self.asked: list[int] = []

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        self.asked.append(num_messages)
        return self._consumer.consume(num_messages=num_messages, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def test_a_range_is_read_without_asking_for_more_messages_than_it_holds(
    data_services: LocalServices, topic: str, location: StagingLocation
) -> None:
    """consume() returns when it has the messages it was asked for, or after its timeout:
    asking for more than the range still holds waits out the timeout (a second per
    partition per run). Before the fix the first call of each partition asked for
    `end - position` with the position not known yet (OFFSET_INVALID, -1001)."""
    produce(data_services, topic, 0, 30)
    spies: list[RecordingConsumer] = []

    def factory() -> Consumer:
        spy = RecordingConsumer(staging_consumer(data_services))
        spies.append(spy)
        return spy  # type: ignore[return-value]

    manifest = stager(data_services, location, consumer_factory=factory).stage("b1", topic)
    assert manifest.rows == 31
    assert len(read_values(data_services, manifest)) == 31
    asked = [n for spy in spies for n in spy.asked]
    held = sorted(p.end_offset - p.start_offset for p in manifest.partitions if p.rows)
    assert asked, "nothing was consumed"
    assert max(asked) <= max(held), f"asked for {asked}, the ranges hold {held}"
