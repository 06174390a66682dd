"""Verify a batch's staging before Spark reads it: every manifest present and consistent."""

from __future__ import annotations

from typing import Any

from orders_contract.staging import StagingError, check_objects, read_manifest


def verify_batch(s3: Any, consumed: list[dict[str, Any]]) -> dict[str, Any]:
    """Check each consume result's manifest against S3; return the batch summary.

    Raises StagingError naming the first problem: a missing manifest, one whose counts
    differ from what consume reported, a missing object, a size mismatch, or results from
    different batches.
    """
    batch_ids = {c["batch_id"] for c in consumed}
    if len(batch_ids) != 1:
        raise StagingError(f"consume results span batches {sorted(batch_ids)}")
    batch_id = batch_ids.pop()
    rows_per_topic: dict[str, int] = {}
    for result in consumed:
        manifest = read_manifest(s3, result["manifest"], batch_id)
        if manifest.topic != result["topic"] or manifest.rows != result["rows"]:
            raise StagingError(
                f"manifest {result['manifest']} says {manifest.topic}/{manifest.rows} rows, "
                f"consume reported {result['topic']}/{result['rows']}"
            )
        check_objects(s3, manifest, result["manifest"])
        rows_per_topic[manifest.topic] = manifest.rows
    return {
        "batch_id": batch_id,
        "manifests": sorted(c["manifest"] for c in consumed),
        "rows_per_topic": rows_per_topic,
        "rows": sum(rows_per_topic.values()),
    }
