"""s3://bucket/key URIs, as the staging manifests, the metrics document and the job's
arguments spell them."""

from __future__ import annotations


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; ValueError for anything else or a missing part."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"an s3 URI needs a bucket and a key: {uri!r}")
    return bucket, key
