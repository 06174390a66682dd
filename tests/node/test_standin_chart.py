"""The spark-operator stand-in chart (a test stand-in): renders, lints, least privilege."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from localplatform import paths

pytestmark = pytest.mark.chart

CHART = paths.REPO_ROOT / "charts" / "spark-operator-standin"


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(paths.tool("helm")), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _render(*sets: str) -> list[dict[str, Any]]:
    out = _helm("template", "standin", str(CHART), "--namespace", "spark-operator", *sets)
    assert out.returncode == 0, out.stderr
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def test_lints_strict() -> None:
    out = _helm("lint", "--strict", str(CHART), "--set", "watchNamespace=jobs")
    assert out.returncode == 0, out.stdout + out.stderr


def test_watch_namespace_is_required() -> None:
    out = _helm("template", "standin", str(CHART))
    assert out.returncode != 0
    assert "watchNamespace is required" in out.stderr


def test_least_privilege_in_the_watched_namespace_only() -> None:
    objects = _render("--set", "watchNamespace=jobs")
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    role = next(o for o in objects if o["kind"] == "Role")
    assert role["metadata"]["namespace"] == "jobs"
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # delete: timeToLiveSeconds, as the operator; no create, update or patch of the spec
    assert verbs[("sparkoperator.k8s.io", "sparkapplications")] == {
        "get",
        "list",
        "watch",
        "delete",
    }
    assert ("", "secrets") not in verbs


def test_pods_meet_restricted_and_spark_pods_get_nothing_from_the_standin() -> None:
    """The stand-in's pod is restricted; the Spark pods are the SparkApplications' own
    (their spec and pod templates, as with the operator): no spark-defaults, no pod
    templates of the stand-in's."""
    objects = _render("--set", "watchNamespace=jobs")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    container = pod["containers"][0]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not [o for o in objects if o["kind"] == "ConfigMap"]
    assert "SPARK_CONF_DIR" not in {e["name"] for e in container.get("env", [])}
