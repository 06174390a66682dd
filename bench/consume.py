"""Consume stage: events/s and peak RSS of three ways to move CDC events from Kafka to S3.

    python -m bench.consume [--events 1000000] [--repeats 3] [--out DIR] [--smoke]

- project:  this project's consume (orders_etl.staging.stager: exact offset ranges, Parquet,
            S3 ledger and manifest), the real code against the real Kafka and S3 server;
- capstone: the capstone's design RE-IMPLEMENTED for comparison (bench.capstone_consume:
            poll one message at a time, a JSON list in memory, one JSON object upload);
- raw:      librdkafka (confluent-kafka) consuming every message and doing nothing with
            it: the limit on this machine.

The events are generated (localplatform.cdc_events), spread over three fresh topics of
3 partitions each, and produced once; every variant then reads all of them, each in its
own process (its own peak RSS, VmHWM; CPU from wait4). Needs the local data services
(Kafka, S3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

from bench import cdc_load, machine, procstat, results, table
from localplatform.services import LocalServices

TABLES = ("orders", "line_items", "customers")
VARIANTS = ("raw", "project", "capstone")
#: Targets (issue 9): project >= 10x the capstone design, and within 3x of the raw limit.
TARGET_VS_CAPSTONE = 10.0
TARGET_VS_RAW = 3.0


def run_variant(variant: str, topics: list[str], tag: str) -> dict[str, Any]:
    usage = procstat.run_child(
        [sys.executable, "-m", "bench.consume_variants", variant,
         "--topics", ",".join(topics), "--tag", tag]
    )  # fmt: skip
    if usage.returncode != 0:
        raise RuntimeError(f"variant {variant} failed:\n{usage.stderr[-3000:]}")
    body: dict[str, Any] = json.loads(usage.stdout.strip().splitlines()[-1])
    body["events_per_second"] = body["events"] / body["seconds"]
    # The child's own VmHWM at exit is exact; the parent's polling could miss the last ms.
    body["peak_rss_mib"] = max(body.get("vm_hwm_mib", 0.0), usage.peak_rss_mib)
    body["cpu_seconds"] = usage.cpu_seconds
    body["process_wall_seconds"] = usage.wall_seconds
    return body


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median consume CPU (the upper one of an even count), with every
    run's figures beside it: on a shared machine one run can be 25 % off (measured here)."""
    ordered = sorted(runs, key=lambda r: float(r["consume_cpu_seconds"]))
    picked = dict(ordered[len(ordered) // 2])
    picked["runs"] = [
        {k: r[k] for k in ("seconds", "cpu_seconds", "consume_cpu_seconds", "peak_rss_mib")}
        for r in runs
    ]
    return picked


def cleanup(services: LocalServices, topics: list[str], tag: str) -> None:
    admin = services.kafka.admin()  # keep the handle alive until the futures resolve
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result()
    s3 = services.s3.client()
    for prefix in (f"bench-project-{tag}", f"bench-capstone-{tag}"):  # every repeat's
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="staging", Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket="staging", Delete={"Objects": keys})


def summary(body: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{v['events']:,}",
            f"{v['seconds']:.1f}",
            f"{v['events_per_second']:,.0f}",
            f"{v['peak_rss_mib']:,.0f}",
            f"{v['cpu_seconds']:.1f}",
            f"{v['consume_cpu_seconds']:.1f}" if "consume_cpu_seconds" in v else "-",
        ]
        for name, v in body["variants"].items()
    ]
    headers = ["variant", "events", "seconds", "events/s", "peak RSS MiB", "CPU s",
               "consume CPU s"]  # fmt: skip
    return table.render(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consume", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each variant, interleaved; the median run is reported (1 with --smoke)",
    )
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    events = 3_000 if args.smoke else args.events
    info = machine.describe()
    print(machine.headline(info))
    services = LocalServices()
    if not services.is_up():
        print("error: the data services are not running (make services-up)", file=sys.stderr)
        return 1
    tag = f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:4]}"
    topics = {t: f"bench{tag}.public.{t}" for t in TABLES}
    services.kafka.create_topics(topics.values(), partitions=3)
    try:
        started = time.monotonic()
        stream = cdc_load.generate_exact(events)
        generated = time.monotonic() - started
        started = time.monotonic()
        produced = cdc_load.produce(stream, topics, services.kafka.bootstrap)
        produce_seconds = time.monotonic() - started
        del stream
        print(
            f"{events:,} events generated in {generated:.1f} s, produced in "
            f"{produce_seconds:.1f} s: {produced}"
        )
        repeats = 1 if args.smoke else max(1, args.repeats)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for repeat in range(repeats):
            for variant in VARIANTS:
                run = run_variant(variant, list(topics.values()), f"{tag}r{repeat}")
                if run["events"] != events:
                    raise RuntimeError(
                        f"{variant} read {run['events']} events, {events} were produced"
                    )
                runs[variant].append(run)
    finally:
        cleanup(services, list(topics.values()), tag)
    figures = {v: median_run(r) for v, r in runs.items()}
    project, capstone, raw = figures["project"], figures["capstone"], figures["raw"]
    vs_capstone = project["events_per_second"] / capstone["events_per_second"]
    raw_over_project = raw["events_per_second"] / project["events_per_second"]
    targets = {
        "consume >= 10x the capstone design": {
            "value": f"{vs_capstone:.1f}x",
            "met": vs_capstone >= TARGET_VS_CAPSTONE,
        },
        "consume within 3x of the raw limit": {
            "value": f"raw is {raw_over_project:.1f}x faster",
            "met": raw_over_project <= TARGET_VS_RAW,
        },
    }
    body = {
        "events": events,
        "repeats": repeats,
        "topics": 3,
        "partitions_per_topic": 3,
        "generate_seconds": generated,
        "produce_seconds": produce_seconds,
        "variants": figures,
        "project_vs_capstone": vs_capstone,
        "raw_over_project": raw_over_project,
        "targets": targets,
        "smoke": args.smoke,
    }
    print(summary(body))
    print(results.target_lines(targets))
    results.write(args.out, "consume", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
