"""The Spark job's metrics document (format 2): written by the job, read by the Airflow tasks.

One definition for both sides. The job builds a `JobMetrics`, checks it
(`check_invariants`) and writes `to_json()` next to the batch's staging; the
SparkApplication operator reads it back with `JobMetrics.from_json()`, which refuses a
document of another format or with missing or unknown fields, and hands `to_dict()` to
the load and notify tasks as an XCom. Nothing downstream reads a key with a fallback.

Every count is taken from a different place than the figure it is checked against, so
each invariant can fail:

- per topic, `read` is the number of rows that came out of the staged Parquet objects
  (counted on the parsed frame), `events` / `quarantined` / `tombstones` are counted by
  the parser's verdict, `unclassified` counts rows with any other verdict;
- bronze and the quarantine: `stored_for_batch` is counted in the Iceberg table after the
  write, `rows_in` is what the batch sent;
- silver: `superseded_in_batch` counts the events that lost to a newer one of the same
  key in the batch; after the MERGE every key of the batch is looked up in the table:
  it holds this batch's event (`upserts_applied` / `deletes_applied`), a newer or
  equal-lsn event of another batch (`stale_or_duplicate`), or an older state
  (`missing`: lost, must be 0);
- gold: `rows_stored` is counted in the table for the touched dates after the write.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

FORMAT = 2

#: The verdicts the parser gives a message.
KINDS = ("event", "quarantine", "tombstone")


class MetricsFormatError(ValueError):
    """A metrics document that is not format 2 or does not have exactly its fields."""


class InvariantError(RuntimeError):
    """The job's own counts do not add up: something was lost or duplicated."""


@dataclass(frozen=True)
class TopicCounts:
    table: str
    manifest: str | None
    manifest_rows: int
    objects: int
    read: int
    events: int
    quarantined: int
    tombstones: int
    unclassified: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCounts:
    """An insert-only table (bronze, the quarantine): rows sent, rows of the batch stored."""

    rows_in: int
    stored_for_batch: int


@dataclass(frozen=True)
class SilverCounts:
    events_in: int
    keys_in: int
    superseded_in_batch: int
    merged_this_attempt: int
    upserts_applied: int
    deletes_applied: int
    stale_or_duplicate: int
    missing: int


@dataclass(frozen=True)
class GoldCounts:
    touched_dates: int
    rows_out: int
    rows_stored: int
    committed: bool


@dataclass(frozen=True)
class Totals:
    events_in: int
    bronze: int
    quarantined: int
    tombstones: int


@dataclass(frozen=True)
class TableMaintenance:
    """Compaction and snapshot expiry of one table at the end of a run (when due)."""

    data_files_before: int
    delete_files_before: int
    snapshots_before: int
    data_files_after: int
    delete_files_after: int
    snapshots_after: int
    rewritten_data_files: int
    #: Delete files removed by the compaction (applied, dangling) or rewritten into fewer.
    rewritten_delete_files: int


@dataclass(frozen=True)
class JobMetrics:
    batch_id: str
    catalog: str
    manifests: list[str]
    tables_written: list[str]
    topics: dict[str, TopicCounts]
    #: Qualified table name (``<ns>.orders_raw``) -> counts.
    bronze: dict[str, StoredCounts]
    quarantine_table: str
    quarantine: StoredCounts
    quarantined_by_reason: dict[str, int]
    #: Qualified table name (``<ns>.orders_clean``) -> counts.
    silver: dict[str, SilverCounts]
    gold_table: str
    gold: GoldCounts
    totals: Totals
    #: Every date the batch affects (ISO), whichever attempt computed them.
    touched_dates: list[str]
    #: How many of them came from the record an earlier attempt left (dates before the
    #: batch's first silver commit).
    dates_from_record: int
    started_at: str
    finished_at: str
    duration_seconds: float
    #: Wall time per step of the job (read, bronze, silver, gold, ...), seconds.
    step_seconds: dict[str, float]
    violations: list[str]
    status: str
    format: int = FORMAT
    #: Spark jobs each step ran (Spark's status tracker), beside its wall time.
    step_spark_jobs: dict[str, int] = field(default_factory=dict)
    #: spark.sql.shuffle.partitions the run used (sized to the batch unless configured).
    shuffle_partitions: int | None = None
    #: Qualified table name -> the maintenance done on it this run (tables that were due).
    maintenance: dict[str, TableMaintenance] = field(default_factory=dict)
    #: Maintenance procedures that failed (the batch itself is committed; the next run
    #: tries again).
    maintenance_errors: list[str] = field(default_factory=list)

    # -- views the Airflow tasks use ------------------------------------------------------
    def rows_per_table(self) -> dict[str, int]:
        """Rows each table got from this batch (stored, applied or written)."""
        rows = {name: c.stored_for_batch for name, c in self.bronze.items()}
        rows[self.quarantine_table] = self.quarantine.stored_for_batch
        rows.update({n: c.upserts_applied + c.deletes_applied for n, c in self.silver.items()})
        rows[self.gold_table] = self.gold.rows_out
        return rows

    @property
    def ok(self) -> bool:
        return self.status == "succeeded" and not self.violations

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, body: Any) -> JobMetrics:
        if not isinstance(body, dict):
            raise MetricsFormatError(f"a metrics document is an object, not {type(body).__name__}")
        if body.get("format") != FORMAT:
            raise MetricsFormatError(
                f"metrics format {body.get('format')!r}, expected {FORMAT} (a job image older "
                "or newer than the Airflow image?)"
            )
        return _build(cls, body, "metrics")

    @classmethod
    def from_json(cls, text: str | bytes) -> JobMetrics:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            raise MetricsFormatError(f"the metrics document is not JSON: {error}") from None
        return cls.from_dict(body)


_NESTED: dict[str, type] = {
    "topics": TopicCounts,
    "bronze": StoredCounts,
    "silver": SilverCounts,
    "maintenance": TableMaintenance,
}
_SINGLE: dict[str, type] = {"quarantine": StoredCounts, "gold": GoldCounts, "totals": Totals}
T = TypeVar("T")


def _build(cls: type[T], body: dict[str, Any], where: str) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    required = {
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if unknown := sorted(set(body) - names):
        raise MetricsFormatError(f"{where}: unknown fields {unknown}")
    if missing := sorted(required - set(body)):
        raise MetricsFormatError(f"{where}: missing fields {missing}")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if cls is JobMetrics and name in _NESTED:
            if not isinstance(value, dict):
                raise MetricsFormatError(f"{where}.{name}: an object of entries")
            values[name] = {
                k: _build(_NESTED[name], v, f"{where}.{name}.{k}") for k, v in value.items()
            }
        elif cls is JobMetrics and name in _SINGLE:
            if not isinstance(value, dict):
                raise MetricsFormatError(f"{where}.{name}: an object")
            values[name] = _build(_SINGLE[name], value, f"{where}.{name}")
        else:
            values[name] = value
    return cls(**values)


def check_invariants(m: JobMetrics) -> list[str]:
    """Violations of the documented invariants, each naming its rule (empty: adds up)."""
    problems: list[str] = []
    for topic, t in sorted(m.topics.items()):
        if t.read != t.manifest_rows:
            problems.append(
                f"read == manifest: {topic} read {t.read} rows, its manifest has {t.manifest_rows}"
            )
        if t.unclassified:
            problems.append(
                f"every message classified: {topic} has {t.unclassified} rows that are "
                "neither event, quarantine nor tombstone"
            )
        if t.read != t.events + t.quarantined + t.tombstones + t.unclassified:
            problems.append(
                f"read == events + quarantined + tombstones: {topic} read {t.read} != "
                f"{t.events} + {t.quarantined} + {t.tombstones}"
            )
        if sum(t.quarantined_by_reason.values()) != t.quarantined:
            problems.append(
                f"quarantine reasons add up: {topic} reasons sum to "
                f"{sum(t.quarantined_by_reason.values())}, {t.quarantined} quarantined"
            )
    bronze_by_table = {
        name.rsplit(".", 1)[-1].removesuffix("_raw"): c for name, c in m.bronze.items()
    }
    silver_by_table = {
        name.rsplit(".", 1)[-1].removesuffix("_clean"): c for name, c in m.silver.items()
    }
    for topic, t in sorted(m.topics.items()):
        b = bronze_by_table.get(t.table)
        if b is None:
            problems.append(f"every topic has a bronze table: {topic} ({t.table}) has none")
        elif b.rows_in != t.events:
            problems.append(
                f"bronze gets every event: {t.table}_raw was sent {b.rows_in}, the topic "
                f"has {t.events} events"
            )
        s = silver_by_table.get(t.table)
        if s is not None and s.events_in != t.events:
            problems.append(
                f"silver gets every event: {t.table}_clean saw {s.events_in}, the topic has "
                f"{t.events} events"
            )
    for name, b in sorted(m.bronze.items()):
        if b.stored_for_batch != b.rows_in:
            problems.append(
                f"stored == sent: {name} holds {b.stored_for_batch} rows of this batch, "
                f"{b.rows_in} were sent (offsets already written by another batch?)"
            )
    if m.quarantine.stored_for_batch != m.quarantine.rows_in:
        problems.append(
            f"stored == sent: {m.quarantine_table} holds {m.quarantine.stored_for_batch} rows "
            f"of this batch, {m.quarantine.rows_in} were sent"
        )
    quarantined = sum(t.quarantined for t in m.topics.values())
    if m.quarantine.rows_in != quarantined:
        problems.append(
            f"every quarantined message is kept: {m.quarantine.rows_in} sent to "
            f"{m.quarantine_table}, the topics quarantined {quarantined}"
        )
    for name, s in sorted(m.silver.items()):
        if s.events_in != s.keys_in + s.superseded_in_batch:
            problems.append(
                f"events == keys + superseded: {name} {s.events_in} != {s.keys_in} + "
                f"{s.superseded_in_batch}"
            )
        applied = s.upserts_applied + s.deletes_applied
        if s.keys_in != applied + s.stale_or_duplicate + s.missing:
            problems.append(
                f"keys == applied + stale + missing: {name} {s.keys_in} != {applied} + "
                f"{s.stale_or_duplicate} + {s.missing}"
            )
        if s.missing:
            problems.append(
                f"no key lost: {name} has {s.missing} keys of this batch whose newest state "
                "is not in the table"
            )
    if m.gold.touched_dates != len(m.touched_dates):
        problems.append(
            f"gold recomputes every touched date: {m.gold.touched_dates} recomputed, "
            f"{len(m.touched_dates)} touched"
        )
    if m.gold.rows_stored != m.gold.rows_out:
        problems.append(
            f"gold stored == computed: {m.gold_table} holds {m.gold.rows_stored} rows for the "
            f"touched dates, {m.gold.rows_out} were computed"
        )
    if m.gold.rows_out > len(m.touched_dates):
        problems.append(
            f"one gold row per date: {m.gold.rows_out} rows for {len(m.touched_dates)} dates"
        )
    totals = m.totals
    if totals.events_in != sum(t.read for t in m.topics.values()):
        problems.append("totals.events_in == sum of topics' read")
    if totals.bronze != sum(b.stored_for_batch for b in m.bronze.values()):
        problems.append("totals.bronze == sum of bronze stored")
    if totals.quarantined != m.quarantine.stored_for_batch:
        problems.append("totals.quarantined == quarantine stored")
    if totals.tombstones != sum(t.tombstones for t in m.topics.values()):
        problems.append("totals.tombstones == sum of topics' tombstones")
    if totals.events_in != totals.bronze + totals.quarantined + totals.tombstones:
        problems.append(
            f"in == bronze + quarantined + tombstones: {totals.events_in} != {totals.bronze} "
            f"+ {totals.quarantined} + {totals.tombstones}"
        )
    return problems
