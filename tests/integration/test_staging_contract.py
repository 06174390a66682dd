"""The staging format's one reader (orders_contract.staging) against the real S3 server.

Consume (a retry finding its batch staged), verify_staging and the Spark job's driver all
check staging through `read_manifest` / `check_objects`; each way staging can be wrong is
one StagingError naming the object and what is wrong, never a KeyError or a silent pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from localplatform import paths
from orders_contract.staging import (
    Manifest,
    PartitionRange,
    StagingError,
    StagingLocation,
    check_objects,
    read_manifest,
)
from orders_etl.staging.verify import verify_batch

pytestmark = pytest.mark.integration

BODY = b"PAR1 not really parquet, the reader's checks do not open it PAR1"


@pytest.fixture
def s3(data_services: Any) -> Any:
    return data_services.s3.client()


@pytest.fixture
def location() -> StagingLocation:
    return StagingLocation("staging", f"test-staging-contract/{os.urandom(4).hex()}")


def stage(
    s3: Any,
    location: StagingLocation,
    batch_id: str = "b1",
    topic: str = "orders.public.orders",
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """One object and its manifest, written as consume writes them; `edit` changes the
    manifest's JSON body before it is stored. Returns the manifest's URI."""
    key = location.object_key(batch_id, topic, 0, 0, 3)
    digest = hashlib.sha256(BODY).hexdigest()
    s3.put_object(Bucket=location.bucket, Key=key, Body=BODY, Metadata={"sha256": digest})
    ranges = (
        PartitionRange(0, 0, 3, 3, location.uri(key), digest, len(BODY)),
        PartitionRange(1, 5, 5, 0, None, None, 0),
    )
    body = json.loads(Manifest(batch_id, topic, ranges).to_json())
    if edit is not None:
        edit(body)
    manifest_key = location.manifest_key(batch_id, topic)
    s3.put_object(Bucket=location.bucket, Key=manifest_key, Body=json.dumps(body).encode())
    return location.uri(manifest_key)


def test_a_consistent_manifest_reads_back_and_its_objects_check(
    s3: Any, location: StagingLocation
) -> None:
    uri = stage(s3, location)
    manifest = read_manifest(s3, uri, "b1")
    assert (manifest.topic, manifest.rows, len(manifest.objects())) == (
        "orders.public.orders",
        3,
        1,
    )
    check_objects(s3, manifest, uri)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda b: b.update(format=2), "unsupported manifest format 2"),
        (lambda b: b.update(rows=4), "manifest rows 4 != the partitions' 3"),
        (lambda b: b["partitions"][1].update(rows=2), "an object exists exactly when"),
        (lambda b: b["partitions"][0].update(object="staging/no-scheme"), "not an s3:// URI"),
        (lambda b: b.pop("batch_id"), "not a staging manifest"),
        (
            lambda b: b.update(partitions=[b["partitions"][0]] * 2, rows=6),
            "a partition is listed twice",
        ),
    ],
)
def test_a_malformed_manifest_is_a_staging_error(
    s3: Any, location: StagingLocation, edit: Callable[[dict[str, Any]], None], says: str
) -> None:
    uri = stage(s3, location, edit=edit)
    with pytest.raises(StagingError, match=uri) as error:
        read_manifest(s3, uri)
    assert says in str(error.value)


def test_a_manifest_that_is_not_json_is_a_staging_error(s3: Any, location: StagingLocation) -> None:
    key = location.manifest_key("b1", "orders.public.orders")
    s3.put_object(Bucket=location.bucket, Key=key, Body=b"{truncated")
    with pytest.raises(StagingError, match="not a staging manifest"):
        read_manifest(s3, location.uri(key))


def test_a_missing_manifest_and_another_batchs_manifest_are_refused(
    s3: Any, location: StagingLocation
) -> None:
    missing = location.uri(location.manifest_key("nope", "orders.public.orders"))
    with pytest.raises(StagingError, match=f"manifest {missing} does not exist"):
        read_manifest(s3, missing)
    uri = stage(s3, location, batch_id="b1")
    with pytest.raises(StagingError, match="batch 'b1', expected 'b2'"):
        read_manifest(s3, uri, "b2")


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ("delete", "is missing: the staging area was modified outside the pipeline"),
        ("resize", "bytes, "),
        ("rehash", "sha256 "),
    ],
)
def test_an_object_that_no_longer_matches_its_manifest_is_refused(
    s3: Any, location: StagingLocation, tamper: str, says: str
) -> None:
    uri = stage(s3, location)
    manifest = read_manifest(s3, uri)
    part = manifest.objects()[0]
    assert part.object is not None
    key = part.object.removeprefix(f"s3://{location.bucket}/")
    if tamper == "delete":
        s3.delete_object(Bucket=location.bucket, Key=key)
    elif tamper == "resize":
        s3.put_object(Bucket=location.bucket, Key=key, Body=BODY + b"!")
    else:  # same size, other content, its own (honest) digest in the metadata
        other = BODY[::-1]
        digest = hashlib.sha256(other).hexdigest()
        s3.put_object(Bucket=location.bucket, Key=key, Body=other, Metadata={"sha256": digest})
    with pytest.raises(StagingError, match=part.object) as error:
        check_objects(s3, manifest, uri)
    assert says in str(error.value)


def test_verify_batch_checks_what_consume_reported(s3: Any, location: StagingLocation) -> None:
    orders = stage(s3, location, topic="orders.public.orders")
    customers = stage(s3, location, topic="orders.public.customers")
    reported = [
        {"batch_id": "b1", "topic": "orders.public.orders", "rows": 3, "manifest": orders},
        {"batch_id": "b1", "topic": "orders.public.customers", "rows": 3, "manifest": customers},
    ]
    summary = verify_batch(s3, reported)
    assert summary["rows"] == 6
    assert summary["manifests"] == sorted([orders, customers])
    with pytest.raises(StagingError, match=r"consume reported orders\.public\.orders/4$"):
        verify_batch(s3, [{**reported[0], "rows": 4}, reported[1]])
    with pytest.raises(StagingError, match="span batches"):
        verify_batch(s3, [reported[0], {**reported[1], "batch_id": "b2"}])


def test_the_spark_jobs_reader_maps_topics_through_the_contract(
    s3: Any, location: StagingLocation
) -> None:
    """The job's driver reads manifests through the same reader and maps each topic to
    its table by the contract: another prefix works, a topic of no table is refused."""
    sys.path.insert(0, str(paths.REPO_ROOT / "spark-jobs"))
    try:
        from orders_cdc.inputs import read_manifests
    finally:
        sys.path.remove(str(paths.REPO_ROOT / "spark-jobs"))

    renamed = stage(s3, location, topic="eu-shop.sales.orders")
    [staged] = read_manifests(s3, [renamed], "b1")
    assert (staged.topic, staged.table, staged.rows) == ("eu-shop.sales.orders", "orders", 3)
    unknown = stage(s3, location, topic="eu-shop.sales.refunds")
    with pytest.raises(StagingError, match=r"'eu-shop\.sales\.refunds' does not carry a table"):
        read_manifests(s3, [unknown], "b1")
    twice = stage(s3, location, topic="us-shop.sales.orders")
    with pytest.raises(StagingError, match="table orders staged twice"):
        read_manifests(s3, [renamed, twice], "b1")
