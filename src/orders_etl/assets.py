"""The pipeline's assets: Kafka topics -> S3 staging -> Iceberg tables -> ClickHouse table.

Used as the DAG's schedule (the topics, with AssetWatchers when event-driven) and as task
inlets/outlets, so lineage (OpenLineage) and downstream DAGs see the same names.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger
from airflow.sdk import Asset, AssetWatcher

from orders_etl.config import PipelineConfig

CDC_TABLES = ("orders", "line_items", "customers")


def wake_up(message: Any) -> dict[str, Any]:
    """AwaitMessageTrigger's apply_function: any message (even a tombstone) wakes the DAG."""
    return {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()}


def kafka_topic(config: PipelineConfig, topic: str) -> Asset:
    watchers = []
    if config.dag.event_driven:
        trigger = AwaitMessageTrigger(
            topics=[topic],
            kafka_config_id=config.kafka.watcher_connection_id,
            apply_function=f"{__name__}.wake_up",
            poll_interval=5,
        )
        watchers.append(AssetWatcher(name=f"{topic}-watcher", trigger=trigger))
    return Asset(
        name=f"kafka_{topic}",
        uri=f"kafka://{config.kafka.connection_id}/{topic}",
        group="kafka",
        watchers=watchers,
    )


def kafka_topics(config: PipelineConfig) -> list[Asset]:
    return [kafka_topic(config, topic) for topic in config.kafka.topics]


def staging(config: PipelineConfig) -> Asset:
    s = config.staging
    return Asset(name="s3_staging", uri=f"s3://{s.bucket}/{s.prefix}/", group="s3")


def iceberg_table(config: PipelineConfig, namespace: str, table: str) -> Asset:
    return Asset(
        name=f"iceberg_{namespace}_{table}",
        uri=f"iceberg://{config.iceberg.catalog}/{namespace}/{table}",
        group="iceberg",
    )


def iceberg_tables(config: PipelineConfig) -> list[Asset]:
    ice = config.iceberg
    return [
        *(iceberg_table(config, ice.bronze_namespace, f"{t}_raw") for t in CDC_TABLES),
        *(iceberg_table(config, ice.silver_namespace, f"{t}_clean") for t in CDC_TABLES),
        iceberg_table(config, ice.gold_namespace, "daily_revenue"),
    ]


def clickhouse_table(config: PipelineConfig) -> Asset:
    ch = config.clickhouse
    return Asset(
        name=f"clickhouse_{ch.database}_{ch.table}",
        uri=f"clickhouse://{ch.connection_id}/{ch.database}/{ch.table}",
        group="clickhouse",
    )
