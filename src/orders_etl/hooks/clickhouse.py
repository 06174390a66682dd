"""ClickHouseHook: a clickhouse-connect client from an Airflow connection.

Two shapes of connection, one loader:

* a server over HTTP(S): host, port, login, password, schema (the default database);
  extras `secure` (true: HTTPS), `verify`, `ca_cert`, `connect_timeout`,
  `send_receive_timeout`, `settings` (a dict of ClickHouse settings);
* a DSN in the extra `dsn`, used as-is, e.g. `chdb:///var/lib/chdb` (chdb, ClickHouse's
  engine in process, the local stand-in) or `https://user:pw@host:8443/db`.

    AIRFLOW_CONN_CLICKHOUSE_DEFAULT='{"conn_type": "clickhouse", "extra": {"dsn": "chdb:///data"}}'
    AIRFLOW_CONN_CLICKHOUSE_DEFAULT='{"conn_type": "clickhouse", "host": "ch.example", "port": 8443,
                                      "login": "etl", "password": "...", "extra": {"secure": true}}'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_PASSTHROUGH_EXTRAS = ("verify", "ca_cert", "connect_timeout", "send_receive_timeout")


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"connection extra {name!r} must be a boolean, got {value!r}")


def client_kwargs(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """clickhouse_connect.get_client() keyword arguments for a connection's fields."""
    dsn = extra.get("dsn")
    settings = extra.get("settings")
    if settings is not None and not isinstance(settings, Mapping):
        raise ValueError("connection extra 'settings' must be a mapping of ClickHouse settings")
    kwargs: dict[str, Any] = {}
    if dsn:
        if host:
            raise ValueError(
                "a ClickHouse connection has either a host or an extra 'dsn', not both"
            )
        kwargs["dsn"] = str(dsn)
        if schema:
            kwargs["database"] = schema
    else:
        if not host:
            raise ValueError("a ClickHouse connection needs a host or an extra 'dsn'")
        secure = _as_bool(extra.get("secure", False), "secure")
        kwargs.update(
            host=host,
            interface="https" if secure else "http",
            secure=secure,
            username=login or "default",
            password=password or "",
        )
        if port:
            kwargs["port"] = int(port)
        if schema:
            kwargs["database"] = schema
        for name in _PASSTHROUGH_EXTRAS:
            if name in extra:
                kwargs[name] = extra[name]
        if "verify" in kwargs:
            kwargs["verify"] = _as_bool(kwargs["verify"], "verify")
    if settings:
        kwargs["settings"] = dict(settings)
    return kwargs


class ClickHouseHook(BaseHook):
    """Interact with ClickHouse through clickhouse-connect (HTTP(S) server or chdb DSN).

    :param clickhouse_conn_id: the Airflow connection (conn_type ``clickhouse``).
    """

    conn_name_attr = "clickhouse_conn_id"
    default_conn_name = "clickhouse_default"
    conn_type = "clickhouse"
    hook_name = "ClickHouse"

    def __init__(self, clickhouse_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clickhouse_conn_id = clickhouse_conn_id

    def client_kwargs(self) -> dict[str, Any]:
        conn = self.get_connection(self.clickhouse_conn_id)
        return client_kwargs(
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            extra=conn.extra_dejson,
        )

    def get_client(self) -> Client:
        """A new client; the caller closes it (chdb allows one engine path per process)."""
        import clickhouse_connect

        return clickhouse_connect.get_client(**self.client_kwargs())

    def get_conn(self) -> Client:
        return self.get_client()

    def test_connection(self) -> tuple[bool, str]:
        try:
            client = self.get_client()
            try:
                version = client.command("SELECT version()")
            finally:
                client.close()
        except Exception as error:
            return False, str(error)
        return True, f"connected to ClickHouse {version}"
