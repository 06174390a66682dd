"""The platform the end-to-end and triggerer benchmarks run on: the demo's (control
plane, data services, the chart installed with values/local.yaml, Airflow 3 as local
processes, the spark-operator stand-in), with two differences:

- ONE triggerer (the capacity benchmark measures one triggerer; the demo runs two);
- a second DAG bundle, bench/airflow_dags, holding the triggerer benchmark's DAGs
  beside the real dags/ folder (Airflow 3 DAG bundles; the product's DAGs are untouched);
- the dag-processor parses a file again after 10 minutes, not 30 s: nothing changes a
  DAG file during a benchmark, and the triggerer benchmark's file (2,000 DAGs) took ~6 s
  of a core every ~36 s, load the freshness and end-to-end figures then carried.

Processes are started with a bytecode cache, as the images have (bench.pyenv).

    python -m bench.platform up | down
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any

from bench import pyenv
from localplatform import paths
from localplatform.airflow_local import LocalAirflow
from localplatform.demo import Demo

BENCH_DAGS = paths.REPO_ROOT / "bench" / "airflow_dags"
BUNDLES = [
    {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {},
    },
    {
        "name": "bench",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(BENCH_DAGS), "refresh_interval": 30},
    },
]
#: Holds the triggerer benchmark's tasks once their trigger fired (0 slots): they stay
#: "scheduled" instead of flooding the one Celery worker with a thousand tasks.
HOLD_POOL = "bench_hold"
#: The dag-processor's min_file_process_interval on the benchmark platform.
REPARSE_SECONDS = 600


class BenchDemo(Demo):
    def airflow(self, release: dict[str, Any]) -> LocalAirflow:
        base = super().airflow(release)
        env = {
            **base.config.env,
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(BUNDLES),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(REPARSE_SECONDS),
        }
        return LocalAirflow(dataclasses.replace(base.config, env=env, triggerers=1))

    def up(self) -> dict[str, float]:
        pyenv.enable_for_this_process_tree()
        timings = super().up()
        self._airflow_from_disk().cli("pools", "set", HOLD_POOL, "0", "bench: hold resumed waits")
        return timings

    def wait_for_dag_id(self, dag_id: str, timeout: float = 600) -> None:
        """Until the dag-processor has registered `dag_id` (the bench bundle's DAGs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._db() as conn, conn.cursor() as cur:
                cur.execute("select count(*) from dag where dag_id = %s", (dag_id,))
                if cur.fetchone()[0]:
                    return
            time.sleep(2)
        raise TimeoutError(f"the dag-processor did not register {dag_id} in {timeout} s")

    def airflow_handle(self) -> LocalAirflow:
        return self._airflow_from_disk()

    def db(self) -> Any:
        return self._db()

    def token(self) -> str:
        return self._token(self._airflow_from_disk())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    demo = BenchDemo()
    if args == ["up"]:
        timings = demo.up()
        print("bench platform up: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        return 0
    if args == ["down"]:
        left = demo.down()
        print("bench platform stopped" if not left else f"STILL RUNNING: {left}")
        return 1 if left else 0
    print("usage: python -m bench.platform up | down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
