"""Stage one Kafka topic's new messages to S3 as Parquet, replayably.

Which offsets a batch owns is decided once and recorded in the offset ledger on S3
(orders_etl.staging.ledger): a claim's ranges start where the previous claim ended and
end at the high watermarks taken at task start. A retry or a cleared rerun finds its own
claim (through the batch's `_claim.json`, or by scanning the ledger's tail if it died
between the two writes) and reads exactly the same offsets again. Objects are written
before the manifest; the manifest is written last and makes the batch visible (the format
is orders_contract.staging). Once a manifest exists the topic is not read again: its
objects are checked against it instead.

The first claim of a topic starts at the consumer group's committed offsets, or at the
beginning of each partition; the group's offsets are committed after every manifest so
the usual lag tools show how far staging is.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.parquet as pq
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from orders_contract.staging import (
    Manifest,
    PartitionRange,
    StagingError,
    StagingLocation,
    check_objects,
)
from orders_etl.staging.ledger import (
    LEDGER_SCAN_LIMIT,
    Claim,
    OffsetLedger,
    get_text,
)
from orders_etl.staging.row_group import PARQUET_OPTIONS, RowGroup

log = logging.getLogger(__name__)
T = TypeVar("T")


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout: float) -> tuple[int, int]:
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
    return int(low), int(high)


#: Answers of a broker that is up but not ready (just restarted, group coordinator loading
#: or moved, leadership settling) or briefly unreachable: asked again within the budget.
_TRANSIENT_BROKER_ERRORS = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
    }
)


class TopicStager:
    """Stages one topic for one batch. `consumer_factory` returns an unsubscribed Consumer."""

    def __init__(
        self,
        consumer_factory: Callable[[], Consumer],
        s3: Any,
        location: StagingLocation,
        group_id: str,
        timeout: float = 120.0,
    ) -> None:
        self._consumer_factory = consumer_factory
        self._s3 = s3
        self._location = location
        self._group_id = group_id
        self._timeout = timeout
        self.ledger = OffsetLedger(s3, location)

    # -- entry point ----------------------------------------------------------------------
    def stage(self, batch_id: str, topic: str) -> Manifest:
        manifest_key = self._location.manifest_key(batch_id, topic)
        existing = self._get_text(manifest_key)
        if existing is not None:
            where = self._location.uri(manifest_key)
            manifest = Manifest.from_json(existing, where=where)
            check_objects(self._s3, manifest, where)
            log.info(
                "%s: batch %s already staged (%d rows); objects verified",
                topic,
                batch_id,
                manifest.rows,
            )
            return manifest

        consumer = self._consumer_factory()
        try:
            claim = self._find_claim(batch_id, topic) or self._claim(consumer, batch_id, topic)
            partitions = tuple(
                self._stage_partition(consumer, batch_id, topic, partition, start, end)
                for partition, (start, end) in sorted(claim.ranges.items())
            )
            manifest = Manifest(batch_id, topic, partitions, extra={"ledger_seq": claim.seq})
            self._put(manifest_key, manifest.to_json().encode(), "application/json")
            self._commit(consumer, topic, manifest)
        finally:
            consumer.close()
        log.info(
            "%s: staged %d rows for batch %s (ledger seq %d)",
            topic,
            manifest.rows,
            batch_id,
            claim.seq,
        )
        return manifest

    # -- the ledger -----------------------------------------------------------------------
    def _claim_pointer_key(self, batch_id: str, topic: str) -> str:
        return f"{self._location.topic_prefix(batch_id, topic)}/_claim.json"

    def _find_claim(self, batch_id: str, topic: str) -> Claim | None:
        pointer = self._get_text(self._claim_pointer_key(batch_id, topic))
        if pointer is not None:
            return Claim.from_json(pointer)
        for claim in reversed(self.ledger.recent(topic, LEDGER_SCAN_LIMIT)):
            if claim.batch_id == batch_id:
                self._put(
                    self._claim_pointer_key(batch_id, topic),
                    claim.to_json().encode(),
                    "application/json",
                )
                return claim
        return None

    def last_claim(self, topic: str) -> Claim | None:
        """The ledger's latest claim of `topic` (None before the first), read from the
        ledger's head, not a listing of every claim."""
        return self.ledger.last(topic)

    def pending(
        self, consumer: Consumer, topic: str
    ) -> tuple[Claim | None, dict[int, tuple[int, int]]]:
        """The latest claim and the ranges a claim made now would take after it, through
        the claim's own code. The ledger is read before the watermarks: a claim made in
        between makes the ranges too long, never too short. Reads the ledger and the
        broker's offsets only: no group is joined, no message read (the backlog watcher
        asks this)."""
        last = self.last_claim(topic)
        high = self._high_watermarks(consumer, topic)
        return last, self._ranges_after(consumer, topic, high, last)

    def _ranges_after(
        self, consumer: Consumer, topic: str, high: dict[int, int], last: Claim | None
    ) -> dict[int, tuple[int, int]]:
        """From where `last` ended (or the group's committed offsets, or each partition's
        beginning) to the high watermarks."""
        if last is not None:
            starts = {p: r[1] for p, r in last.ranges.items()}
        else:
            starts = self._initial_offsets(consumer, topic, list(high))
        ranges: dict[int, tuple[int, int]] = {}
        for partition, hw in high.items():
            start = starts.get(partition, self._low_watermark(consumer, topic, partition))
            ranges[partition] = (start, max(start, hw))
        return ranges

    def _claim(self, consumer: Consumer, batch_id: str, topic: str) -> Claim:
        high = self._high_watermarks(consumer, topic)
        while True:
            last = self.last_claim(topic)
            seq = 0 if last is None else last.seq + 1
            claim = Claim(seq, batch_id, self._ranges_after(consumer, topic, high, last))
            if self.ledger.try_claim(claim, topic):
                self._put(
                    self._claim_pointer_key(batch_id, topic),
                    claim.to_json().encode(),
                    "application/json",
                )
                return claim
            log.info("%s: ledger seq %d was claimed by another run; retrying", topic, seq)

    # -- Kafka --------------------------------------------------------------------------
    def _ask_broker(self, what: str, request: Callable[[float], T]) -> T:
        """A metadata or offsets request, given what is left of the budget. librdkafka
        reconnects by itself; a broker that answers but is not ready yet (just restarted:
        group coordinator loading or moved) is asked again with backoff. Still failing when
        the budget is spent becomes one StagingError saying so."""
        deadline = time.monotonic() + self._timeout
        pause = 0.5
        while True:
            try:
                return request(max(deadline - time.monotonic(), 1.0))
            except KafkaException as error:
                kafka_error = error.args[0]
                transient = isinstance(kafka_error, KafkaError) and (
                    kafka_error.retriable() or kafka_error.code() in _TRANSIENT_BROKER_ERRORS
                )
                if not transient or time.monotonic() + pause > deadline:
                    raise StagingError(
                        f"Kafka is not reachable: {what} failed within {self._timeout:.0f} s "
                        f"({kafka_error}); whatever this batch claimed stands, so a retry "
                        "stages the same offsets"
                    ) from error
                log.info("%s: %s; asking again in %.1f s", what, kafka_error, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _partitions(self, consumer: Consumer, topic: str) -> list[int]:
        metadata = self._ask_broker(
            f"the metadata of {topic!r}", lambda left: consumer.list_topics(topic, timeout=left)
        )
        entry = metadata.topics.get(topic)
        if entry is None or entry.error is not None:
            reason = entry.error if entry is not None else "not in metadata"
            raise StagingError(f"topic {topic!r} is not available on the broker: {reason}")
        return sorted(entry.partitions)

    def _high_watermarks(self, consumer: Consumer, topic: str) -> dict[int, int]:
        marks = {}
        for partition in self._partitions(consumer, topic):
            tp = TopicPartition(topic, partition)
            marks[partition] = self._ask_broker(
                f"the high watermark of {topic}[{partition}]",
                functools.partial(_watermarks, consumer, tp),
            )[1]
        return marks

    def _low_watermark(self, consumer: Consumer, topic: str, partition: int) -> int:
        low: int = self._ask_broker(
            f"the low watermark of {topic}[{partition}]",
            functools.partial(_watermarks, consumer, TopicPartition(topic, partition)),
        )[0]
        return low

    def _initial_offsets(
        self, consumer: Consumer, topic: str, partitions: list[int]
    ) -> dict[int, int]:
        committed = self._ask_broker(
            f"the committed offsets of {topic!r}",
            lambda left: consumer.committed(
                [TopicPartition(topic, p) for p in partitions], timeout=left
            ),
        )
        starts = {}
        for tp in committed:
            starts[tp.partition] = (
                tp.offset
                if tp.offset != OFFSET_INVALID
                else self._low_watermark(consumer, topic, tp.partition)
            )
        return starts

    def _commit(self, consumer: Consumer, topic: str, manifest: Manifest) -> None:
        offsets = [TopicPartition(topic, p, end) for p, end in manifest.end_offsets().items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:  # informational only: the ledger is the truth
            log.warning(
                "%s: could not commit group offsets (%s); staging is unaffected", topic, error
            )

    def _stage_partition(
        self, consumer: Consumer, batch_id: str, topic: str, partition: int, start: int, end: int
    ) -> PartitionRange:
        if start >= end:
            return PartitionRange(partition, start, end, 0, None, None, 0)
        low = self._low_watermark(consumer, topic, partition)
        if low > start:
            raise StagingError(
                f"{topic}[{partition}] offsets {start}..{low - 1} were deleted by retention "
                f"before batch {batch_id} staged them; they cannot be replayed"
            )
        key = self._location.object_key(batch_id, topic, partition, start, end)
        with tempfile.TemporaryDirectory(prefix="orders-etl-stage-") as tmp:
            path = Path(tmp) / "part.parquet"
            rows = self._read_range_to_parquet(consumer, topic, partition, start, end, path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            size = path.stat().st_size
            # One PUT (or one completed multipart upload) is atomic: no reader sees a part.
            self._s3.upload_file(
                str(path), self._location.bucket, key, ExtraArgs={"Metadata": {"sha256": digest}}
            )
        if rows == 0:  # every offset in range was a transaction marker or compacted away
            self._s3.delete_object(Bucket=self._location.bucket, Key=key)
            return PartitionRange(partition, start, end, 0, None, None, 0)
        return PartitionRange(partition, start, end, rows, self._location.uri(key), digest, size)

    def _read_range_to_parquet(
        self, consumer: Consumer, topic: str, partition: int, start: int, end: int, path: Path
    ) -> int:
        consumer.assign([TopicPartition(topic, partition, start)])
        group = RowGroup(topic, partition, end)
        rows = 0
        deadline = time.monotonic() + self._timeout
        with pq.ParquetWriter(path, group.schema, **PARQUET_OPTIONS) as writer:
            while True:
                # Before the first message the consumer knows no position (OFFSET_INVALID):
                # the range starts where it was assigned.
                position = consumer.position([TopicPartition(topic, partition)])[0].offset
                if position < 0:
                    position = start
                if position >= end:
                    break
                if time.monotonic() > deadline:
                    raise StagingError(
                        f"{topic}[{partition}] did not reach offset {end} within "
                        f"{self._timeout:.0f} s (at {position}); is the broker healthy?"
                    )
                # Ask for no more than the range still holds: consume() returns as soon as
                # it has that many, instead of waiting out its timeout for a full 10,000
                # (one second per partition per run; bench/consume.py measured it).
                wanted = min(10_000, end - position)
                kept = group.add(consumer.consume(num_messages=wanted, timeout=1.0))
                if kept:
                    rows += kept
                    deadline = time.monotonic() + self._timeout
                if group.full:
                    writer.write_table(group.flush())
            if group.rows:
                writer.write_table(group.flush())
        consumer.unassign()
        return rows

    # -- S3 -----------------------------------------------------------------------------
    def _get_text(self, key: str) -> str | None:
        return get_text(self._s3, self._location.bucket, key)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self._location.bucket, Key=key, Body=body, ContentType=content_type
        )
