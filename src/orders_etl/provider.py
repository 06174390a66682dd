"""The package's provider info, read by Airflow's providers manager (entry point
`apache_airflow_provider` in pyproject.toml), the way a provider package declares itself:

- `connection-types`: the `clickhouse` connection type with ClickHouseHook, so the UI's
  connection form offers it with the hook's field labels and placeholders and
  `airflow connections test` uses the hook's test_connection;
- `asset-uris`: the iceberg:// and clickhouse:// schemes' normalizer and OpenLineage
  converter (orders_etl.lineage).

Strings only: the providers manager imports what it names when it needs it.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "orders-etl",
        "name": "Orders ETL",
        "description": (
            "The orders ETL pipeline's asset URI schemes (iceberg, clickhouse) and its "
            "ClickHouse connection type."
        ),
        # The UI's connection form lists `clickhouse` with these labels and placeholders
        # (declared, as providers do since Airflow 3.2, not read from the hook), and
        # `airflow connections test` finds ClickHouseHook's test_connection.
        "connection-types": [
            {
                "hook-class-name": "orders_etl.hooks.clickhouse.ClickHouseHook",
                "hook-name": "ClickHouse",
                "connection-type": "clickhouse",
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {"schema": "Database"},
                    "placeholders": {
                        "host": "clickhouse.example.internal (or leave empty and set extra.dsn)",
                        "port": "8123 (HTTP) / 8443 (HTTPS)",
                        "extra": '{"secure": true} or {"dsn": "chdb:///path/to/data"}',
                    },
                },
            }
        ],
        "asset-uris": [
            {
                "schemes": ["iceberg", "clickhouse"],
                "handler": "orders_etl.lineage.sanitize_uri",
                "to_openlineage_converter": "orders_etl.lineage.to_openlineage",
            },
        ],
    }
