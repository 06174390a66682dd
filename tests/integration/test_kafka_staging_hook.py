"""The staging consumer is the apache-kafka provider's, with staging's settings forced.

`StagingConsumerHook` extends the provider's `KafkaConsumerHook` where the provider's own
hooks do (the client factory the provider's consumer and producer hooks override), so the
connection's auth, callbacks and MSK IAM handling still apply. That factory is not public
API: this test pins the behaviour staging depends on against the real broker, so a
provider upgrade that changes it fails here instead of silently committing offsets no
manifest covers.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from localplatform.services import LocalServices
from orders_etl.hooks.kafka_staging import staging_consumer

pytestmark = pytest.mark.integration


def test_a_connection_asking_for_auto_commit_and_another_group_gets_neither(
    data_services: LocalServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"staging-hook-{uuid.uuid4().hex[:8]}"
    group = f"staging-{topic}"
    data_services.kafka.create_topics([topic], partitions=1)
    producer = Producer({"bootstrap.servers": data_services.kafka.bootstrap})
    for n in range(20):
        producer.produce(topic, value=str(n).encode())
    assert producer.flush(30) == 0
    # What a user's connection might say; staging must not follow it.
    extra = {
        "bootstrap.servers": data_services.kafka.bootstrap,
        "group.id": "someone-elses-group",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 100,
        "enable.auto.offset.store": True,
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_STAGING_HOOK_TEST", json.dumps({"conn_type": "kafka", "extra": extra})
    )

    consumer = staging_consumer("kafka_staging_hook_test", group)
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        read = [m for m in (consumer.poll(10) for _ in range(20)) if m is not None]
        assert len(read) == 20
        assert all(m.error() is None for m in read)
        time.sleep(1.0)  # ten auto-commit intervals, had auto-commit been on
        consumer.poll(0.5)
        assert consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 0, (
            "the consumer committed by itself"
        )
        # Staging commits explicitly, under its own group.
        consumer.commit(offsets=[TopicPartition(topic, 0, 20)], asynchronous=False)
    finally:
        consumer.close()

    def committed(group_id: str) -> int:
        probe = Consumer({"bootstrap.servers": data_services.kafka.bootstrap, "group.id": group_id})
        try:
            offset: int = probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
            return offset
        finally:
            probe.close()

    assert committed(group) == 20
    assert committed("someone-elses-group") < 0
