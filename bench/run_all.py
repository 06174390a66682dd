"""`make bench`: every benchmark at full size, then docs/benchmarks.md, in < 60 minutes.

    python -m bench.run_all [--budget 3600] [--keep-platform]

Brings the benchmark platform up (bench.platform), runs chart, parse, consume, ledger,
the Spark job alone (before and after), the tables' history (many batches with and
without the job's table maintenance), triggerer (polling and the watch) and freshness
(one 10-minute stream at 200 events/s, event-driven), gives the end-to-end
benchmark what is left of the budget (it skips the sizes that would not fit and
reports them), regenerates the report, and stops the platform
(by PID, through the project's own down functions) unless --keep-platform.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import machine, pyenv

#: Seconds kept for the report and stopping the platform.
RESERVE = 90.0


def step(name: str, *args: str) -> float:
    print(f"\n=== {name}: python -m bench.{name} {' '.join(args)}", flush=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", f"bench.{name}", *args], check=True)
    seconds = time.monotonic() - started
    print(f"=== {name}: {seconds:.0f} s", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--budget", type=float, default=3600.0)
    parser.add_argument("--keep-platform", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(machine.headline(machine.describe()))
    pyenv.enable_for_this_process_tree()
    try:
        step("platform", "up")
        for name in (
            "chart",
            "parse",
            "consume",
            "ledger",
            "spark_job",
            "table_history",
            "triggerer",
            "freshness",
        ):
            step(name)
        left = args.budget - (time.monotonic() - started) - RESERVE
        step("e2e", "--budget", f"{max(left, 0.0):.0f}")
    finally:
        if not args.keep_platform:
            step("platform", "down")
    step("report")
    print(f"\nmake bench: {time.monotonic() - started:.0f} s (budget {args.budget:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
