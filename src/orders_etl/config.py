"""The pipeline configuration: defaults/pipeline.yaml, overlaid per environment, validated once.

    from orders_etl.config import load_config
    config = load_config()          # defaults + $ORDERS_ETL_CONFIG overlay, cached

A bad file fails with every problem listed (pydantic), naming the file; unknown keys are
errors, so a typo in an overlay never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orders_contract.topics import tables_for_topics

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return value


class DagConfig(_Section):
    dag_id: str
    event_driven: bool
    schedule: str | None = None
    is_paused_upon_creation: bool = False
    max_active_runs: int = Field(ge=1)
    retries: int = Field(ge=0)
    retry_delay_seconds: int = Field(gt=0)
    max_retry_delay_seconds: int = Field(gt=0)
    deadline_minutes: int = Field(gt=0)
    tags: tuple[str, ...] = ()


class KafkaConfig(_Section):
    connection_id: str
    topics: tuple[str, ...] = Field(min_length=1)
    group_id: str
    read_timeout_seconds: float = Field(gt=0)

    @field_validator("topics")
    @classmethod
    def _topics_valid(cls, topics: tuple[str, ...]) -> tuple[str, ...]:
        for topic in topics:
            if not _TOPIC.match(topic):
                raise ValueError(f"{topic!r} is not a valid Kafka topic name")
        if len(set(topics)) != len(topics):
            raise ValueError("topics must be unique")
        # One topic per contract table, found by its last dot-separated part (Debezium's
        # <prefix>.<schema>.<table>): the Spark job maps each manifest's topic the same way.
        tables_for_topics(topics)
        return topics


class WatcherConfig(_Section):
    """The backlog watcher that starts runs when dag.event_driven (triggers.kafka_backlog)."""

    poll_interval_seconds: float = Field(gt=0)
    min_interval_seconds: float = Field(ge=0)
    refire_after_seconds: float = Field(gt=0)


class StagingConfig(_Section):
    aws_connection_id: str
    bucket: str
    prefix: str


class SparkConfig(_Section):
    kubernetes_connection_id: str
    namespace: str
    template_path: Path
    pool: str
    poll_interval_seconds: float = Field(gt=0)
    watch: bool
    timeout_seconds: float = Field(gt=0)


class MaintenanceConfig(_Section):
    compact_above_files: int = Field(ge=0)
    snapshot_retention_hours: float = Field(ge=0)
    keep_snapshots: int = Field(ge=0)


class IcebergConfig(_Section):
    catalog: str
    #: The catalog as data (orders_contract.catalog); None: pyiceberg's own configuration
    #: by name, and the SparkApplication template's sparkConf as it is.
    catalog_file: str | None = None
    bronze_namespace: str
    silver_namespace: str
    gold_namespace: str
    maintenance: MaintenanceConfig

    _check = field_validator("catalog", "bronze_namespace", "silver_namespace", "gold_namespace")(
        _identifier
    )


class ClickHouseConfig(_Section):
    connection_id: str
    database: str
    table: str

    _check = field_validator("database", "table")(_identifier)


class ExecutorsConfig(_Section):
    light: str
    isolated: str
    tasks: dict[str, Literal["light", "isolated"]]

    def for_task(self, task_id: str) -> str:
        """The executor class for a task id (light unless the config says otherwise)."""
        return self.isolated if self.tasks.get(task_id) == "isolated" else self.light


class AlertingConfig(_Section):
    slack_connection_id: str


class PipelineConfig(_Section):
    dag: DagConfig
    kafka: KafkaConfig
    watcher: WatcherConfig
    staging: StagingConfig
    spark: SparkConfig
    iceberg: IcebergConfig
    clickhouse: ClickHouseConfig
    executors: ExecutorsConfig
    alerting: AlertingConfig


class ConfigError(ValueError):
    """The configuration file is missing, not YAML, or not valid."""


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return data


def parse_config(overlay_text: str | None = None, source: str = "overlay") -> PipelineConfig:
    """Defaults, optionally overlaid with YAML text; raises ConfigError naming `source`."""
    defaults = resources.files("orders_etl").joinpath("defaults/pipeline.yaml").read_text()
    data = _read_yaml(defaults, "orders_etl/defaults/pipeline.yaml")
    if overlay_text is not None:
        data = _deep_merge(data, _read_yaml(overlay_text, source))
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: invalid pipeline configuration:\n{error}") from None


@cache
def load_config(path: str | None = None) -> PipelineConfig:
    """Defaults + the overlay at `path` or $ORDERS_ETL_CONFIG, validated once per process."""
    overlay = path or os.environ.get("ORDERS_ETL_CONFIG")
    if not overlay:
        return parse_config()
    try:
        text = Path(overlay).read_text()
    except OSError as error:
        raise ConfigError(f"{overlay}: cannot read the pipeline config overlay: {error}") from None
    return parse_config(text, source=overlay)
