"""The orders ETL DAG, built from the pipeline configuration (dags/ only calls build_dag).

    consume (mapped per topic) -> verify_staging -> spark_transform -> load_clickhouse -> notify

Runs may overlap (dag.max_active_runs): spark_transform and load_clickhouse run once at a
time across runs, everything else (consume and verify of the next batch) runs beside them.

An empty batch (no new offsets on any topic) skips everything after verify_staging.
Alerting on failures and retries is done by the listener plugin (orders_etl.alerting),
not by per-task callbacks; a run that exceeds `deadline_minutes` raises a deadline alert.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import DAG, AssetAny, task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from orders_contract.metrics import JobMetrics
from orders_contract.staging import StagingLocation
from orders_etl import assets
from orders_etl.alerting.deadline import post_deadline_missed
from orders_etl.config import PipelineConfig, load_config
from orders_etl.notify import RunFigures, dashboard_gap, maintenance_lines, notify_run
from orders_etl.operators.clickhouse import GoldToClickHouseOperator
from orders_etl.operators.consume import KafkaToStagingOperator
from orders_etl.operators.sparkapplication import SparkApplicationOperator
from orders_etl.staging.verify import verify_batch

log = logging.getLogger(__name__)


def spark_arguments(config: PipelineConfig, batch: dict[str, Any]) -> list[str]:
    """The Spark job's command line for one verified batch."""
    maintenance = config.iceberg.maintenance
    args = [
        "--batch-id",
        batch["batch_id"],
        "--catalog",
        config.iceberg.catalog,
        "--bronze-namespace",
        config.iceberg.bronze_namespace,
        "--silver-namespace",
        config.iceberg.silver_namespace,
        "--gold-namespace",
        config.iceberg.gold_namespace,
        "--metrics-uri",
        metrics_uri(config, batch["batch_id"]),
        "--compact-above-files",
        str(maintenance.compact_above_files),
        "--snapshot-retention-hours",
        str(maintenance.snapshot_retention_hours),
        "--keep-snapshots",
        str(maintenance.keep_snapshots),
    ]
    for manifest in batch["manifests"]:
        args += ["--manifest", manifest]
    return args


def run_figures(
    dag_id: str,
    run_id: str,
    batch: dict[str, Any],
    metrics: dict[str, Any],
    loaded: dict[str, Any],
    clickhouse_table: str,
) -> RunFigures:
    """The run's figures, each taken from the task that measured it."""
    job = JobMetrics.from_dict(metrics)
    return RunFigures(
        dag_id=dag_id,
        run_id=run_id,
        events_per_topic=batch["rows_per_topic"],
        rows_per_table=job.rows_per_table(),
        quarantined=job.totals.quarantined,
        tombstones=job.totals.tombstones,
        clickhouse_rows=int(loaded["rows_written"]),
        touched_dates=list(job.touched_dates),
        clickhouse_table=clickhouse_table,
        partitions_replaced=int(loaded["partitions_replaced"]),
        partitions_dropped=int(loaded["partitions_dropped"]),
        duration_seconds=job.duration_seconds,
        extra=maintenance_lines(job),
    )


def metrics_uri(config: PipelineConfig, batch_id: str) -> str:
    location = StagingLocation(config.staging.bucket, config.staging.prefix)
    return location.uri(f"{location.batch_prefix(batch_id)}/_metrics.json")


def build_dag(config: PipelineConfig | None = None) -> DAG:
    config = config or load_config()
    execs = config.executors
    topics = assets.kafka_topics(config)
    # Event-driven: the topics' one backlog watcher (assets.backlog_trigger) records an
    # event on every topic at once, and AssetAny starts one run for it (a list would mean
    # AssetAll: a quiet topic could hold the others back).
    schedule: Any = AssetAny(*topics) if config.dag.event_driven else config.dag.schedule

    with DAG(
        dag_id=config.dag.dag_id,
        schedule=schedule,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        is_paused_upon_creation=config.dag.is_paused_upon_creation,
        max_active_runs=config.dag.max_active_runs,
        tags=list(config.dag.tags),
        doc_md=__doc__,
        default_args={
            "retries": config.dag.retries,
            "retry_delay": dt.timedelta(seconds=config.dag.retry_delay_seconds),
            "retry_exponential_backoff": True,
            "max_retry_delay": dt.timedelta(seconds=config.dag.max_retry_delay_seconds),
        },
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=dt.timedelta(minutes=config.dag.deadline_minutes),
            callback=AsyncCallback(
                post_deadline_missed,
                kwargs={
                    "slack_webhook_conn_id": config.alerting.slack_connection_id,
                    "dag_id": config.dag.dag_id,
                    "deadline_minutes": config.dag.deadline_minutes,
                },
            ),
        ),
    ) as dag:
        consume = KafkaToStagingOperator.partial(
            task_id="consume",
            executor=execs.for_task("consume"),
            bucket=config.staging.bucket,
            prefix=config.staging.prefix,
            group_id=config.kafka.group_id,
            kafka_config_id=config.kafka.connection_id,
            aws_conn_id=config.staging.aws_connection_id,
            read_timeout=config.kafka.read_timeout_seconds,
            inlets=topics,
            outlets=[assets.staging(config)],
        ).expand(topic=list(config.kafka.topics))

        @task(executor=execs.for_task("verify_staging"))
        def verify_staging(consumed: list[dict[str, Any]]) -> dict[str, Any]:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # boto3: not at parse

            s3 = S3Hook(aws_conn_id=config.staging.aws_connection_id).get_conn()
            batch = verify_batch(s3, list(consumed))
            if batch["rows"] == 0:
                raise AirflowSkipException(
                    f"nothing to do: no new offsets on {', '.join(config.kafka.topics)}"
                )
            batch["spark_arguments"] = spark_arguments(config, batch)
            batch["metrics_uri"] = metrics_uri(config, batch["batch_id"])
            log.info("staging verified: batch %s, %d rows", batch["batch_id"], batch["rows"])
            return batch

        # XComArgs: resolved at run time (the TaskFlow stubs type them as their values).
        batch: Any = verify_staging(consume.output)  # type: ignore[arg-type]

        transform = SparkApplicationOperator(
            task_id="spark_transform",
            executor=execs.for_task("spark_transform"),
            pool=config.spark.pool,
            # One batch in Spark at a time (across this DAG's runs, its deferred wait
            # included): the job's commits and its table maintenance never race.
            max_active_tis_per_dag=1,
            template_path=config.spark.template_path,
            namespace=config.spark.namespace,
            arguments=batch["spark_arguments"],
            metrics_uri=batch["metrics_uri"],
            catalog_file=config.iceberg.catalog_file,
            kubernetes_conn_id=config.spark.kubernetes_connection_id,
            aws_conn_id=config.staging.aws_connection_id,
            poll_interval=config.spark.poll_interval_seconds,
            watch=config.spark.watch,
            wait_timeout=config.spark.timeout_seconds,
            inlets=[assets.staging(config)],
            outlets=assets.iceberg_tables(config),
        )
        spark_metrics: Any = transform.output
        ch = config.clickhouse
        load = GoldToClickHouseOperator(
            task_id="load_clickhouse",
            executor=execs.for_task("load_clickhouse"),
            # Loads one at a time: each reads gold as it is when it starts, so loads in
            # sequence only move the dashboard forward (two at once could let the one
            # that read an older gold switch its dates last).
            max_active_tis_per_dag=1,
            touched_dates=spark_metrics["touched_dates"],
            iceberg_catalog=config.iceberg.catalog,
            catalog_file=config.iceberg.catalog_file,
            gold_table=f"{config.iceberg.gold_namespace}.daily_revenue",
            clickhouse_conn_id=ch.connection_id,
            database=ch.database,
            table=ch.table,
            inlets=[assets.iceberg_table(config, config.iceberg.gold_namespace, "daily_revenue")],
            outlets=[assets.clickhouse_table(config)],
        )

        @task(executor=execs.for_task("notify"))
        def notify(
            batch: dict[str, Any], metrics: dict[str, Any], loaded: dict[str, Any], **context: Any
        ) -> str:
            figures = run_figures(
                config.dag.dag_id,
                context["run_id"],
                batch,
                metrics,
                loaded,
                f"{ch.database}.{ch.table}",
            )
            sent = notify_run(figures, slack_conn_id=config.alerting.slack_connection_id)
            gap = dashboard_gap(JobMetrics.from_dict(metrics), loaded)
            if gap:  # the figures are posted; the run fails and the listener pages
                raise AirflowFailException(gap)
            return sent

        batch >> transform >> load
        loaded: Any = load.output
        notify(batch, spark_metrics, loaded)
    return dag
