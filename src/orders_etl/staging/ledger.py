"""The offset ledger: which Kafka offsets each batch owns, decided once, on S3.

    <prefix>/_ledger/topic=<topic>/<seq:012d>.json   {"seq", "batch_id", "ranges"}
    <prefix>/_ledger/head/topic=<topic>.json         {"seq"}: where the tail starts

A batch claims the next sequence number with a conditional put (If-None-Match: *), so
two runs racing for the same number cannot both win: ranges never overlap and never leave
gaps, whatever the number of active runs. The ledger is read in bounded time however long
the pipeline has run: the head object names a recent sequence number, and only the keys
from there on are listed (ListObjectsV2 StartAfter). The head is a hint, written after
each claim: a stale one only lengthens that listing, and the conditional put on the
sequence key stays the only arbiter. A ledger without a head is listed whole once.
(orders_etl.staging.stager makes the claims; the backlog watcher reads them.)
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, FlexibleChecksumError

from orders_contract.staging import StagingLocation

log = logging.getLogger(__name__)

#: How long a read that keeps coming back torn by concurrent overwrites is made again
#: (get_text), and the longest pause between two reads (jittered, doubling from 5 ms).
TORN_READ_SECONDS = 30.0
TORN_READ_MAX_PAUSE = 0.5
#: How many ledger entries a retry scans backwards for its own claim.
LEDGER_SCAN_LIMIT = 200
#: How far the newest claim may be past the head before a reader moves the head up.
LEDGER_HEAD_LAG = 50


def get_text(s3: Any, bucket: str, key: str) -> str | None:
    """The object's text, None if there is none.

    An object overwritten while it is read (the head, rewritten after every claim) can come
    back torn from an S3 server whose overwrites are not atomic to readers (versitygw's
    posix backend does this): the body of one version with the checksum of the other,
    which botocore refuses (FlexibleChecksumError). That read is made again after a short
    jittered pause, so that a reader stops landing in the writers' rhythm; only an object
    still torn after TORN_READ_SECONDS is raised. (A fixed five tries failed in CI on a
    loaded machine: four torn reads in a row, then the error.)"""
    deadline = time.monotonic() + TORN_READ_SECONDS
    attempt = 1
    while True:
        try:
            return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        except FlexibleChecksumError:
            pause = min(TORN_READ_MAX_PAUSE, 0.005 * 2 ** (attempt - 1))
            pause *= random.uniform(0.5, 1.5)  # noqa: S311 (jitter, not a secret)
            if time.monotonic() + pause > deadline:
                raise
            log.info(
                "s3://%s/%s changed while it was read (try %d); reading it again in %.3f s",
                bucket,
                key,
                attempt,
                pause,
            )
            time.sleep(pause)
            attempt += 1


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes) -> bool:
    try:
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*"
        )
    except ClientError as error:
        if error.response["Error"]["Code"] in (
            "PreconditionFailed",
            "412",
            "ConditionalRequestConflict",
        ):
            return False
        raise
    return True


@dataclass(frozen=True)
class Claim:
    seq: int
    batch_id: str
    ranges: dict[int, tuple[int, int]]  # partition -> [start, end)

    def to_json(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "batch_id": self.batch_id,
                "ranges": {str(p): list(r) for p, r in sorted(self.ranges.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Claim:
        body = json.loads(text)
        return cls(
            int(body["seq"]),
            body["batch_id"],
            {int(p): (int(r[0]), int(r[1])) for p, r in body["ranges"].items()},
        )


class OffsetLedger:
    """The claims of every topic, read from a known key instead of listed whole."""

    def __init__(self, s3: Any, location: StagingLocation) -> None:
        self._s3 = s3
        self._location = location

    # -- keys ---------------------------------------------------------------------------
    def prefix(self, topic: str) -> str:
        return f"{self._location.prefix}/_ledger/topic={topic}/"

    def key(self, topic: str, seq: int) -> str:
        return f"{self.prefix(topic)}{seq:012d}.json"

    def head_key(self, topic: str) -> str:
        return f"{self._location.prefix}/_ledger/head/topic={topic}.json"

    # -- reading ------------------------------------------------------------------------
    def head(self, topic: str) -> int | None:
        text = get_text(self._s3, self._location.bucket, self.head_key(topic))
        return None if text is None else int(json.loads(text)["seq"])

    def keys_from(self, topic: str, seq: int | None) -> list[str]:
        """Claim keys with a sequence number >= seq (all of them when seq is None)."""
        kwargs: dict[str, Any] = {"Bucket": self._location.bucket, "Prefix": self.prefix(topic)}
        if seq is not None and seq > 0:
            kwargs["StartAfter"] = self.key(topic, seq - 1)
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def read(self, key: str) -> Claim | None:
        text = get_text(self._s3, self._location.bucket, key)
        return None if text is None else Claim.from_json(text)

    def last(self, topic: str) -> Claim | None:
        """The topic's newest claim (None for a topic never claimed)."""
        head = self.head(topic)
        keys = self.keys_from(topic, head)
        if not keys and head is not None:  # a head past the tail: the ledger was cut
            keys = self.keys_from(topic, None)
        if not keys:
            return None
        last = self.read(keys[-1])
        if last is not None and (head is None or last.seq - head > LEDGER_HEAD_LAG):
            self.advance_head(topic, last.seq)
        return last

    def recent(self, topic: str, count: int) -> list[Claim]:
        """Up to `count` of the newest claims, newest last."""
        head = self.head(topic)
        start = None if head is None else max(0, head - count)
        claims = [c for k in self.keys_from(topic, start) if (c := self.read(k)) is not None]
        return claims[-count:]

    # -- writing ------------------------------------------------------------------------
    def try_claim(self, claim: Claim, topic: str) -> bool:
        """Write `claim` if its sequence number is free (If-None-Match); True if it won."""
        won = put_if_absent(
            self._s3, self._location.bucket, self.key(topic, claim.seq), claim.to_json().encode()
        )
        if won:
            self.advance_head(topic, claim.seq)
        return won

    def advance_head(self, topic: str, seq: int) -> None:
        self._s3.put_object(
            Bucket=self._location.bucket,
            Key=self.head_key(topic),
            Body=json.dumps({"seq": seq}).encode(),
            ContentType="application/json",
        )
