"""The run summary posted to Slack: built from the run's real figures, sent by the provider.

    figures = RunFigures(dag_id=..., run_id=..., events_per_topic=..., rows_per_table=...,
                         quarantined=..., clickhouse_rows=..., touched_dates=...)
    text = build_message(figures)        # pure: no Airflow, no network
    send_message(text)                   # SlackWebhookNotifier, connection from config

The connection (config.alerting.slack_connection_id) is resolved through Airflow's
secrets backend (Kubernetes Secret, Vault, AIRFLOW_CONN_* ...), never stored here. Every
number comes from the tasks' results; a figure that is unknown is left out, not invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orders_contract.metrics import JobMetrics

#: Touched dates listed one by one up to this many; beyond, first .. last (count).
MAX_LISTED_DATES = 10


@dataclass(frozen=True)
class RunFigures:
    """What one run did, as measured by its tasks."""

    dag_id: str
    run_id: str
    #: Kafka messages staged per topic (consume manifests).
    events_per_topic: Mapping[str, int]
    #: Rows written per Iceberg table (the Spark job's metrics), e.g. "silver.orders_clean".
    rows_per_table: Mapping[str, int]
    #: Malformed messages quarantined (with a reason) instead of loaded.
    quarantined: int
    #: Rows written into the dashboard table; None when the load did not run.
    clickhouse_rows: int | None
    touched_dates: Sequence[str] = ()
    clickhouse_table: str | None = None
    partitions_replaced: int | None = None
    partitions_dropped: int | None = None
    tombstones: int | None = None
    duration_seconds: float | None = None
    extra: Mapping[str, int | str] = field(default_factory=dict)


def _escape(text: object) -> str:
    """Slack mrkdwn control characters (&, <, >) escaped, as Slack documents."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{_escape(name)} {counts[name]:,}" for name in sorted(counts))


def _dates(dates: Sequence[str]) -> str:
    ordered = sorted(dict.fromkeys(dates))
    if not ordered:
        return "none"
    if len(ordered) <= MAX_LISTED_DATES:
        return f"{len(ordered)} ({', '.join(_escape(d) for d in ordered)})"
    return f"{len(ordered)} ({_escape(ordered[0])} .. {_escape(ordered[-1])})"


def maintenance_lines(job: JobMetrics) -> dict[str, str]:
    """The run's table maintenance for the summary (`RunFigures.extra`): what was compacted
    or expired, and what failed (the batch is committed either way)."""
    lines: dict[str, str] = {}
    done = []
    for name, m in sorted(job.maintenance.items()):
        files = m.data_files_before + m.delete_files_before
        after = m.data_files_after + m.delete_files_after
        done.append(
            f"{name} {files:,} to {after:,} files, "
            f"{m.snapshots_before:,} to {m.snapshots_after:,} snapshots"
        )
    if done:
        lines["Table maintenance"] = "; ".join(done)
    if job.maintenance_errors:
        lines["Table maintenance failed (the next run tries again)"] = "; ".join(
            job.maintenance_errors
        )
    return lines


def build_message(figures: RunFigures) -> str:
    """The Slack text for a finished run (mrkdwn); pure."""
    total_events = sum(figures.events_per_topic.values())
    header = f"*{_escape(figures.dag_id)}* run `{_escape(figures.run_id)}`"
    if total_events == 0 and not figures.rows_per_table:
        return f":zzz: {header}: nothing to do, no new events on {_counts_or_none(figures)}"
    lines = [f":white_check_mark: {header} finished"]
    lines.append(f"• Kafka events: {total_events:,} ({_counts(figures.events_per_topic)})")
    if figures.tombstones is not None:
        lines.append(f"• Tombstones skipped: {figures.tombstones:,}")
    if figures.rows_per_table:
        lines.append(f"• Iceberg rows: {_counts(figures.rows_per_table)}")
    lines.append(f"• Quarantined: {figures.quarantined:,}")
    table = _escape(figures.clickhouse_table or "ClickHouse")
    if figures.clickhouse_rows is None:
        lines.append(f"• {table}: not loaded")
    else:
        load = f"• {table}: {figures.clickhouse_rows:,} rows written"
        if figures.partitions_replaced is not None:
            load += f", {figures.partitions_replaced:,} partitions replaced"
        if figures.partitions_dropped is not None:
            load += f", {figures.partitions_dropped:,} dropped"
        lines.append(load)
    lines.append(f"• Touched dates: {_dates(figures.touched_dates)}")
    for name in sorted(figures.extra):
        lines.append(f"• {_escape(name)}: {_escape(figures.extra[name])}")
    if figures.duration_seconds is not None:
        lines.append(f"• Duration: {figures.duration_seconds:,.1f} s")
    return "\n".join(lines)


def _counts_or_none(figures: RunFigures) -> str:
    topics = sorted(figures.events_per_topic)
    return ", ".join(_escape(t) for t in topics) if topics else "any topic"


def send_message(text: str, *, slack_conn_id: str | None = None, timeout: int = 30) -> None:
    """Post `text` with the Slack provider's webhook notifier; raises if Slack refuses it."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    if slack_conn_id is None:
        from orders_etl.config import load_config

        slack_conn_id = load_config().alerting.slack_connection_id
    notifier = SlackWebhookNotifier(slack_webhook_conn_id=slack_conn_id, text=text, timeout=timeout)
    notifier.notify({})


def notify_run(figures: RunFigures, *, slack_conn_id: str | None = None) -> str:
    """Build and send the run summary; returns the text sent."""
    text = build_message(figures)
    send_message(text, slack_conn_id=slack_conn_id)
    return text


def dashboard_gap(job: JobMetrics, loaded: Mapping[str, int]) -> str | None:
    """Why the dashboard did not get this batch, or None when it did.

    An order that changed (an upsert or a delete applied to silver) always has a date:
    its created_at after the change, or before it. A batch that changed orders but
    touched no date, or a load that covered fewer dates than the batch touched, left the
    dashboard behind gold: the run must not end green."""
    orders = next((c for n, c in job.silver.items() if n.endswith(".orders_clean")), None)
    changed = 0 if orders is None else orders.upserts_applied + orders.deletes_applied
    if changed and not job.touched_dates:
        return (
            f"batch {job.batch_id} changed {changed} orders but touched no date: the "
            "dashboard was not updated"
        )
    covered = int(loaded.get("dates_touched", 0))
    if covered < len(job.touched_dates):
        return (
            f"batch {job.batch_id} touched {len(job.touched_dates)} dates but the dashboard "
            f"load covered {covered}"
        )
    return None
