"""pytest-helm-charts (the design card's chart-test library) drives the local cluster."""

from __future__ import annotations

import pytest
from pykube import Deployment, Node
from pytest_helm_charts.clusters import Cluster as HelmChartsCluster
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from localplatform.cluster import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kube_config(local_cluster: Cluster) -> str:
    """Overrides the plugin's fixture: point it at our kubeconfig, not $KUBECONFIG."""
    return str(local_cluster.kubeconfig)


def test_plugin_client_and_kubectl_reach_local_cluster(kube_cluster: HelmChartsCluster) -> None:
    nodes = list(Node.objects(kube_cluster.kube_client).filter(selector={"type": "kwok"}))
    assert len(nodes) >= 3
    # The plugin's kubectl wrapper resolves `kubectl` on PATH: the pinned one (conftest).
    version = kube_cluster.kubectl("version")
    assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]


def test_plugin_waits_for_a_deployment(kube_cluster: HelmChartsCluster) -> None:
    namespace = "helm-charts-plugin"
    kube_cluster.kubectl(f"create namespace {namespace}", output_format="")
    try:
        kube_cluster.kubectl(
            f"create deployment echo --image=busybox:1.36 --replicas=2 -n {namespace}",
            output_format="",
        )
        ready = wait_for_deployments_to_run(kube_cluster.kube_client, ["echo"], namespace, 60)
        assert [d.name for d in ready] == ["echo"]
        deployment = Deployment.objects(kube_cluster.kube_client, namespace=namespace).get(
            name="echo"
        )
        assert deployment.obj["status"]["availableReplicas"] == 2
    finally:
        kube_cluster.kubectl(f"delete namespace {namespace} --wait=false", output_format="")
