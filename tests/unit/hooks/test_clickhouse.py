"""ClickHouseHook: connection fields -> clickhouse-connect arguments (no server)."""

from __future__ import annotations

import json

import pytest

from orders_etl.hooks.clickhouse import ClickHouseHook, client_kwargs

pytestmark = pytest.mark.unit


def test_server_over_https() -> None:
    assert client_kwargs(
        host="ch.internal",
        port=8443,
        login="etl",
        password="s3cret",
        schema="dashboards",
        extra={"secure": "true", "verify": "false", "connect_timeout": 5},
    ) == {
        "host": "ch.internal",
        "interface": "https",
        "secure": True,
        "username": "etl",
        "password": "s3cret",
        "port": 8443,
        "database": "dashboards",
        "verify": False,
        "connect_timeout": 5,
    }


def test_server_over_http_defaults() -> None:
    kwargs = client_kwargs(
        host="localhost", port=None, login=None, password=None, schema=None, extra={}
    )
    assert kwargs == {
        "host": "localhost",
        "interface": "http",
        "secure": False,
        "username": "default",
        "password": "",
    }


def test_dsn_is_used_as_is() -> None:
    assert client_kwargs(
        host=None, port=None, login=None, password=None, schema=None, extra={"dsn": "chdb:///d"}
    ) == {"dsn": "chdb:///d"}


@pytest.mark.parametrize(
    ("host", "extra", "message"),
    [
        (None, {}, "needs a host"),
        ("h", {"dsn": "chdb:///d"}, "not both"),
        ("h", {"secure": "maybe"}, "must be a boolean"),
        ("h", {"settings": "x"}, "must be a mapping"),
    ],
)
def test_bad_connections_fail_clearly(
    host: str | None, extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        client_kwargs(host=host, port=None, login=None, password=None, schema=None, extra=extra)


def test_hook_reads_the_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "clickhouse", "schema": "dashboards", "extra": {"dsn": "chdb:///x"}}
    monkeypatch.setenv("AIRFLOW_CONN_CH_UNIT", json.dumps(conn))
    hook = ClickHouseHook("ch_unit")
    assert hook.client_kwargs() == {"dsn": "chdb:///x", "database": "dashboards"}
    assert (ClickHouseHook.conn_type, ClickHouseHook.default_conn_name) == (
        "clickhouse",
        "clickhouse_default",
    )


def test_the_clickhouse_connection_type_is_registered_with_airflow() -> None:
    """Through the package's provider info (orders_etl.provider), as a provider's hooks
    are: the UI's form gets the type and its field labels (the API server's providers
    manager), task code resolves the hook by connection type (the task runtime's)."""
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    behaviour = ProvidersManager().field_behaviours["clickhouse"]
    assert behaviour["relabeling"] == {"schema": "Database"}
    assert "extra.dsn" in behaviour["placeholders"]["host"]
    hook = ProvidersManagerTaskRuntime().hooks["clickhouse"]
    assert hook is not None
    assert hook.hook_class_name == "orders_etl.hooks.clickhouse.ClickHouseHook"
    assert hook.connection_id_attribute_name == "clickhouse_conn_id"
