"""Lineage: every task's inlets and outlets become OpenLineage datasets (none dropped).

Goes through the OpenLineage provider's own path (ExtractorManager.convert_to_ol_dataset
-> translate_airflow_asset -> the converter registered for the URI scheme), so it fails
if a scheme has no converter, as iceberg:// and clickhouse:// had none before
orders_etl.lineage registered them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dag(monkeypatch_module: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch_module.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor,KubernetesExecutor")
    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    return build_dag(parse_config())


@pytest.fixture(scope="module")
def monkeypatch_module():  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _datasets(assets: list[object]) -> list[str]:
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    converted = [ExtractorManager.convert_to_ol_dataset(a) for a in assets]
    assert None not in converted, [a for a, d in zip(assets, converted, strict=True) if d is None]
    return [f"{d.namespace}/{d.name}" for d in converted if d is not None]


def test_the_pipeline_emits_kafka_s3_iceberg_clickhouse_datasets(dag) -> None:  # type: ignore[no-untyped-def]
    tasks = {t.task_id: t for t in dag.tasks}
    consume, spark, load = tasks["consume"], tasks["spark_transform"], tasks["load_clickhouse"]
    assert _datasets(consume.inlets) == [
        "kafka://kafka_default/orders.public.orders",
        "kafka://kafka_default/orders.public.line_items",
        "kafka://kafka_default/orders.public.customers",
    ]
    assert _datasets(consume.outlets) == ["s3://staging/cdc"]
    assert "s3://staging/cdc" in _datasets(spark.inlets)
    assert "iceberg://lakehouse/gold.daily_revenue" in _datasets(spark.outlets)
    assert "iceberg://lakehouse/silver.orders_clean" in _datasets(spark.outlets)
    assert _datasets(load.inlets) == ["iceberg://lakehouse/gold.daily_revenue"]
    assert _datasets(load.outlets) == ["clickhouse://clickhouse_default/dashboards.daily_revenue"]


def test_every_inlet_and_outlet_of_every_task_converts(dag) -> None:  # type: ignore[no-untyped-def]
    for task in dag.tasks:
        _datasets([*task.inlets, *task.outlets])


@pytest.mark.parametrize(
    "uri",
    [
        "iceberg://lakehouse/gold",  # no table
        "iceberg://lakehouse/gold/daily_revenue/extra",
        "iceberg:///gold/daily_revenue",  # no catalog
        "clickhouse://ch/dashboards/daily revenue",
        "clickhouse://ch/dashboards/daily_revenue?x=1",
    ],
)
def test_a_malformed_uri_of_our_schemes_is_refused(uri: str) -> None:
    from orders_etl.lineage import sanitize_uri

    with pytest.raises(ValueError, match="asset URI"):
        sanitize_uri(urlsplit(uri))
