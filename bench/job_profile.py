"""The Spark job's own profile (its metrics document's `step_seconds` and
`step_spark_jobs`), as the benchmarks print it."""

from __future__ import annotations

from typing import Any

#: The job's steps (orders_cdc.job), in the order it runs them.
JOB_STEPS = (
    "session_start",
    "manifests_and_tables",
    "read_and_parse",
    "bronze_and_quarantine",
    "silver_prepare",
    "silver_merge",
    "silver_check",
    "gold",
    "maintenance",
)


def step_cells(steps: dict[str, float], jobs: dict[str, int]) -> list[str]:
    """One cell per step: seconds, with the Spark jobs it ran in brackets ("-": the
    document has no such step, as a job from before the profile was added)."""
    return [
        "-"
        if step not in steps
        else f"{steps[step]:.1f}" + (f" ({jobs[step]})" if step in jobs else "")
        for step in JOB_STEPS
    ]


def own_seconds(duration: float, steps: dict[str, float]) -> float:
    """The job's own time: its session start and its run (what a stage spends outside
    it is the submission, the JVM's start and stop and the hand-over)."""
    return duration + steps.get("session_start", 0.0)


def rest_seconds(duration: float, steps: dict[str, float]) -> float:
    """The job's time outside its named steps (the metrics document, releasing caches)."""
    return duration - sum(v for k, v in steps.items() if k != "session_start")


def total_jobs(jobs: dict[str, Any]) -> str:
    return str(sum(jobs.values())) if jobs else "-"
