"""The DAG's deadline alert: a run still unfinished `deadline_minutes` after it was queued.

Airflow queues the DAG's `AsyncCallback` when the deadline passes and the triggerer awaits
it with the deadline's context (`dag_run` and `deadline`). The callback is this module's
coroutine function rather than the Slack provider's notifier class: the DAG names it by
its import path, and the provider (slack_sdk, aiohttp: about 0.1 s) is imported only when
a deadline is actually missed, not in every parse of the DAG file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deadline_text(dag_id: str, deadline_minutes: int, run_id: str | None) -> str:
    run = f" `{run_id}`" if run_id else ""
    return (
        f":hourglass: {dag_id}: run{run} has not finished "
        f"{deadline_minutes} min after it was queued"
    )


async def post_deadline_missed(
    *,
    slack_webhook_conn_id: str,
    dag_id: str,
    deadline_minutes: int,
    context: Mapping[str, Any] | None = None,
) -> str:
    """Post the alert through the Slack webhook connection; returns the text sent.

    The message is sent as is (`async_notify`), not rendered as a Jinja template: a run id
    is chosen by whoever triggers the run and must not be evaluated.
    """
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    dag_run = (context or {}).get("dag_run") or {}
    text = deadline_text(dag_id, deadline_minutes, dag_run.get("run_id"))
    notifier = SlackWebhookNotifier(slack_webhook_conn_id=slack_webhook_conn_id, text=text)
    await notifier.async_notify(dict(context or {}))
    return text
