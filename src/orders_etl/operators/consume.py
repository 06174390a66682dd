"""Stages one Kafka topic's new messages for this run (mapped once per topic).

The Kafka and S3 clients and the stager (pyarrow) are imported in execute(): every DAG
parse imports this module (bench/parse.py measures it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from orders_contract.staging import StagingLocation, batch_id_for_run

if TYPE_CHECKING:
    from confluent_kafka import Consumer


class KafkaToStagingOperator(BaseOperator):
    """Stage `topic` for this run's batch to S3 (see orders_etl.staging.stager) and return a
    small summary (the manifest's location and counts: it stays in the metadata DB)."""

    template_fields: Sequence[str] = ("topic",)

    def __init__(
        self,
        *,
        topic: str,
        bucket: str,
        prefix: str,
        group_id: str,
        kafka_config_id: str = "kafka_default",
        aws_conn_id: str | None = "aws_default",
        read_timeout: float = 120.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topic = topic
        self.bucket = bucket
        self.prefix = prefix
        self.group_id = group_id
        self.kafka_config_id = kafka_config_id
        self.aws_conn_id = aws_conn_id
        self.read_timeout = read_timeout

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from orders_etl.hooks.kafka_staging import StagingConsumerHook
        from orders_etl.staging.stager import TopicStager

        batch_id = batch_id_for_run(context["ti"].dag_id, context["run_id"])
        location = StagingLocation(self.bucket, self.prefix)

        def consumer() -> Consumer:
            hook = StagingConsumerHook(self.kafka_config_id, self.group_id)
            return hook._get_client(hook._build_config())

        stager = TopicStager(
            consumer,
            S3Hook(aws_conn_id=self.aws_conn_id).get_conn(),
            location,
            self.group_id,
            timeout=self.read_timeout,
        )
        manifest = stager.stage(batch_id, self.topic)
        return {
            "topic": self.topic,
            "batch_id": batch_id,
            "manifest": location.uri(location.manifest_key(batch_id, self.topic)),
            "rows": manifest.rows,
            "ranges": {
                str(p.partition): [p.start_offset, p.end_offset] for p in manifest.partitions
            },
        }
