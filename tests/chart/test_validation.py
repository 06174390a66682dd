"""Bad input fails `helm template` with a message that says what to fix."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.chart

CASES: list[tuple[str, dict[str, Any], bool, list[str]]] = [
    ("missing DB secret", {}, False, ["database.existingSecret is required", "connection"]),
    (
        "HA scheduler with one replica",
        {"scheduler": {"replicas": 1}},
        True,
        ["scheduler.replicas >= 2", "scheduler.ha=false"],
    ),
    (
        "wrong type",
        {"scheduler": {"replicas": "two"}},
        True,
        ["/scheduler/replicas", "want integer"],
    ),
    ("wrong bool", {"redis": {"enabled": "yes"}}, True, ["/redis/enabled", "want boolean"]),
    (
        "unknown key",
        {"scheduler": {"replica": 2}},
        True,
        ["additional properties 'replica' not allowed"],
    ),
    (
        "unknown section",
        {"schedular": {"replicas": 2}},
        True,
        ["additional properties 'schedular'"],
    ),
    (
        "bad pull policy",
        {"images": {"airflow": {"pullPolicy": "Sometimes"}}},
        True,
        ["/images/airflow/pullPolicy"],
    ),
    ("bad catalog", {"spark": {"catalog": {"type": "hive2"}}}, True, ["/spark/catalog/type"]),
    # Iceberg's hadoop catalog needs a Hadoop file system for s3://, which no image has.
    ("hadoop catalog", {"spark": {"catalog": {"type": "hadoop"}}}, True, ["/spark/catalog/type"]),
    (
        "numeric tag",
        {"images": {"airflow": {"tag": 3.3}}},
        True,
        ["/images/airflow/tag", "want string"],
    ),
    (
        "no broker",
        {"redis": {"enabled": False}},
        True,
        ["CeleryExecutor needs a broker", "broker.existingSecret"],
    ),
    (
        "no secrets",
        {"secrets": {"generate": {"enabled": False}}},
        True,
        ["secrets.existingSecret", "fernet-key"],
    ),
    (
        "hpa and keda",
        {"workers": {"hpa": {"enabled": True}, "keda": {"enabled": True}}},
        True,
        ["exclusive"],
    ),
    (
        "simple auth without a passwords Secret",
        {"auth": {"manager": "simple"}},
        True,
        ["auth.simple.passwordsSecret", "auth.manager=fab"],
    ),
    (
        "simple auth without users",
        {"auth": {"manager": "simple", "simple": {"users": None, "passwordsSecret": "pw"}}},
        True,
        ["auth.simple.users"],
    ),
    (
        "httpRoute without a Gateway",
        {"apiServer": {"httpRoute": {"enabled": True}}},
        True,
        ["apiServer.httpRoute.parentRefs"],
    ),
    (
        "both pdb fields",
        {"triggerer": {"pdb": {"minAvailable": 1}}},
        True,
        ["triggerer.pdb sets both maxUnavailable and minAvailable"],
    ),
    (
        "connection without source",
        {"airflow": {"connections": [{"id": "x"}]}},
        True,
        ["airflow.connections[x] needs secretRef"],
    ),
    (
        "connection secretRef without key",
        {"airflow": {"connections": [{"id": "x", "secretRef": {"name": "s"}}]}},
        True,
        ["missing property 'key'"],
    ),
    ("empty executor", {"airflow": {"executor": ""}}, True, ["/airflow/executor"]),
    (
        "jobs namespace the spark-operator does not watch",
        {"spark": {"jobsNamespace": "analytics", "operatorJobNamespaces": ["spark-jobs"]}},
        True,
        ['spark.jobsNamespace resolves to "analytics"', "spark.jobNamespaces", "spark-jobs"],
    ),
    (
        "release namespace the spark-operator does not watch",
        {"spark": {"operatorJobNamespaces": ["spark-jobs"]}},
        True,
        ["spark.jobsNamespace resolves to", "its SparkApplications would never run"],
    ),
    (
        "create the release namespace",
        {"spark": {"createJobsNamespace": True}},
        True,
        ["spark.createJobsNamespace is true but spark.jobsNamespace is empty"],
    ),
    # The extension points and the day-2 values are typed too.
    (
        "extra volume without a name",
        {"workers": {"extraVolumes": [{"emptyDir": {}}]}},
        True,
        ["/workers/extraVolumes/0", "missing property 'name'"],
    ),
    (
        "extra mount without a path",
        {"scheduler": {"extraVolumeMounts": [{"name": "ca"}]}},
        True,
        ["/scheduler/extraVolumeMounts/0", "missing property 'mountPath'"],
    ),
    (
        "sidecar without a name",
        {"statsd": {"extraContainers": [{"image": "busybox"}]}},
        True,
        ["/statsd/extraContainers/0", "missing property 'name'"],
    ),
    (
        "init container without a name",
        {"pgbouncer": {"extraInitContainers": [{"image": "busybox"}]}},
        True,
        ["/pgbouncer/extraInitContainers/0", "missing property 'name'"],
    ),
    (
        "command as a string",
        {"scheduler": {"command": "airflow scheduler"}},
        True,
        ["/scheduler/command", "want array"],
    ),
    ("args of numbers", {"triggerer": {"args": [1]}}, True, ["/triggerer/args/0", "want string"]),
    (
        "unknown lifecycle hook",
        {"apiServer": {"lifecycle": {"preStart": {}}}},
        True,
        ["/apiServer/lifecycle", "'preStart' not allowed"],
    ),
    (
        "pod label of a number",
        {"redis": {"podLabels": {"team": 7}}},
        True,
        ["/redis/podLabels/team", "want string"],
    ),
    (
        "typo in global",
        {"global": {"nodeSelectr": {"a": "b"}}},
        True,
        ["'nodeSelectr' not allowed"],
    ),
    (
        "zero-day log retention",
        {"logGroomer": {"retentionDays": 0}},
        True,
        ["/logGroomer/retentionDays", "minimum"],
    ),
    (
        "typo in a component's log groomer",
        {"workers": {"logGroomer": {"retention": 3}}},
        True,
        ["/workers/logGroomer", "'retention' not allowed"],
    ),
    ("unknown auth manager", {"auth": {"manager": "ldap"}}, True, ["/auth/manager"]),
    (
        "simple user with an unknown role",
        {"auth": {"simple": {"users": [{"username": "bob", "role": "root"}]}}},
        True,
        ["/auth/simple/users/0/role"],
    ),
    (
        "remote logging as a word",
        {"airflow": {"logging": {"remote": "yes"}}},
        True,
        ["/airflow/logging/remote"],
    ),
    (
        "ingress path type",
        {"apiServer": {"ingress": {"pathType": "Any"}}},
        True,
        ["/apiServer/ingress/pathType"],
    ),
    (
        "route parent without a name",
        {"apiServer": {"httpRoute": {"parentRefs": [{"namespace": "gw"}]}}},
        True,
        ["/apiServer/httpRoute/parentRefs/0", "missing property 'name'"],
    ),
    ("zero-day db retention", {"dbClean": {"retentionDays": 0}}, True, ["/dbClean/retentionDays"]),
    (
        "pgbouncer pool mode",
        {"pgbouncer": {"poolMode": "statement"}},
        True,
        ["/pgbouncer/poolMode"],
    ),
    (
        "keda connection key of a number",
        {"workers": {"keda": {"connectionKey": 5}}},
        True,
        ["/workers/keda/connectionKey", "want string"],
    ),
]


@pytest.mark.parametrize(("case", "values", "base", "messages"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_with_a_fix(
    chart: Any, case: str, values: dict[str, Any], base: bool, messages: list[str]
) -> None:
    error = chart.error(values, base=base)
    for message in messages:
        assert message in error, f"{case}: {message!r} not in {error}"


def test_single_scheduler_on_purpose_renders(chart: Any) -> None:
    objects = chart.render({"scheduler": {"replicas": 1, "ha": False}})
    assert chart.one(objects, "Deployment", chart.name("scheduler"))["spec"]["replicas"] == 1


def test_custom_executor_class_paths_are_allowed(chart: Any) -> None:
    executor = "my_company.executors.SpecialExecutor,KubernetesExecutor"
    objects = chart.render({"airflow": {"executor": executor}})
    cfg = chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    assert f"executor = {executor}\n" in cfg


def test_a_jobs_namespace_the_operator_watches_renders(chart: Any) -> None:
    objects = chart.render(
        {"spark": {"jobsNamespace": "spark-jobs", "operatorJobNamespaces": ["spark-jobs", "x"]}}
    )
    assert chart.one(objects, "ConfigMap", chart.name("spark-template"))


def render_notes(chart: Any, tmp_path: Path, values: list[str]) -> str:
    """NOTES.txt as helm renders it: `helm template` prints no NOTES, so a copy of the
    chart carries them in a ConfigMap."""
    copy = tmp_path / "chart"
    shutil.copytree(chart.path, copy)
    lines = (chart.path / "templates" / "NOTES.txt").read_text().splitlines()
    (copy / "templates" / "rendered-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered-notes\ndata:\n"
        "  notes: |\n" + "".join(f"    {line}\n" for line in lines)
    )
    sets = [a for v in ["database.existingSecret=db", *values] for a in ("--set", v)]
    out = subprocess.run(
        [
            chart.helm(),
            "template",
            "oe",
            str(copy),
            "--kube-version",
            "1.35.0",
            *sets,
            "--show-only",
            "templates/rendered-notes.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    notes: str = yaml.safe_load(out.stdout)["data"]["notes"]
    return notes


def test_notes_say_what_the_operator_must_watch(chart: Any, tmp_path: Path) -> None:
    notes = render_notes(chart, tmp_path, ["spark.jobsNamespace=analytics"])
    assert "must watch namespace" in notes
    assert "spark.jobNamespaces={analytics}" in notes
    assert "webhook may be on or off" in notes
    assert "not checked" in notes
    declared = render_notes(
        chart,
        tmp_path / "declared",
        ["spark.jobsNamespace=analytics", "spark.operatorJobNamespaces={analytics}"],
    )
    assert "declared in spark.operatorJobNamespaces: analytics" in declared
    assert "must watch" not in render_notes(chart, tmp_path / "off", ["spark.enabled=false"])
