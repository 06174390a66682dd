"""Secure by default: PodSecurity `restricted` on every pod, least-privilege tokens, and
no credential in any ConfigMap or plain env value, in every scenario."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.chart

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "values").glob("*.yaml")) + sorted(
    (ROOT / "charts" / "orders-etl" / "ci").glob("*-values.yaml")
)
# A URL with a literal password (user:pass@), or a key=value credential.
CREDENTIAL = re.compile(
    r"://[^:/@\s$]*:(?!\$\()[^@\s]+@"
    r"|\b(password|passwd|secret|secret_key|token|fernet_key|jwt_secret|api_key|access_key)\b"
    r"[ \t]*[=:][ \t]*['\"]?[A-Za-z0-9+/_-]{8,}",
    re.IGNORECASE,
)
# Env names that must always come from a Secret.
SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|FERNET|SQL_ALCHEMY_CONN|BROKER_URL$|_CONN_)", re.I)
# Plain on purpose: the broker URL holds only the `$(REDIS_PASSWORD)` reference, which
# Kubernetes substitutes; the secrets-init Job gets the name and key list of its Secret.
ALLOWED_PLAIN = {"AIRFLOW__CELERY__BROKER_URL", "SECRET_NAME", "SECRET_KEYS", "SECRET_LABELS"}


def _assert_restricted(where: str, spec: dict[str, Any]) -> None:
    pod_sc = spec.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True, where
    assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
    assert pod_sc.get("runAsUser", 1) != 0, where
    assert not spec.get("hostNetwork")
    assert not spec.get("hostPID")
    assert not spec.get("hostIPC")
    for volume in spec.get("volumes", []):
        assert "hostPath" not in volume, where
    for c in list(spec.get("initContainers", [])) + list(spec["containers"]):
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, (where, c["name"])
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], (where, c["name"])
        assert not sc.get("capabilities", {}).get("add"), (where, c["name"])
        assert sc.get("privileged") is not True, (where, c["name"])
        assert sc.get("runAsUser", 1) != 0, (where, c["name"])
        assert sc.get("readOnlyRootFilesystem") is True, (where, c["name"])
        assert c["resources"].get("requests"), (where, c["name"])
        assert c["resources"].get("limits", {}).get("memory"), (where, c["name"])


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_every_pod_meets_restricted(chart: Any, values_file: Path) -> None:
    objects = chart.render(values_files=[values_file])
    specs = list(chart.pod_specs(objects))
    assert specs
    for where, spec in specs:
        _assert_restricted(where, spec)


def test_airflow_pods_run_as_uid_50000(chart: Any) -> None:
    for where, spec in chart.pod_specs(chart.render()):
        if spec["containers"][0]["image"].startswith("orders-etl/airflow"):
            assert spec["securityContext"]["runAsUser"] == 50000, where


def test_component_security_context_override_merges(chart: Any) -> None:
    objects = chart.render(
        {"scheduler": {"securityContexts": {"container": {"readOnlyRootFilesystem": False}}}}
    )
    scheduler = chart.one(objects, "Deployment", chart.name("scheduler"))
    sc = scheduler["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]  # the rest of the global context stays
    triggerer = chart.one(objects, "StatefulSet", chart.name("triggerer"))
    assert triggerer["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ]


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_no_credential_in_configmaps_or_plain_env(chart: Any, values_file: Path) -> None:
    objects = chart.render(values_files=[values_file])
    assert not chart.find(objects, "Secret"), "the chart renders no Secret values at all"
    for cm in chart.find(objects, "ConfigMap"):
        for key, text in cm.get("data", {}).items():
            if key.endswith(".py"):
                continue  # the secrets-init script: code, checked below
            match = CREDENTIAL.search(text)
            assert not match, f"{cm['metadata']['name']}/{key}: {match.group(0)!r}"
    for where, spec in chart.pod_specs(objects):
        for c in chart.containers(spec):
            for env in c.get("env", []):
                if "value" not in env:
                    continue
                assert not CREDENTIAL.search(str(env["value"])), (where, env)
                if SECRET_ENV.search(env["name"]) and env["name"] not in ALLOWED_PLAIN:
                    # Only non-secret JSON connections may be plain (checked just above).
                    assert env["name"].startswith("AIRFLOW_CONN_"), (where, env["name"])
                    assert "password" not in env["value"].lower(), (where, env["name"])


def test_credential_detector_is_not_blind(chart: Any) -> None:
    assert CREDENTIAL.search("sql_alchemy_conn = postgresql://airflow:hunter22@db/airflow")
    assert CREDENTIAL.search("redis://:s3cr3tpassw0rd@redis:6379/0")
    assert not CREDENTIAL.search("redis://:$(REDIS_PASSWORD)@oe-orders-etl-redis:6379/0")
    # A credential smuggled through airflow.config lands in the ConfigMap and is caught.
    objects = chart.render(
        {"airflow": {"config": {"database": {"sql_alchemy_conn": "postgresql://a:hunter22@db/x"}}}}
    )
    cfg = chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    assert CREDENTIAL.search(cfg)


def test_credentials_come_from_secret_refs(chart: Any) -> None:
    objects = chart.render()
    scheduler = chart.one(objects, "Deployment", chart.name("scheduler"))
    env = {e["name"]: e for e in scheduler["spec"]["template"]["spec"]["containers"][0]["env"]}
    generated = chart.name("generated")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"] == {
        "name": "orders-etl-db",
        "key": "connection",
    }
    for name, key in [
        ("AIRFLOW__CORE__FERNET_KEY", "fernet-key"),
        ("AIRFLOW__API__SECRET_KEY", "api-secret-key"),
        ("AIRFLOW__API_AUTH__JWT_SECRET", "jwt-secret"),
        ("REDIS_PASSWORD", "redis-password"),
    ]:
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": generated, "key": key}
    # existingSecret always wins: nothing generated, every reference points at it.
    objects = chart.render({"secrets": {"existingSecret": "mine"}})
    assert not [o for o in objects if "secrets-init" in o["metadata"]["name"]]
    scheduler = chart.one(objects, "Deployment", chart.name("scheduler"))
    env = {e["name"]: e for e in scheduler["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW__CORE__FERNET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mine"


def test_service_account_tokens_only_where_the_api_is_used(chart: Any) -> None:
    objects = chart.render()
    for sa in chart.find(objects, "ServiceAccount"):
        if sa["metadata"]["name"] == chart.name("spark-driver"):
            # Spark's driver pods are built by the operator; the driver needs its token
            # to start executors, so this ServiceAccount keeps the default.
            assert "automountServiceAccountToken" not in sa
            continue
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]
    mounted = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
        and o["spec"]["template"]["spec"].get("automountServiceAccountToken") is True
    }
    expected = {chart.name(c) for c in ("scheduler", "triggerer", "worker", "api-server")}
    assert {n for n in mounted if "secrets-init" not in n} == expected
    assert len(mounted) == len(expected) + 1  # + the secrets-init Job


def test_spark_template_has_no_credentials_and_restricted_pods(chart: Any) -> None:
    """The pods' security settings and Secret references are in the pod templates, the
    only place that reaches pods with the spark-operator's webhook off; the spec fields
    that only the webhook applies are not used."""
    objects = chart.render({"s3": {"existingSecret": "s3-keys"}})
    cm = chart.one(objects, "ConfigMap", chart.name("spark-template"))
    app = yaml.safe_load(cm["data"]["sparkapplication.yaml"])
    for role, container_name in (
        ("driver", "spark-kubernetes-driver"),
        ("executor", "spark-kubernetes-executor"),
    ):
        spec = app["spec"][role]
        for webhook_only in ("securityContext", "podSecurityContext", "env", "envSecretKeyRefs"):
            assert webhook_only not in spec, (role, webhook_only)
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == container_name
        env = {e["name"]: e for e in container["env"]}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "s3-keys",
            "key": "AWS_SECRET_ACCESS_KEY",
        }
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    executor_pod = app["spec"]["executor"]["template"]["spec"]
    assert executor_pod["automountServiceAccountToken"] is False
    assert "automountServiceAccountToken" not in app["spec"]["driver"]["template"]["spec"]
    assert not CREDENTIAL.search(cm["data"]["sparkapplication.yaml"])


def test_spark_executors_run_as_their_own_account_without_api_rights(chart: Any) -> None:
    objects = chart.render({"spark": {"jobsNamespace": "spark-jobs"}})
    app = yaml.safe_load(
        chart.one(objects, "ConfigMap", chart.name("spark-template"))["data"][
            "sparkapplication.yaml"
        ]
    )
    executor_sa = chart.name("spark-executor")
    assert app["spec"]["executor"]["serviceAccount"] == executor_sa
    assert app["spec"]["driver"]["serviceAccount"] == chart.name("spark-driver")
    sa = chart.one(objects, "ServiceAccount", executor_sa)
    assert sa["metadata"]["namespace"] == "spark-jobs"
    assert sa["automountServiceAccountToken"] is False
    bound = [
        subject["name"]
        for binding in chart.find(objects, "RoleBinding")
        + chart.find(objects, "ClusterRoleBinding")
        for subject in binding.get("subjects", [])
    ]
    assert executor_sa not in bound
