"""The pipeline's assets: Kafka topics -> S3 staging -> Iceberg tables -> ClickHouse table.

Used as the DAG's schedule (the topics, with the backlog watcher when event-driven) and as task
inlets/outlets, so lineage (OpenLineage) and downstream DAGs see the same names.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from orders_etl.config import PipelineConfig
from orders_etl.triggers.kafka_backlog import KafkaBacklogTrigger

CDC_TABLES = ("orders", "line_items", "customers")


def backlog_trigger(config: PipelineConfig) -> KafkaBacklogTrigger:
    """The one watcher of all CDC topics: fires once per pending batch of unclaimed offsets.

    Every topic's AssetWatcher gets an identical trigger, so Airflow runs one (it keys
    event triggers by classpath and kwargs) and its event reaches every topic asset."""
    w = config.watcher
    return KafkaBacklogTrigger(
        topics=list(config.kafka.topics),
        kafka_config_id=config.kafka.connection_id,
        group_id=config.kafka.group_id,
        aws_conn_id=config.staging.aws_connection_id,
        bucket=config.staging.bucket,
        prefix=config.staging.prefix,
        name=config.dag.dag_id,
        poll_interval=w.poll_interval_seconds,
        min_interval=w.min_interval_seconds,
        refire_after=w.refire_after_seconds,
    )


def kafka_topic(config: PipelineConfig, topic: str) -> Asset:
    watchers = []
    if config.dag.event_driven:
        watchers.append(AssetWatcher(name=f"{topic}-backlog", trigger=backlog_trigger(config)))
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
