"""Table maintenance at the end of a run, when due: compaction and snapshot expiry.

Every batch adds files and a snapshot to each table it writes: silver (merge-on-read)
gets new data files and position-delete files in every bucket it touches, bronze and
the quarantine a file per day partition, and every commit a snapshot that the table's
metadata carries until it is expired. Left alone, each run plans and reads more small
files than the last (silver is read whole by the MERGE's lookup and by gold), and every
commit rewrites a larger metadata file: a real-time pipeline slows down with its age.

So the job keeps its own tables in shape, with Iceberg's own Spark procedures:
- compaction (`rewrite_data_files`, binpack) of a table holding more than
  `compact_above_files` files it has yet to compact (data files under
  COMPACTED_FILE_BYTES, and delete files): small files are merged, silver's position
  deletes applied, and the delete files left dangling removed (`remove-dangling-deletes`);
  then silver's position-delete files are rewritten whole (`rewrite_position_delete_files`,
  `rewrite-all`): records of data files the compaction replaced are dropped (the rewritten
  files keep the compaction's starting sequence number, so Iceberg cannot call those
  deletes dangling by number alone), the rest compacted into one file per bucket. A data
  file of at least COMPACTED_FILE_BYTES without deletes is left alone and does not count
  towards the threshold, so a grown table is neither rewritten whole every time nor due
  again in every run.
- snapshot expiry (`expire_snapshots`) of a table holding more than `keep_snapshots`
  snapshots whose oldest is past `retention` (+10 %, so it runs now and then, not after
  every commit): snapshots older than the retention go, the newest `keep_snapshots` stay
  whatever their age (the last hours stay available for time travel and rollback).

Each table's procedures commit to that table alone, so the job maintains the tables
that are due side by side (orders_cdc.job.side_by_side), as it writes them.

Why in the job and not in a separate maintenance DAG: these procedures commit, and a
compaction that overlaps a batch's MERGE on the same table makes one of the two commits
fail validation. The job is the tables' only writer and one run at a time reaches it
(spark_transform runs once at a time per DAG), so maintenance after the batch's own
commits never races a batch. A procedure that fails is reported in the metrics
(`maintenance_errors`) and logged; the batch is already committed and whole, and the
next run tries again: maintenance never fails a batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orders_contract.metrics import TableMaintenance

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: A data file at least this large and without deletes is not rewritten by compaction
#: (Iceberg's default, 75 % of the 512 MiB target, would make every file of a small
#: table eligible again at every compaction).
COMPACTED_FILE_BYTES = 32 * 1024 * 1024
#: Expiry runs once the oldest snapshot is this much (of the retention) past it.
EXPIRY_SLACK = 0.1


@dataclass(frozen=True)
class Policy:
    """When maintenance is due (the job's --compact-above-files, --snapshot-retention-hours,
    --keep-snapshots)."""

    compact_above_files: int  # small data files + delete files; 0: never compact
    retention: dt.timedelta
    keep_snapshots: int  # 0: never expire


@dataclass(frozen=True)
class TableState:
    snapshots: int
    expirable: bool  # the oldest snapshot was committed before the cutoff asked for
    data_files: int
    delete_files: int
    #: data files under COMPACTED_FILE_BYTES, and delete files: what compaction would do
    uncompacted_files: int


def _timestamp(instant: dt.datetime) -> str:
    """A Spark TIMESTAMP literal of `instant` with its UTC offset (no session zone)."""
    return f"TIMESTAMP '{instant.astimezone(dt.UTC).isoformat(sep=' ')}'"


def table_states(
    spark: SparkSession, tables: list[str], cutoff: dt.datetime
) -> dict[str, TableState]:
    """Per table: snapshot count, whether the oldest is older than `cutoff`, the newest
    snapshot's file totals and how many of its files compaction has yet to do (data files
    under COMPACTED_FILE_BYTES, and delete files). One query over the tables' `snapshots`
    and `files` metadata tables (UNION ALL), so checking every table costs one Spark job,
    not one per table."""
    if not tables:
        return {}
    branches = [
        # The job's own table names, not input: noqa S608.
        f"SELECT {i} AS t, s.snapshots, s.expirable, s.summary, f.uncompacted FROM "  # noqa: S608
        f"(SELECT count(*) AS snapshots, "
        f"coalesce(min(committed_at) < {_timestamp(cutoff)}, false) AS expirable, "
        f"max_by(summary, committed_at) AS summary FROM {table}.snapshots) s CROSS JOIN "
        f"(SELECT count_if(content <> 0 OR file_size_in_bytes < {COMPACTED_FILE_BYTES}) "
        f"AS uncompacted FROM {table}.files) f"
        for i, table in enumerate(tables)
    ]
    states = {}
    for row in spark.sql(" UNION ALL ".join(branches)).collect():
        summary = row["summary"] or {}
        states[tables[row["t"]]] = TableState(
            snapshots=int(row["snapshots"]),
            expirable=bool(row["expirable"]),
            data_files=int(summary.get("total-data-files", 0)),
            delete_files=int(summary.get("total-delete-files", 0)),
            uncompacted_files=int(row["uncompacted"] or 0),
        )
    return states


def table_state(spark: SparkSession, table: str, cutoff: dt.datetime) -> TableState:
    return table_states(spark, [table], cutoff)[table]


def _procedure(table: str) -> tuple[str, str]:
    catalog, identifier = table.split(".", 1)
    return f"{catalog}.system", identifier


def compact(spark: SparkSession, table: str, merge_on_read: bool) -> dict[str, int]:
    system, identifier = _procedure(table)
    options = (
        "map('min-input-files', '2', 'delete-file-threshold', '1', "
        f"'min-file-size-bytes', '{COMPACTED_FILE_BYTES}', 'remove-dangling-deletes', 'true')"
    )
    row = spark.sql(
        f"CALL {system}.rewrite_data_files(table => '{identifier}', options => {options})"
    ).first()
    out = {
        "rewritten_data_files": int(row["rewritten_data_files_count"]),
        "added_data_files": int(row["added_data_files_count"]),
        "removed_delete_files": int(row["removed_delete_files_count"]),
    }
    if merge_on_read:
        row = spark.sql(
            f"CALL {system}.rewrite_position_delete_files("
            f"table => '{identifier}', options => map('rewrite-all', 'true'))"
        ).first()
        out["rewritten_delete_files"] = int(row["rewritten_delete_files_count"])
    return out


def expire(spark: SparkSession, table: str, policy: Policy, now: dt.datetime) -> None:
    system, identifier = _procedure(table)
    spark.sql(
        f"CALL {system}.expire_snapshots(table => '{identifier}', "
        f"older_than => {_timestamp(now - policy.retention)}, "
        f"retain_last => {policy.keep_snapshots})"
    ).collect()


@dataclass(frozen=True)
class _Outcome:
    """One table's maintenance: what compaction rewrote, or why a procedure failed."""

    rewritten: dict[str, int]
    error: str | None


#: How maintenance runs one piece of work per table: `each(work, tables)` returns
#: `{table: work(table)}` (the job passes its side-by-side runner; the default is one after
#: the other).
Each = Callable[[Callable[[str], _Outcome], list[str]], dict[str, _Outcome]]


def one_after_the_other(work: Callable[[str], _Outcome], tables: list[str]) -> dict[str, _Outcome]:
    return {table: work(table) for table in tables}


def maintain(
    spark: SparkSession,
    tables: list[str],
    merge_on_read: set[str],
    policy: Policy,
    now: dt.datetime | None = None,
    each: Each = one_after_the_other,
) -> tuple[dict[str, TableMaintenance], list[str]]:
    """Compact and expire the tables that are due; returns what was done per table (only
    tables where something was due) and the errors of procedures that failed. Each table's
    procedures commit to that table alone, so `each` may run the tables side by side."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - policy.retention * (1 + EXPIRY_SLACK)
    done: dict[str, TableMaintenance] = {}
    errors: list[str] = []
    if policy.compact_above_files == 0 and policy.keep_snapshots == 0:
        return done, errors
    due: dict[str, tuple[TableState, bool, bool]] = {}
    for table, state in table_states(spark, tables, cutoff).items():
        compact_due = 0 < policy.compact_above_files < state.uncompacted_files
        expiry_due = 0 < policy.keep_snapshots < state.snapshots and state.expirable
        if compact_due or expiry_due:
            due[table] = (state, compact_due, expiry_due)
    if not due:
        return done, errors

    def maintain_one(table: str) -> _Outcome:
        _, compact_due, expiry_due = due[table]
        rewritten: dict[str, int] = {}
        try:
            if compact_due:
                rewritten = compact(spark, table, table in merge_on_read)
            if expiry_due:
                expire(spark, table, policy, now)
        except Exception as error:
            message = f"{table}: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
            log.warning("table maintenance failed (the batch is committed): %s", message)
            return _Outcome(rewritten, message)
        return _Outcome(rewritten, None)

    outcomes = each(maintain_one, list(due))
    errors = [o.error for o in outcomes.values() if o.error is not None]
    after_all = table_states(spark, list(due), cutoff)
    for table, (before, _, _) in due.items():
        after, counts = after_all[table], outcomes[table].rewritten
        done[table] = TableMaintenance(
            data_files_before=before.data_files,
            delete_files_before=before.delete_files,
            snapshots_before=before.snapshots,
            data_files_after=after.data_files,
            delete_files_after=after.delete_files,
            snapshots_after=after.snapshots,
            rewritten_data_files=counts.get("rewritten_data_files", 0),
            rewritten_delete_files=counts.get("removed_delete_files", 0)
            + counts.get("rewritten_delete_files", 0),
        )
    return done, errors
