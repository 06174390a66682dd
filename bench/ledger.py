"""Offset ledger: what one claim costs when the topic already has N earlier claims.

    python -m bench.ledger [--claims 10000] [--out DIR] [--smoke]

The ledger holds one object per run and topic (about 500,000 a year at one run a minute).
A claim used to list the topic's whole ledger prefix to find the newest claim; it now
reads the head object and lists from there (`orders_etl.staging.ledger.OffsetLedger`). On the
real S3 server (versitygw), against one fresh prefix holding N earlier claims:

- **claim**: find the newest claim and win the next sequence number (conditional put),
  as a consume task does, timed per claim, with the keys its listings returned;
- **whole listing**: listing the prefix and reading its last claim, what every claim
  did before (and what one claim does, once, on a ledger written before the head);
- **retry lookup**: a retry without its `_claim.json` pointer finding its claim among the
  newest `LEDGER_SCAN_LIMIT` (200) claims.

Needs the local data services (S3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import machine, results, table
from localplatform.services import LocalServices
from localplatform.services.s3 import ListingCounter
from orders_contract.staging import StagingLocation
from orders_etl.staging.ledger import LEDGER_SCAN_LIMIT, Claim, OffsetLedger

TOPIC = "orders.public.orders"


def seed(s3: Any, ledger: OffsetLedger, count: int) -> float:
    """`count` contiguous earlier claims of 3 partitions, written in parallel."""

    def put(seq: int) -> None:
        claim = Claim(seq, f"bench-{seq}", {p: (seq * 10, seq * 10 + 10) for p in range(3)})
        s3.put_object(Bucket="staging", Key=ledger.key(TOPIC, seq), Body=claim.to_json().encode())

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(count)))
    return time.monotonic() - started


def measure(services: LocalServices, claims: int, repeats: int) -> dict[str, Any]:
    s3 = services.s3.client()
    location = StagingLocation("staging", f"bench-ledger-{uuid.uuid4().hex[:8]}")
    ledger = OffsetLedger(s3, location)
    seed_seconds = seed(s3, ledger, claims)

    whole: list[float] = []
    for _ in range(max(1, repeats // 4)):
        started = time.monotonic()
        keys = ledger.keys_from(TOPIC, None)
        ledger.read(keys[-1])
        whole.append(time.monotonic() - started)
    ledger.last(TOPIC)  # a ledger without a head is listed once, then has one

    claim_seconds: list[float] = []
    listed: list[int] = []
    for i in range(repeats):
        counting = ListingCounter(s3)
        mine = OffsetLedger(counting, location)
        started = time.monotonic()
        last = mine.last(TOPIC)
        assert last is not None
        claim = Claim(
            last.seq + 1, f"bench-new-{i}", {p: (r[1], r[1]) for p, r in last.ranges.items()}
        )
        assert mine.try_claim(claim, TOPIC), "no other writer: the next number must be free"
        claim_seconds.append(time.monotonic() - started)
        listed.append(counting.listed)

    lookup: list[float] = []
    for _ in range(max(1, repeats // 4)):
        started = time.monotonic()
        recent = ledger.recent(TOPIC, LEDGER_SCAN_LIMIT)
        assert recent
        assert recent[-1].seq == claims + repeats - 1
        lookup.append(time.monotonic() - started)

    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="staging", Prefix=location.prefix + "/"
    ):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket="staging", Delete={"Objects": objects, "Quiet": True})
    return {
        "earlier_claims": claims,
        "claims_timed": repeats,
        "seed_seconds": round(seed_seconds, 2),
        "claim_p50_s": round(statistics.median(claim_seconds), 4),
        "claim_max_s": round(max(claim_seconds), 4),
        "keys_listed_per_claim_max": max(listed),
        "whole_listing_p50_s": round(statistics.median(whole), 4),
        "retry_lookup_p50_s": round(statistics.median(lookup), 4),
    }


def summary(body: dict[str, Any]) -> str:
    rows = [
        ["claim (head + list from it + conditional put)", f"{body['claim_p50_s'] * 1000:.1f}",
         f"{body['claim_max_s'] * 1000:.1f}", body["keys_listed_per_claim_max"]],
        ["whole listing + last claim (before the head)",
         f"{body['whole_listing_p50_s'] * 1000:.1f}", "", body["earlier_claims"]],
        [f"retry lookup (newest {LEDGER_SCAN_LIMIT} claims)",
         f"{body['retry_lookup_p50_s'] * 1000:.1f}", "", LEDGER_SCAN_LIMIT],
    ]  # fmt: skip
    return table.render(["with earlier claims: " + f"{body['earlier_claims']:,}", "p50 ms",
                         "max ms", "keys listed"], rows)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.claims, args.repeats = 50, 4
    print(machine.headline(machine.describe()))
    services = LocalServices()
    if not services.is_up():
        raise SystemExit("the data services are not up (make services-up, or bench.platform up)")
    body = measure(services, args.claims, args.repeats)
    body["smoke"] = bool(args.smoke)
    print(summary(body))
    results.write(args.out, "ledger", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
