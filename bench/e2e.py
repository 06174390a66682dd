"""End-to-end DAG run wall time at growing batch sizes, and each stage's share.

    python -m bench.e2e [--sizes 10000,100000,1000000] [--budget 1500] [--out DIR] [--smoke]

On the benchmark platform (bench.platform: the demo's platform, chart and Airflow), for
each size: generate exactly N Debezium events (localplatform.cdc_events, new ids each
batch), publish them to the CDC topics, trigger `orders_etl`, wait for the run, and read
the run's and its tasks' start/end times from Airflow's metadata DB, and the Spark job's
own profile from its metrics document (wall time and Spark jobs per step of the job;
what spark_transform spends outside the job: submission, the driver's start and stop,
the wait's hand-over). Batches are run in ascending size on the same tables, so each
batch merges into the previous ones'.

A size whose predicted time (a linear fit a + b*N through the measured sizes, plus
generating and publishing) does not fit the remaining budget is not run and is
reported as such: a finding, not a failure; so is a size that was started but did not
finish in the budget left (its run is then marked failed). `--smoke` checks the plan
only (no run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import cdc_load, job_profile, machine, results, table
from bench.platform import BenchDemo
from localplatform.demo import DAG_ID, STAGES

#: Publish-side cost measured for 1M events on this machine class (generate + produce),
#: used to predict a size before it is run: seconds per event.
PUBLISH_SECONDS_PER_EVENT = 130 / 1_000_000


def predict(measured: list[tuple[int, float]], size: int) -> float | None:
    """Run seconds for `size` from a + b*N through the two largest measured sizes."""
    if len(measured) < 2:
        return None
    (n1, t1), (n2, t2) = sorted(measured)[-2:]
    slope = max(0.0, (t2 - t1) / (n2 - n1))
    intercept = max(0.0, t2 - slope * n2)
    return intercept + slope * size


def fail_run(demo: BenchDemo, run_id: str) -> None:
    """End a run that overran the budget (REST API), so it does not load the platform."""
    request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
        f"{demo.airflow_handle().api_url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
        data=json.dumps({"state": "failed"}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {demo.token()}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        response.read()


def run_times(demo: BenchDemo, run_id: str) -> dict[str, Any]:
    with demo.db() as conn, conn.cursor() as cur:
        cur.execute(
            "select extract(epoch from start_date), extract(epoch from end_date), state "
            "from dag_run where dag_id=%s and run_id=%s",
            (DAG_ID, run_id),
        )
        start, end, state = cur.fetchone()
        cur.execute(
            "select task_id, min(extract(epoch from start_date)), "
            "max(extract(epoch from end_date)), count(*), max(try_number) from task_instance "
            "where dag_id=%s and run_id=%s group by task_id",
            (DAG_ID, run_id),
        )
        rows = cur.fetchall()
    spans = {t: (float(s), float(e), int(n)) for t, s, e, n, _ in rows}
    # A retried stage's time counts from its last try: the earlier tries land in "between
    # stages", so the retries are reported beside it.
    retries = {t: int(tries) - 1 for t, _, _, _, tries in rows if tries and int(tries) > 1}
    total = float(end) - float(start)
    stages = {t: spans[t][1] - spans[t][0] for t in STAGES if t in spans}
    return {
        "state": state,
        "run_seconds": total,
        "stage_seconds": stages,
        "mapped": {t: spans[t][2] for t in spans},
        "between_stages_seconds": total - sum(stages.values()),
        "retries": retries,
    }


def read_job_profile(demo: BenchDemo, run_id: str, spark_stage: float | None) -> dict[str, Any]:
    """The Spark job's own figures (its metrics document) and what the stage spends
    outside the job's run(): spark_transform minus the job's duration and session start."""
    metrics = demo.metrics(run_id)
    steps = dict(metrics.step_seconds)
    inside = job_profile.own_seconds(metrics.duration_seconds, steps)
    return {
        "duration_seconds": metrics.duration_seconds,
        "step_seconds": steps,
        "step_spark_jobs": dict(metrics.step_spark_jobs),
        "outside_job_seconds": None if spark_stage is None else spark_stage - inside,
    }


def profile_summary(body: dict[str, Any]) -> str:
    """spark_transform of each run, taken apart: outside the job, then the job's steps."""
    rows = []
    for run in body["runs"]:
        job = run.get("job")
        if not job:
            continue
        steps, jobs = job["step_seconds"], job.get("step_spark_jobs", {})
        outside = job["outside_job_seconds"]
        rows.append([f"{run['events']:,}",
                     f"{run['stage_seconds'].get('spark_transform', 0.0):.1f}",
                     "-" if outside is None else f"{outside:.1f}",
                     *job_profile.step_cells(steps, jobs),
                     f"{job_profile.rest_seconds(job['duration_seconds'], steps):.1f}",
                     job_profile.total_jobs(jobs)])  # fmt: skip
    return table.render(
        ["events", "spark_transform s", "outside the job", *job_profile.JOB_STEPS, "rest",
         "Spark jobs"], rows,
    )  # fmt: skip


def summary(body: dict[str, Any]) -> str:
    rows = []
    for run in body["runs"]:
        total = run["run_seconds"]
        shares = [
            f"{run['stage_seconds'].get(s, 0.0):.1f} s "
            f"({100 * run['stage_seconds'].get(s, 0.0) / total:.0f}%)"
            for s in STAGES
        ]
        retried = ", ".join(f"{t} {n}" for t, n in run.get("retries", {}).items()) or "none"
        if "retries" not in run:  # results written before retries were recorded
            retried = "not recorded"
        rows.append([f"{run['events']:,}", run["state"], f"{total:.1f}",
                     f"{run['events'] / total:,.0f}", *shares,
                     f"{run['between_stages_seconds']:.1f} s",
                     retried])  # fmt: skip
    for skip in body["skipped"]:
        predicted = skip.get("predicted_seconds")
        rows.append([f"{skip['events']:,}", "not run" if predicted else "over budget",
                     f"~{predicted:.0f} predicted" if predicted else f"> {skip['remaining']:.0f}",
                     "",
                     *[""] * len(STAGES), "", ""])  # fmt: skip
    return table.render(
        ["events", "state", "run s", "events/s", *STAGES, "between stages", "retries"], rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds for all sizes")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--start-id", type=int, default=10_000_000, help="first order id (new ids per batch)"
    )
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(machine.headline(machine.describe()))
    demo = BenchDemo()
    if args.smoke:
        plan = [(n, predict([(10_000, 60.0), (100_000, 120.0)], n)) for n in sizes]
        print(table.render(["size", "predicted s (example fit)"],
                           [[f"{n:,}", f"{p:.0f}"] for n, p in plan]))  # fmt: skip
        print(f"platform run dir: {demo.run_dir}; DAG {DAG_ID}; stages {', '.join(STAGES)}")
        return 0
    started = time.monotonic()
    measured: list[tuple[int, float]] = []
    runs: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    next_id = args.start_id  # far above the demo's ids
    for size in sizes:
        remaining = args.budget - (time.monotonic() - started)
        run_guess = predict(measured, size)
        guess = None if run_guess is None else run_guess + size * PUBLISH_SECONDS_PER_EVENT
        if guess is not None and guess > remaining:
            skipped.append({"events": size, "predicted_seconds": guess, "remaining": remaining})
            print(f"{size:,} events: predicted {guess:.0f} s > {remaining:.0f} s left: not run")
            continue
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            t0 = time.monotonic()
            counts = cdc_load.write_exact(size, Path(tmp), seed=args.seed, start_id=next_id)
            published = demo.publish(Path(tmp))
            publish_seconds = time.monotonic() - t0
        next_id += sum(counts.values()) * 2
        run_id = f"bench__{size}__{time.strftime('%Y%m%dT%H%M%S')}"
        demo.trigger(run_id)
        wait = max(300.0, remaining - (time.monotonic() - t0))
        try:
            demo.wait_run(run_id, timeout=wait, progress=False)
        except TimeoutError:
            fail_run(demo, run_id)
            note = f"started, did not finish within the {wait:.0f} s left"
            skipped.append(
                {"events": size, "predicted_seconds": None, "remaining": wait, "note": note}
            )
            print(f"{size:,} events: did not finish within {wait:.0f} s; run marked failed")
            break
        body = {"events": size, "published": published, "publish_seconds": publish_seconds,
                "run_id": run_id, **run_times(demo, run_id)}  # fmt: skip
        if body["state"] == "success":
            body["job"] = read_job_profile(
                demo, run_id, body["stage_seconds"].get("spark_transform")
            )
        print(f"{size:,} events: {body['state']} in {body['run_seconds']:.1f} s")
        runs.append(body)
        if body["state"] != "success":
            break
        measured.append((size, body["run_seconds"]))
    body = {"sizes": sizes, "budget_seconds": args.budget, "runs": runs, "skipped": skipped,
            "smoke": False}  # fmt: skip
    print(summary(body))
    print(profile_summary(body))
    results.write(args.out, "e2e", body)
    return 0 if all(r["state"] == "success" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
