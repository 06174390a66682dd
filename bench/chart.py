"""Chart: `helm template` time and the CPU/memory a default install requests.

    python -m bench.chart [--repeats 10] [--out DIR] [--smoke]

The default install is the chart's values plus the one required value (the database
Secret's name). Requests are summed over the long-running workloads (Deployments,
StatefulSets, DaemonSets) times their replicas, a pod counting
max(sum of its containers, largest init container) as the scheduler does. Hook Jobs
(migration, bootstrap) run once and are listed apart. Each values/*.yaml file is
rendered too, for comparison (values/e2e.yaml on top of the targets it completes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bench import machine, quantities, results, table
from localplatform import paths, versions

CHART = paths.REPO_ROOT / "charts" / "orders-etl"
REQUIRED = ["--set", "database.existingSecret=orders-etl-db"]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def helm_template(extra: list[str]) -> tuple[float, list[dict[str, Any]]]:
    argv = [
        str(paths.tool("helm")), "template", "orders-etl", str(CHART),
        "--namespace", "orders-etl", "--kube-version", versions.get("KUBERNETES_VERSION"),
        *REQUIRED, *extra,
    ]  # fmt: skip
    started = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    seconds = time.monotonic() - started
    return seconds, [d for d in yaml.safe_load_all(out) if d]


def pod_requests(pod_spec: dict[str, Any]) -> tuple[float, float]:
    def total(containers: Iterable[dict[str, Any]], key: str) -> list[float]:
        return [
            quantities.parse(c.get("resources", {}).get("requests", {}).get(key, 0))
            for c in containers
        ]

    cpu = max(
        sum(total(pod_spec.get("containers", []), "cpu")),
        max(total(pod_spec.get("initContainers", []), "cpu"), default=0.0),
    )
    mem = max(
        sum(total(pod_spec.get("containers", []), "memory")),
        max(total(pod_spec.get("initContainers", []), "memory"), default=0.0),
    )
    return cpu, mem  # fmt: skip


def requests_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for obj in objects:
        kind = obj.get("kind")
        if kind in WORKLOADS:
            replicas = 1 if kind == "DaemonSet" else int(obj["spec"].get("replicas", 1))
            spec = obj["spec"]["template"]["spec"]
        elif kind == "Job":
            replicas, spec = 1, obj["spec"]["template"]["spec"]
        else:
            continue
        cpu, mem = pod_requests(spec)
        rows.append(
            {"kind": kind, "name": obj["metadata"]["name"], "replicas": replicas,
             "cpu": cpu, "memory_mib": mem / 2**20}
        )  # fmt: skip
    running = [r for r in rows if r["kind"] != "Job"]
    return {
        "workloads": rows,
        "cpu_cores": sum(r["cpu"] * r["replicas"] for r in running),
        "memory_gib": sum(r["memory_mib"] * r["replicas"] for r in running) / 1024,
        "pods": sum(r["replicas"] for r in running),
    }


def summary(body: dict[str, Any]) -> str:
    default = body["default"]
    workloads = table.render(
        ["workload (default install)", "replicas", "CPU request / pod", "memory request / pod"],
        [[f"{r['kind']}/{r['name']}", r["replicas"], f"{r['cpu']:g}",
          f"{r['memory_mib']:.0f} Mi"] for r in default["workloads"]],
    )  # fmt: skip
    rows = [
        [
            "default install",
            f"{body['template_seconds_median']:.3f}",
            body["objects"],
            default["pods"],
            f"{default['cpu_cores']:.2f}",
            f"{default['memory_gib']:.2f}",
        ]
    ]
    rows += [
        [f"-f values/{name}", "", "", s["pods"], f"{s['cpu_cores']:.2f}", f"{s['memory_gib']:.2f}"]
        for name, s in body["values_files"].items()
    ]
    totals = table.render(
        [
            "install",
            "helm template s (median)",
            "objects",
            "pods",
            "CPU requests (cores)",
            "memory requests (GiB)",
        ],
        rows,
    )
    return f"{workloads}\n\n{totals}"  # fmt: skip


def installs() -> list[list[Path]]:
    """Each values/*.yaml file alone, and values/e2e.yaml (an overlay: the test machine's
    data services) on the two targets it is installed on."""
    values = paths.REPO_ROOT / "values"
    alone = [[f] for f in sorted(values.glob("*.yaml")) if f.name != "e2e.yaml"]
    return alone + [[values / target, values / "e2e.yaml"] for target in ("kind.yaml", "node.yaml")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    repeats = 2 if args.smoke else args.repeats
    print(machine.headline(machine.describe()))
    times = []
    for _ in range(repeats):
        seconds, objects = helm_template([])
        times.append(seconds)
    default = requests_of(objects)
    scenarios: dict[str, Any] = {}
    for files in installs():
        _, objs = helm_template([arg for f in files for arg in ("-f", str(f))])
        scenario = requests_of(objs)
        name = " -f values/".join(f.name for f in files)
        scenarios[name] = {k: scenario[k] for k in ("cpu_cores", "memory_gib", "pods")}
    body = {
        "repeats": repeats,
        "template_seconds": times,
        "template_seconds_median": statistics.median(times),
        "objects": len(objects),
        "default": default,
        "values_files": scenarios,
        "smoke": args.smoke,
    }
    print(summary(body))
    results.write(args.out, "chart", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
