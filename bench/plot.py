"""The figure of docs/benchmarks.md: consume throughput, end-to-end scaling, triggerer load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from localplatform.demo import STAGES


def draw(figures: dict[str, dict[str, Any] | None], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    consume, e2e, trig = figures.get("consume"), figures.get("e2e"), figures.get("triggerer")

    ax = axes[0]
    if consume:
        names = list(consume["variants"])
        rates = [consume["variants"][n]["events_per_second"] for n in names]
        bars = ax.bar(names, rates, color=["#888888", "#2b7bba", "#d95f02"][: len(names)])
        ax.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], fontsize=8)
        ax.set_ylabel("events/s")
        ax.set_title(f"Consume, {consume['events']:,} CDC events, 3 topics")
    else:
        ax.set_title("Consume: not measured")

    ax = axes[1]
    if e2e and e2e["runs"]:
        labels = [f"{r['events']:,}" for r in e2e["runs"]]
        bottom = [0.0] * len(labels)
        for stage in (*STAGES, "between stages"):
            values = [
                r["between_stages_seconds"] if stage == "between stages"
                else r["stage_seconds"].get(stage, 0.0)
                for r in e2e["runs"]
            ]  # fmt: skip
            ax.bar(labels, values, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xlabel("events in the batch")
        ax.set_ylabel("DAG run wall time, s")
        ax.set_title("End-to-end run, share of each stage")
        ax.legend(fontsize=7)
    else:
        ax.set_title("End-to-end: not measured")

    ax = axes[2]
    if trig:
        from bench.triggerer import figures_of

        twin = ax.twinx()
        for mode, color in (("poll", "#1b9e77"), ("watch", "#7570b3")):
            sizes = figures_of(trig, mode)
            if not sizes:
                continue
            waits = [s["waits"] for s in sizes]
            rate = [s.get("api_requests_per_second", s["api_get_per_second"]) for s in sizes]
            ax.plot(waits, rate, "o-", color=color, label=f"{mode}: API requests/s")
            twin.plot(waits, [s["resume_delay_seconds"]["p95"] for s in sizes], "s:",
                      color=color, label=f"{mode}: p95 resume delay")  # fmt: skip
        ax.set_xlabel("concurrent SparkApplication waits (one triggerer)")
        ax.set_ylabel("requests/s")
        ax.set_ylim(bottom=0)
        twin.set_ylabel("resume delay p95, s")
        twin.set_ylim(bottom=0)
        ax.set_title("Triggerer capacity")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
    else:
        ax.set_title("Triggerer: not measured")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
