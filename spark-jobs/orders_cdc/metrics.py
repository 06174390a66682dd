"""The job's metrics document (format 1) and where it goes (s3://... or a local path).

Every figure is counted from the data the job read and wrote; see README.md for the
schema and the invariants the job checks before it reports success.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orders_cdc.inputs import S3Options, split_s3_uri

METRICS_FORMAT = 1


class InvariantError(RuntimeError):
    """The job's own counts do not add up: something was lost or duplicated."""


def check_invariants(metrics: dict[str, Any]) -> list[str]:
    """Violations of the documented invariants (empty when the batch adds up)."""
    problems = []
    for topic, t in metrics["topics"].items():
        if t["read"] != t["manifest_rows"]:
            problems.append(f"{topic}: read {t['read']} != manifest {t['manifest_rows']}")
        if t["read"] != t["events"] + t["quarantined"] + t["tombstones"]:
            problems.append(
                f"{topic}: read {t['read']} != events {t['events']} + quarantined "
                f"{t['quarantined']} + tombstones {t['tombstones']}"
            )
    for name, t in metrics["tables"].items():
        if "stored_for_batch" in t and t["stored_for_batch"] != t["rows_in"]:
            problems.append(
                f"{name}: {t['stored_for_batch']} rows of this batch stored, expected "
                f"{t['rows_in']} (offsets already written by another batch?)"
            )
        if "events_in" in t:
            accounted = (
                t["superseded_in_batch"]
                + t["stale_or_duplicate"]
                + t["upserts_applied"]
                + t["deletes_applied"]
            )
            if accounted != t["events_in"]:
                problems.append(f"{name}: events {t['events_in']} != accounted {accounted}")
    totals = metrics["totals"]
    if totals["events_in"] != totals["bronze"] + totals["quarantined"] + totals["tombstones"]:
        problems.append("totals: events_in != bronze + quarantined + tombstones")
    return problems


def write_metrics(metrics: dict[str, Any], uri: str, s3: S3Options) -> None:
    body = json.dumps(metrics, indent=2, sort_keys=True, default=str) + "\n"
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
