"""Triggerer capacity: N concurrent SparkApplication waits in ONE real Airflow triggerer.

    python -m bench.triggerer [--waits 100,500,1000] [--modes poll,watch] [--out DIR] [--smoke]

On the benchmark platform (bench.platform: one triggerer), one run of each of N one-task
DAGs (bench/airflow_dags): tasks that start in the triggerer (start_from_trigger) with
this project's trigger, orders_etl.triggers.sparkapplication.SparkApplicationTrigger,
each waiting on its own SparkApplication against the local kube-apiserver, in one of
two modes (the pipeline's `spark.watch`):

- poll (`bench_wait_<i>`): a GET per wait every 10 s (spark.poll_interval_seconds);
- watch (`bench_watch_<i>`, the default): every wait reads the namespace's one shared
  watch (orders_etl.triggers.sparkapplication_watch) and wakes when its application
  changes.

Per mode and N:

1. create N SparkApplications (nothing reconciles them), start the N runs (REST API),
   wait until every task is deferred and every trigger has started (its trigger log
   says so), then one more poll interval;
2. steady state, over max(3 polls, 30 s): requests/s on sparkapplications per verb from
   the API server's own apiserver_request_total, the WATCH streams open on them
   (apiserver_longrunning_requests), the triggerer's CPU (its process tree, /proc) and RSS;
3. patch every application's status subresource to COMPLETED, recording when each
   patch returned; a task has resumed when Airflow's metadata DB shows it left
   `deferred` (its updated_at, written by the triggerer's event submission);
   delay = resume - patch. The triggerer's requests from the first run's start to the
   last resume are counted too (requests per wait, the benchmark's own PATCHes left out).

Targets: (issue 9) polling: 1,000 waits in one triggerer with every resume delay < 2x the
poll interval, API load growing no faster than linearly with N; (issue 25) watch: resume
p95 < 1 s at 1,000 waits, with API load no higher than polling's.
`--smoke` only checks the benchmark DAG file and the cluster's metrics endpoint.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import apiserver_metrics, machine, procstat, results, table
from bench.platform import BENCH_DAGS, BenchDemo
from localplatform.cluster import Cluster
from orders_contract.sparkapplication import GROUP, PLURAL, VERSION

NAMESPACE = "bench-triggerer"
POLL_INTERVAL = 10.0  # must match bench/airflow_dags/bench_trigger_waits.py
#: Mode -> the DAG id prefix of its family (bench/airflow_dags/bench_trigger_waits.py).
MODES = {"poll": "bench_wait", "watch": "bench_watch"}
#: The API server's verbs for a trigger's requests (the benchmark's own PATCHes excluded).
READ_VERBS = ("GET", "LIST", "WATCH")
#: Linear growth allows this much slack on the per-wait request rate (measurement noise).
LINEAR_SLACK = 1.15
#: Completions per second of the paced run (--paced-rate): 1,000 concurrent applications
#: that run about 50 s each (the Spark job alone takes 30-45 s here) finish at about 20/s.
PACED_RATE = 20.0

APPLICATION: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "SparkApplication",
    "spec": {
        "type": "Python",
        "mode": "cluster",
        "image": "orders-etl/spark:3.5.9",
        "sparkVersion": "3.5.9",
        "mainApplicationFile": "local:///opt/orders-etl/spark-jobs/main.py",
        "restartPolicy": {"type": "Never"},
        "driver": {"cores": 1, "memory": "512m"},
        "executor": {"cores": 1, "instances": 1, "memory": "512m"},
    },
}


def custom_objects(cluster: Cluster) -> Any:
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(str(cluster.kubeconfig)))


def name_of(index: int) -> str:
    return f"bench-wait-{index:04d}"


def create_applications(api: Any, count: int) -> None:
    def create(index: int) -> None:
        body = {**APPLICATION, "metadata": {"name": name_of(index), "namespace": NAMESPACE}}
        api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def completion_offsets(count: int, rate: float | None) -> list[float]:
    """When each application completes, in seconds after the first: all at once (`rate`
    None, as fast as the patches go), or a Poisson stream of `rate` completions/s (seeded:
    the same offsets every run)."""
    if rate is None:
        return [0.0] * count
    gaps = random.Random(count).expovariate  # noqa: S311 (a benchmark schedule, not a secret)
    offsets, at = [], 0.0
    for _ in range(count):
        offsets.append(at)
        at += gaps(rate)
    return offsets


def complete_applications(api: Any, count: int, rate: float | None = None) -> dict[int, float]:
    """Patch every status to COMPLETED, at once or at `rate` per second (completion_offsets);
    returns when each patch was acknowledged."""
    offsets = completion_offsets(count, rate)
    start = time.monotonic()

    def patch(index: int) -> tuple[int, float]:
        time.sleep(max(0.0, start + offsets[index] - time.monotonic()))
        status = {  # what spark-operator v2 writes (the CRD requires driverInfo)
            "applicationState": {"state": "COMPLETED", "errorMessage": ""},
            "driverInfo": {"podName": f"{name_of(index)}-driver"},
            "sparkApplicationId": f"spark-{name_of(index)}",
            "executorState": {},
        }
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, NAMESPACE, PLURAL, name_of(index), {"status": status}
        )
        return index, time.time()

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(patch, range(count)))


def dag_id_of(mode: str, index: int) -> str:
    return f"{MODES[mode]}_{index:04d}"


def _like(mode: str) -> str:
    return MODES[mode].replace("_", "\\_") + "\\_%"


def deferred_state(demo: BenchDemo, mode: str, run_id: str) -> dict[str, int]:
    with demo.db() as conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) filter (where ti.state = 'deferred'), "
            "count(*) filter (where t.triggerer_id is not null) "
            "from task_instance ti left join trigger t on t.id = ti.trigger_id "
            "where ti.dag_id like %s and ti.run_id=%s",
            (_like(mode), run_id),
        )
        deferred, assigned = cur.fetchone()
    return {"deferred": int(deferred), "assigned": int(assigned)}


def resumed(demo: BenchDemo, mode: str, run_id: str) -> dict[int, float]:
    with demo.db() as conn, conn.cursor() as cur:
        cur.execute(
            "select dag_id, extract(epoch from updated_at) from task_instance "
            "where dag_id like %s and run_id=%s "
            "and state is distinct from 'deferred'",
            (_like(mode), run_id),
        )
        now = time.time()
        return {int(d.rsplit("_", 1)[1]): float(u) if u else now for d, u in cur.fetchall()}


def api_call(demo: BenchDemo, token: str, method: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
        f"{demo.airflow_handle().api_url}/api/v2/{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        response.read()


def start_runs(demo: BenchDemo, mode: str, count: int, run_id: str) -> None:
    """One run of each of the first `count` benchmark DAGs, through the REST API."""
    token = demo.token()
    body = {"dag_run_id": run_id, "logical_date": None}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(
            lambda i: api_call(demo, token, "POST", f"dags/{dag_id_of(mode, i)}/dagRuns", body),
            range(count),
        ))  # fmt: skip


def end_runs(demo: BenchDemo, mode: str, count: int, run_id: str) -> None:
    token = demo.token()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(
            lambda i: api_call(demo, token, "PATCH", f"dags/{dag_id_of(mode, i)}/dagRuns/{run_id}",
                               {"state": "failed"}),
            range(count),
        ))  # fmt: skip


def wait_for(check: Any, timeout: float, what: str, interval: float = 1.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


def _read_requests(counts: dict[str, float]) -> float:
    return sum(counts.get(verb, 0.0) for verb in READ_VERBS)


def measure(
    demo: BenchDemo, api: Any, mode: str, count: int, rate: float | None = None
) -> dict[str, Any]:
    """One mode at N waits; the applications complete at once, or at `rate` per second."""
    run_id = f"bench__{mode}__{count}__{time.strftime('%Y%m%dT%H%M%S')}"
    cluster = demo.cluster
    cluster.kubectl("delete", "sparkapplications", "--all", "-n", NAMESPACE, timeout=300)
    t0 = time.monotonic()
    create_applications(api, count)
    create_seconds = time.monotonic() - t0
    demo.wait_for_dag_id(dag_id_of(mode, count - 1))
    airflow = demo.airflow_handle()
    at_start = apiserver_metrics.request_counts(cluster, PLURAL)
    started_at = time.monotonic()
    start_runs(demo, mode, count, run_id)
    try:
        to_deferred = wait_for(
            lambda: deferred_state(demo, mode, run_id)["deferred"] == count,
            600, f"{count} tasks were not deferred",
        )  # fmt: skip
        log_dir = airflow.run_dir / "logs"
        start_timeout = 120 + 0.6 * count
        running = 0

        def all_running() -> bool:
            nonlocal running
            running = started_triggers(log_dir, mode, run_id)
            return running == count

        try:
            wait_for(all_running, start_timeout, "", 2.0)
        except TimeoutError:
            print(f"  {mode} {count} waits: only {running} triggers started in "
                  f"{start_timeout:.0f} s")  # fmt: skip
        to_running = time.monotonic() - started_at
        time.sleep(POLL_INTERVAL + 2)  # every trigger is past its first poll
        pid = next(p for p in airflow.processes() if p.name == "triggerer-0").pid()
        assert pid is not None, "the triggerer is not running"
        window = max(3 * POLL_INTERVAL, 30.0)
        before = apiserver_metrics.request_counts(cluster, PLURAL)
        cpu0, w0 = procstat.sample_tree(pid), time.monotonic()
        rss = []
        while time.monotonic() - w0 < window:
            rss.append(procstat.sample_tree(pid).rss_mib)
            time.sleep(1.0)
        after, cpu1 = apiserver_metrics.request_counts(cluster, PLURAL), procstat.sample_tree(pid)
        elapsed = time.monotonic() - w0
        watches = apiserver_metrics.open_watches(cluster, PLURAL)
        running_in_window = started_triggers(log_dir, mode, run_id)
        in_window = {v: after.get(v, 0.0) - before.get(v, 0.0) for v in READ_VERBS}
        patched = complete_applications(api, count, rate)
        patch_span = max(patched.values()) - min(patched.values())
        seen: dict[int, float] = {}

        def all_resumed() -> bool:
            seen.update({i: t for i, t in resumed(demo, mode, run_id).items() if i not in seen})
            return len(seen) == count

        resume_timeout = 2 * POLL_INTERVAL + 120 + (count / rate if rate else 0.0)
        try:
            wait_for(all_resumed, resume_timeout, "", 0.2)
        except TimeoutError:
            print(f"  {mode} {count} waits: only {len(seen)} resumed within "
                  f"{resume_timeout:.0f} s")  # fmt: skip
        delays = sorted(seen[i] - patched[i] for i in seen)
        # Tasks resumed per second from the first completion to the last resume: what the
        # triggerer hands back to Airflow when completions come faster than that.
        resume_span = max(seen.values(), default=0.0) - min(patched.values())
        at_end = apiserver_metrics.request_counts(cluster, PLURAL)
    finally:
        end_runs(demo, mode, count, run_id)
        cluster.kubectl(
            "delete", "sparkapplications", "--all", "-n", NAMESPACE, "--wait=false", timeout=300
        )
    whole = _read_requests(at_end) - _read_requests(at_start)
    return {
        "mode": mode,
        "waits": count,
        "run_id": run_id,
        "create_seconds": create_seconds,
        "seconds_to_all_deferred": to_deferred,
        "seconds_to_all_running": to_running,
        "running_at_window_start": running,
        "running_at_window_end": running_in_window,
        "window_seconds": elapsed,
        "api_get_per_second": in_window["GET"] / elapsed,
        "api_requests_per_second": sum(in_window.values()) / elapsed,
        "api_requests_in_window": in_window,
        "api_get_per_second_expected": count / POLL_INTERVAL if mode == "poll" else 0.0,
        "open_watches": watches,
        "api_requests_whole_wait": whole,
        "api_requests_per_wait": whole / count,
        "seconds_whole_wait": time.monotonic() - started_at,
        "triggerer_cpu_percent": 100 * (cpu1.cpu_seconds - cpu0.cpu_seconds) / elapsed,
        "triggerer_rss_mib_max": max(rss),
        "triggerer_processes": cpu1.processes,
        "patch_span_seconds": patch_span,
        "completions_per_second": rate,
        "resumed_per_second": len(seen) / resume_span if resume_span > 0 else None,
        "resumed": len(seen),
        "resume_timeout_seconds": resume_timeout,
        "resume_delay_seconds": {
            "median": statistics.median(delays) if delays else None,
            "p95": delays[int(0.95 * (len(delays) - 1))] if delays else None,
            "max": delays[-1] if len(delays) == count else None,
            "min": delays[0] if delays else None,
        },
    }


def started_triggers(log_dir: Path, mode: str, run_id: str) -> int:
    """Triggers the triggerer has started: each writes "... starting" first to its
    task's trigger log (attempt=1.log.trigger.<triggerer id>.log)."""
    found = 0
    pattern = f"dag_id={MODES[mode]}_*/run_id={run_id}/task_id=wait/attempt=*.log.trigger.*.log"
    for path in log_dir.glob(pattern):
        try:
            if "starting" in path.read_text(errors="replace")[:4000]:
                found += 1
        except OSError:
            continue
    return found


def _seconds(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def figures_of(body: dict[str, Any], mode: str, paced: bool = False) -> list[dict[str, Any]]:
    """One mode's figures, by N (results written before the watch mode are all poll): those
    whose applications completed at once, or (`paced`) those completing at a rate."""
    return [
        f
        for f in body["sizes"]
        if f.get("mode", "poll") == mode and (f.get("completions_per_second") is not None) == paced
    ]


def _completions(f: dict[str, Any]) -> str:
    rate = f.get("completions_per_second")
    if rate is not None:
        return f"{rate:g}/s (Poisson)"
    return "at once" + (
        "" if "patch_span_seconds" not in f else f" ({f['patch_span_seconds']:.1f} s)"
    )


def summary(body: dict[str, Any]) -> str:
    rows = [
        [f.get("mode", "poll"), f"{f['waits']:,}",
         f"{f.get('api_requests_per_second', f['api_get_per_second']):.1f}",
         str(f.get("open_watches", "-")),
         "-" if "api_requests_per_wait" not in f else f"{f['api_requests_per_wait']:.2f}",
         f"{f['triggerer_cpu_percent']:.0f}%",
         f"{f['triggerer_rss_mib_max']:.0f}", f"{f['resumed']:,}/{f['waits']:,}",
         _seconds(f["resume_delay_seconds"]["median"], 2),
         _seconds(f["resume_delay_seconds"]["p95"], 2),
         _seconds(f["resume_delay_seconds"]["max"], 2),
         _completions(f), _seconds(f.get("resumed_per_second"), 0),
         f"{f['running_at_window_start']:,} in {f['seconds_to_all_running']:.0f} s"]
        for f in body["sizes"]
    ]  # fmt: skip
    return table.render(["mode", "waits", "API requests/s", "open watches",
                         "requests per wait", "triggerer CPU", "RSS MiB",
                         "resumed", "resume p50 s", "p95 s", "max s", "completions",
                         "resumed/s", "triggers started"], rows)  # fmt: skip


def targets_for(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    targets: dict[str, dict[str, Any]] = {}
    poll, watch = figures_of(body, "poll"), figures_of(body, "watch")
    if poll:
        largest, smallest = poll[-1], poll[0]
        per_wait = [f["api_get_per_second"] / f["waits"] for f in poll]
        worst = largest["resume_delay_seconds"]["max"]
        delay_ok = largest["waits"] >= 1000 and worst is not None and worst < 2 * POLL_INTERVAL
        delay_text = (
            f"max {worst:.1f} s" if worst is not None
            else f"{largest['resumed']:,} of {largest['waits']:,} resumed within "
            f"{largest['resume_timeout_seconds']:.0f} s"
        )  # fmt: skip
        behind = per_wait[-1] < 0.9 / POLL_INTERVAL
        targets["polling, 1,000 waits: resume delay < 2x poll interval"] = {
            "value": f"{delay_text} at {largest['waits']:,} waits (poll {POLL_INTERVAL:.0f} s)",
            "met": delay_ok,
        }
        targets["polling: API load grows no faster than linearly"] = {
            "value": f"{per_wait[0]:.3f} GET/s per wait at {smallest['waits']:,}, "
            f"{per_wait[-1]:.3f} at {largest['waits']:,}"
            + (f" (one poll per {POLL_INTERVAL:.0f} s would be {1 / POLL_INTERVAL:.3f}: "
               "the triggerer fell behind its polls)" if behind else ""),
            "met": per_wait[-1] <= per_wait[0] * LINEAR_SLACK,
        }  # fmt: skip
    if watch:
        largest = watch[-1]
        rate = largest.get("resumed_per_second")
        targets["watch, 1,000 waits: resume p95 < 1 s"] = _resume_p95_target(
            largest,
            " completing at once"
            + ("" if rate is None else f" (the triggerer resumed {rate:.0f} tasks/s)"),
        )
        same_n = {f["waits"]: f for f in poll}
        if largest["waits"] in same_n:
            polled = same_n[largest["waits"]]
            ratio = largest["api_requests_per_second"] / max(
                polled["api_requests_per_second"], 1e-9
            )
            targets["watch: API load no higher than polling's"] = {
                "value": f"{largest['api_requests_per_second']:.2f} requests/s and "
                f"{largest['open_watches']} open watch(es) vs polling's "
                f"{polled['api_requests_per_second']:.1f} requests/s at "
                f"{largest['waits']:,} waits; {largest['api_requests_per_wait']:.3f} vs "
                f"{polled['api_requests_per_wait']:.2f} requests per wait",
                "met": ratio <= 1.0
                and largest["api_requests_per_wait"] <= polled["api_requests_per_wait"],
            }
    for paced in figures_of(body, "watch", paced=True)[-1:]:
        label = f"watch, 1,000 waits completing at {paced['completions_per_second']:g}/s"
        targets[f"{label}: resume p95 < 1 s"] = _resume_p95_target(paced, "")
    return targets


def resume_p95_met(f: dict[str, Any]) -> bool:
    """Issue 25's goal for one figure: 1,000 waits or more, every task resumed, p95 < 1 s."""
    p95 = f["resume_delay_seconds"]["p95"]
    return f["waits"] >= 1000 and f["resumed"] == f["waits"] and p95 is not None and p95 < 1.0


def _resume_p95_target(f: dict[str, Any], how: str) -> dict[str, Any]:
    p95 = f["resume_delay_seconds"]["p95"]
    complete = f["resumed"] == f["waits"]
    return {
        "value": (f"p95 {p95:.2f} s" if p95 is not None else "none resumed")
        + f" at {f['waits']:,} waits{how}"
        + ("" if complete else f" ({f['resumed']:,} resumed)"),
        "met": resume_p95_met(f),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.triggerer", description=__doc__)
    parser.add_argument("--waits", default="100,500,1000")
    parser.add_argument("--modes", default="poll,watch", help=f"of {', '.join(MODES)}")
    parser.add_argument(
        "--paced-rate", type=float, default=PACED_RATE,
        help="then the watch at the largest N once more, its applications completing at this "
        "many per second (a Poisson stream); 0: not",
    )  # fmt: skip
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.waits.split(","))
    modes = [m for m in MODES if m in args.modes.split(",")]
    if not modes:
        parser.error(f"--modes: none of {', '.join(MODES)}")
    print(machine.headline(machine.describe()))
    demo = BenchDemo()
    if args.smoke:
        dag_file = BENCH_DAGS / "bench_trigger_waits.py"
        compile(dag_file.read_text(), str(dag_file), "exec")
        counts = apiserver_metrics.request_counts(demo.cluster, "namespaces")
        watches = apiserver_metrics.open_watches(demo.cluster, "namespaces")
        print(f"{dag_file.name} compiles; apiserver_request_total(namespaces) = {counts}; "
              f"open watches on namespaces: {watches}")  # fmt: skip
        return 0
    demo.cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    api = custom_objects(demo.cluster)
    figures = [measure(demo, api, mode, n) for mode in modes for n in sizes]
    if "watch" in modes and args.paced_rate > 0:
        figures.append(measure(demo, api, "watch", sizes[-1], args.paced_rate))
    body = {"driver": "Airflow's real triggerer (one), real trigger instances",
            "poll_interval_seconds": POLL_INTERVAL, "sizes": figures, "smoke": False}  # fmt: skip
    targets = targets_for(body)
    body["targets"] = targets
    print(summary(body))
    print(results.target_lines(targets))
    results.write(args.out, "triggerer", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
