"""Each component is rendered with the intended replicas, probes, resources, labels."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.chart

AIRFLOW_DEPLOYMENTS = {
    # component: (replicas, probe job type or None for HTTP)
    "scheduler": (2, "SchedulerJob"),
    "triggerer": (2, "TriggererJob"),
    "dag-processor": (1, "DagProcessorJob"),
    "api-server": (2, None),
    "worker": (2, None),
}
#: Workers and triggerers are StatefulSets (stable hostnames for their log servers).
KIND = {"worker": "StatefulSet", "triggerer": "StatefulSet"}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


@pytest.fixture(scope="module")
def default_objects(chart: Any) -> list[dict[str, Any]]:
    return chart.render()


@pytest.mark.parametrize(("component", "expected"), AIRFLOW_DEPLOYMENTS.items())
def test_airflow_deployments(
    chart: Any,
    default_objects: list[dict[str, Any]],
    component: str,
    expected: tuple[int, str | None],
) -> None:
    replicas, job_type = expected
    deployment = chart.one(
        default_objects, KIND.get(component, "Deployment"), chart.name(component)
    )
    assert deployment["spec"]["replicas"] == replicas
    spec = deployment["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert main["image"] == "orders-etl/airflow:3.3.2"
    assert main["resources"]["requests"]["cpu"]
    assert main["resources"]["requests"]["memory"]
    assert main["resources"]["limits"]["memory"]
    assert spec["serviceAccountName"] == chart.name(component)
    # Every component waits for the migration before starting.
    (init,) = spec["initContainers"]
    # The log groomer runs beside every component that writes local logs.
    names = [c["name"] for c in spec["containers"]]
    assert names == [main["name"]] + ([] if component == "api-server" else ["log-groomer"])
    assert init["name"] == "wait-for-migrations"
    assert init["command"][:3] == ["airflow", "db", "check-migrations"]
    assert init["command"][3] == "--migration-wait-timeout=900"
    liveness, startup = main["livenessProbe"], main["startupProbe"]
    if job_type:
        expected_cmd = ["airflow", "jobs", "check", "--job-type", job_type, "--local"]
        assert liveness["exec"]["command"] == expected_cmd
        assert startup["exec"]["command"] == expected_cmd
        # No tight liveness loop (apache/airflow#19001): >= 5 min of failures to restart,
        # a CLI-sized timeout, and a startup probe that covers slow starts.
        assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 300
        assert liveness["timeoutSeconds"] >= 20
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    elif component == "api-server":
        for probe in (liveness, startup, main["readinessProbe"]):
            assert probe["httpGet"] == {"path": "/api/v2/monitor/health", "port": "http"}
    else:
        assert "inspect ping" in " ".join(liveness["exec"]["command"])
    # HA spreading: across zones and nodes by default.
    spread = spec["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == component
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    # No surprise volumes: only emptyDirs with a size limit and ConfigMaps.
    for volume in spec["volumes"]:
        assert "persistentVolumeClaim" not in volume
        if "emptyDir" in volume:
            assert volume["emptyDir"]["sizeLimit"]


def test_only_redis_claims_a_volume_by_default(
    chart: Any, default_objects: list[dict[str, Any]]
) -> None:
    assert not [o for o in default_objects if o["kind"] == "PersistentVolumeClaim"]
    claims = {
        o["metadata"]["name"]: o["spec"].get("volumeClaimTemplates")
        for o in default_objects
        if o["kind"] == "StatefulSet"
    }
    # Queued tasks survive a Redis restart: its append-only file is on a PVC.
    (redis_claim,) = claims.pop(chart.name("redis"))
    assert redis_claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert not any(claims.values()), claims
    redis = chart.one(default_objects, "StatefulSet", chart.name("redis"))
    command = redis["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    off = chart.render(
        {"redis": {"persistence": {"enabled": False}}}, ["redis/redis-statefulset.yaml"]
    )
    assert "volumeClaimTemplates" not in off[0]["spec"]
    assert off[0]["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]


def test_redis_broker_and_service(chart: Any, default_objects: list[dict[str, Any]]) -> None:
    sts = chart.one(default_objects, "StatefulSet", chart.name("redis"))
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert "$(REDIS_PASSWORD)" in container["command"]
    service = chart.one(default_objects, "Service", chart.name("redis"))
    assert service["spec"]["ports"][0]["port"] == 6379


def test_api_server_service(chart: Any, default_objects: list[dict[str, Any]]) -> None:
    service = chart.one(default_objects, "Service", chart.name("api-server"))
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api-server"


@pytest.mark.parametrize("component", ["scheduler", "triggerer", "api-server", "worker"])
def test_pdbs(chart: Any, default_objects: list[dict[str, Any]], component: str) -> None:
    pdb = chart.one(default_objects, "PodDisruptionBudget", chart.name(component))
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "orders-etl",
                "app.kubernetes.io/instance": chart.release,
                "app.kubernetes.io/component": component,
            }
        },
    }


def test_pdb_min_available_instead(chart: Any) -> None:
    objects = chart.render({"scheduler": {"pdb": {"maxUnavailable": None, "minAvailable": 1}}})
    pdb = chart.one(objects, "PodDisruptionBudget", chart.name("scheduler"))
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]


def test_standard_labels_everywhere(chart: Any) -> None:
    for values_file in chart.scenarios:
        for o in chart.render(values_files=[values_file]):
            labels = o["metadata"].get("labels", {})
            missing = [k for k in STANDARD_LABELS if k not in labels]
            assert not missing, (
                f"{values_file.name}: {o['kind']}/{o['metadata']['name']} lacks {missing}"
            )
            assert labels["app.kubernetes.io/instance"] == chart.release
            if o["kind"] in ("Deployment", "StatefulSet"):
                selector = o["spec"]["selector"]["matchLabels"]
                pod_labels = o["spec"]["template"]["metadata"]["labels"]
                assert selector.items() <= pod_labels.items()
                assert set(selector) == {
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    "app.kubernetes.io/component",
                }


def test_celery_only_has_no_kubernetes_executor_parts(chart: Any) -> None:
    objects = chart.render({"airflow": {"executor": "CeleryExecutor"}})
    assert not chart.find(objects, "ConfigMap", chart.name("pod-template"))
    assert not chart.find(objects, "Role", chart.name("scheduler"))
    scheduler = chart.one(objects, "Deployment", chart.name("scheduler"))
    assert scheduler["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert chart.find(objects, "StatefulSet", chart.name("worker"))


def test_kubernetes_only_has_no_workers_or_broker(chart: Any) -> None:
    objects = chart.render(
        {"airflow": {"executor": "KubernetesExecutor"}, "redis": {"enabled": False}}
    )
    assert not chart.find(objects, "StatefulSet", chart.name("worker"))
    assert not chart.find(objects, "Service", chart.name("worker"))
    assert not chart.find(objects, "StatefulSet", chart.name("redis"))
    assert not chart.find(objects, "PodDisruptionBudget", chart.name("worker"))
    # Task pods still run as the worker ServiceAccount.
    assert chart.find(objects, "ServiceAccount", chart.name("worker"))
    for o in objects:
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert "AIRFLOW__CELERY__BROKER_URL" not in {e["name"] for e in c.get("env", [])}


def test_executor_list_is_the_same_everywhere(chart: Any) -> None:
    objects = chart.render({"airflow": {"executor": " CeleryExecutor , KubernetesExecutor "}})
    cfg = chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    assert "executor = CeleryExecutor,KubernetesExecutor\n" in cfg
    # One ConfigMap, mounted by every Airflow container through AIRFLOW_CONFIG.
    for where, spec in chart.pod_specs(objects):
        for c in chart.containers(spec):
            if (
                c["image"].startswith("orders-etl/airflow")
                and "secrets-init" not in where
                and c["name"] not in ("log-groomer", "pgbouncer-config")
            ):
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                assert env["AIRFLOW_CONFIG"] == "/opt/airflow/chart-config/airflow.cfg", where
                assert "AIRFLOW__CORE__EXECUTOR" not in env, where


def test_hpa_and_keda(chart: Any) -> None:
    objects = chart.render(
        {"workers": {"hpa": {"enabled": True, "minReplicas": 3, "maxReplicas": 7}}}
    )
    hpa = chart.one(objects, "HorizontalPodAutoscaler", chart.name("worker"))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 7)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert "replicas" not in chart.one(objects, "StatefulSet", chart.name("worker"))["spec"]
    objects = chart.render({"workers": {"keda": {"enabled": True}}})
    scaled = chart.one(objects, "ScaledObject", chart.name("worker"))
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": chart.name("worker"),
    }
    (trigger,) = scaled["spec"]["triggers"]
    # Running + queued task instances from the metadata DB, not the broker's queue length:
    # workers busy with tasks are not scaled away.
    assert trigger["type"] == "postgresql"
    query = trigger["metadata"]["query"]
    assert "state IN ('running', 'queued')" in query
    assert "COUNT(*)::decimal / 16" in query
    # KubernetesExecutor tasks (executor= on the task) need no Celery worker.
    assert "executor NOT IN ('KubernetesExecutor')" in query
    assert "connection" not in trigger["metadata"]
    auth = chart.one(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "orders-etl-db", "key": "connection"}
    ]


def test_optional_components(chart: Any) -> None:
    objects = chart.render(
        {
            "pgbouncer": {"enabled": True, "existingSecret": "pgb"},
            "statsd": {"enabled": True, "serviceMonitor": {"enabled": True}},
        }
    )
    pgb = chart.one(objects, "Deployment", chart.name("pgbouncer"))
    volumes = {v["name"]: v for v in pgb["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["secret"]["secretName"] == "pgb"
    assert chart.one(objects, "Service", chart.name("statsd"))
    assert chart.one(objects, "ServiceMonitor", chart.name("statsd"))
    cfg = chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    assert f"statsd_host = {chart.name('statsd')}" in cfg
    assert not chart.find(chart.render(), "Deployment", chart.name("statsd"))


def test_pod_template_mounted_in_scheduler(
    chart: Any, default_objects: list[dict[str, Any]]
) -> None:
    cm = chart.one(default_objects, "ConfigMap", chart.name("pod-template"))
    pod = yaml.safe_load(cm["data"]["pod_template.yaml"])
    assert pod["kind"] == "Pod"
    (base,) = pod["spec"]["containers"]
    assert base["name"] == "base"
    assert base["image"] == "orders-etl/airflow:3.3.2"
    assert pod["spec"]["serviceAccountName"] == chart.name("worker")
    env = {e["name"] for e in base["env"]}
    # Airflow 3 task pods talk to the execution API: no DB URL, no signing keys.
    assert not env & {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET"}
    scheduler = chart.one(default_objects, "Deployment", chart.name("scheduler"))
    spec = scheduler["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["pod-template"] == "/opt/airflow/pod_templates"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["pod-template"]["configMap"]["name"] == chart.name("pod-template")
    cfg = chart.one(default_objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    assert "pod_template_file = /opt/airflow/pod_templates/pod_template.yaml" in cfg
