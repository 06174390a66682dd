"""The orders-etl chart on the real local control plane (kwok nodes).

Installs with `helm install --wait` into namespaces with PodSecurity `restricted`
enforced, then checks what only a real API server can: workloads Available, admission,
server-side dry-runs of the shipped templates against the real CRDs, RBAC through
`kubectl auth can-i`, the generated secrets across `helm upgrade`, and what
`helm uninstall` leaves behind. The Argo CD Applications are dry-run against the Argo CD
CRD.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import chart_e2e, paths
from localplatform.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "orders-etl"
RELEASE = "oe"
FULLNAME = f"{RELEASE}-orders-etl"
SPARK_CRD = ROOT / ".tools" / "share" / "spark-crds" / "sparkoperator.k8s.io_sparkapplications.yaml"
ARGO_CRD = ROOT / ".tools" / "share" / "argocd-crds" / "application-crd.yaml"
#: The local control plane has no volume provisioner: the in-chart Redis' claim (on by
#: default) would stay Pending, so installs here keep its data in an emptyDir.
NO_PROVISIONER = ("--set", "redis.persistence.enabled=false")


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(paths.tool("helm")), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "HELM_CACHE_HOME": str(ROOT / ".run" / "helm-cache")},
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


SUBRESOURCES = {"pods/exec", "pods/attach", "pods/portforward", "pods/log"}


def can_i(cluster: Cluster, namespace: str, sa: str, verb: str, resource: str, where: str) -> bool:
    """`kubectl auth can-i` as a ServiceAccount. `where` is a namespace or `*` (all).
    `pods/exec`-style subresources go through --subresource: kubectl reads `a/b` as
    TYPE/NAME, so `can-i create pods/exec` would ask about a pod named "exec"."""
    scope = ["--all-namespaces"] if where == "*" else ["-n", where]
    if resource in SUBRESOURCES:
        base, sub = resource.split("/")
        target = [base, f"--subresource={sub}"]
    else:
        target = [resource]
    result = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        *target,
        *scope,
        f"--as=system:serviceaccount:{namespace}:{sa}",
        check=False,
    )
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def cluster(local_cluster: Cluster) -> Cluster:
    # The CRDs are cluster-scoped and shared; server-side apply is idempotent.
    for crd in (SPARK_CRD, ARGO_CRD):
        assert crd.exists(), f"{crd} missing: run `make setup`"
        local_cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=orders-etl-chart-tests",
            "-f",
            str(crd),
        )
    local_cluster.wait_crds_established(
        "sparkapplications.sparkoperator.k8s.io", "applications.argoproj.io"
    )
    return local_cluster


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> Iterator[Callable[[str], str]]:
    """Creates unique restricted namespaces; deletes them at the end of the module."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        cluster.kubectl("create", "namespace", name)
        cluster.kubectl(
            "label",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        )
        created.append(name)
        return name

    yield make
    for name in created:
        helm(cluster, "uninstall", RELEASE, "-n", name, "--wait", check=False)
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def create_secret(cluster: Cluster, namespace: str, name: str, **data: str) -> None:
    literals = [f"--from-literal={k}={v}" for k, v in data.items()]
    cluster.kubectl("create", "secret", "generic", name, "-n", namespace, *literals)


def assert_workloads_available(cluster: Cluster, namespace: str) -> set[str]:
    # After an upgrade the old ReplicaSets' pods may still be terminating: let the
    # rollouts finish before counting.
    for kind in ("deployment", "statefulset"):
        names = cluster.kubectl("get", kind, "-n", namespace, "-o", "name").stdout.split()
        for name in names:
            cluster.kubectl("rollout", "status", name, "-n", namespace, "--timeout=90s")
    deployments = get_json(cluster, "deployments", "-n", namespace)["items"]
    statefulsets = get_json(cluster, "statefulsets", "-n", namespace)["items"]
    assert deployments
    for w in deployments + statefulsets:
        want = w["spec"].get("replicas", 1)
        ready = w["status"].get("readyReplicas", 0)
        assert ready == want, f"{w['kind']} {w['metadata']['name']}: {ready}/{want} ready"
    for d in deployments:
        conditions = {c["type"]: c["status"] for c in d["status"]["conditions"]}
        assert conditions.get("Available") == "True", d["metadata"]["name"]
    return {w["metadata"]["name"] for w in deployments + statefulsets}


def wait_jobs_complete(cluster: Cluster, namespace: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = get_json(cluster, "jobs", "-n", namespace)["items"]
        pending = [j["metadata"]["name"] for j in jobs if not j["status"].get("succeeded")]
        if jobs and not pending:
            return [j["metadata"]["name"] for j in jobs]
        assert time.monotonic() < deadline, f"jobs not complete: {pending}"
        time.sleep(1)


def configmap_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    data: dict[str, str] = get_json(cluster, "configmap", name, "-n", namespace)["data"]
    return data


def run_secrets_init(cluster: Cluster, namespace: str) -> str:
    """Runs the chart's secrets-init script exactly as its Job would: the script from the
    installed ConfigMap, the Job's env, a token of the Job's ServiceAccount. (kwok nodes
    never run container code, so the test plays the container.)"""
    script = configmap_data(cluster, namespace, f"{FULLNAME}-secrets-init")["generate_secrets.py"]
    jobs = get_json(cluster, "jobs", "-n", namespace)["items"]
    (job,) = [j for j in jobs if j["metadata"]["name"].startswith(f"{FULLNAME}-secrets-init-")]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    token = cluster.kubectl(
        "create", "token", f"{FULLNAME}-secrets-init", "-n", namespace, "--duration=10m"
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="orders-etl-secrets-init-") as tmp:
        work = Path(tmp)
        (work / "generate_secrets.py").write_text(script)
        (work / "token").write_text(token)
        result = subprocess.run(
            ["python3", str(work / "generate_secrets.py")],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                **env,
                "SECRET_NAMESPACE": namespace,
                "KUBE_API": cluster.server,
                "KUBE_TOKEN_FILE": str(work / "token"),
                "KUBE_CA_FILE": str(cluster.pki_dir / "ca.crt"),
            },
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    data: dict[str, str] = get_json(cluster, "secret", name, "-n", namespace)["data"]
    return data


# ---- values/local.yaml: install, dry-runs, RBAC, secrets, upgrade, uninstall ------------


@pytest.fixture(scope="module")
def local_release(cluster: Cluster, namespaces: Callable[[str], str]) -> str:
    namespace = namespaces("chart-local")
    create_secret(
        cluster, namespace, "orders-etl-db", connection="postgresql+psycopg2://a:b@pg:5432/airflow"
    )
    t0 = time.monotonic()
    helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        namespace,
        "-f",
        str(ROOT / "values" / "local.yaml"),
        "--wait",
        "--timeout",
        "3m",
    )
    print(f"\nhelm install --wait (values/local.yaml): {time.monotonic() - t0:.1f} s")
    return namespace


def test_local_install_every_workload_available(cluster: Cluster, local_release: str) -> None:
    names = assert_workloads_available(cluster, local_release)
    assert names == {
        f"{FULLNAME}-{c}"
        for c in ("api-server", "scheduler", "triggerer", "dag-processor", "worker", "redis")
    }
    jobs = wait_jobs_complete(cluster, local_release)
    for prefix in ("migrate", "bootstrap", "secrets-init"):
        assert any(j.startswith(f"{FULLNAME}-{prefix}-") for j in jobs), prefix
    # The namespace really enforces restricted: a root pod is refused there.
    refused = cluster.kubectl(
        "run",
        "root",
        "-n",
        local_release,
        "--image=busybox:1.36",
        "--restart=Never",
        "--overrides",
        json.dumps({"spec": {"securityContext": {"runAsUser": 0}}}),
        check=False,
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr


def test_pod_template_passes_server_side_dry_run(cluster: Cluster, local_release: str) -> None:
    pod = configmap_data(cluster, local_release, f"{FULLNAME}-pod-template")["pod_template.yaml"]
    result = cluster.kubectl(
        "create", "--dry-run=server", "-n", local_release, "-f", "-", "-o", "json", input=pod
    )
    created = json.loads(result.stdout)
    assert created["kind"] == "Pod"
    assert created["spec"]["serviceAccountName"] == f"{FULLNAME}-worker"


def test_sparkapplication_template_passes_server_side_dry_run(
    cluster: Cluster, local_release: str
) -> None:
    data = configmap_data(cluster, local_release, f"{FULLNAME}-spark-template")
    assert data["jobs-namespace"] == local_release
    app = yaml.safe_load(data["sparkapplication.yaml"])
    result = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", "-o", "json", input=yaml.safe_dump(app)
    )
    created = json.loads(result.stdout)
    assert created["spec"]["driver"]["serviceAccount"] == f"{FULLNAME}-spark-driver"
    # The CRD's schema is really applied: a wrong type is refused.
    app["spec"]["driver"]["cores"] = "one"
    refused = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(app), check=False
    )
    assert refused.returncode != 0
    assert "cores" in refused.stderr


def test_rbac_matrix(cluster: Cluster, local_release: str) -> None:
    ns = local_release
    spark = "sparkapplications.sparkoperator.k8s.io"
    allowed: list[tuple[str, str, str, str]] = []
    denied: list[tuple[str, str, str, str]] = []
    for sa in ("worker", "triggerer"):
        allowed += [(sa, verb, spark, ns) for verb in ("create", "get", "list", "watch", "delete")]
        denied += [(sa, "create", spark, "default"), (sa, "create", "pods", ns)]
    allowed += [
        ("scheduler", "create", "pods", ns),
        ("scheduler", "delete", "pods", ns),
        ("scheduler", "watch", "pods", ns),
        ("scheduler", "get", "pods/log", ns),
        ("api-server", "get", "pods/log", ns),
        ("spark-driver", "create", "pods", ns),
        ("spark-driver", "create", "services", ns),
        ("spark-driver", "create", "configmaps", ns),
        ("spark-driver", "create", "persistentvolumeclaims", ns),
        ("secrets-init", "create", "secrets", ns),
        ("secrets-init", "get", f"secrets/{FULLNAME}-generated", ns),
        ("secrets-init", "patch", f"secrets/{FULLNAME}-generated", ns),
    ]
    every_sa = (
        "scheduler",
        "triggerer",
        "worker",
        "api-server",
        "dag-processor",
        "spark-driver",
        "secrets-init",
        "jobs",
    )
    for sa in every_sa:
        denied += [
            (sa, "list", "secrets", "*"),
            (sa, "get", "secrets/orders-etl-db", ns),
            (sa, "create", "pods/exec", ns),
            (sa, "get", "pods/exec", ns),
            (sa, "create", "pods/attach", ns),
            (sa, "create", "pods/portforward", ns),
            (sa, "list", "nodes", "*"),
            (sa, "create", "rolebindings", ns),
        ]
    denied += [
        ("scheduler", "create", spark, ns),
        ("api-server", "create", "pods", ns),
        ("dag-processor", "get", "pods", ns),
        ("dag-processor", "get", "pods/log", ns),
        ("worker", "get", "pods/log", ns),
        ("jobs", "get", "pods", ns),
        ("spark-driver", "create", spark, ns),
        ("secrets-init", "list", "secrets", ns),
        ("secrets-init", "delete", f"secrets/{FULLNAME}-generated", ns),
    ]
    wrong = [
        f"{sa} should{'' if want else ' not'} {verb} {res} in {where}"
        for want, cases in ((True, allowed), (False, denied))
        for sa, verb, res, where in cases
        if can_i(cluster, ns, f"{FULLNAME}-{sa}", verb, res, where) != want
    ]
    assert not wrong, "\n".join(wrong)


def test_generated_secrets_survive_upgrade_and_uninstall(
    cluster: Cluster, local_release: str
) -> None:
    ns = local_release
    generated = f"{FULLNAME}-generated"
    assert "created secret" in run_secrets_init(cluster, ns)
    before = secret_data(cluster, ns, generated)
    assert set(before) == {
        "fernet-key",
        "api-secret-key",
        "jwt-secret",
        "redis-password",
        "admin-password",
    }
    assert len(base64.urlsafe_b64decode(base64.b64decode(before["fernet-key"]))) == 32
    migrate_before = {
        j["metadata"]["name"]
        for j in get_json(cluster, "jobs", "-n", ns)["items"]
        if "migrate" in j["metadata"]["name"]
    }

    # Changed values and a new image tag: a new migration Job (no immutable-field error),
    # the secrets untouched by helm, and a re-run of the generator changes nothing.
    helm(
        cluster,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "-f",
        str(ROOT / "values" / "local.yaml"),
        "--set",
        "images.airflow.tag=3.3.2-build2",
        "--set",
        "workers.replicas=2",
        "--set",
        "airflow.pools.spark_submission_pool.slots=6",
        "--wait",
        "--timeout",
        "3m",
    )
    assert_workloads_available(cluster, ns)
    jobs = wait_jobs_complete(cluster, ns)
    migrate_after = {j for j in jobs if "migrate" in j}
    assert migrate_after
    assert migrate_after.isdisjoint(migrate_before)
    assert "nothing changed" in run_secrets_init(cluster, ns)
    assert secret_data(cluster, ns, generated) == before

    # Uninstall leaves what the chart README says: the generated Secret (and the user's).
    helm(cluster, "uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "2m")
    deadline = time.monotonic() + 60
    while get_json(cluster, "pods", "-n", ns)["items"] and time.monotonic() < deadline:
        time.sleep(1)
    kinds = ",".join(
        [
            "deployments",
            "statefulsets",
            "jobs",
            "pods",
            "services",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "roles",
            "rolebindings",
            "poddisruptionbudgets",
            "networkpolicies",
            "horizontalpodautoscalers",
        ]
    )
    left = {
        f"{o['kind']}/{o['metadata']['name']}" for o in get_json(cluster, kinds, "-n", ns)["items"]
    }
    assert left == {
        f"Secret/{generated}",
        "Secret/orders-etl-db",
        "ConfigMap/kube-root-ca.crt",
        "ServiceAccount/default",
    }
    assert secret_data(cluster, ns, generated) == before
    readme = (CHART / "README.md").read_text()
    assert "<fullname>-generated" in readme.split("## Uninstall")[1]


# ---- a second scenario: Celery HA + NetworkPolicies + a separate jobs namespace --------


def test_celery_ha_with_networkpolicies_and_jobs_namespace(
    cluster: Cluster, namespaces: Callable[[str], str]
) -> None:
    ns = namespaces("chart-ha")
    jobs_ns = namespaces("chart-jobs")
    create_secret(
        cluster, ns, "orders-etl-db", connection="postgresql+psycopg2://a:b@pg:5432/airflow"
    )
    helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "-f",
        str(CHART / "ci" / "celery-ha-values.yaml"),
        "-f",
        str(CHART / "ci" / "networkpolicies-values.yaml"),
        "--set",
        f"spark.jobsNamespace={jobs_ns}",
        *NO_PROVISIONER,
        "--wait",
        "--timeout",
        "3m",
    )
    names = assert_workloads_available(cluster, ns)
    assert f"{FULLNAME}-statsd" in names
    scheduler = get_json(cluster, "deployment", f"{FULLNAME}-scheduler", "-n", ns)
    assert scheduler["status"]["readyReplicas"] == 3
    pods = get_json(cluster, "pods", "-n", ns, "-l", "app.kubernetes.io/component=scheduler")[
        "items"
    ]
    assert len({p["spec"]["nodeName"] for p in pods}) == 3, "spread over the three zones"
    assert get_json(cluster, "hpa", f"{FULLNAME}-worker", "-n", ns)["spec"]["maxReplicas"] == 6
    assert len(get_json(cluster, "networkpolicies", "-n", ns)["items"]) == 5
    spark = "sparkapplications.sparkoperator.k8s.io"
    worker = f"{FULLNAME}-worker"
    assert can_i(cluster, ns, worker, "create", spark, jobs_ns)
    assert not can_i(cluster, ns, worker, "create", spark, ns)
    assert can_i(cluster, jobs_ns, f"{FULLNAME}-spark-driver", "create", "pods", jobs_ns)
    assert not can_i(cluster, jobs_ns, f"{FULLNAME}-spark-driver", "create", "pods", ns)
    app = yaml.safe_load(
        configmap_data(cluster, ns, f"{FULLNAME}-spark-template")["sparkapplication.yaml"]
    )
    assert app["metadata"]["namespace"] == jobs_ns
    cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(app))


@pytest.mark.parametrize(
    "scenario", ["kubernetes-executor", "external-db", "no-spark"], ids=lambda s: s
)
def test_ci_scenario_installs(
    cluster: Cluster, namespaces: Callable[[str], str], scenario: str
) -> None:
    ns = namespaces(f"chart-{scenario}")
    # The Secrets the scenario names (pods on kwok never read them; the API server
    # still validates every reference's shape).
    create_secret(cluster, ns, "orders-etl-db", connection="postgresql+psycopg2://a:b@pg/airflow")
    helm(
        cluster,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "-f",
        str(CHART / "ci" / f"{scenario}-values.yaml"),
        *NO_PROVISIONER,
        "--wait",
        "--timeout",
        "3m",
    )
    names = assert_workloads_available(cluster, ns)
    assert (f"{FULLNAME}-worker" in names) == (scenario != "kubernetes-executor")
    assert (f"{FULLNAME}-pgbouncer" in names) == (scenario == "external-db")
    spark_cms = cluster.kubectl(
        "get", "configmap", f"{FULLNAME}-spark-template", "-n", ns, check=False
    )
    assert (spark_cms.returncode == 0) == (scenario != "no-spark")
    if scenario == "kubernetes-executor":
        pod = configmap_data(cluster, ns, f"{FULLNAME}-pod-template")["pod_template.yaml"]
        cluster.kubectl("create", "--dry-run=server", "-n", ns, "-f", "-", input=pod)


# ---- Argo CD ----------------------------------------------------------------------------


def test_argocd_applications_validate_against_the_crd(
    cluster: Cluster, namespaces: Callable[[str], str]
) -> None:
    ns = namespaces("chart-argocd")
    files = sorted((ROOT / "argocd").glob("*.yaml"))
    assert {f.name for f in files} >= {"orders-etl.yaml", "spark-operator.yaml"}
    for path in files:
        for app in yaml.safe_load_all(path.read_text()):
            assert app["kind"] == "Application"
            assert "argocd.argoproj.io/sync-wave" in app["metadata"]["annotations"]
            app["metadata"]["namespace"] = ns
            cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(app))
            if app["spec"]["source"].get("path") == "charts/orders-etl":
                for vf in app["spec"]["source"]["helm"]["valueFiles"]:
                    assert (CHART / vf).resolve().is_file(), vf
    # The CRD's schema is really enforced: a wrong type is refused.
    broken = yaml.safe_load((ROOT / "argocd" / "orders-etl.yaml").read_text())
    broken["metadata"]["namespace"] = ns
    broken["spec"]["syncPolicy"]["retry"]["limit"] = "five"
    refused = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(broken), check=False
    )
    assert refused.returncode != 0


# ---- the kind path's install (not run here: no Docker) ----------------------------------


def test_the_kind_path_values_install(cluster: Cluster, namespaces: Callable[[str], str]) -> None:
    """values/kind.yaml + values/e2e.yaml, as `make kind-up` installs them
    (localplatform.kind_e2e), with the Secrets it creates: the real API server admits
    every object, the pods pass PodSecurity `restricted`, the chart creates the jobs
    namespace (the operator's chart creates nothing there) and the SparkApplication
    template passes a server-side dry-run in it."""
    ns = namespaces("chart-kind")
    jobs_ns = f"chart-kind-jobs-{uuid.uuid4().hex[:6]}"
    e2e_secrets = {
        "orders-etl-db": {"connection": "postgresql+psycopg2://a:b@pg:5432/airflow"},
        "orders-etl-broker": {"url": "redis://:p@redis:6379/0"},
        "orders-etl-s3": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        "orders-etl-slack": {"connection": '{"conn_type": "slackwebhook"}'},
        "orders-etl-iceberg": {
            "ICEBERG_JDBC_USER": "u",
            "ICEBERG_JDBC_PASSWORD": "p",
        },
    }
    for name, data in e2e_secrets.items():
        create_secret(cluster, ns, name, **data)
    values = paths.REPO_ROOT / "values"
    try:
        helm(
            cluster, "install", RELEASE, str(CHART), "-n", ns,
            "-f", str(values / "kind.yaml"), "-f", str(chart_e2e.E2E_VALUES),
            # the operator would watch this test's namespace (kind.yaml declares spark-jobs)
            "--set", f"spark.jobsNamespace={jobs_ns}",
            "--set", f"spark.operatorJobNamespaces={{{jobs_ns}}}",
            "--wait", "--timeout", "3m",
        )  # fmt: skip
        assert_workloads_available(cluster, ns)
        jobs = get_json(cluster, "namespace", jobs_ns)
        assert jobs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for name in chart_e2e.SPARK_SECRETS:
            create_secret(cluster, jobs_ns, name, **e2e_secrets[name])
        app = yaml.safe_load(
            configmap_data(cluster, ns, f"{FULLNAME}-spark-template")["sparkapplication.yaml"]
        )
        assert app["metadata"]["namespace"] == jobs_ns
        cluster.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(app))
    finally:
        helm(cluster, "uninstall", RELEASE, "-n", ns, "--wait", check=False)
        cluster.kubectl("delete", "namespace", jobs_ns, "--ignore-not-found", "--wait=false")


# ---- day-2 objects: login, logs, housekeeping, extension points --------------------------

#: Kinds whose CRDs a user installs with their operator (KEDA, Gateway API, Prometheus
#: Operator); the chart tests check their shape, the API server here cannot.
OPERATOR_KINDS = {"ScaledObject", "TriggerAuthentication", "HTTPRoute", "ServiceMonitor"}
DAY2_VALUES: dict[str, Any] = {
    "database": {"existingSecret": "orders-etl-db"},
    "apiServer": {
        "ingress": {"enabled": True, "hosts": ["airflow.example.com"],
                    "tls": [{"secretName": "airflow-tls", "hosts": ["airflow.example.com"]}]},
        "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw", "namespace": "gateways"}]},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
    },
    "workers": {
        "keda": {"enabled": True},
        "podLabels": {"team": "data"},
        "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle", "optional": True}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ca", "readOnly": True}],
        "extraContainers": [
            {
                "name": "sidecar",
                "image": "orders-etl/airflow:3.3.2",
                "command": ["sleep", "infinity"],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        ],
    },
    "pgbouncer": {"enabled": True},
    "statsd": {"enabled": True},
    "global": {"nodeSelector": {"kubernetes.io/os": "linux"}},
    "redis": {"persistence": {"enabled": True}},
}  # fmt: skip


def test_day2_objects_pass_server_side_dry_run(
    cluster: Cluster, namespaces: Callable[[str], str]
) -> None:
    """The new objects (create-user Job, db-clean CronJob, worker/triggerer StatefulSets
    and headless Services, Ingress, generated-config PgBouncer, statsd mappings, extension
    points) are valid for the real API server, and every pod they make is admitted by
    PodSecurity `restricted` (enforced on Pods, so each pod template is dry-run as a Pod)."""
    ns = namespaces("chart-day2")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(DAY2_VALUES, f)
        f.flush()
        rendered = helm(cluster, "template", RELEASE, str(CHART), "-n", ns, "-f", f.name).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    kinds = {o["kind"] for o in objects}
    assert {"CronJob", "Ingress", "HTTPRoute", "ScaledObject", "TriggerAuthentication"} <= kinds
    checked = []
    # Pods are admitted only with their ServiceAccount present: those are really created.
    objects.sort(key=lambda o: o["kind"] != "ServiceAccount")
    for o in objects:
        if o["kind"] in OPERATOR_KINDS:
            continue
        o["metadata"]["namespace"] = ns
        dry = [] if o["kind"] == "ServiceAccount" else ["--dry-run=server"]
        cluster.kubectl("create", *dry, "-f", "-", input=json.dumps(o))
        checked.append(o["kind"])
        template = o.get("spec", {}).get("template") or (
            o.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
        )
        if o["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            spec = copy.deepcopy(template["spec"])
            for claim in o["spec"].get("volumeClaimTemplates", []):
                name = claim["metadata"]["name"]
                spec.setdefault("volumes", []).append(
                    {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-0"}}
                )
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"dry-{o['metadata']['name'][-50:]}", "namespace": ns},
                "spec": spec,
            }
            result = cluster.kubectl(
                "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
            )
            assert result.returncode == 0, f"{o['kind']}/{o['metadata']['name']}: {result.stderr}"
    assert checked.count("StatefulSet") == 3
    assert "CronJob" in checked
    # Not blind: the same pod with a root sidecar is refused by the namespace's policy.
    root = copy.deepcopy(pod)
    root["spec"]["containers"].append(
        {"name": "root", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}
    )
    refused = cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(root), check=False
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr
