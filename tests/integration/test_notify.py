"""The run summary reaches "Slack" (a local HTTP endpoint) through the provider's notifier."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orders_etl.notify import RunFigures, build_message, notify_run, send_message

sys.path.insert(0, str(Path(__file__).parent))
from fake_slack import FakeSlack, serve_fake_slack

pytestmark = pytest.mark.integration


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serve_fake_slack() as fake:
        yield fake


def test_summary_posted_through_the_configured_connection(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # config.alerting.slack_connection_id, resolved by the env-var secrets backend.
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_WEBHOOK_DEFAULT", slack.connection_json())
    figures = RunFigures(
        dag_id="orders_etl",
        run_id="manual__1",
        events_per_topic={"orders.public.orders": 5},
        rows_per_table={"gold.daily_revenue": 2},
        quarantined=1,
        clickhouse_rows=2,
        touched_dates=["2026-11-01", "2026-11-02"],
    )
    text = notify_run(figures)
    assert slack.posts == [{"text": text}]
    assert text == build_message(figures)


def test_a_refused_post_raises(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    slack.status = 400
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_NOTIFY_TEST", slack.connection_json())
    with pytest.raises(Exception, match="Status Code: 400"):
        send_message("hello", slack_conn_id="slack_notify_test")
    assert len(slack.posts) == 1
