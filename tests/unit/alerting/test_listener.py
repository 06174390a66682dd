"""The listener's decisions: tier from the TI state, manual changes skipped, one alert each."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest

from orders_etl.alerting.listener import PAGE, WARNING, Alert, FailureAlertListener, alert_for

pytestmark = pytest.mark.unit


class State(StrEnum):
    RUNNING = "running"
    UP_FOR_RETRY = "up_for_retry"
    FAILED = "failed"


@dataclass
class TI:
    state: State | None
    try_number: int = 1
    max_tries: int = 2
    dag_id: str = "orders_etl"
    task_id: str = "consume"
    run_id: str = "manual__1"
    map_index: int = 0
    log_url: str = "http://airflow.local/log"


def test_retry_is_a_warning_final_failure_a_page() -> None:
    warning = alert_for(State.RUNNING, TI(State.UP_FOR_RETRY), RuntimeError("boom"))
    page = alert_for(State.RUNNING, TI(State.FAILED, try_number=3), "killed")
    assert warning is not None
    assert warning.tier == WARNING
    assert page is not None
    assert page.tier == PAGE
    assert warning.text().startswith(":warning: [WARNING] *orders_etl.consume[0]* failed, will be")
    assert "try 1 of 3" in warning.text()
    assert "RuntimeError: boom" in warning.text()
    assert page.text().startswith(":rotating_light: [PAGE] *orders_etl.consume[0]* failed, no")


def test_manual_state_changes_are_not_alerted() -> None:
    assert alert_for(None, TI(State.FAILED), "manually set") is None


def test_unclassifiable_state_pages() -> None:
    alert = alert_for(State.RUNNING, TI(None), None)
    assert alert is not None
    assert alert.tier == PAGE


def test_exactly_one_alert_per_event_and_delivery_errors_never_raise() -> None:
    sent: list[Alert] = []
    listener = FailureAlertListener(send=sent.append)
    ti = TI(State.UP_FOR_RETRY)
    listener.on_task_instance_failed(State.RUNNING, ti, RuntimeError("x"))
    listener.on_task_instance_failed(State.RUNNING, ti, RuntimeError("x"))
    listener.on_task_instance_failed(State.RUNNING, TI(State.FAILED, try_number=2), "y")
    assert [a.tier for a in sent] == [WARNING, PAGE]

    def broken(alert: Alert) -> None:
        raise ConnectionError("slack down")

    FailureAlertListener(send=broken).on_task_instance_failed(State.RUNNING, ti, None)
