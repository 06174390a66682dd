"""The pipeline config: defaults + an environment's overlay, validated, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from orders_etl.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit


def test_an_overlay_is_deep_merged_over_the_defaults() -> None:
    config = parse_config("spark:\n  namespace: jobs-prod\ndag:\n  retries: 5\n")
    assert config.spark.namespace == "jobs-prod"
    assert config.dag.retries == 5
    # Untouched keys of the same sections keep their defaults.
    assert config.spark.kubernetes_connection_id == parse_config().spark.kubernetes_connection_id
    assert config.dag.dag_id == "orders_etl"


@pytest.mark.parametrize(
    ("overlay", "says"),
    [
        ("dag: [unclosed", "not valid YAML"),
        ("- a list\n- not a mapping\n", "expected a mapping at the top level"),
        ("dag:\n  retrys: 3\n", "retrys"),  # a typo is an unknown key, not ignored
        ("dag:\n  retries: three\n", "dag.retries"),
        ("dag:\n  max_active_runs: 0\n", "dag.max_active_runs"),
        ("kafka:\n  topics: []\n", "kafka.topics"),
        # One topic per contract table, named <prefix>.<schema>.<table>.
        (
            "kafka:\n  topics: [a.public.orders, a.public.line_items, a.public.shipments]\n",
            "'a.public.shipments' does not carry a table",
        ),
        (
            "kafka:\n  topics: [a.public.orders, b.public.orders, a.public.customers]\n",
            "both carry table 'orders'",
        ),
        ("kafka:\n  topics: [a.public.orders, a.public.customers]\n", "line_items"),
        ("clickhouse:\n  table: 'daily; DROP TABLE x'\n", "clickhouse.table"),
        # Keys nothing read are gone; an overlay still setting one hears so.
        ("alerting:\n  channel: '#ops'\n", "alerting.channel"),
        ("kafka:\n  poll_timeout_seconds: 10\n", "kafka.poll_timeout_seconds"),
        ("spark:\n  service_account: x\n", "spark.service_account"),
    ],
)
def test_a_bad_overlay_is_refused_naming_the_file_and_the_key(overlay: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(overlay, source="values-overlay.yaml")
    assert str(error.value).startswith("values-overlay.yaml:")
    assert says in str(error.value)


def test_topics_under_another_debezium_prefix_are_accepted() -> None:
    config = parse_config(
        "kafka:\n  topics: [eu.sales.customers, eu.sales.orders, eu.sales.line_items]\n"
    )
    assert config.kafka.topics == ("eu.sales.customers", "eu.sales.orders", "eu.sales.line_items")


def test_an_unreadable_overlay_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="cannot read the pipeline config overlay"):
        load_config(str(missing))


def test_the_overlay_named_by_the_environment_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay = tmp_path / "pipeline.yaml"
    overlay.write_text("dag:\n  event_driven: false\n  schedule: '@hourly'\n")
    monkeypatch.setenv("ORDERS_ETL_CONFIG", str(overlay))
    load_config.cache_clear()
    try:
        config = load_config()
    finally:
        load_config.cache_clear()
    assert (config.dag.event_driven, config.dag.schedule) == (False, "@hourly")


def test_the_default_template_path_is_where_the_chart_mounts_the_template() -> None:
    """Without an overlay the operator reads the template the chart's ConfigMap mounts
    (charts/orders-etl: the chart-config volume, key sparkapplication.yaml)."""
    chart = Path(__file__).resolve().parents[2] / "charts" / "orders-etl" / "templates"
    mounted = (chart / "configmaps" / "configmap-airflow-cfg.yaml").read_text()
    assert f'"template_path" "{parse_config().spark.template_path}"' in mounted
    assert f'"catalog_file" "{parse_config().iceberg.catalog_file}"' in mounted
