"""get_text's answer to reads torn by a concurrent overwrite, with a stub S3 client.

The real race (versitygw serving one version's body with another's checksum) is exercised
against the real server in tests/integration/test_consume.py; how often it tears there
depends on the machine's load. These tests pin the policy itself: how long a torn object
is read again, and that everything else is not retried.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, FlexibleChecksumError

from orders_etl.staging import ledger

pytestmark = pytest.mark.unit


class TearingS3Stub:
    """Stands in for an S3 client whose GetObject comes back torn `tears` times (botocore
    raises FlexibleChecksumError while the body is read), then whole."""

    def __init__(self, tears: int, text: str = '{"seq": 7}') -> None:
        self.tears = tears
        self.text = text
        self.reads: list[float] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.reads.append(time.monotonic())
        stub = self

        class Body:
            def read(self) -> bytes:
                if len(stub.reads) <= stub.tears:
                    raise FlexibleChecksumError(error_msg="Expected checksum a did not match b")
                return io.BytesIO(stub.text.encode()).read()

        return {"Body": Body()}


class MissingS3Stub:
    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "none"}}, "GetObject")


def test_a_read_torn_many_times_in_a_row_is_still_read_whole() -> None:
    """CI (2026-12-04) on a loaded machine: four torn reads in a row, then the fifth and
    last try raised. Ten in a row are read again until the object is whole."""
    s3 = TearingS3Stub(tears=10)
    assert ledger.get_text(s3, "staging", "head.json") == '{"seq": 7}'
    assert len(s3.reads) == 11


def test_torn_reads_are_spaced_out_not_repeated_at_once() -> None:
    s3 = TearingS3Stub(tears=6)
    ledger.get_text(s3, "staging", "head.json")
    gaps = [b - a for a, b in zip(s3.reads, s3.reads[1:], strict=False)]
    assert all(gap >= 0.002 for gap in gaps), gaps
    assert gaps[-1] > gaps[0], f"the pause does not grow: {gaps}"


def test_an_object_torn_past_the_deadline_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "TORN_READ_SECONDS", 0.3)
    s3 = TearingS3Stub(tears=10_000)
    started = time.monotonic()
    with pytest.raises(FlexibleChecksumError):
        ledger.get_text(s3, "staging", "head.json")
    assert time.monotonic() - started < 1.0
    assert 3 < len(s3.reads) < 100


def test_a_missing_object_is_none_and_not_read_again() -> None:
    assert ledger.get_text(MissingS3Stub(), "staging", "head.json") is None
