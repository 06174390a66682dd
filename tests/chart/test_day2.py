"""Day-2 operations as Airflow users expect them: one login for every api-server replica,
task logs readable in the UI, extension points per component, housekeeping, scaling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.chart

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
#: values key -> (component label, kind) of the Airflow components.
AIRFLOW = {
    "scheduler": ("scheduler", "Deployment"),
    "triggerer": ("triggerer", "StatefulSet"),
    "dagProcessor": ("dag-processor", "Deployment"),
    "apiServer": ("api-server", "Deployment"),
    "workers": ("worker", "StatefulSet"),
}
#: The supporting services (rendered when enabled).
SERVICES = {
    "redis": ("redis", "StatefulSet", {}),
    "pgbouncer": ("pgbouncer", "Deployment", {"pgbouncer": {"enabled": True}}),
    "statsd": ("statsd", "Deployment", {"statsd": {"enabled": True}}),
}
GROOMED = ("scheduler", "triggerer", "dagProcessor", "workers")


def _cfg(chart: Any, objects: list[dict[str, Any]]) -> str:
    return str(chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"])


def _pod(chart: Any, objects: list[dict[str, Any]], kind: str, component: str) -> Any:
    return chart.one(objects, kind, chart.name(component))["spec"]["template"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


# ---- login ------------------------------------------------------------------------------


def test_fab_auth_manager_is_the_default(chart: Any) -> None:
    objects = chart.render()
    cfg = _cfg(chart, objects)
    assert f"auth_manager = {FAB}\n" in cfg
    assert "config_file = /opt/airflow/chart-config/webserver_config.py" in cfg
    # No per-pod generated passwords file any more.
    assert "simple_auth_manager_passwords_file" not in cfg
    cm = chart.one(objects, "ConfigMap", chart.name("config"))
    assert "webserver_config.py" in cm["data"]
    # One JWT secret and one session key for every replica: the same secretKeyRefs.
    api = _pod(chart, objects, "Deployment", "api-server")["spec"]["containers"][0]
    env = _env(api)
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": chart.name("generated"),
        "key": "jwt-secret",
    }
    assert env["AIRFLOW__API__SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "api-secret-key"


def test_create_user_job_reads_the_password_from_a_secret(chart: Any) -> None:
    objects = chart.render()
    (job,) = [
        o
        for o in chart.find(objects, "Job")
        if o["metadata"]["name"].startswith(chart.name("create-user") + "-")
    ]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "1"
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == chart.name("jobs")
    assert spec["automountServiceAccountToken"] is False
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-migrations"]
    (main,) = spec["containers"]
    script = main["command"][-1]
    assert "airflow users create" in script
    assert "airflow users reset-password" in script  # the Secret stays the source of truth
    env = _env(main)
    assert env["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": chart.name("generated"),
        "key": "admin-password",
    }
    assert env["ADMIN_USERNAME"]["value"] == "admin"
    # The Job syncs FAB's roles; the api-server replicas do not (no race between them).
    assert env["AIRFLOW__FAB__UPDATE_FAB_PERMS"]["value"] == "True"
    assert "update_fab_perms = False\n" in _cfg(chart, objects)
    no_job = chart.render({"auth": {"admin": {"create": False}}})
    assert "update_fab_perms" not in _cfg(chart, no_job)
    assert env["ADMIN_ROLE"]["value"] == "Admin"
    # The user's own Secret wins; a changed user means a new Job (the name hashes it).
    own = chart.render(
        {"auth": {"admin": {"existingSecret": "adm", "passwordKey": "pw", "username": "ops"}}}
    )
    (job2,) = [
        o
        for o in chart.find(own, "Job")
        if o["metadata"]["name"].startswith(chart.name("create-user") + "-")
    ]
    env2 = _env(job2["spec"]["template"]["spec"]["containers"][0])
    assert env2["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "adm", "key": "pw"}
    assert env2["ADMIN_USERNAME"]["value"] == "ops"
    assert job2["metadata"]["name"] != job["metadata"]["name"]
    # Off-switch, and none with SimpleAuthManager.
    for values in (
        {"auth": {"admin": {"create": False}}},
        {"auth": {"manager": "simple", "simple": {"passwordsSecret": "pw"}}},
    ):
        names = [o["metadata"]["name"] for o in chart.find(chart.render(values), "Job")]
        assert not [n for n in names if "create-user" in n], values


#: Parses argv lists (JSON, one per line) with Airflow's own CLI parser, as the container's
#: `airflow` command would, and prints each parsed --password.
_PARSE_AIRFLOW_ARGV = """
import json, sys
from airflow.cli.cli_parser import get_parser
for line in open(sys.argv[1]):
    args = get_parser().parse_args(json.loads(line))
    print(json.dumps(args.password))
"""


def test_create_user_job_takes_a_password_that_starts_with_a_dash(
    chart: Any, tmp_path: Path
) -> None:
    """The generated admin password is token_urlsafe: one install in 64 gets one that starts
    with '-'. `--password "$ADMIN_PASSWORD"` then reads as a missing value, the Job fails
    every try and nobody can log in (seen on the real node, 2026-12-07). The rendered
    script, run by sh, with its `airflow` calls parsed by Airflow's real CLI parser."""
    (job,) = [
        o
        for o in chart.find(chart.render(), "Job")
        if o["metadata"]["name"].startswith(chart.name("create-user") + "-")
    ]
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    argv_log = tmp_path / "argv.jsonl"
    record = 'airflow() { python3 -c "import json, sys; print(json.dumps(sys.argv[1:]))" "$@"; }'
    password = "-ew_Qz-3--x"
    env = {
        "PATH": os.environ["PATH"],
        "ADMIN_USERNAME": "admin",
        "ADMIN_FIRSTNAME": "Ada",
        "ADMIN_LASTNAME": "Admin",
        "ADMIN_EMAIL": "admin@example.org",
        "ADMIN_ROLE": "Admin",
        "ADMIN_PASSWORD": password,
    }
    with argv_log.open("w") as out:
        subprocess.run(
            ["sh", "-ec", f"{record}\n{script}"], env=env, stdout=out, check=True, timeout=60
        )
    parsed = subprocess.run(
        [sys.executable, "-c", _PARSE_AIRFLOW_ARGV, str(argv_log)],
        env={
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    assert parsed.stdout.split() == [f'"{password}"', f'"{password}"']  # create, reset


def test_webserver_config_from_values(chart: Any) -> None:
    text = "from flask_appbuilder.security.manager import AUTH_DB\nAUTH_TYPE = AUTH_DB\n"
    objects = chart.render({"auth": {"fab": {"webserverConfig": text}}})
    cm = chart.one(objects, "ConfigMap", chart.name("config"))
    assert cm["data"]["webserver_config.py"] == text


def test_simple_auth_manager_shares_one_passwords_secret(chart: Any) -> None:
    values = {
        "auth": {
            "manager": "simple",
            "simple": {
                "users": [
                    {"username": "alice", "role": "admin"},
                    {"username": "bob", "role": "viewer"},
                ],
                "passwordsSecret": "pw",
            },
        }
    }
    objects = chart.render(values)
    cfg = _cfg(chart, objects)
    assert f"auth_manager = {SIMPLE}\n" in cfg
    assert "simple_auth_manager_users = alice:admin,bob:viewer\n" in cfg
    assert "simple_auth_manager_passwords_file = /tmp/simple_auth_manager_passwords.json\n" in cfg
    spec = _pod(chart, objects, "Deployment", "api-server")["spec"]
    init = {c["name"]: c for c in spec["initContainers"]}["simple-auth-passwords"]
    assert init["command"] == [
        "cp",
        "/opt/airflow/simple-auth/passwords.json",
        "/tmp/simple_auth_manager_passwords.json",
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["simple-auth-passwords"]["secret"] == {
        "secretName": "pw",
        "items": [{"key": "passwords.json", "path": "passwords.json"}],
    }
    # /tmp is the pod's shared emptyDir: the copy is what the api-server opens.
    assert {m["name"] for m in init["volumeMounts"]} == {"simple-auth-passwords", "tmp"}


# ---- task logs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "remote"),
    [
        ({}, False),
        ({"s3": {"existingSecret": "s3"}}, True),
        ({"s3": {"endpoint": "http://minio:9000"}}, True),
        ({"s3": {"existingSecret": "s3"}, "airflow": {"logging": {"remote": False}}}, False),
        ({"airflow": {"logging": {"remote": True}}}, True),
    ],
    ids=["no-s3", "s3-secret", "s3-endpoint", "forced-off", "forced-on"],
)
def test_remote_logging_follows_s3(chart: Any, values: dict[str, Any], remote: bool) -> None:
    cfg = _cfg(chart, chart.render(values))
    assert f"remote_logging = {remote}\n" in cfg
    assert ("remote_base_log_folder = s3://orders-etl/logs\n" in cfg) == remote
    assert ("remote_log_conn_id = aws_default\n" in cfg) == remote


@pytest.mark.parametrize(
    ("component", "port", "name"),
    [("worker", 8793, "worker-logs"), ("triggerer", 8794, "trigger-logs")],
)
def test_log_servers_have_stable_hostnames(
    chart: Any, component: str, port: int, name: str
) -> None:
    objects = chart.render()
    sts = chart.one(objects, "StatefulSet", chart.name(component))
    service = chart.one(objects, "Service", chart.name(component))
    # The StatefulSet's pods are <pod>.<serviceName>: resolvable through the headless Service.
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
    ]
    main = sts["spec"]["template"]["spec"]["containers"][0]
    assert {"name": name, "containerPort": port, "protocol": "TCP"} in main["ports"]
    cfg = _cfg(chart, objects)
    assert "worker_log_server_port = 8793\n" in cfg
    assert "trigger_log_server_port = 8794\n" in cfg


def _groomer(chart: Any, objects: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    component, kind = AIRFLOW[key]
    containers = _pod(chart, objects, kind, component)["spec"]["containers"]
    return {c["name"]: c for c in containers}.get("log-groomer")


def test_log_groomer_per_component(chart: Any) -> None:
    objects = chart.render()
    for key in GROOMED:
        groomer = _groomer(chart, objects, key)
        assert groomer, key
        env = {e["name"]: e["value"] for e in groomer["env"]}
        assert env == {
            "LOG_DIR": "/opt/airflow/logs",
            "RETENTION_DAYS": "7",
            "INTERVAL_SECONDS": "900",
        }
        assert groomer["volumeMounts"] == [{"name": "logs", "mountPath": "/opt/airflow/logs"}]
    assert _groomer(chart, objects, "apiServer") is None
    # Global values, then a component's own override merged over them.
    tuned = chart.render(
        {
            "logGroomer": {"retentionDays": 14},
            "workers": {"logGroomer": {"retentionDays": 2, "intervalMinutes": 5}},
            "scheduler": {"logGroomer": {"enabled": False}},
        }
    )
    worker = {e["name"]: e["value"] for e in (_groomer(chart, tuned, "workers") or {})["env"]}
    assert (worker["RETENTION_DAYS"], worker["INTERVAL_SECONDS"]) == ("2", "300")
    triggerer = _groomer(chart, tuned, "triggerer") or {}
    assert {e["name"]: e["value"] for e in triggerer["env"]}["RETENTION_DAYS"] == "14"
    assert _groomer(chart, tuned, "scheduler") is None
    assert not _groomer(chart, chart.render({"logGroomer": {"enabled": False}}), "workers")


def test_log_groomer_deletes_only_what_is_past_retention(chart: Any, tmp_path: Path) -> None:
    """The rendered sidecar command, run by sh on this machine: files older than the
    retention go (and the folders they leave empty), newer ones stay, SIGTERM ends it."""
    groomer = _groomer(chart, chart.render(), "workers") or {}
    logs = tmp_path / "logs"
    old = logs / "dag_id=orders_etl" / "run_id=old" / "task_id=consume" / "attempt=1.log"
    new = logs / "dag_id=orders_etl" / "run_id=new" / "task_id=consume" / "attempt=1.log"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("log line\n")
    stale = logs / "dag_id=orders_etl" / "run_id=stale" / "task_id=consume"
    fresh = logs / "dag_id=orders_etl" / "run_id=starting" / "task_id=consume"
    stale.mkdir(parents=True)
    fresh.mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86400
    for path in (old, stale, stale.parent):
        os.utime(path, (two_days_ago, two_days_ago))
    env = {"PATH": os.environ["PATH"], "LOG_DIR": str(logs), "RETENTION_DAYS": "1"}
    env["INTERVAL_SECONDS"] = "60"
    proc = subprocess.Popen(
        groomer["command"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # past the empty-folder pass of the same round
        assert not old.exists(), "a file past the retention was kept"
        assert new.exists(), "a file within the retention was deleted"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert "deleted 1 files" in out
    # An empty folder untouched for long is removed (its parent, emptied, on a later
    # round); a just-created empty one (a task starting) stays.
    assert not stale.exists()
    assert fresh.exists()


# ---- extension points -------------------------------------------------------------------

EXTRAS: dict[str, Any] = {
    "podLabels": {"team": "data"},
    "podAnnotations": {"example.com/owner": "data"},
    "command": ["tini", "--", "{{ .Release.Name }}-run"],
    "args": ["--flag"],
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
    "extraVolumes": [{"name": "{{ .Release.Name }}-ca", "configMap": {"name": "ca"}}],
    "extraVolumeMounts": [{"name": "oe-ca", "mountPath": "/etc/ca", "readOnly": True}],
    "extraContainers": [{"name": "sidecar", "image": "busybox:1.36"}],
    "extraInitContainers": [{"name": "prepare", "image": "busybox:1.36"}],
}


@pytest.mark.parametrize("key", [*AIRFLOW, *SERVICES], ids=lambda k: k)
def test_extension_points(chart: Any, key: str) -> None:
    if key in AIRFLOW:
        (component, kind), enable = AIRFLOW[key], {}
    else:
        component, kind, enable = SERVICES[key]
    objects = chart.render({**enable, key: {**enable.get(key, {}), **EXTRAS}})
    pod = _pod(chart, objects, kind, component)
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == component
    assert pod["metadata"]["annotations"]["example.com/owner"] == "data"
    spec = pod["spec"]
    main = spec["containers"][0]
    assert main["command"] == ["tini", "--", "oe-run"]  # templated
    assert main["args"] == ["--flag"]
    assert main["lifecycle"] == EXTRAS["lifecycle"]
    assert {"name": "oe-ca", "configMap": {"name": "ca"}} in spec["volumes"]
    assert {"name": "oe-ca", "mountPath": "/etc/ca", "readOnly": True} in main["volumeMounts"]
    assert spec["containers"][-1] == {"name": "sidecar", "image": "busybox:1.36"}
    assert spec["initContainers"][-1] == {"name": "prepare", "image": "busybox:1.36"}
    if key == "workers":
        # KubernetesExecutor task pods run the same code: the same extra volumes.
        task = yaml.safe_load(
            chart.one(objects, "ConfigMap", chart.name("pod-template"))["data"]["pod_template.yaml"]
        )["spec"]
        assert {"name": "oe-ca", "configMap": {"name": "ca"}} in task["volumes"]
        mount = {"name": "oe-ca", "mountPath": "/etc/ca", "readOnly": True}
        assert mount in task["containers"][0]["volumeMounts"]
        assert [c["name"] for c in task["containers"]] == ["base"]  # no sidecar in task pods
    if key in AIRFLOW:
        # The chart's own init container runs first and sees the extra mounts too.
        wait = spec["initContainers"][0]
        assert wait["name"] == "wait-for-migrations"
        assert {"name": "oe-ca", "mountPath": "/etc/ca", "readOnly": True} in wait["volumeMounts"]
    # Without them: the chart's own command and nothing extra.
    plain = _pod(chart, chart.render(enable), kind, component)["spec"]
    assert plain["containers"][0].get("command") != ["tini", "--", "oe-run"]
    assert "lifecycle" not in plain["containers"][0]
    assert "sidecar" not in {c["name"] for c in plain["containers"]}


def test_global_scheduling_and_component_precedence(chart: Any) -> None:
    node = {"pool": "airflow"}
    toleration = [{"key": "dedicated", "value": "airflow", "effect": "NoSchedule"}]
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    spread = [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
               "whenUnsatisfiable": "DoNotSchedule"}]  # fmt: skip
    values = {
        "global": {
            "nodeSelector": node,
            "tolerations": toleration,
            "affinity": affinity,
            "topologySpreadConstraints": spread,
        },
        "scheduler": {"nodeSelector": {"pool": "schedulers"}, "affinity": {"podAffinity": {}}},
        "pgbouncer": {"enabled": True},
        "statsd": {"enabled": True},
    }
    objects = chart.render(values)
    specs = dict(chart.pod_specs(objects))
    assert len(specs) >= 12
    for where, spec in specs.items():
        if where.startswith("pod-template/"):
            # KubernetesExecutor task pods: the workers' scheduling, else the global one.
            assert spec.get("nodeSelector") == node, where
            assert spec.get("tolerations") == toleration, where
            assert spec.get("affinity") == affinity, where
            continue
        expected = {"pool": "schedulers"} if where.endswith("-scheduler") else node
        assert spec.get("nodeSelector") == expected, where
        assert spec.get("tolerations") == toleration, where
        if where.startswith(("Job/", "CronJob/")):
            assert spec.get("affinity") == affinity, where
            continue
        want = {"podAffinity": {}} if where.endswith("-scheduler") else affinity
        assert spec["affinity"] == want, where
        assert spec["topologySpreadConstraints"] == spread, where
    # Without globals: the chart's anti-affinity and zone spread per component.
    default = dict(chart.pod_specs(chart.render()))[f"StatefulSet/{chart.name('worker')}"]
    assert "podAntiAffinity" in default["affinity"]
    assert default["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"


# ---- a way in ---------------------------------------------------------------------------


def test_ingress_and_http_route(chart: Any) -> None:
    objects = chart.render()
    assert not chart.find(objects, "Ingress")
    assert not chart.find(objects, "HTTPRoute")
    values = {
        "apiServer": {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": ["airflow.example.com"],
                "tls": [{"secretName": "airflow-tls", "hosts": ["airflow.example.com"]}],
                "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "300"},
            },
            "httpRoute": {
                "enabled": True,
                "parentRefs": [{"name": "public", "namespace": "gateways"}],
                "hostnames": ["airflow.example.com"],
            },
        }
    }
    objects = chart.render(values)
    ingress = chart.one(objects, "Ingress", chart.name("api-server"))
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "airflow.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/"
    assert path["pathType"] == "Prefix"
    assert path["backend"] == {
        "service": {"name": chart.name("api-server"), "port": {"name": "http"}}
    }
    assert ingress["spec"]["tls"] == [
        {"secretName": "airflow-tls", "hosts": ["airflow.example.com"]}
    ]
    route = chart.one(objects, "HTTPRoute", chart.name("api-server"))
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["airflow.example.com"]
    (route_rule,) = route["spec"]["rules"]
    assert route_rule["backendRefs"] == [{"name": chart.name("api-server"), "port": 8080}]
    # No hosts: one rule for any host.
    anyhost = chart.render({"apiServer": {"ingress": {"enabled": True}}})
    (rule,) = chart.one(anyhost, "Ingress", chart.name("api-server"))["spec"]["rules"]
    assert "host" not in rule


# ---- housekeeping -----------------------------------------------------------------------


def _db_clean(chart: Any, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return chart.one(chart.render(values), "CronJob", chart.name("db-clean"))  # type: ignore[no-any-return]


def test_db_clean_cronjob(chart: Any) -> None:
    cron = _db_clean(chart)
    assert cron["spec"]["schedule"] == "17 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == chart.name("db-clean")
    assert spec["automountServiceAccountToken"] is False
    (main,) = spec["containers"]
    assert "airflow db clean --clean-before-timestamp" in main["command"][2]
    assert main["command"][4:] == ["--skip-archive"]
    assert _env(main)["RETENTION_DAYS"]["value"] == "90"
    objects = chart.render()
    sa = chart.one(objects, "ServiceAccount", chart.name("db-clean"))
    assert sa["automountServiceAccountToken"] is False
    # Tables, archive, retention from values; the off-switch.
    tuned = _db_clean(
        chart, {"dbClean": {"retentionDays": 30, "tables": ["xcom", "log"], "skipArchive": False}}
    )
    main = tuned["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert main["command"][4:] == ["--tables", "xcom,log"]
    assert _env(main)["RETENTION_DAYS"]["value"] == "30"
    off = chart.render({"dbClean": {"enabled": False}})
    assert not chart.find(off, "CronJob")
    assert not chart.find(off, "ServiceAccount", chart.name("db-clean"))


def test_db_clean_computes_the_cutoff_from_the_retention(chart: Any, tmp_path: Path) -> None:
    """The rendered shell runs here with a stand-in `airflow` (a mock that prints its
    arguments) on PATH: the timestamp it passes is now minus retentionDays, in UTC."""
    cron = _db_clean(chart, {"dbClean": {"retentionDays": 10}})
    main = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    fake = tmp_path / "airflow"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "RETENTION_DAYS": "10"}
    out = subprocess.run(main["command"], env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("db-clean: deleting metadata older than 10 days")
    args = lines[1:]
    assert args[:2] == ["db", "clean"]
    cutoff = datetime.fromisoformat(args[args.index("--clean-before-timestamp") + 1])
    expected = datetime.now(UTC) - timedelta(days=10)
    assert abs((cutoff - expected).total_seconds()) < 60
    assert args[-2:] == ["--yes", "--skip-archive"]


# ---- scaling and supporting services ----------------------------------------------------


@pytest.mark.parametrize(
    ("executor", "fragment"),
    [
        ("CeleryExecutor", None),
        ("CeleryExecutor,KubernetesExecutor", "executor NOT IN ('KubernetesExecutor')"),
        ("KubernetesExecutor,CeleryExecutor", "executor IN ('CeleryExecutor'"),
    ],
)
def test_keda_counts_celery_task_instances(chart: Any, executor: str, fragment: str | None) -> None:
    objects = chart.render(
        {
            "airflow": {"executor": executor},
            "workers": {"keda": {"enabled": True, "connectionKey": "keda"}},
        }
    )
    (trigger,) = chart.one(objects, "ScaledObject", chart.name("worker"))["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    if fragment:
        assert fragment in query
    else:
        assert "executor" not in query
    auth = chart.one(objects, "TriggerAuthentication", chart.name("worker"))
    assert auth["spec"]["secretTargetRef"][0]["key"] == "keda"
    own = chart.render({"workers": {"keda": {"enabled": True, "triggers": [{"type": "cpu"}]}}})
    assert not chart.find(own, "TriggerAuthentication")


def test_statsd_ships_its_mappings(chart: Any) -> None:
    objects = chart.render({"statsd": {"enabled": True}})
    cm = chart.one(objects, "ConfigMap", chart.name("statsd"))
    shipped = (chart.path / "files" / "statsd-mappings.yml").read_text().strip()
    assert cm["data"]["mappings.yml"].strip() == shipped
    mappings = yaml.safe_load(cm["data"]["mappings.yml"])["mappings"]
    assert {m["name"] for m in mappings} >= {"airflow_task_duration", "airflow_ti_finish"}
    spec = _pod(chart, objects, "Deployment", "statsd")["spec"]
    main = spec["containers"][0]
    assert "--statsd.mapping-config=/etc/statsd-exporter/mappings.yml" in main["args"]
    assert {"name": "mappings", "mountPath": "/etc/statsd-exporter", "readOnly": True} in main[
        "volumeMounts"
    ]
    own = chart.render({"statsd": {"enabled": True, "mappings": "mappings: []\n"}})
    assert chart.one(own, "ConfigMap", chart.name("statsd"))["data"]["mappings.yml"].strip() == (
        "mappings: []"
    )


def _pgbouncer_script(chart: Any) -> tuple[dict[str, Any], str]:
    objects = chart.render({"pgbouncer": {"enabled": True}})
    spec = _pod(chart, objects, "Deployment", "pgbouncer")["spec"]
    (init,) = spec["initContainers"]
    return spec, init["command"][2]


def test_pgbouncer_config_generated_from_the_database_secret(chart: Any, tmp_path: Path) -> None:
    spec, script = _pgbouncer_script(chart)
    init = spec["initContainers"][0]
    assert _env(init)["UPSTREAM_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "orders-etl-db",
        "key": "upstream",
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["config"]["emptyDir"]["medium"] == "Memory"
    # The init container's script, run here as the container would run it.
    env = {
        "PATH": os.environ["PATH"],
        "UPSTREAM_URL": "postgresql://airflow:p%40ss%3Aword@pg.prod:6432/airflow?sslmode=require",
        "OUT_DIR": str(tmp_path),
        "POOL_MODE": "transaction",
        "MAX_CLIENT_CONN": "500",
        "DEFAULT_POOL_SIZE": "20",
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)
    ini = (tmp_path / "pgbouncer.ini").read_text()
    assert "airflow = host=pg.prod port=6432 dbname=airflow\n" in ini
    assert "listen_port = 6543\n" in ini
    assert "server_tls_sslmode = require\n" in ini
    assert "pool_mode = transaction\n" in ini
    assert (tmp_path / "userlist.txt").read_text() == '"airflow" "p@ss:word"\n'
    assert (tmp_path / "userlist.txt").stat().st_mode & 0o077 == 0
    bad = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "UPSTREAM_URL": "mysql://a:b@db/x"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "not a PostgreSQL URL" in bad.stderr
    # A Secret of one's own: no init container, the Secret mounted.
    own = chart.render({"pgbouncer": {"enabled": True, "existingSecret": "pgb"}})
    own_spec = _pod(chart, own, "Deployment", "pgbouncer")["spec"]
    assert "initContainers" not in own_spec
    assert {v["name"]: v for v in own_spec["volumes"]}["config"]["secret"]["secretName"] == "pgb"
