"""RBAC exactly as intended: per ServiceAccount, namespaced, no ClusterRole, no exec."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.chart

SPARK_VERBS = ["create", "delete", "get", "list", "watch"]
DRIVER_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "watch"]


def _rules(objects: list[dict[str, Any]], chart: Any, component: str) -> list[dict[str, Any]]:
    return chart.one(objects, "Role", chart.name(component))["rules"]


def _binding(objects: list[dict[str, Any]], chart: Any, component: str) -> dict[str, Any]:
    binding = chart.one(objects, "RoleBinding", chart.name(component))
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": chart.name(component),
    }
    return binding


def test_roles_and_bindings_exactly(chart: Any) -> None:
    objects = chart.render({"spark": {"jobsNamespace": "spark-jobs"}})
    ns, jobs = chart.namespace, "spark-jobs"
    assert not chart.find(objects, "ClusterRole")
    assert not chart.find(objects, "ClusterRoleBinding")
    assert {o["metadata"]["name"] for o in chart.find(objects, "Role")} == {
        chart.name(c)
        for c in ("scheduler", "api-server", "spark-submitter", "spark-driver", "secrets-init")
    }

    assert _rules(objects, chart, "scheduler") == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "delete", "get", "list", "patch", "watch"],
        },
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    ]
    assert _binding(objects, chart, "scheduler")["subjects"] == [
        {"kind": "ServiceAccount", "name": chart.name("scheduler"), "namespace": ns}
    ]

    assert _rules(objects, chart, "api-server") == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]

    submitter = chart.one(objects, "Role", chart.name("spark-submitter"))
    assert submitter["metadata"]["namespace"] == jobs
    assert submitter["rules"] == [
        {
            "apiGroups": ["sparkoperator.k8s.io"],
            "resources": ["sparkapplications"],
            "verbs": SPARK_VERBS,
        }
    ]
    binding = _binding(objects, chart, "spark-submitter")
    assert binding["metadata"]["namespace"] == jobs
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": chart.name("worker"), "namespace": ns},
        {"kind": "ServiceAccount", "name": chart.name("triggerer"), "namespace": ns},
    ]

    driver = chart.one(objects, "Role", chart.name("spark-driver"))
    assert driver["metadata"]["namespace"] == jobs
    assert driver["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
            "verbs": DRIVER_VERBS,
        }
    ]
    driver_sa = chart.one(objects, "ServiceAccount", chart.name("spark-driver"))
    assert driver_sa["metadata"]["namespace"] == jobs
    assert _binding(objects, chart, "spark-driver")["subjects"] == [
        {"kind": "ServiceAccount", "name": chart.name("spark-driver"), "namespace": jobs}
    ]

    assert _rules(objects, chart, "secrets-init") == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [chart.name("generated")],
            "verbs": ["get", "patch"],
        },
    ]


def test_nobody_gets_exec_or_wildcards(chart: Any) -> None:
    for values_file in chart.scenarios:
        for role in chart.find(chart.render(values_files=[values_file]), "Role"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"], role
                assert "*" not in rule["resources"], role
                assert "pods/exec" not in rule["resources"], role
                assert "pods/attach" not in rule["resources"], role
                if "secrets" in rule["resources"]:
                    assert role["metadata"]["name"] == "oe-orders-etl-secrets-init"


def test_spark_rbac_follows_the_switch_and_namespace(chart: Any) -> None:
    objects = chart.render({"spark": {"enabled": False}})
    assert not [o for o in objects if "spark" in o["metadata"]["name"]]
    objects = chart.render()
    for o in objects:
        if "spark" in o["metadata"]["name"] and o["kind"] in (
            "Role",
            "RoleBinding",
            "ServiceAccount",
        ):
            assert o["metadata"]["namespace"] == chart.namespace
    objects = chart.render({"spark": {"jobsNamespace": "spark-jobs", "createJobsNamespace": True}})
    ns = chart.one(objects, "Namespace", "spark-jobs")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_executor_rbac_follows_the_executors(chart: Any) -> None:
    objects = chart.render({"airflow": {"executor": "CeleryExecutor"}})
    names = {o["metadata"]["name"] for o in chart.find(objects, "Role")}
    assert chart.name("scheduler") not in names
    assert chart.name("api-server") not in names
