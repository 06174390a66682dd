"""The job's own documents beside the batch's staging: the metrics and the dates record.

Both live at s3://... URIs (the staging bucket) or local paths (tests, local runs):

- the metrics document (orders_contract.metrics, format 2), written once the batch is
  done, and read back by the SparkApplication operator;
- the affected-dates record: the dates the batch's orders and line items had before the
  batch's silver commits, updated by every attempt before it commits to silver. A retry
  after a partial failure (silver committed, gold or the metrics not) cannot see those
  dates in silver any more; it reads them here, so the dates a batch affects are a
  property of the batch, not of the attempt.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from orders_cdc.inputs import S3Options
from orders_contract.s3uri import split_s3_uri

RECORD_NAME = "_affected_dates.json"


def sibling_uri(uri: str, name: str) -> str:
    """`name` in the same folder (S3 prefix or directory) as `uri`."""
    head, _, _ = uri.rpartition("/")
    return f"{head}/{name}" if head else name


def write_text(uri: str, body: str, s3: S3Options) -> None:
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        s3.client().put_object(
            Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/json"
        )
        return
    path = Path(uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(body)
    os.replace(tmp, path)


def read_text(uri: str, s3: S3Options) -> str | None:
    """The document's text, or None when it does not exist (any other error raises)."""
    if uri.startswith("s3://"):
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(body).decode()
    path = Path(uri.removeprefix("file://"))
    return path.read_text() if path.exists() else None


def read_record(uri: str, batch_id: str, s3: S3Options) -> set[dt.date]:
    text = read_text(uri, s3)
    if text is None:
        return set()
    body = json.loads(text)
    if body.get("batch_id") != batch_id:
        raise RuntimeError(f"{uri} belongs to batch {body.get('batch_id')!r}, not {batch_id!r}")
    return {dt.date.fromisoformat(d) for d in body["dates"]}


def write_record(uri: str, batch_id: str, dates: set[dt.date], s3: S3Options) -> None:
    body = {"batch_id": batch_id, "dates": sorted(d.isoformat() for d in dates)}
    write_text(uri, json.dumps(body, indent=2) + "\n", s3)
