"""Read one batch's staging (orders_contract.staging, format 1) and parse it on executors.

Why this shape: the Spark image has Iceberg's S3FileIO but no Hadoop S3A, so Spark's own
file sources cannot read s3:// staging. The driver reads only the small manifests (boto3)
and checks that every object they name exists with the named size. The objects themselves
are read where Spark runs tasks: a DataFrame of object descriptors, one per task, is
mapped (mapInArrow) by `read_and_parse`, which fetches the Parquet object with boto3,
verifies its sha256, row count, topic, partition and offset range, and parses every
message (orders_cdc.parse). Nothing funnels the batch's bytes through the driver, and the
same code runs in local[*] and on Kubernetes executors. A corrupt or incomplete staging
object fails the task (and so the job): that is a pipeline fault, not a bad message.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orders_cdc.parse import parse_message
from orders_cdc.schemas import EVENT_COLUMNS, ROW_FIELDS, parsed_row_columns
from orders_contract.s3uri import split_s3_uri
from orders_contract.staging import StagingError, check_objects, read_manifest
from orders_contract.topics import UnknownTopicError, table_for_topic


@dataclass(frozen=True)
class S3Options:
    """How to reach S3; taken from the Iceberg catalog's own properties in the Spark conf.

    The staging bucket lives on the same object store as the warehouse, so the job reuses
    `spark.sql.catalog.<name>.s3.*` / `client.region` and falls back to boto3's default
    chain (AWS_* environment, IRSA) for anything not set.
    """

    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def from_catalog_conf(cls, conf: dict[str, str], catalog: str) -> S3Options:
        prefix = f"spark.sql.catalog.{catalog}."

        def get(key: str) -> str | None:
            return conf.get(prefix + key) or None

        return cls(
            endpoint=get("s3.endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3"),
            region=get("client.region") or os.environ.get("AWS_REGION"),
            path_style=(get("s3.path-style-access") or "false").lower() == "true",
            access_key_id=get("s3.access-key-id"),
            secret_access_key=get("s3.secret-access-key"),
        )

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "config": Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            )
        }
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        if self.region:
            kwargs["region_name"] = self.region
        if self.access_key_id and self.secret_access_key:
            kwargs["aws_access_key_id"] = self.access_key_id
            kwargs["aws_secret_access_key"] = self.secret_access_key
        return boto3.client("s3", **kwargs)


@dataclass(frozen=True)
class StagedObject:
    """One Parquet object named by a manifest: a Kafka partition's offset range."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int
    rows: int
    bucket: str
    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class StagedTopic:
    topic: str
    table: str
    rows: int
    objects: tuple[StagedObject, ...]
    manifest_uri: str


def read_manifests(s3: Any, uris: list[str], batch_id: str) -> list[StagedTopic]:
    """Load and check every manifest (orders_contract.staging's reader: format, batch,
    counts, each named object present with its size); map each topic to its table."""
    topics: dict[str, StagedTopic] = {}
    for uri in uris:
        manifest = read_manifest(s3, uri, batch_id)
        try:
            table = table_for_topic(manifest.topic)
        except UnknownTopicError as error:
            raise StagingError(f"{uri}: {error}") from None
        if table in topics:
            raise StagingError(
                f"{uri}: table {table} staged twice in batch {batch_id} "
                f"({topics[table].topic} and {manifest.topic})"
            )
        check_objects(s3, manifest, uri)
        objects = []
        for part in manifest.objects():
            assert part.object is not None
            assert part.sha256 is not None
            bucket, key = split_s3_uri(part.object)
            objects.append(
                StagedObject(
                    topic=manifest.topic,
                    partition=part.partition,
                    start_offset=part.start_offset,
                    end_offset=part.end_offset,
                    rows=part.rows,
                    bucket=bucket,
                    key=key,
                    sha256=part.sha256,
                    size=part.bytes,
                )
            )
        topics[table] = StagedTopic(manifest.topic, table, manifest.rows, tuple(objects), uri)
    return list(topics.values())


OBJECT_DDL = (
    "topic string, `partition` int, start_offset long, end_offset long, rows long, "
    "bucket string, key string, sha256 string, size long"
)


def parsed_arrow_schema(table: str) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "binary": pa.binary()}
    cols = EVENT_COLUMNS + parsed_row_columns(table)
    return pa.schema([pa.field(name, types[kind]) for name, kind in cols])


def read_and_parse(table: str, s3_options: S3Options) -> Any:
    """The mapInArrow function: object descriptors in, parsed messages out."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        schema = parsed_arrow_schema(table)
        client = None
        for batch in batches:
            for spec in batch.to_pylist():
                client = client or s3_options.client()
                columns = _parse_object(client, table, spec)
                yield pa.RecordBatch.from_pydict(columns, schema=schema)

    return run


def _parse_object(client: Any, table: str, spec: dict[str, Any]) -> dict[str, list[Any]]:
    import pyarrow.parquet as pq

    where = f"s3://{spec['bucket']}/{spec['key']}"
    data = client.get_object(Bucket=spec["bucket"], Key=spec["key"])["Body"].read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec["sha256"]:
        raise StagingError(f"{where}: sha256 {digest} != manifest {spec['sha256']}")
    messages = pq.read_table(io.BytesIO(data)).to_pylist()
    if len(messages) != spec["rows"]:
        raise StagingError(f"{where}: {len(messages)} rows, manifest says {spec['rows']}")
    seen: set[int] = set()
    names = [n for n, _ in EVENT_COLUMNS] + [n for n, _ in parsed_row_columns(table)]
    out: dict[str, list[Any]] = {name: [] for name in names}
    fields = [f.name for f in ROW_FIELDS[table]]
    for msg in messages:
        offset = msg["offset"]
        if msg["topic"] != spec["topic"] or msg["partition"] != spec["partition"]:
            raise StagingError(f"{where}: a row of {msg['topic']}/{msg['partition']}")
        if not spec["start_offset"] <= offset < spec["end_offset"] or offset in seen:
            raise StagingError(f"{where}: offset {offset} outside range or repeated")
        seen.add(offset)
        parsed = parse_message(table, msg["value"])
        key = msg["key"]
        out["topic"].append(msg["topic"])
        out["partition"].append(msg["partition"])
        out["offset"].append(offset)
        out["kafka_timestamp_ms"].append(msg["kafka_timestamp_ms"])
        out["key"].append(None if key is None else key.decode("utf-8", errors="replace"))
        out["value"].append(msg["value"])
        out["kind"].append(parsed.kind)
        out["reason"].append(parsed.reason)
        out["detail"].append(parsed.detail)
        out["op"].append(parsed.op)
        out["lsn"].append(parsed.lsn)
        out["tx_id"].append(parsed.tx_id)
        out["source_ts_ms"].append(parsed.source_ts_ms)
        out["ts_ms"].append(parsed.ts_ms)
        for name in fields:
            out[f"row_{name}"].append(parsed.row.get(name))
    return out
