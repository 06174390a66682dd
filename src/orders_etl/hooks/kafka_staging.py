"""The Kafka consumer that staging reads with: the apache-kafka provider's hook, with the
settings exactly-once staging depends on forced."""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
from confluent_kafka import Consumer

from orders_etl.staging.consumer_settings import STAGING_CONSUMER_SETTINGS


class StagingConsumerHook(KafkaConsumerHook):
    """The provider's consumer (auth, callbacks, MSK IAM from the connection) with the
    settings staging depends on forced: our group, no auto-commit, explicit assignment."""

    def __init__(self, kafka_config_id: str, group_id: str) -> None:
        super().__init__(topics=[], kafka_config_id=kafka_config_id)
        self._group_id = group_id

    def _get_client(self, config: dict[str, Any]) -> Consumer:
        forced = {"group.id": self._group_id, **STAGING_CONSUMER_SETTINGS}
        return super()._get_client({**config, **forced})


def staging_consumer(kafka_config_id: str, group_id: str) -> Consumer:
    """An unsubscribed consumer with staging's settings (the consume task and the backlog
    watcher read offsets through it; neither subscribes, so no group is ever joined)."""
    hook = StagingConsumerHook(kafka_config_id, group_id)
    return hook._get_client(hook._build_config())
