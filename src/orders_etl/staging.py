"""The staging format: what the consume step writes to S3 and the Spark job reads.

One batch (one DAG run) stages every CDC topic it consumed:

    s3://<bucket>/<prefix>/batch=<batch_id>/topic=<topic>/partition=<p:04d>/
        offsets=<start:020d>-<end:020d>.parquet      one object per Kafka partition
    s3://<bucket>/<prefix>/batch=<batch_id>/topic=<topic>/_manifest.json

The Parquet objects hold the messages exactly as Kafka delivered them (columns in
`parquet_schema()`): the consume step moves bytes and never parses them, so a malformed
message reaches the Spark job, which quarantines it with a reason. `value` is null for a
tombstone. Offsets are [start, end): `end` is the high watermark taken at task start.

The manifest (`Manifest.to_json`) is written last, after every object is in place, and
is what makes a batch visible: a reader that finds a manifest finds every object it
names, with the row count and sha256 it names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1


@cache
def parquet_schema() -> pa.Schema:
    """The staged objects' columns. pyarrow is imported here, not with the module: the
    DAG imports this module for `StagingLocation`, and every parse would pay for it."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("topic", pa.string(), nullable=False),
            pa.field("partition", pa.int32(), nullable=False),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("kafka_timestamp_ms", pa.int64()),
            pa.field("key", pa.binary()),
            pa.field("value", pa.binary()),
        ]
    )


_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def batch_id_for_run(dag_id: str, run_id: str) -> str:
    """The batch id of an Airflow run: deterministic (a retry or a cleared rerun of the run
    gets the same id, so the same claim and offsets), path-safe, and distinct for distinct
    (dag_id, run_id) pairs: the readable part is cleaned and may collide ("a:b" and "a_b"),
    the 16-hex-digit digest of the exact pair does not."""
    if not dag_id or not run_id:
        raise ValueError("a batch id needs both a dag id and a run id")
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dag_id}.{run_id}").strip("_.-")
    digest = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:16]
    batch_id = f"{readable[:100].rstrip('_.-')}-{digest}" if readable else digest
    if not _BATCH_ID.match(batch_id):
        raise ValueError(f"cannot derive a batch id from run {dag_id}/{run_id!r}")
    return batch_id


@dataclass(frozen=True)
class StagingLocation:
    bucket: str
    prefix: str = "cdc"

    def batch_prefix(self, batch_id: str) -> str:
        if not _BATCH_ID.match(batch_id):
            raise ValueError(f"invalid batch id {batch_id!r}")
        return f"{self.prefix}/batch={batch_id}"

    def topic_prefix(self, batch_id: str, topic: str) -> str:
        return f"{self.batch_prefix(batch_id)}/topic={topic}"

    def object_key(self, batch_id: str, topic: str, partition: int, start: int, end: int) -> str:
        return (
            f"{self.topic_prefix(batch_id, topic)}/partition={partition:04d}/"
            f"offsets={start:020d}-{end:020d}.parquet"
        )

    def manifest_key(self, batch_id: str, topic: str) -> str:
        return f"{self.topic_prefix(batch_id, topic)}/_manifest.json"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class PartitionRange:
    """One Kafka partition's slice of a batch; `object` is None when the range is empty."""

    partition: int
    start_offset: int
    end_offset: int
    rows: int
    object: str | None
    sha256: str | None
    bytes: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_offset <= self.end_offset:
            raise ValueError(f"bad offset range {self.start_offset}..{self.end_offset}")
        if (self.rows == 0) != (self.object is None):
            raise ValueError("an object exists exactly when the range has rows")


@dataclass(frozen=True)
class Manifest:
    batch_id: str
    topic: str
    partitions: tuple[PartitionRange, ...]
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    def end_offsets(self) -> dict[int, int]:
        return {p.partition: p.end_offset for p in self.partitions}

    def to_json(self) -> str:
        body = asdict(self)
        body["rows"] = self.rows
        return json.dumps(body, sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        if body.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported manifest format {body.get('format')!r}")
        partitions = tuple(PartitionRange(**p) for p in body["partitions"])
        manifest = cls(
            body["batch_id"], body["topic"], partitions, body["format"], body.get("extra", {})
        )
        if body.get("rows") != manifest.rows:
            raise ValueError(f"manifest rows {body.get('rows')} != sum of partitions")
        return manifest
