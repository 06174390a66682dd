"""The pipeline's event-driven schedule: fires when the CDC topics hold offsets no run has
claimed yet, once per pending batch, never once per message and never for nothing.

Each poll compares every topic's high watermarks with the end of the offset ledger's last
claim, through the very code the consume task claims with (`TopicStager.pending`):
no consumer group is joined and no message is read, so there is no rebalance and no
committed watcher offset to lose. When some offsets are unclaimed the trigger

1. writes a marker next to the ledger (`<prefix>/_watcher/<name>.json`: the watermarks it
   fires for, when, and its trigger id), then
2. yields one event (Airflow records an asset event on every asset watching it: one run).

It does not fire again until the ledger's claims reach the marker's watermarks on every
topic and every topic's latest claim is one batch's, i.e. until the run it started has
claimed them all (a run's mapped consume tasks claim one topic after another; a claim
ends at the high watermark taken when that task starts, so one run takes the whole
pending batch and whatever arrived since).
Offsets published meanwhile wait for the next event, at least `min_interval` after the
previous one: a burst becomes one batch. When the stream stops, the last run claims the
rest and nothing is left to fire for: zero empty runs.

Restarts: the marker is on S3, so a restarted or failed-over triggerer (same trigger
row, same id) does not fire twice for a batch whose run has not claimed it yet. A new
trigger (the DAG was paused and unpaused, or its configuration changed) does not trust
a marker written by another one: the event it names may never have become a run. An
event older than `refire_after` whose batch is still unclaimed is fired again (a run
that never started). A broker or S3 outage is logged and polled through; librdkafka
reconnects. A partition added to a topic is in its watermarks at the next poll and
starts at its beginning, as consume does.

kwargs are JSON-plain and identical for every topic's AssetWatcher, so Airflow keeps one
trigger for the three topic assets (BaseEventTrigger.hash) and one event reaches all.
Heavy imports (confluent_kafka, boto3, pyarrow) happen in the triggerer, not at parse.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    from confluent_kafka import Consumer

#: {topic: {partition: offset}}
Watermarks = dict[str, dict[int, int]]


@dataclass(frozen=True)
class Backlog:
    """What a claim made now would take, per topic and partition: [start, end); and the
    batch of each topic's latest claim."""

    ranges: dict[str, dict[int, tuple[int, int]]]
    batches: dict[str, str | None] = field(default_factory=dict)

    @property
    def unclaimed(self) -> dict[str, int]:
        return {t: sum(e - s for s, e in r.values()) for t, r in self.ranges.items()}

    @property
    def ends(self) -> Watermarks:
        return {t: {p: e for p, (_, e) in r.items()} for t, r in self.ranges.items()}

    @property
    def settled(self) -> bool:
        """Every topic's latest claim is the same batch's: no run is between the claims
        of its mapped consume tasks (one topic claimed, another not yet)."""
        return len(set(self.batches.values())) <= 1

    def covers(self, watermarks: Watermarks) -> bool:
        """True when the ledger's claims end at or past `watermarks` on every partition."""
        for topic, marks in watermarks.items():
            starts = {p: s for p, (s, _) in self.ranges.get(topic, {}).items()}
            if any(starts.get(p, -1) < offset for p, offset in marks.items()):
                return False
        return True


@dataclass(frozen=True)
class Marker:
    """The last event: the watermarks it fired for, when, and which trigger fired it."""

    watermarks: Watermarks
    fired_at: float
    trigger_id: int | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "watermarks": {
                    t: {str(p): o for p, o in sorted(m.items())}
                    for t, m in sorted(self.watermarks.items())
                },
                "fired_at": self.fired_at,
                "trigger_id": self.trigger_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Marker:
        body = json.loads(text)
        return cls(
            {t: {int(p): int(o) for p, o in m.items()} for t, m in body["watermarks"].items()},
            float(body["fired_at"]),
            body.get("trigger_id"),
        )


class KafkaBacklogTrigger(BaseEventTrigger):
    """Fires once per pending batch of unclaimed CDC offsets (see the module docstring).

    topics: the CDC topics; kafka_config_id/group_id: the consume task's connection and
    group (the group's committed offsets start a topic's first claim; it is never
    joined); aws_conn_id/bucket/prefix: the staging area holding the ledger; name: the
    marker's name (the DAG id); poll_interval, min_interval, refire_after: seconds.
    """

    def __init__(
        self,
        topics: list[str],
        kafka_config_id: str,
        group_id: str,
        aws_conn_id: str | None,
        bucket: str,
        prefix: str,
        name: str,
        poll_interval: float = 5.0,
        min_interval: float = 15.0,
        refire_after: float = 3600.0,
        broker_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.topics = list(topics)
        self.kafka_config_id = kafka_config_id
        self.group_id = group_id
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket
        self.prefix = prefix
        self.name = name
        self.poll_interval = poll_interval
        self.min_interval = min_interval
        self.refire_after = refire_after
        self.broker_timeout = broker_timeout
        self._s3: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "topics": self.topics,
                "kafka_config_id": self.kafka_config_id,
                "group_id": self.group_id,
                "aws_conn_id": self.aws_conn_id,
                "bucket": self.bucket,
                "prefix": self.prefix,
                "name": self.name,
                "poll_interval": self.poll_interval,
                "min_interval": self.min_interval,
                "refire_after": self.refire_after,
                "broker_timeout": self.broker_timeout,
            },
        )

    # -- blocking calls, run in a thread ---------------------------------------------------
    @property
    def marker_key(self) -> str:
        return f"{self.prefix}/_watcher/{self.name}.json"

    def _s3_client(self) -> Any:
        if self._s3 is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            self._s3 = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
        return self._s3

    def _consumer(self) -> Consumer:
        from orders_etl.hooks.kafka_staging import staging_consumer

        return staging_consumer(self.kafka_config_id, self.group_id)

    def backlog(self) -> Backlog:
        """The ranges the next claim would take, per topic (blocking). A consumer per poll:
        nothing to go stale across a broker restart, and nothing is subscribed."""
        from orders_contract.staging import StagingLocation
        from orders_etl.staging.stager import TopicStager

        stager = TopicStager(
            self._consumer,
            self._s3_client(),
            StagingLocation(self.bucket, self.prefix),
            self.group_id,
            timeout=self.broker_timeout,
        )
        consumer = self._consumer()
        try:
            pending = {t: stager.pending(consumer, t) for t in self.topics}
        finally:
            consumer.close()
        return Backlog(
            {t: ranges for t, (_, ranges) in pending.items()},
            {t: None if last is None else last.batch_id for t, (last, _) in pending.items()},
        )

    def read_marker(self) -> Marker | None:
        from botocore.exceptions import ClientError

        try:
            body = self._s3_client().get_object(Bucket=self.bucket, Key=self.marker_key)["Body"]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return Marker.from_json(body.read().decode())

    def write_marker(self, marker: Marker) -> None:
        self._s3_client().put_object(
            Bucket=self.bucket,
            Key=self.marker_key,
            Body=marker.to_json().encode(),
            ContentType="application/json",
        )

    # -- the decision -----------------------------------------------------------------------
    def should_fire(self, backlog: Backlog, marker: Marker | None, now: float) -> str | None:
        """None to fire now, else why not (logged when it changes)."""
        if not any(backlog.unclaimed.values()):
            return "no unclaimed offsets"
        if marker is None:
            return None
        claimed = backlog.covers(marker.watermarks) and backlog.settled
        if marker.trigger_id == self.trigger_id and not claimed:
            if now - marker.fired_at < self.refire_after:
                return "the last event's batch is not claimed yet"
            self.log.warning(
                "no run claimed the batch of the event fired %.0f s ago; firing again",
                now - marker.fired_at,
            )
            return None
        if now - marker.fired_at < self.min_interval:
            return "within min_interval of the last event"
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        reason: str | None = ""
        failing = False
        while True:
            try:
                backlog = await asyncio.to_thread(self.backlog)
                marker = await asyncio.to_thread(self.read_marker)
                now = time.time()
                reason = self._log_change(reason, self.should_fire(backlog, marker, now))
                if reason is None:
                    fired = Marker(backlog.ends, now, self.trigger_id)
                    # The marker first: a triggerer dying between the two loses an event
                    # (re-fired after refire_after), never doubles one into an empty run.
                    await asyncio.to_thread(self.write_marker, fired)
                    self.log.info("unclaimed offsets %s: firing", backlog.unclaimed)
                    yield TriggerEvent(
                        {"unclaimed": backlog.unclaimed, "fired_at": now, "name": self.name}
                    )
                    reason = "fired"
                if failing:
                    self.log.info("Kafka and S3 answer again")
                    failing = False
            except Exception as error:  # a watcher outlives outages
                if not failing:
                    self.log.warning("cannot read the backlog (%s); polling on", error)
                failing = True
            await asyncio.sleep(self.poll_interval)

    def _log_change(self, before: str | None, now: str | None) -> str | None:
        if now is not None and now != before:
            self.log.info("not firing: %s", now)
        return now
