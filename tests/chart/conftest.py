"""Render helpers for the orders-etl chart: `helm template` with the pinned helm.

`render_chart(values, show_only=None)` returns the rendered objects (dicts, in order);
`render_error(values)` returns helm's error text for input that must fail. Both pin
`--kube-version` to the project's Kubernetes version and deep-merge `values` over a
minimal valid base (the required database Secret reference) unless `base=False`.
"""

from __future__ import annotations

import copy
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import paths, versions

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "orders-etl"
RELEASE = "oe"
NAMESPACE = "orders"
BASE_VALUES: dict[str, Any] = {"database": {"existingSecret": "orders-etl-db"}}
VALUES_FILES = sorted((ROOT / "values").glob("*.yaml"))
CI_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
SCENARIOS = VALUES_FILES + CI_FILES

Obj = dict[str, Any]


def helm() -> str:
    return str(paths.tool("helm"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _template(
    values: dict[str, Any] | None,
    show_only: Iterable[str] | None,
    values_files: Iterable[Path],
    base: bool,
) -> subprocess.CompletedProcess[str]:
    merged = deep_merge(BASE_VALUES if base else {}, values or {})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(merged, f)
        f.flush()
        cmd = [
            helm(),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            versions.get("KUBERNETES_VERSION"),
        ]
        for vf in values_files:
            cmd += ["-f", str(vf)]
        cmd += ["-f", f.name]
        for template in show_only or ():
            cmd += ["--show-only", f"templates/{template}"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def render_chart(
    values: dict[str, Any] | None = None,
    show_only: Iterable[str] | None = None,
    *,
    values_files: Iterable[Path] = (),
    base: bool = True,
) -> list[Obj]:
    """Render the chart and return its objects; fails the test on a helm error."""
    result = _template(values, show_only, values_files, base)
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def render_error(values: dict[str, Any] | None = None, *, base: bool = True) -> str:
    """Render input that must be rejected; returns helm's error output."""
    result = _template(values, None, (), base)
    assert result.returncode != 0, "helm template accepted input it must reject"
    return result.stderr


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def name(component: str) -> str:
    return f"{RELEASE}-orders-etl-{component}"


def pod_specs(objects: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """Every pod spec the chart ships: workloads, Jobs, CronJobs and the KubernetesExecutor
    template."""
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]
        if o["kind"] == "CronJob":
            template = o["spec"]["jobTemplate"]["spec"]["template"]
            yield f"CronJob/{o['metadata']['name']}", template["spec"]
        if o["kind"] == "ConfigMap" and "pod_template.yaml" in o.get("data", {}):
            pod = yaml.safe_load(o["data"]["pod_template.yaml"])
            yield f"pod-template/{o['metadata']['name']}", pod["spec"]


def containers(spec: Obj) -> list[Obj]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


class ChartHelpers:
    """What the chart tests use, handed out by the `chart` fixture (importlib import mode
    keeps test modules from importing this conftest)."""

    root = ROOT
    path = CHART
    release = RELEASE
    namespace = NAMESPACE
    scenarios = SCENARIOS
    render = staticmethod(render_chart)
    error = staticmethod(render_error)
    find = staticmethod(find)
    one = staticmethod(one)
    name = staticmethod(name)
    pod_specs = staticmethod(pod_specs)
    containers = staticmethod(containers)
    helm = staticmethod(helm)


@pytest.fixture(scope="session")
def chart() -> ChartHelpers:
    return ChartHelpers()


@pytest.fixture(name="render_chart", scope="session")
def render_chart_fixture() -> Callable[..., list[Obj]]:
    """`render_chart(values, show_only=None)`: the rendered objects of the chart."""
    return render_chart
