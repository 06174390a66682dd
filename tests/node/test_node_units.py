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
