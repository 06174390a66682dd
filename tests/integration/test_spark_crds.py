"""The generated spark-operator CRDs on a real API server, and against the upstream CRDs."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from localplatform import crds
from localplatform.cluster import Cluster
from localplatform.paths import REPO_ROOT

pytestmark = pytest.mark.integration

Body = dict[str, Any]
SPARK_APP, SCHEDULED, CONNECT = crds.RESOURCES
FIELD_MANAGER = "orders-etl-tests"


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> Any: ...  # subprocess.CompletedProcess[str]


def reference_dir() -> Path:
    """Upstream spark-operator CRDs (reference data outside the repo)."""
    default = REPO_ROOT.parent / "shared" / "reference" / "crds"
    return Path(os.environ.get("SPARK_REFERENCE_CRDS", default))


# -- CRD handling ---------------------------------------------------------------------


def run(kubectl: Kubectl, *args: str) -> str:
    """kubectl that must succeed; its stdout (stderr in the failure message)."""
    result = kubectl(*args, check=False)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return str(result.stdout)


def install(cluster: Cluster, path: Path, name: str) -> None:
    """Create or update a CRD (server-side: these are too big for client-side apply)."""
    run(cluster.kubectl, "apply", "--server-side", "--force-conflicts",
        f"--field-manager={FIELD_MANAGER}", "-f", str(path))  # fmt: skip
    cluster.wait_crds_established(name)


def replace(cluster: Cluster, path: Path, name: str) -> None:
    """Delete a CRD (and so every object of it) and create it again from path."""
    run(cluster.kubectl, "delete", "crd", name, "--ignore-not-found", "--wait=true",
        "--timeout=120s")  # fmt: skip
    run(cluster.kubectl, "create", "-f", str(path))
    cluster.wait_crds_established(name)


@pytest.fixture(scope="module")
def kubectl(local_cluster: Any) -> Kubectl:
    run: Kubectl = local_cluster.kubectl
    return run


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generated CRD files, by kind."""
    out = tmp_path_factory.mktemp("spark-crds")
    crds.write_all(out)
    return {r.kind: out / r.filename for r in crds.RESOURCES}


@pytest.fixture(scope="module")
def installed(
    local_cluster: Cluster, kubectl: Kubectl, generated: dict[str, Path]
) -> Iterator[dict[str, Path]]:
    """The generated CRDs, installed; deleted afterwards unless they existed before."""
    existed = {
        r.crd_name: kubectl("get", "crd", r.crd_name, check=False).returncode == 0
        for r in crds.RESOURCES
    }
    for resource in crds.RESOURCES:
        install(local_cluster, generated[resource.kind], resource.crd_name)
    yield generated
    for resource in crds.RESOURCES:
        if existed[resource.crd_name]:
            install(local_cluster, generated[resource.kind], resource.crd_name)
        else:
            kubectl("delete", "crd", resource.crd_name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"spark-crds-{uuid.uuid4().hex[:8]}"
    run(kubectl, "create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


# -- bodies ---------------------------------------------------------------------------

BASE_SPEC: Body = {
    "type": "Python",
    "mode": "cluster",
    "sparkVersion": "4.0.1",
    "image": "registry.local/orders-etl/spark:dev",
    "mainApplicationFile": "local:///opt/spark/jobs/orders.py",
    "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
    "executor": {"cores": 1, "instances": 1, "memory": "512m"},
}
DELETE = object()


def merged(base: Body, patch: Body) -> Body:
    """base deep-merged with patch; DELETE removes a key."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spark_app(name: str, spec_patch: Body | None = None) -> Body:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": merged(BASE_SPEC, spec_patch or {}),
    }


def create(kubectl: Kubectl, namespace: str, body: Body, *extra: str) -> Any:
    return kubectl(
        "create",
        "-n",
        namespace,
        "--validate=strict",
        *extra,
        "-f",
        "-",
        input=json.dumps(body),
        check=False,
    )


# -- the generated CRDs on the API server ---------------------------------------------


def test_generated_crds_are_established(kubectl: Kubectl, installed: dict[str, Path]) -> None:
    for resource in crds.RESOURCES:
        crd = json.loads(run(kubectl, "get", "crd", resource.crd_name, "-o", "json"))
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"
        assert conditions.get("NonStructuralSchema", "False") == "False"
        assert crd["metadata"]["annotations"]["orders-etl.dev/generated-from"].startswith(
            "kubeflow-spark-api=="
        )


@pytest.mark.parametrize(
    ("spec_patch", "message"),
    [
        ({"driver": {"cores": "one"}}, "spec.driver.cores"),
        ({"driver": DELETE}, "spec.driver"),
        ({"type": "Go"}, "spec.type"),
        ({"mode": "local"}, "spec.mode"),
        ({"sparkConf": {"spark.executor.instances": 2}}, "spec.sparkConf"),
    ],
    ids=["string-cores", "no-driver", "bad-type", "bad-mode", "non-string-conf"],
)
def test_api_server_rejects_bad_spark_application(
    kubectl: Kubectl, installed: dict[str, Path], namespace: str, spec_patch: Body, message: str
) -> None:
    result = create(kubectl, namespace, spark_app("bad", spec_patch))
    assert result.returncode != 0, result.stdout
    assert message in result.stderr


def test_valid_spark_application_and_status_subresource(
    kubectl: Kubectl, installed: dict[str, Path], namespace: str
) -> None:
    result = create(kubectl, namespace, spark_app("orders-etl"))
    assert result.returncode == 0, result.stderr
    app = ("sparkapplication", "orders-etl", "-n", namespace)

    # status.driverInfo is required (as upstream), so a status patch must carry it.
    status = {
        "status": {
            "applicationState": {"state": "RUNNING"},
            "driverInfo": {"podName": "orders-etl-driver"},
            "executionAttempts": 1,
        }
    }
    # Without the subresource, status writes are ignored ...
    run(kubectl, "patch", *app, "--type=merge", "-p", json.dumps(status))
    assert run(kubectl, "get", *app, "-o", "jsonpath={.status}") == ""
    # ... through it they land.
    run(kubectl, "patch", *app, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    state = run(kubectl, "get", *app, "-o", "jsonpath={.status.applicationState.state}")
    assert state == "RUNNING"

    table = run(kubectl, "get", "sparkapp", "orders-etl", "-n", namespace).splitlines()
    assert table[0].split()[:5] == ["NAME", "SUSPEND", "STATUS", "ATTEMPTS", "START"]
    assert "RUNNING" in table[1].split()


def test_scheduled_spark_application(
    kubectl: Kubectl, installed: dict[str, Path], namespace: str
) -> None:
    body: Body = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "ScheduledSparkApplication",
        "metadata": {"name": "orders-nightly"},
        "spec": {"schedule": "@daily", "concurrencyPolicy": "Forbid", "template": BASE_SPEC},
    }
    result = create(kubectl, namespace, body)
    assert result.returncode == 0, result.stderr
    header = run(kubectl, "get", "scheduledsparkapp", "-n", namespace).splitlines()[0]
    assert header.split()[:3] == ["NAME", "SCHEDULE", "TIMEZONE"]

    del body["spec"]["schedule"]
    body["metadata"]["name"] = "no-schedule"
    result = create(kubectl, namespace, body)
    assert result.returncode != 0
    assert "spec.schedule" in result.stderr


# -- conformance with the upstream CRD ------------------------------------------------

SIDECAR: Body = {
    "name": "proxy",
    "image": "envoyproxy/envoy:v1.33",
    "ports": [{"name": "admin", "containerPort": 9901}],
    "resources": {"limits": {"cpu": 1, "memory": "128Mi"}, "requests": {"cpu": "100m"}},
    "livenessProbe": {"httpGet": {"path": "/ready", "port": "admin"}},
    "readinessProbe": {"tcpSocket": {"port": 9901}},
}

GOOD: dict[str, Body] = {
    "minimal": {},
    "quantities-int-and-string": {
        "driver": {"coreRequest": "500m", "coreLimit": "1"},
        "batchSchedulerOptions": {"queue": "etl", "resources": {"cpu": 2, "memory": "4Gi"}},
    },
    "memory-overhead": {
        "memoryOverheadFactor": "0.2",
        "driver": {"memoryOverhead": "256m", "memoryLimit": "1g"},
        "executor": {"memoryOverhead": "1g"},
    },
    "volumes": {
        "volumes": [
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}},
            {"name": "conf", "configMap": {"name": "orders-conf", "defaultMode": 420}},
            {
                "name": "cache",
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "metadata": {"labels": {"app": "orders"}},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": 1073741824}},
                        },
                    }
                },
            },
        ],
        "driver": {"volumeMounts": [{"name": "conf", "mountPath": "/etc/orders"}]},
        "executor": {"volumeMounts": [{"name": "scratch", "mountPath": "/tmp/spark"}]},
    },
    "spark-and-hadoop-conf": {
        "sparkConf": {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"},
        "hadoopConf": {"fs.s3a.path.style.access": "true"},
        "sparkConfigMap": "spark-conf",
    },
    "env": {
        "driver": {
            "env": [
                {"name": "ORDERS_TOPIC", "value": "orders"},
                {
                    "name": "S3_SECRET",
                    "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret"}},
                },
                {
                    "name": "MEM",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                    },
                },
            ],
            "labels": {"team": "data"},
        },
        "executor": {"envFrom": [{"configMapRef": {"name": "orders-env"}}]},
    },
    "deps": {
        "deps": {
            "jars": ["local:///opt/spark/jars/iceberg.jar"],
            "packages": ["org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.9.2"],
            "pyFiles": ["local:///opt/spark/jobs/lib.zip"],
            "repositories": ["https://repo1.maven.org/maven2"],
        }
    },
    "restart-and-dynamic-allocation": {
        "restartPolicy": {"type": "OnFailure", "onFailureRetries": 3, "onFailureRetryInterval": 10},
        "dynamicAllocation": {"enabled": True, "minExecutors": 1, "maxExecutors": 4},
        "timeToLiveSeconds": 3600,
    },
    "sidecars-and-probes": {"driver": {"sidecars": [SIDECAR]}},
    "pod-template-is-open": {
        "driver": {"template": {"spec": {"anything": {"goes": True}}, "extra": 1}},
    },
    "monitoring-and-ui": {
        "monitoring": {
            "exposeDriverMetrics": True,
            "exposeExecutorMetrics": True,
            "prometheus": {"jmxExporterJar": "/prometheus/jmx.jar", "port": 8090},
        },
        "sparkUIOptions": {"servicePort": 4040, "serviceType": "ClusterIP"},
    },
    "scheduling": {
        "executor": {
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
        }
    },
}

BAD: dict[str, Body] = {
    "string-cores": {"driver": {"cores": "one"}},
    "zero-executors": {"executor": {"instances": 0}},
    "bad-type": {"type": "Go"},
    "bad-mode": {"mode": "local"},
    "bad-python-version": {"pythonVersion": "4"},
    "bad-restart-policy": {"restartPolicy": {"type": "Sometimes"}},
    "no-driver": {"driver": DELETE},
    "no-spark-version": {"sparkVersion": DELETE},
    "unknown-spec-field": {"drivr": {"cores": 1}},
    "unknown-nested-field": {"executor": {"cpus": 2}},
    "non-string-conf": {"sparkConf": {"spark.executor.instances": 2}},
    "ttl-as-string": {"timeToLiveSeconds": "1h"},
    "volume-without-name": {"volumes": [{"emptyDir": {}}]},
    "bad-quantity": {"batchSchedulerOptions": {"resources": {"cpu": "two cores"}}},
    "float-quantity": {"volumes": [{"name": "v", "emptyDir": {"sizeLimit": 1.5}}]},
    "env-without-name": {"driver": {"env": [{"value": "x"}]}},
    "prometheus-port-too-low": {
        "monitoring": {
            "exposeDriverMetrics": True,
            "exposeExecutorMetrics": False,
            "prometheus": {"jmxExporterJar": "/prometheus/jmx.jar", "port": 80},
        }
    },
    "bad-template-metadata": {
        "volumes": [
            {
                "name": "v",
                "ephemeral": {
                    "volumeClaimTemplate": {"metadata": {"labels": {"a": 1}}, "spec": {}}
                },
            }
        ],
    },
}

#: Objects the generated CRD accepts but the upstream one rejects, knowingly.
KNOWN_DIFFERENCES: dict[str, Body] = {
    # Upstream marks Container.env as a list-map keyed by name (x-kubernetes-list-type:
    # map), so duplicate names are rejected; the pydantic models carry no list markers.
    "duplicate-sidecar-env": {
        "driver": {
            "sidecars": [
                {**SIDECAR, "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}
            ]
        },
    },
}
ALL_PATCHES = {**GOOD, **BAD, **KNOWN_DIFFERENCES}


def dry_run_outcomes(kubectl: Kubectl, namespace: str) -> dict[str, tuple[bool, str]]:
    """Each case's (accepted, stderr) under the installed CRD, with a server-side dry run."""
    outcomes = {}
    for name, patch in ALL_PATCHES.items():
        result = create(kubectl, namespace, spark_app(f"case-{name}", patch), "--dry-run=server")
        outcomes[name] = (result.returncode == 0, result.stderr.strip())
    return outcomes


@pytest.fixture(scope="module")
def conformance(
    local_cluster: Cluster, kubectl: Kubectl, installed: dict[str, Path], namespace: str
) -> dict[str, tuple[tuple[bool, str], tuple[bool, str]]]:
    """(generated, upstream) outcome per case; the generated CRD is restored afterwards."""
    reference = reference_dir() / SPARK_APP.filename
    if not reference.is_file():
        pytest.skip(f"reference CRD {reference} is absent (set SPARK_REFERENCE_CRDS)")
    ours = dry_run_outcomes(kubectl, namespace)
    try:
        replace(local_cluster, reference, SPARK_APP.crd_name)
        upstream = dry_run_outcomes(kubectl, namespace)
    finally:
        replace(local_cluster, installed[SPARK_APP.kind], SPARK_APP.crd_name)
    return {name: (ours[name], upstream[name]) for name in ALL_PATCHES}


@pytest.mark.parametrize(
    ("name", "accepted"),
    [pytest.param(name, True, id=f"good-{name}") for name in GOOD]
    + [pytest.param(name, False, id=f"bad-{name}") for name in BAD],
)
def test_same_outcome_as_upstream(
    conformance: dict[str, tuple[tuple[bool, str], tuple[bool, str]]], name: str, accepted: bool
) -> None:
    (ours, our_error), (upstream, upstream_error) = conformance[name]
    assert ours == upstream, f"generated: {our_error or 'accepted'}; upstream: {upstream_error}"
    assert ours is accepted, our_error or "accepted"


@pytest.mark.parametrize("name", KNOWN_DIFFERENCES)
def test_known_differences_from_upstream(
    conformance: dict[str, tuple[tuple[bool, str], tuple[bool, str]]], name: str
) -> None:
    (ours, our_error), (upstream, upstream_error) = conformance[name]
    assert (ours, upstream) == (True, False), (our_error, upstream_error)
