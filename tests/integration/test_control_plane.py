"""The local control plane behaves like a real cluster: scheduling, admission, RBAC."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localplatform import procs, versions
from localplatform.cluster import Cluster, ClusterConfig, Ports

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(local_cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    local_cluster.kubectl("create", "namespace", name)
    yield name
    local_cluster.kubectl("delete", "namespace", name, "--wait=false")


def _apply(cluster: Cluster, namespace: str, *objects: dict[str, object]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def _pod(name: str, security_context: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox:1.36", "securityContext": security_context}
            ]
        },
    }


def test_server_reports_pinned_version(local_cluster: Cluster) -> None:
    assert local_cluster.server_version() == f"v{versions.get('KUBERNETES_VERSION')}"
    client = local_cluster.kubectl("version", "--client", "-o", "json").stdout
    assert json.loads(client)["clientVersion"]["gitVersion"] == local_cluster.server_version()


def test_kwok_nodes_ready_across_three_zones(local_cluster: Cluster) -> None:
    nodes = json.loads(local_cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = [
        n
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in ready}
    assert len(ready) >= 3
    assert len(zones) >= 3


def test_two_replica_deployment_becomes_available(local_cluster: Cluster, namespace: str) -> None:
    labels = {"app.kubernetes.io/name": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # One replica per zone: the scheduler must spread them.
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {"matchLabels": labels},
                        }
                    ],
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "topologyKey": "kubernetes.io/hostname",
                                    "labelSelector": {"matchLabels": labels},
                                }
                            ]
                        }
                    },
                    "containers": [{"name": "web", "image": "nginx:1.27"}],
                },
            },
        },
    }
    _apply(local_cluster, namespace, deployment)
    local_cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s"
    )
    pods = json.loads(
        local_cluster.kubectl(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=web", "-o", "json"
        ).stdout
    )
    node_names = {p["spec"]["nodeName"] for p in pods["items"]}
    assert len(node_names) == 2, "anti-affinity must put the replicas on different nodes"


def test_pod_security_restricted_rejects_privileged_admits_compliant(
    local_cluster: Cluster, namespace: str
) -> None:
    local_cluster.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    privileged = _pod("privileged", {"privileged": True})
    rejected = local_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(privileged), check=False
    )
    assert rejected.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in rejected.stderr
    assert "privileged" in rejected.stderr

    compliant = _pod(
        "compliant",
        {
            "runAsNonRoot": True,
            "runAsUser": 50000,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
            "readOnlyRootFilesystem": True,
        },
    )
    _apply(local_cluster, namespace, compliant)
    local_cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "pod/compliant", "--timeout=60s"
    )


def test_auth_can_i_follows_a_role(local_cluster: Cluster, namespace: str) -> None:
    local_cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    user = f"--as=system:serviceaccount:{namespace}:reader"

    def can_i(verb: str, resource: str, ns: str = namespace) -> str:
        out = local_cluster.kubectl("auth", "can-i", user, "-n", ns, verb, resource, check=False)
        return out.stdout.strip()

    assert can_i("get", "configmaps") == "no"
    local_cluster.kubectl(
        "create", "role", "cm-reader", "-n", namespace, "--verb=get,list", "--resource=configmaps"
    )
    local_cluster.kubectl(
        "create",
        "rolebinding",
        "cm-reader",
        "-n",
        namespace,
        "--role=cm-reader",
        f"--serviceaccount={namespace}:reader",
    )
    assert can_i("get", "configmaps") == "yes"
    assert can_i("delete", "configmaps") == "no"
    assert can_i("get", "secrets") == "no"
    assert can_i("get", "configmaps", ns="default") == "no"


def test_a_second_up_while_running_changes_nothing(local_cluster: Cluster) -> None:
    """`make cluster-up` twice (a second shell, a rerun): same processes, still serving."""
    before = {proc.name: proc.pid() for proc in local_cluster.processes()}
    seconds = Cluster(local_cluster.config).up()
    print(f"\nwarm cluster-up: {seconds:.1f} s")
    assert {proc.name: proc.pid() for proc in local_cluster.processes()} == before
    assert local_cluster.is_up()


def test_a_busy_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ClusterConfig(run_dir=tmp_path / "cluster", ports=Ports(etcd=port))
        cluster = Cluster(config)
        with pytest.raises(
            procs.StartupError, match=f"etcd: port {port} on 127.0.0.1 is already in use"
        ):
            cluster.up(timeout=30)
    assert procs.pids_under(config.run_dir) == []
