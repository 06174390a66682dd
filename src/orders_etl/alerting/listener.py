"""Tiered failure alerts from Airflow's listener API: retry = warning, final failure = page;
a failed run's pending deadlines pruned.

Where Airflow 3.3 calls `on_task_instance_failed` (read from the installed source):

* the task runner (task-sdk, `execution_time.task_runner.finalize`) in the worker's task
  process, after the task raised: state UP_FOR_RETRY when the server said the try may be
  retried, else FAILED; the TI is a RuntimeTaskInstance whose `.state` is already set;
* the scheduler (`TaskInstance.handle_failure`, from `process_executor_events`) when the
  executor reports a task finished as failed while its TI is still queued/running: the
  task process died (OOM kill, pod evicted, heartbeat timeout) and never got to finalize;
  `.state` is set to UP_FOR_RETRY or FAILED first. The two paths are exclusive for a try;
* the API server when a user marks a TI failed by hand (previous_state is None).

A failed run's pending deadlines are pruned when the run fails (`on_dag_run_failed`, in
the scheduler, in the session that marks the run failed): its failure has been paged
already, so a "deadline missed" later would be a second page for the same run, and
Airflow 3.3 cannot clear a failed run that still has one. Clearing recalculates
DAGRUN_QUEUED_AT deadlines with `timedelta(seconds=<the interval column>)`, but since
3.3.0 that column holds the serialised timedelta (a dict): TypeError, HTTP 500
(apache/airflow#70368, fix proposed in #70370). Pruning uses Airflow's own
`Deadline.prune_deadlines`, the call a successful run makes; a cleared run then has no
deadline alert until Airflow recalculates them correctly (its failures still page).

So the listener is a plugin loaded by workers and the scheduler alike (the
`airflow.plugins` entry point makes every component load it). It decides the tier from
the TI's state, skips manual state changes (a person did it: no page for them), sends
one message per (TI try, tier) through the Slack webhook connection, and never raises:
an alerting failure is logged, it must not fail the task or stall the scheduler loop.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

WARNING = "warning"
PAGE = "page"
_UP_FOR_RETRY = "up_for_retry"
_FAILED = "failed"
_ERROR_CHARS = 1500
_REMEMBERED = 4096
#: Seconds the webhook POST may take (it runs in the task process or the scheduler loop).
SEND_TIMEOUT = 10


@dataclass(frozen=True)
class Alert:
    tier: str
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    max_tries: int | None
    error: str
    log_url: str | None = None

    @property
    def key(self) -> tuple[str, str, str, int, int, str]:
        return (self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number, self.tier)

    def text(self) -> str:
        """Slack mrkdwn; the tier is the first word so routing rules can match it."""
        icon = ":rotating_light:" if self.tier == PAGE else ":warning:"
        what = "failed, no retries left" if self.tier == PAGE else "failed, will be retried"
        tries = f"try {self.try_number}" + (
            f" of {self.max_tries + 1}" if self.max_tries is not None else ""
        )
        task = _escape(self.task_id) + (f"[{self.map_index}]" if self.map_index >= 0 else "")
        lines = [
            f"{icon} [{self.tier.upper()}] *{_escape(self.dag_id)}.{task}* {what} ({tries})",
            f"run `{_escape(self.run_id)}`",
        ]
        if self.error:
            lines.append(f"```{_escape(self.error)}```")
        if self.log_url:
            lines.append(f"<{self.log_url}|log>")
        return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _state_name(state: Any) -> str | None:
    if state is None:
        return None
    return str(getattr(state, "value", state)).lower()


def alert_for(previous_state: Any, task_instance: Any, error: Any) -> Alert | None:
    """The alert for a failure event, or None when it is not one to alert on."""
    if previous_state is None:
        # The API server reports a TI marked failed by a person (previous_state=None).
        return None
    state = _state_name(getattr(task_instance, "state", None))
    if state == _UP_FOR_RETRY:
        tier = WARNING
    elif state == _FAILED:
        tier = PAGE
    else:
        # Not expected from either caller; a failure we cannot classify pages (fail safe).
        log.warning("failure event with TI state %r: alerting as a page", state)
        tier = PAGE
    error_text = (
        ""
        if error is None
        else f"{type(error).__name__}: {error}"
        if isinstance(error, BaseException)
        else str(error)
    )
    if len(error_text) > _ERROR_CHARS:
        error_text = error_text[:_ERROR_CHARS] + " ..."
    try:
        log_url: str | None = task_instance.log_url
    except Exception:
        log_url = None
    map_index = getattr(task_instance, "map_index", -1)
    max_tries = getattr(task_instance, "max_tries", None)
    return Alert(
        tier=tier,
        dag_id=str(task_instance.dag_id),
        task_id=str(task_instance.task_id),
        run_id=str(task_instance.run_id),
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(getattr(task_instance, "try_number", 0) or 0),
        max_tries=None if max_tries is None else int(max_tries),
        error=error_text,
        log_url=log_url,
    )


def send_to_slack(alert: Alert) -> None:
    """Deliver through the Slack webhook connection (config.alerting.slack_connection_id)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    from orders_etl.config import load_config

    hook = SlackWebhookHook(
        slack_webhook_conn_id=load_config().alerting.slack_connection_id, timeout=SEND_TIMEOUT
    )
    hook.send(text=alert.text())


class FailureAlertListener:
    """The listener object registered by the plugin; `send` is injectable for tests."""

    def __init__(self, send: Callable[[Alert], None] = send_to_slack) -> None:
        self._send = send
        self._sent: OrderedDict[tuple[str, str, str, int, int, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def _first_time(self, key: tuple[str, str, str, int, int, str]) -> bool:
        with self._lock:
            if key in self._sent:
                return False
            self._sent[key] = None
            while len(self._sent) > _REMEMBERED:
                self._sent.popitem(last=False)
            return True

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        try:
            alert = alert_for(previous_state, task_instance, error)
            if alert is None or not self._first_time(alert.key):
                return
            self._send(alert)
            log.info(
                "sent %s alert for %s.%s try %d",
                alert.tier,
                alert.dag_id,
                alert.task_id,
                alert.try_number,
            )
        except Exception:
            log.exception("could not send the failure alert")

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        try:
            pruned = prune_pending_deadlines(dag_run)
            if pruned:
                log.info(
                    "pruned %d pending deadline(s) of failed run %s.%s (its failure is paged)",
                    pruned,
                    dag_run.dag_id,
                    dag_run.run_id,
                )
        except Exception:
            log.exception("could not prune the deadlines of a failed run")


def prune_pending_deadlines(dag_run: Any) -> int:
    """Delete the not-yet-missed deadlines of a finished run (Airflow's own call for it),
    in the session that holds the run, so it commits with the run's new state."""
    from airflow.models.dagrun import DagRun
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        return int(Deadline.prune_deadlines(session=session, conditions={DagRun.id: dag_run.id}))
    with create_session() as own:
        return int(Deadline.prune_deadlines(session=own, conditions={DagRun.id: dag_run.id}))


#: The instance Airflow's listener manager calls (see orders_etl.alerting.plugin).
failure_alert_listener = FailureAlertListener()
