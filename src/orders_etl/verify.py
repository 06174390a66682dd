"""Verify a batch's staging before Spark reads it: every manifest present and consistent."""

from __future__ import annotations

from typing import Any

from orders_etl.staging import Manifest


class StagingVerificationError(RuntimeError):
    """A manifest is missing or does not match the objects it names."""


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise StagingVerificationError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def verify_batch(s3: Any, consumed: list[dict[str, Any]]) -> dict[str, Any]:
    """Check each consume result's manifest against S3; return the batch summary.

    Raises StagingVerificationError naming the first problem: a missing manifest, one
    whose counts differ from what consume reported, a missing object, a size mismatch,
    or results from different batches.
    """
    from botocore.exceptions import ClientError  # botocore: not at DAG parse

    batch_ids = {c["batch_id"] for c in consumed}
    if len(batch_ids) != 1:
        raise StagingVerificationError(f"consume results span batches {sorted(batch_ids)}")
    rows_per_topic: dict[str, int] = {}
    for result in consumed:
        bucket, key = _split(result["manifest"])
        try:
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except ClientError as error:
            raise StagingVerificationError(
                f"manifest {result['manifest']} is missing ({error.response['Error']['Code']})"
            ) from None
        manifest = Manifest.from_json(text)
        if manifest.topic != result["topic"] or manifest.rows != result["rows"]:
            raise StagingVerificationError(
                f"manifest {result['manifest']} says {manifest.topic}/{manifest.rows} rows, "
                f"consume reported {result['topic']}/{result['rows']}"
            )
        for part in manifest.partitions:
            if part.object is None:
                continue
            obj_bucket, obj_key = _split(part.object)
            try:
                head = s3.head_object(Bucket=obj_bucket, Key=obj_key)
            except ClientError:
                raise StagingVerificationError(
                    f"{part.object} named by the manifest is missing"
                ) from None
            if head["ContentLength"] != part.bytes:
                raise StagingVerificationError(
                    f"{part.object} is {head['ContentLength']} bytes, manifest says {part.bytes}"
                )
        rows_per_topic[manifest.topic] = manifest.rows
    return {
        "batch_id": batch_ids.pop(),
        "manifests": sorted(c["manifest"] for c in consumed),
        "rows_per_topic": rows_per_topic,
        "rows": sum(rows_per_topic.values()),
    }
