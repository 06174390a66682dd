"""What the real node's pieces decide without a server: addresses that must line up, the
forwarder's mappings, and the stand-in's translation of a SparkApplication for k8s mode."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from localplatform.cluster import Cluster, ClusterConfig
from localplatform.node import Node, NodeConfig
from localplatform.node_forward import parse
from spark_operator_standin.submit import SubmitSettings, command

pytestmark = pytest.mark.unit


def test_cluster_dns_and_pod_network_line_up_with_the_control_plane(tmp_path: Path) -> None:
    cluster = Cluster(ClusterConfig(run_dir=tmp_path / "cluster"))
    node = Node(NodeConfig(run_dir=tmp_path / "node"), cluster=cluster)
    services = ipaddress.ip_network(cluster.config.service_cidr)
    pods = ipaddress.ip_network(node.config.pod_cidr)
    assert ipaddress.ip_address(node.dns_ip) in services
    assert node.dns_ip == "10.96.0.10"
    assert not pods.overlaps(services)
    assert not pods.overlaps(ipaddress.ip_network(cluster.config.kwok_pod_cidr, strict=False))
    assert node.gateway == str(next(pods.hosts()))
    assert len(node.config.bridge) <= 15  # IFNAMSIZ


def test_a_node_whose_tools_were_never_built_can_still_be_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node-up that failed while building CoreDNS must not leave e2e-node-down unable to
    stop what it had started (down() lists the node's processes; it needs no binary)."""
    from localplatform import paths

    monkeypatch.setattr(paths, "TOOLS_BIN", tmp_path / "empty-bin")
    cluster = Cluster(ClusterConfig(run_dir=tmp_path / "cluster"))
    node = Node(NodeConfig(run_dir=tmp_path / "node"), cluster=cluster)
    assert {name: proc.running() for name, proc in node.processes().items()} == {
        "containerd": False,
        "forwarder": False,
        "kube-proxy": False,
        "coredns": False,
        "kubelet": False,
    }


def test_forward_mappings_parse_and_reject_garbage() -> None:
    assert parse("10.213.0.1:5432=127.0.0.1:15432") == ("10.213.0.1", 5432, "127.0.0.1", 15432)
    for bad in ("10.213.0.1:5432", "10.213.0.1:x=127.0.0.1:1", "=127.0.0.1:1"):
        with pytest.raises(ValueError, match="LISTEN_HOST:PORT"):
            parse(bad)


def test_standin_k8s_mode_passes_env_secret_refs_and_the_driver_pod_name(tmp_path: Path) -> None:
    app = {
        "metadata": {"name": "orders-transform", "namespace": "jobs"},
        "spec": {
            "type": "Python",
            "image": "orders-etl/spark:3.5.9",
            "mainApplicationFile": "local:///opt/orders-etl/spark-jobs/main.py",
            "driver": {
                "serviceAccount": "driver-sa",
                "envVars": {"AWS_REGION": "us-east-1"},
                "envSecretKeyRefs": {"AWS_ACCESS_KEY_ID": {"name": "s3", "key": "id"}},
            },
            "executor": {
                "instances": 1,
                "envSecretKeyRefs": {"AWS_ACCESS_KEY_ID": {"name": "s3", "key": "id"}},
            },
        },
    }
    argv = command(
        app, SubmitSettings(spark_submit="spark-submit", mode="k8s", template_dir=tmp_path)
    )
    confs = {argv[i + 1] for i, a in enumerate(argv) if a == "--conf"}
    assert "spark.kubernetes.driver.pod.name=orders-transform-driver" in confs
    assert "spark.kubernetes.driverEnv.AWS_REGION=us-east-1" in confs
    assert "spark.kubernetes.driver.secretKeyRef.AWS_ACCESS_KEY_ID=s3:id" in confs
    assert "spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID=s3:id" in confs
    assert "spark.kubernetes.authenticate.driver.serviceAccountName=driver-sa" in confs
    assert argv[argv.index("--deploy-mode") + 1] == "cluster"


def test_the_config_files_render_from_their_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """containerd, CNI, kubelet, kube-proxy and CoreDNS get files rendered from
    node_configs/ with the node's addresses, ports and paths, each one parseable."""
    import json
    import tomllib

    import yaml

    from localplatform import node as node_module

    monkeypatch.setattr(node_module, "exported_image", lambda name: f"localhost/x/{name}:1")
    cluster = Cluster(ClusterConfig(run_dir=tmp_path / "cluster"))
    node = Node(NodeConfig(run_dir=tmp_path / "node"), cluster=cluster)
    node._write_configs()
    run = node.run_dir
    containerd = tomllib.loads((run / "containerd.toml").read_text())
    cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
    assert containerd["grpc"]["address"] == str(node.socket)
    assert cri["sandbox_image"] == "localhost/x/pause:1"
    assert cri["cni"]["conf_dir"] == str(node.cni_conf_dir)
    cni = json.loads((node.cni_conf_dir / "10-orders-etl-node.conflist").read_text())
    assert cni["plugins"][0]["ipam"]["ranges"] == [
        [{"subnet": node.config.pod_cidr, "gateway": node.gateway}]
    ]
    kubelet = yaml.safe_load((run / "kubelet.yaml").read_text())
    assert (kubelet["address"], kubelet["port"]) == (node.gateway, node.config.ports.kubelet)
    assert kubelet["clusterDNS"] == [node.dns_ip]
    assert kubelet["registerWithTaints"] == [node_module.NODE_TAINT]
    assert kubelet["readOnlyPort"] == 0
    assert kubelet["authentication"]["anonymous"] == {"enabled": False}
    proxy = yaml.safe_load((run / "kube-proxy.yaml").read_text())
    assert proxy["nodePortAddresses"] == [f"{node.gateway}/32"]
    corefile = (run / "Corefile").read_text()
    assert f".:{node.config.ports.dns} {{" in corefile
    assert "\n    forward " not in corefile  # nothing outside the cluster domain is resolved
    for text in (run / "containerd.toml", run / "kubelet.yaml", run / "Corefile"):
        assert "${" not in text.read_text()
    with pytest.raises(KeyError):
        node_module.render_config("kubelet.yaml", {})
