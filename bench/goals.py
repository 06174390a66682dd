"""Issue 25's goals (event-to-dashboard freshness): each figure before and after, from the
benchmarks' JSON, and whether the goal is met.

"Before" is, where the benchmark measures both in one run, the same run's other variant
(the triggerer's polling against its watch, the Spark job at the baseline revision
against this one); otherwise the figures published before issue 25's changes, kept
verbatim in docs/benchmarks/before-issue-25/ (the date of each is in its machine block).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import results, table, triggerer

BEFORE_DIR = "before-issue-25"

Figures = dict[str, dict[str, Any] | None]


def _freshness(body: dict[str, Any] | None) -> dict[str, Any] | None:
    if not body:
        return None
    rows = [r for r in body["rows"] if float(r["events_per_s"]) == 200.0]
    return max(rows, key=lambda r: float(r["duration_s"]), default=None)


def _e2e(body: dict[str, Any] | None, events: int) -> dict[str, Any] | None:
    if not body:
        return None
    return next(
        (r for r in body["runs"] if r["events"] == events and r["state"] == "success"), None
    )


def _run_seconds(body: dict[str, Any] | None, events: int) -> float | None:
    run = _e2e(body, events)
    return None if run is None else float(run["run_seconds"])


def _spark_stage(body: dict[str, Any] | None, events: int) -> float | None:
    run = _e2e(body, events)
    return None if run is None else float(run["stage_seconds"]["spark_transform"])


def _spark_job(body: dict[str, Any] | None, variant: str) -> float | None:
    if not body:
        return None
    run = next((r for r in body["runs"] if r["variant"] == variant and r["events"] == 10_000), None)
    return None if run is None else float(run["submit_wall_seconds"])


def _waits(body: dict[str, Any] | None, mode: str, paced: bool = False) -> dict[str, Any] | None:
    """The triggerer benchmark's 1,000 waits of `mode`, whose applications all completed at
    once or (`paced`) at a rate."""
    if not body:
        return None
    sizes = [
        s
        for s in body["sizes"]
        if s.get("mode", "poll") == mode
        and s["waits"] == 1000
        and (s.get("completions_per_second") is not None) == paced
    ]
    return sizes[0] if sizes else None


def _consume_ratio(body: dict[str, Any] | None, field: str = "cpu_seconds") -> float | None:
    """project / raw CPU: `cpu_seconds` is each variant's whole process (as issue 25's
    figure was taken), `consume_cpu_seconds` the consume work alone (absent before)."""
    if not body or field not in body["variants"]["raw"]:
        return None
    variants = body["variants"]
    return float(variants["project"][field]) / float(variants["raw"][field])


def _s(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1f} s"


def _under(value: float | None, goal: float) -> bool | None:
    return None if value is None else value < goal


def rows(now: Figures, before: Figures) -> list[list[str]]:
    out: list[list[str]] = []

    def add(figure: str, was: str, is_: str, goal: str, met: bool | None) -> None:
        verdict = "not measured" if met is None else ("met" if met else "NOT met")
        out.append([figure, was, is_, goal, verdict])

    fresh_now, fresh_before = _freshness(now.get("freshness")), _freshness(before.get("freshness"))

    def fresh(row: dict[str, Any] | None) -> str:
        if row is None:
            return "not measured"
        return (
            f"{row['p50_s']:.0f} s / {row['p95_s']:.0f} s ({row['duration_s']:.0f} s stream, "
            f"{row['not_loaded']} not loaded)"
        )

    add(
        "freshness p50 / p95 at 200 events/s",
        fresh(fresh_before),
        fresh(fresh_now),
        "< 45 s / < 75 s for 10 min, no backlog",
        None
        if fresh_now is None
        else fresh_now["p50_s"] < 45
        and fresh_now["p95_s"] < 75
        and fresh_now["duration_s"] >= 600
        and fresh_now["not_loaded"] == 0,
    )
    for label, pick, events, goal in (
        ("run of 10,000 events, end to end", _run_seconds, 10_000, 25.0),
        ("spark_transform for 10,000 events", _spark_stage, 10_000, 15.0),
        ("run of 1,000,000 events, end to end", _run_seconds, 1_000_000, 60.0),
    ):
        value: Callable[[dict[str, Any] | None, int], float | None] = pick
        after = value(now.get("e2e"), events)
        add(label, _s(value(before.get("e2e"), events)), _s(after), f"< {goal:.0f} s",
            _under(after, goal))  # fmt: skip
    job = now.get("spark_job")
    after = _spark_job(job, "current")
    add(
        "the Spark job alone, 10,000 events (spark-submit; before = baseline revision, same run)",
        _s(_spark_job(job, "baseline")),
        _s(after),
        "< 15 s",
        _under(after, 15.0),
    )
    poll, watch = _waits(now.get("triggerer"), "poll"), _waits(now.get("triggerer"), "watch")

    def waits(f: dict[str, Any] | None) -> str:
        if f is None:
            return "not measured"
        p95 = f["resume_delay_seconds"]["p95"]
        rate = f.get("api_requests_per_second", f["api_get_per_second"])
        return ("-" if p95 is None else f"p95 {p95:.2f} s") + f", {rate:.1f} requests/s"

    add(
        "SparkApplication finished -> task resumed, 1,000 waits (before = polling, same run)",
        waits(poll),
        waits(watch),
        "p95 < 1 s, API load no higher than polling's",
        None
        if watch is None or poll is None or watch["resume_delay_seconds"]["p95"] is None
        else triggerer.resume_p95_met(watch)
        and watch["api_requests_per_second"] <= poll["api_requests_per_second"],
    )
    paced = _waits(now.get("triggerer"), "watch", paced=True)
    if paced is not None:
        add(
            f"the same, the 1,000 applications completing at {paced['completions_per_second']:g}/s "
            "(a Poisson stream) instead of at once",
            "not measured",
            waits(paced),
            "p95 < 1 s",
            triggerer.resume_p95_met(paced),
        )
    ratio_now, ratio_before = (
        _consume_ratio(now.get("consume")),
        _consume_ratio(before.get("consume")),
    )
    add(
        "consume CPU per event, project / raw librdkafka (same run)",
        "not measured" if ratio_before is None else f"{ratio_before:.1f}x",
        "not measured" if ratio_now is None else f"{ratio_now:.1f}x",
        "<= 1.5x",
        None if ratio_now is None else ratio_now <= 1.5,
    )
    work_now = _consume_ratio(now.get("consume"), "consume_cpu_seconds")
    work_before = _consume_ratio(before.get("consume"), "consume_cpu_seconds")
    add(
        "the same, the consume work alone (without the process's start and imports, "
        "which the row above counts in both)",
        "not measured" if work_before is None else f"{work_before:.1f}x",
        "not measured" if work_now is None else f"{work_now:.1f}x",
        "<= 1.5x",
        None if work_now is None else work_now <= 1.5,
    )
    return out


def section(now: Figures, results_dir: Path) -> str:
    before_dir = results_dir / BEFORE_DIR
    before = {n: results.read(before_dir, n) for n in ("e2e", "freshness", "consume")}
    dates = ", ".join(
        f"{name} {body['machine']['time_utc'][:10]}" for name, body in before.items() if body
    )
    return f"""## Issue 25: freshness goals, before and after

{__doc__.split(chr(10) + chr(10), 1)[1].strip()} Published before: {dates}.

{table.render(["figure", "before", "after", "goal", "verdict"], rows(now, before))}
"""


README = "README.md"
BEGIN, END = "<!-- freshness:begin (bench.report) -->", "<!-- freshness:end -->"


def readme_paragraph(now: Figures) -> str:
    """The figures of the README's freshness paragraph, from the benchmarks' JSON."""
    fresh = _freshness(now.get("freshness"))
    run = _e2e(now.get("e2e"), 10_000)
    parts = []
    if fresh is not None:
        parts.append(
            f"Measured on the benchmark machine (2 cores, the whole platform on it, chart "
            f"defaults, event-driven): at {fresh['events_per_s']:.0f} events/s for "
            f"{fresh['duration_s']:.0f} s, an event reached the dashboard "
            f"{fresh['p50_s']:.0f} s after it was published at the median, "
            f"{fresh['p95_s']:.0f} s at p95 and {fresh['max_s']:.0f} s at most, in "
            f"{fresh['runs']} runs."
        )
    if run is not None:
        stage = run["stage_seconds"].get("spark_transform", 0.0)
        job = run.get("job") or {}
        outside = job.get("outside_job_seconds")
        parts.append(
            f"A run of 10,000 events took {run['run_seconds']:.0f} s end to end, "
            f"{stage:.0f} s of it in spark_transform"
            + (
                f" ({outside:.0f} s of those outside the job itself: the submission, the "
                "JVM's start and stop, the hand-over back to Airflow)."
                if outside is not None
                else "."
            )
        )
    if not parts:
        return "Not measured yet: run `make bench`."
    return " ".join(parts) + " Every figure: [docs/benchmarks.md](docs/benchmarks.md)."


def update_readme(readme: Path, now: Figures) -> bool:
    """Replace the text between the README's freshness markers; False if it has none."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{readme_paragraph(now)}\n{END}{tail}")
    return True
