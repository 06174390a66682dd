"""The run summary reaches "Slack" (a local HTTP endpoint) through the provider's notifier."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from orders_etl.notify import RunFigures, build_message, notify_run, send_message

pytestmark = pytest.mark.integration


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict[str, Any]], list[int]]]:
    posts: list[dict[str, Any]] = []
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status[0])
            self.end_headers()
            self.wfile.write(b"ok" if status[0] == 200 else b"invalid_payload")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/x", posts, status
    server.shutdown()
    server.server_close()


def test_summary_posted_through_the_configured_connection(
    slack: tuple[str, list[dict[str, Any]], list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, posts, _ = slack
    # config.alerting.slack_connection_id, resolved by the env-var secrets backend.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_WEBHOOK_DEFAULT",
        json.dumps({"conn_type": "slackwebhook", "password": url}),
    )
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
    assert posts == [{"text": text}]
    assert text == build_message(figures)


def test_a_refused_post_raises(
    slack: tuple[str, list[dict[str, Any]], list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, posts, status = slack
    status[0] = 400
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_NOTIFY_TEST", json.dumps({"conn_type": "slackwebhook", "password": url})
    )
    with pytest.raises(Exception, match="Status Code: 400"):
        send_message("hello", slack_conn_id="slack_notify_test")
    assert len(posts) == 1
