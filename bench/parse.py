"""DAG parse time: dags/orders_etl.py parsed in fresh processes, median over repeats.

    python -m bench.parse [--repeats 15] [--out DIR] [--smoke]

Each repeat is a new interpreter that first imports Airflow's core (as the dag-processor
has it loaded before it starts a file's parse), then builds a DagBag of the one file,
the way the dag-processor parses it. Reported: Airflow's own figure for the file
(DagBag's FileLoadStat.duration: the import of the file and everything it imports,
plus DAG validation), the core import before it, and the whole process's wall time.
The configuration is the chart's (executors CeleryExecutor,KubernetesExecutor), with
bytecode cached as in the image (bench.pyenv); one warm-up parse is not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from typing import Any

from bench import machine, procstat, pyenv, results, table
from localplatform import paths

DAG_FILE = paths.REPO_ROOT / "dags" / "orders_etl.py"
#: Target (issue 9): median parse < 0.2 s.
TARGET_SECONDS = 0.2

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import airflow
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t2 = time.perf_counter()
if bag.import_errors or not bag.dag_ids:
    raise SystemExit(f"parse failed: {bag.import_errors}")
stat = bag.dagbag_stats[0]
print(json.dumps({"core_import": t1 - t0, "dagbag": t2 - t1,
                  "file_duration": stat.duration.total_seconds(),
                  "dags": stat.dag_num, "tasks": stat.task_num}))
"""


_IMPORTTIME_CHILD = """
import sys
import airflow
from airflow.dag_processing.dagbag import DagBag
print("BENCH-MARK", file=sys.stderr, flush=True)
DagBag(dag_folder=sys.argv[1])
"""


def heaviest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Packages the parse imports (beyond Airflow's core), by their largest cumulative
    import time (nested: kubernetes is counted inside orders_etl.dag too),
    from one more fresh process run with `python -X importtime`."""
    usage = procstat.run_child(
        [sys.executable, "-X", "importtime", "-c", _IMPORTTIME_CHILD, str(DAG_FILE)], env=env
    )
    lines = usage.stderr.split("BENCH-MARK", 1)[-1].splitlines()
    found: dict[str, float] = {}
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue
        name = name.strip()
        package = name if name.startswith("orders_etl") else name.split(".")[0]
        if package.startswith("orders_etl") and name != "orders_etl.dag":
            continue
        found[package] = max(found.get(package, 0.0), int(cumulative) / 1e6)
    return sorted(found.items(), key=lambda item: -item[1])[:top]


def summary(body: dict[str, Any]) -> str:
    median, runs = body["median"], body["runs"]
    low = min(r["file_duration"] for r in runs)
    high = max(r["file_duration"] for r in runs)
    return table.render(
        ["figure (median of fresh processes)", "value"],
        [
            ["repeats", body["repeats"]],
            ["parse of dags/orders_etl.py (Airflow's file duration)",
             f"{median['file_duration']:.3f} s"],
            ["  min .. max", f"{low:.3f} .. {high:.3f} s"],
            ["DagBag() wall time", f"{median['dagbag']:.3f} s"],
            ["Airflow core import before the parse", f"{median['core_import']:.3f} s"],
            ["whole process wall time", f"{median['process_wall']:.3f} s"],
            ["peak RSS", f"{median['peak_rss_mib']:.0f} MiB"],
            ["tasks in the DAG", runs[0]["tasks"]],
            *[[f"import of {name} (cumulative, one run)", f"{seconds:.3f} s"]
              for name, seconds in body.get("heaviest_imports", [])],
        ],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parse", description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    repeats = min(args.repeats, 2) if args.smoke else args.repeats
    print(machine.headline(machine.describe()))
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as home:
        env = {
            **pyenv.with_bytecode_cache(),
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor,KubernetesExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        warmup = 0 if args.smoke else 1  # the first run warms the bytecode cache
        for index in range(repeats + warmup):
            usage = procstat.run_child([sys.executable, "-c", _CHILD, str(DAG_FILE)], env=env)
            if usage.returncode != 0:
                raise RuntimeError(f"parse failed:\n{usage.stderr[-3000:]}")
            body = json.loads(usage.stdout.strip().splitlines()[-1])
            body["process_wall"] = usage.wall_seconds
            body["peak_rss_mib"] = usage.peak_rss_mib
            if index >= warmup:
                runs.append(body)
        heaviest = heaviest_imports(env)
    median = {
        key: statistics.median(r[key] for r in runs)
        for key in ("file_duration", "dagbag", "core_import", "process_wall", "peak_rss_mib")
    }
    met = median["file_duration"] < TARGET_SECONDS
    body = {
        "repeats": repeats,
        "median": median,
        "runs": runs,
        "heaviest_imports": heaviest,
        "smoke": args.smoke,
        "targets": {"DAG parse < 0.2 s": {"value": f"{median['file_duration']:.3f} s", "met": met}},
    }
    print(summary(body))
    print(results.target_lines(body["targets"]))
    results.write(args.out, "parse", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
