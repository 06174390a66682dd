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
names (an s3:// URI), with the row count, size and sha256 it names. `read_manifest` and
`check_objects` are the one reader: the consume step (a retry finding its batch staged),
the verify step and the Spark job's driver all check staging through them, and all raise
`StagingError` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from orders_contract.s3uri import s3_uri, split_s3_uri

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1

#: The S3 error codes that mean "no such object" (GetObject, HeadObject).
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class StagingError(RuntimeError):
    """Staging is missing, inconsistent or cannot proceed; the message says which and
    what to do."""


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
        return s3_uri(self.bucket, key)


@dataclass(frozen=True)
class PartitionRange:
    """One Kafka partition's slice of a batch; `object` (an s3:// URI) is None when the
    range is empty."""

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
        if self.object is not None:
            split_s3_uri(self.object)


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

    def objects(self) -> list[PartitionRange]:
        """The partitions that have an object (rows > 0)."""
        return [p for p in self.partitions if p.object is not None]

    def to_json(self) -> str:
        body = asdict(self)
        body["rows"] = self.rows
        return json.dumps(body, sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> Manifest:
        """Parse and check a manifest; StagingError (naming `where`) if it is not one."""
        try:
            body = json.loads(text)
            if body.get("format") != FORMAT_VERSION:
                raise StagingError(f"{where}: unsupported manifest format {body.get('format')!r}")
            partitions = tuple(PartitionRange(**p) for p in body["partitions"])
            manifest = cls(
                body["batch_id"], body["topic"], partitions, body["format"], body.get("extra", {})
            )
        except StagingError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise StagingError(f"{where}: not a staging manifest ({error!r})") from None
        if body.get("rows") != manifest.rows:
            raise StagingError(
                f"{where}: manifest rows {body.get('rows')} != the partitions' {manifest.rows}"
            )
        if len({p.partition for p in partitions}) != len(partitions):
            raise StagingError(f"{where}: a partition is listed twice")
        return manifest


def s3_error_code(error: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError (None for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def read_manifest(s3: Any, uri: str, batch_id: str | None = None) -> Manifest:
    """The manifest at `uri` (an S3 client's GetObject), checked; with `batch_id`, also
    that it is that batch's. A missing manifest is a StagingError; other S3 errors (the
    store unreachable, access denied) propagate as they are, for the task's retries."""
    bucket, key = split_s3_uri(uri)
    try:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except Exception as error:
        if s3_error_code(error) in _MISSING_CODES:
            raise StagingError(f"manifest {uri} does not exist") from None
        raise
    manifest = Manifest.from_json(text, where=uri)
    if batch_id is not None and manifest.batch_id != batch_id:
        raise StagingError(f"{uri}: batch {manifest.batch_id!r}, expected {batch_id!r}")
    return manifest


def check_objects(s3: Any, manifest: Manifest, where: str) -> None:
    """Every object the manifest names exists (HeadObject) with the size it names, and
    with the sha256 it names when the object carries one in its metadata (consume writes
    it). The content's own sha256 is checked where the object is read (the Spark job)."""
    for part in manifest.objects():
        assert part.object is not None
        bucket, key = split_s3_uri(part.object)
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except Exception as error:
            if s3_error_code(error) in _MISSING_CODES:
                raise StagingError(
                    f"{part.object}, named by {where}, is missing: the staging area was "
                    "modified outside the pipeline"
                ) from None
            raise
        if head["ContentLength"] != part.bytes:
            raise StagingError(
                f"{part.object} is {head['ContentLength']} bytes, {where} says {part.bytes}"
            )
        stored = head.get("Metadata", {}).get("sha256")
        if stored is not None and stored != part.sha256:
            raise StagingError(f"{part.object}: sha256 {stored} != {where}'s {part.sha256}")
