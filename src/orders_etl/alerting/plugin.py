"""The Airflow plugin that registers the failure-alert listener.

Registered through the `airflow.plugins` entry point in pyproject.toml, so every
component that has the package installed (workers' task processes and the scheduler,
which are where failures are reported) loads it without a plugins folder.
"""

from __future__ import annotations

from types import ModuleType

from airflow.sdk.plugins_manager import AirflowPlugin

from orders_etl.alerting.listener import failure_alert_listener


class OrdersEtlAlertingPlugin(AirflowPlugin):
    name = "orders_etl_alerting"
    # Same declaration as the base class (a class-level list is how plugins declare it).
    listeners: list[ModuleType | object] = [failure_alert_listener]  # noqa: RUF012
