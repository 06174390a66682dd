"""The DAG's deadline alert, run the way the triggerer runs it: Airflow's CallbackTrigger
imports the callback by the path the DAG serialized, awaits it with the deadline's
context, and the message reaches "Slack" (a local HTTP endpoint) through the connection
the pipeline config names."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.definitions.deadline import DeadlineAlert
from airflow.triggers.callback import CallbackTrigger

from orders_etl.config import load_config
from orders_etl.dag import build_dag

sys.path.insert(0, str(Path(__file__).parents[1]))
from fake_slack import FakeSlack, serve_fake_slack

pytestmark = pytest.mark.integration


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with serve_fake_slack() as fake:
        conn_id = load_config().alerting.slack_connection_id
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", fake.connection_json())
        yield fake


def deadline_alert() -> DeadlineAlert:
    deadline = build_dag().deadline
    alerts = deadline if isinstance(deadline, list) else [deadline]
    assert len(alerts) == 1
    assert isinstance(alerts[0], DeadlineAlert)
    return alerts[0]


def run_callback(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    alert = deadline_alert()
    trigger = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, **kwargs})

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(events(), timeout=60))


def test_a_missed_deadline_posts_one_alert_naming_the_run(slack: FakeSlack) -> None:
    config = load_config()
    context = {
        "dag_run": {"dag_id": config.dag.dag_id, "run_id": "asset_triggered__2026-11-25"},
        "deadline": {"id": "0", "deadline_time": "2026-11-25T07:00:00Z"},
    }
    events = run_callback({"context": context})
    assert [e["state"] for e in events] == ["running", "success"], events
    assert slack.texts() == [events[-1]["body"]]
    text = slack.texts()[0]
    assert "`asset_triggered__2026-11-25`" in text
    assert f"{config.dag.deadline_minutes} min after it was queued" in text


def test_a_run_id_is_sent_as_text_never_rendered_as_a_template(slack: FakeSlack) -> None:
    run_id = "manual__{{ 6 * 7 }}"
    run_callback({"context": {"dag_run": {"run_id": run_id}}})
    assert run_id in slack.texts()[0]
    assert "manual__42" not in slack.texts()[0]


def test_slack_refusing_the_alert_is_a_failed_callback_not_silence(slack: FakeSlack) -> None:
    slack.status = 400
    events = run_callback({"context": {"dag_run": {"run_id": "manual__1"}}})
    assert events[-1]["state"] == "failed"
    assert "400" in events[-1]["body"]
    assert len(slack.posts) == 1
