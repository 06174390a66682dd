"""The backlog watcher on the real broker and the real S3 server (issue 23).

The trigger runs its own poll loop here, as the triggerer runs it; a "run claiming its
batch" is the consume task's real code (`TopicStager.stage` per topic, same ledger).
Connections come from AIRFLOW_CONN_* variables, as in a deployment's environment.

- one event per pending batch, not per message: bursts of messages while no run has
  claimed give one event; after the claim, nothing (zero empty runs); new messages, one
  more;
- a quiet topic never fires, and does not hold back a busy one;
- a restarted triggerer (a new instance of the same trigger row) does not fire again for
  a batch not yet claimed; a new trigger row (DAG paused and unpaused) does;
- the broker stopped and started under a running watcher: no crash, no event while
  down, the next batch fires;
- a partition added to a topic: its messages fire an event and are claimed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewPartitions

from localplatform.services import LocalServices
from orders_contract.staging import StagingLocation
from orders_etl.staging.stager import TopicStager
from orders_etl.triggers.kafka_backlog import KafkaBacklogTrigger

pytestmark = pytest.mark.integration

GROUP_ID = "orders-etl-backlog-test"
KAFKA_CONN = "kafka_backlog_test"
AWS_CONN = "aws_backlog_test"
POLL = 0.3


@pytest.fixture
def connections(data_services: LocalServices, monkeypatch: pytest.MonkeyPatch) -> None:
    s = data_services
    kafka = {"conn_type": "kafka", "extra": {"bootstrap.servers": s.kafka.bootstrap}}
    aws = {
        "conn_type": "aws",
        "login": s.s3.access_key,
        "password": s.s3.secret_key,
        "extra": {"endpoint_url": s.s3.endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{KAFKA_CONN.upper()}", json.dumps(kafka))
    monkeypatch.setenv(f"AIRFLOW_CONN_{AWS_CONN.upper()}", json.dumps(aws))


@pytest.fixture
def topics(data_services: LocalServices, connections: None) -> list[str]:
    names = [f"backlog-{uuid.uuid4().hex[:8]}-{t}" for t in ("orders", "items")]
    data_services.kafka.create_topics(names, partitions=2)
    return names


@pytest.fixture
def location() -> StagingLocation:
    return StagingLocation(bucket="staging", prefix=f"backlog-{uuid.uuid4().hex[:8]}")


def watcher(
    topics: list[str],
    location: StagingLocation,
    trigger_id: int = 1,
    min_interval: float = 0.0,
    broker_timeout: float = 10.0,
) -> KafkaBacklogTrigger:
    trigger = KafkaBacklogTrigger(
        topics=topics,
        kafka_config_id=KAFKA_CONN,
        group_id=GROUP_ID,
        aws_conn_id=AWS_CONN,
        bucket=location.bucket,
        prefix=location.prefix,
        name="orders_etl_test",
        poll_interval=POLL,
        min_interval=min_interval,
        refire_after=3600,
        broker_timeout=broker_timeout,
    )
    trigger.trigger_id = trigger_id  # set by the triggerer from the trigger's row
    return trigger


def produce(services: LocalServices, topic: str, count: int, partition: int | None = None) -> None:
    producer = Producer({"bootstrap.servers": services.kafka.bootstrap, "linger.ms": 2})
    for i in range(count):
        kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
        producer.produce(topic, key=f'{{"id": {i}}}'.encode(), value=b"{}", **kwargs)
    assert producer.flush(30) == 0


def claim_all(
    services: LocalServices,
    location: StagingLocation,
    topics: list[str],
    batch_id: str | None = None,
) -> int:
    """What a run's consume tasks do: claim and stage every topic (of `topics`) for one
    batch; the rows staged."""

    def consumer() -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": services.kafka.bootstrap,
                "group.id": GROUP_ID,
                "enable.auto.commit": False,
            }
        )

    stager = TopicStager(consumer, services.s3.client(), location, GROUP_ID, timeout=30)
    batch_id = batch_id or f"b{uuid.uuid4().hex[:10]}"
    return sum(stager.stage(batch_id, topic).rows for topic in topics)


class Running:
    """A trigger's run() driven as the triggerer drives it; events kept with their time."""

    def __init__(self, trigger: KafkaBacklogTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self._task = asyncio.create_task(self._drain())
        return self

    async def _drain(self) -> None:
        async for event in self.trigger.run():
            self.events.append({**event.payload, "seen_at": time.monotonic()})

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done():  # run() must never end by itself: surface why it did
            self._task.result()
            raise AssertionError("the watcher's run() ended")
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def settle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_events(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} events, expected {count}"
            await asyncio.sleep(0.1)


def fired_for_part_of(event: dict[str, Any], topic: str, produced: int) -> bool:
    """Whether a watcher event counts some, not more, of the `produced` messages just
    published to `topic`. The topics have two partitions and one produce() call appends to
    each partition separately: a poll between the two appends (the watcher polls while
    the producer flushes) sees only one partition's messages. Exact counts are asserted
    on the claim that follows, which is what a run stages."""
    return 0 < event["unclaimed"][topic] <= produced


def drive(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


def in_thread(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(fn, *args)


def test_bursts_fire_once_per_pending_batch_and_never_after_the_claim(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    async def scenario() -> None:
        async with Running(watcher(topics, location)) as w:
            await w.settle(POLL * 5)
            assert w.events == [], "fired with nothing published"
            for _ in range(5):  # five bursts, 600 messages, no run claiming them
                await in_thread(produce, data_services, topics[0], 100)
                await in_thread(produce, data_services, topics[1], 20)
                await asyncio.sleep(POLL * 2)
            await w.settle(POLL * 6)
            assert len(w.events) == 1, w.events
            assert sum(w.events[0]["unclaimed"].values()) > 0

            assert await in_thread(claim_all, data_services, location, topics) == 600
            await w.settle(POLL * 10)
            assert len(w.events) == 1, "fired again after its batch was claimed: an empty run"

            await in_thread(produce, data_services, topics[1], 3)
            await w.wait_events(2)
            assert w.events[1]["unclaimed"][topics[0]] == 0
            assert fired_for_part_of(w.events[1], topics[1], 3), w.events
            assert await in_thread(claim_all, data_services, location, topics) == 3
            await w.settle(POLL * 10)
            assert len(w.events) == 2

    drive(scenario)


def test_min_interval_batches_a_stream_into_few_events(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    """Runs claim as soon as each event arrives (the fastest pipeline possible): with a
    3 s minimum interval, 8 s of steady messages make at most 4 events, not ~80."""

    async def scenario() -> None:
        async with Running(watcher(topics, location, min_interval=3.0)) as w:
            claimed = produced = seen = 0
            started = time.monotonic()
            while time.monotonic() - started < 8:
                await in_thread(produce, data_services, topics[0], 10)
                produced += 10
                if len(w.events) > seen:
                    seen = len(w.events)
                    claimed += await in_thread(claim_all, data_services, location, topics)
                await asyncio.sleep(0.1)
            await w.settle(4)
            if len(w.events) > seen:
                claimed += await in_thread(claim_all, data_services, location, topics)
            await w.settle(POLL * 6)
            events = len(w.events)
            assert 2 <= events <= 4, w.events
            gaps = [
                b["fired_at"] - a["fired_at"] for a, b in zip(w.events, w.events[1:], strict=False)
            ]
            assert all(gap >= 3.0 for gap in gaps), gaps
            # the events' runs claimed every message published; nothing was left over
            assert await in_thread(claim_all, data_services, location, topics) == 0
            assert claimed == produced
            await w.settle(POLL * 6)
            assert len(w.events) == events

    drive(scenario)


def test_no_event_while_a_run_is_between_the_claims_of_its_topics(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    """A run's mapped consume tasks claim one topic after another. Between them, the
    messages that arrived on a topic not claimed yet are that run's, not a new batch:
    firing for them starts a run that finds nothing (seen on the demo platform: the
    customers topic, claimed last)."""

    async def scenario() -> None:
        async with Running(watcher(topics, location)) as w:
            await in_thread(produce, data_services, topics[0], 10)
            await w.wait_events(1)
            await in_thread(produce, data_services, topics[1], 5)  # after the event
            # The event's run: its first consume task claims topics[0] ...
            assert await in_thread(claim_all, data_services, location, topics[:1], "run1") == 10
            await w.settle(POLL * 10)
            assert len(w.events) == 1, "fired while the run had claimed one topic of two"
            # ... its second claims topics[1], the 5 messages included.
            assert await in_thread(claim_all, data_services, location, topics[1:], "run1") == 5
            await w.settle(POLL * 10)
            assert len(w.events) == 1, "fired after the run claimed everything"

    drive(scenario)


def test_a_quiet_topic_never_fires_and_holds_no_other_back(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    async def scenario() -> None:
        async with Running(watcher(topics, location)) as w:
            await w.settle(POLL * 8)
            assert w.events == []
            await in_thread(produce, data_services, topics[0], 5)
            await w.wait_events(1)
            assert w.events[0]["unclaimed"][topics[1]] == 0
            assert fired_for_part_of(w.events[0], topics[0], 5), w.events
            assert await in_thread(claim_all, data_services, location, topics) == 5

    drive(scenario)


def test_a_restarted_triggerer_does_not_fire_twice_for_one_batch(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    async def scenario() -> None:
        await in_thread(produce, data_services, topics[0], 50)
        async with Running(watcher(topics, location, trigger_id=41)) as first:
            await first.wait_events(1)
        # The triggerer restarts (or the trigger moves to the other triggerer): the same
        # trigger row, a new instance, before the run has claimed the batch.
        async with Running(watcher(topics, location, trigger_id=41)) as second:
            await second.settle(POLL * 10)
            assert second.events == [], "fired again for a batch it had fired for"
            assert await in_thread(claim_all, data_services, location, topics) == 50
            await second.settle(POLL * 5)
            assert second.events == []
            await in_thread(produce, data_services, topics[1], 7)
            await second.wait_events(1)
            assert fired_for_part_of(second.events[0], topics[1], 7), second.events
        # A new trigger row (the DAG was paused and unpaused): the marker is another
        # trigger's, its event may never have become a run, so unclaimed offsets fire.
        async with Running(watcher(topics, location, trigger_id=42)) as third:
            await third.wait_events(1)

    drive(scenario)


@pytest.fixture
def broker_restored(data_services: LocalServices) -> Iterator[None]:
    yield
    if not data_services.kafka.running():
        data_services.kafka.start()


def test_the_watcher_rides_out_a_broker_restart(
    data_services: LocalServices,
    topics: list[str],
    location: StagingLocation,
    broker_restored: None,
) -> None:
    kafka = data_services.kafka

    async def scenario() -> None:
        async with Running(watcher(topics, location, broker_timeout=2.0)) as w:
            await in_thread(produce, data_services, topics[0], 10)
            await w.wait_events(1)
            assert await in_thread(claim_all, data_services, location, topics) == 10
            await in_thread(kafka.stop)
            await w.settle(6)  # several polls fail against a stopped broker
            assert len(w.events) == 1
            await in_thread(kafka.start)
            await w.settle(POLL * 5)
            assert len(w.events) == 1, "the restart alone fired an event"
            await in_thread(produce, data_services, topics[0], 4)
            await w.wait_events(2, timeout=60)
            assert fired_for_part_of(w.events[1], topics[0], 4), w.events
            assert await in_thread(claim_all, data_services, location, topics) == 4

    drive(scenario)


def test_a_new_partition_fires_and_is_claimed(
    data_services: LocalServices, topics: list[str], location: StagingLocation
) -> None:
    async def scenario() -> None:
        async with Running(watcher(topics, location)) as w:
            await in_thread(produce, data_services, topics[0], 6)
            await w.wait_events(1)
            assert await in_thread(claim_all, data_services, location, topics) == 6
            admin = data_services.kafka.admin()
            for future in admin.create_partitions([NewPartitions(topics[0], 3)]).values():
                await in_thread(future.result)
            await w.settle(POLL * 5)
            assert len(w.events) == 1, "an empty new partition fired"
            await in_thread(produce, data_services, topics[0], 9, 2)
            await w.wait_events(2)
            assert w.events[1]["unclaimed"][topics[0]] == 9
            assert await in_thread(claim_all, data_services, location, topics) == 9
            await w.settle(POLL * 8)
            assert len(w.events) == 2

    drive(scenario)
