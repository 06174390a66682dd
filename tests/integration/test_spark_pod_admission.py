"""The chart's SparkApplication, submitted as the spark-operator submits it (no webhook),
builds driver and executor pods that PodSecurity `restricted` admits.

Real here: the API server with its PodSecurity admission, the chart rendered by helm
with values/node.yaml's placement, and Spark's own spark-submit (pyspark 3.5, Kubernetes
cluster mode) building the driver pod from the pod template file, with the arguments
the operator passes (spark_operator_standin.submit.operator_arguments). spark-submit
builds only the driver pod; the executor pods are built by the driver, which cannot run
on kwok nodes, so the executor's template goes through the same spark-submit pod builder
(as the driver template of a second submission): Spark's template loading and the
security-relevant parts it adds (volumes, the container's securityContext kept from the
template) are the same for both roles.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import paths
from localplatform.cluster import Cluster
from spark_operator_standin.submit import (
    SubmitSettings,
    command,
    local_spark_env,
    write_pod_templates,
)

pytestmark = pytest.mark.integration

SPARK_SUBMIT = paths.REPO_ROOT / ".venv" / "bin" / "spark-submit"


def rendered_application() -> dict[str, Any]:
    """The chart's SparkApplication with values/node.yaml (placement on the real node)."""
    out = subprocess.run(
        [
            str(paths.tool("helm")),
            "template",
            "oe",
            str(paths.REPO_ROOT / "charts" / "orders-etl"),
            "--kube-version",
            "1.35.0",
            "-f",
            str(paths.REPO_ROOT / "values" / "e2e.yaml"),
            "-f",
            str(paths.REPO_ROOT / "values" / "node.yaml"),
            "--set",
            "s3.existingSecret=orders-etl-s3",
            "--show-only",
            "templates/spark/configmap-sparkapplication-template.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    app: dict[str, Any] = yaml.safe_load(
        yaml.safe_load(out.stdout)["data"]["sparkapplication.yaml"]
    )
    return app


@pytest.fixture(scope="module")
def restricted(local_cluster: Cluster) -> Iterator[str]:
    """A jobs namespace enforcing PodSecurity restricted, as the chart creates it (and the
    SparkApplication CRD, which the module needs whether or not another installed it)."""
    local_cluster.apply_spark_crds()
    name = f"spark-restricted-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", name)
    local_cluster.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted"
    )
    yield name
    local_cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def submitter_kubeconfig(
    local_cluster: Cluster, restricted: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig for spark-submit with the rights the operator's spark-submit uses in
    the jobs namespace (a ServiceAccount token: Spark's Kubernetes client cannot read the
    local cluster's admin key)."""
    ns = restricted
    local_cluster.kubectl("create", "serviceaccount", "submitter", "-n", ns)
    local_cluster.kubectl(
        "create",
        "role",
        "submitter",
        "-n",
        ns,
        "--verb=create,get,list,watch,patch,delete",
        "--resource=pods,services,configmaps,persistentvolumeclaims",
    )
    local_cluster.kubectl(
        "create",
        "rolebinding",
        "submitter",
        "-n",
        ns,
        "--role=submitter",
        f"--serviceaccount={ns}:submitter",
    )
    token = local_cluster.kubectl("create", "token", "submitter", "-n", ns).stdout.strip()
    cluster = yaml.safe_load(local_cluster.kubeconfig.read_text())["clusters"][0]
    context = {"cluster": cluster["name"], "user": "submitter", "namespace": ns}
    path = tmp_path_factory.mktemp("submitter") / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "submitter", "user": {"token": token}}],
                "contexts": [{"name": "submitter", "context": context}],
                "current-context": "submitter",
            }
        )
    )
    return path


def submit(
    cluster: Cluster, kubeconfig: Path, app: dict[str, Any], work: Path
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    submission = str(uuid.uuid4())
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    settings = SubmitSettings(
        spark_submit=str(SPARK_SUBMIT),
        mode="k8s",
        k8s_master=f"k8s://{server}",
        template_dir=work / "templates",
    )
    templates = write_pod_templates(app, submission, settings.template_dir)
    argv = command(app, settings, submission, templates)
    env = {
        **os.environ,
        **local_spark_env(),
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(work),
    }
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    return result, argv


def create_app(cluster: Cluster, namespace: str, app: dict[str, Any]) -> dict[str, Any]:
    out = cluster.kubectl("create", "-n", namespace, "-o", "json", "-f", "-", input=json.dumps(app))
    created: dict[str, Any] = json.loads(out.stdout)
    return created


def service_accounts(cluster: Cluster, namespace: str, app: dict[str, Any]) -> None:
    for role in ("driver", "executor"):
        name = app["spec"][role]["serviceAccount"]
        cluster.kubectl("create", "serviceaccount", name, "-n", namespace)


def pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    assert out.returncode == 0, f"no pod {name}: {out.stderr}"
    found: dict[str, Any] = json.loads(out.stdout)
    return found


@pytest.mark.timeout(900)
def test_driver_and_executor_pods_pass_restricted_without_the_webhook(
    local_cluster: Cluster, restricted: str, submitter_kubeconfig: Path, tmp_path: Path
) -> None:
    app = rendered_application()
    app["metadata"] = {"name": "admitted", "namespace": restricted}
    app["spec"]["arguments"] = ["--batch-id", "b1"]
    service_accounts(local_cluster, restricted, app)
    app = {**app, "metadata": create_app(local_cluster, restricted, app)["metadata"]}
    node = yaml.safe_load((paths.REPO_ROOT / "values" / "node.yaml").read_text())
    placement = node["spark"]["driver"]

    result, _ = submit(local_cluster, submitter_kubeconfig, app, tmp_path / "driver")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    driver = pod(local_cluster, restricted, "admitted-driver")
    spec = driver["spec"]
    assert spec["nodeSelector"] == placement["nodeSelector"]
    assert [t for t in spec["tolerations"] if t["key"] == placement["tolerations"][0]["key"]]
    (container,) = spec["containers"]
    assert container["name"] == "spark-kubernetes-driver"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["serviceAccountName"] == app["spec"]["driver"]["serviceAccount"]
    assert [(o["kind"], o["name"]) for o in driver["metadata"]["ownerReferences"]] == [
        ("SparkApplication", "admitted")
    ]

    # The executor's template through the same builder.
    as_driver = json.loads(json.dumps(app))
    as_driver["spec"]["driver"]["podName"] = "admitted-executor"  # same owner, another pod
    template = as_driver["spec"]["executor"]["template"]
    template["spec"]["containers"][0]["name"] = "spark-kubernetes-driver"
    as_driver["spec"]["driver"]["template"] = template
    result, _ = submit(local_cluster, submitter_kubeconfig, as_driver, tmp_path / "executor")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    executor = pod(local_cluster, restricted, "admitted-executor")
    assert executor["spec"]["automountServiceAccountToken"] is False
    assert executor["spec"]["nodeSelector"] == node["spark"]["executor"]["nodeSelector"]


@pytest.mark.timeout(600)
def test_without_templates_the_webhook_would_be_needed(
    local_cluster: Cluster, restricted: str, submitter_kubeconfig: Path, tmp_path: Path
) -> None:
    """The control: the same application with its pod settings in the spec fields only
    the webhook applies (no templates) is refused by restricted admission."""
    app = rendered_application()
    app["metadata"] = {"name": "refused", "namespace": restricted}
    for role in ("driver", "executor"):
        pod_spec = app["spec"][role].pop("template")["spec"]
        app["spec"][role]["securityContext"] = pod_spec["containers"][0]["securityContext"]
        app["spec"][role]["podSecurityContext"] = pod_spec["securityContext"]
    app = {**app, "metadata": create_app(local_cluster, restricted, app)["metadata"]}
    result, argv = submit(local_cluster, submitter_kubeconfig, app, tmp_path)
    assert (
        "spark.kubernetes.driver.label.sparkoperator.k8s.io/mutated-by-spark-operator=true" in argv
    )
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stdout + result.stderr
