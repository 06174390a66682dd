"""The kind path's pieces that run without Docker (localplatform.kind_e2e): this machine
has no Docker engine, so the cluster itself is never created here (README "kind")."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from localplatform import node_forward, paths, procs, versions
from localplatform.kind_e2e import (
    SPARK_JOBS_NAMESPACE,
    KindE2E,
    forward_mappings,
    ipv4_gateway,
    operator_helm_args,
)

pytestmark = pytest.mark.unit

# `docker network inspect kind` on a Linux engine: kind asks for an IPv6 subnet too, and
# the engine may list it first.
INSPECT = json.dumps(
    [
        {
            "Name": "kind",
            "IPAM": {
                "Driver": "default",
                "Config": [
                    {"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"},
                    {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
                ],
            },
        }
    ]
)


def test_the_gateway_is_the_networks_ipv4_one() -> None:
    assert ipv4_gateway(INSPECT) == "172.18.0.1"


@pytest.mark.parametrize(
    "inspect",
    [
        "[]",
        json.dumps([{"Name": "kind", "IPAM": {"Config": []}}]),
        json.dumps([{"Name": "kind", "IPAM": {"Config": [{"Gateway": "fc00::1"}]}}]),
        json.dumps([{"Name": "kind", "IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]}}]),
    ],
    ids=["no network", "no config", "IPv6 only", "no gateway"],
)
def test_a_network_without_an_ipv4_gateway_is_a_clear_error(inspect: str) -> None:
    with pytest.raises(procs.StartupError, match="no IPv4 gateway"):
        ipv4_gateway(inspect)


def test_the_forwarder_relays_each_port_once_from_the_gateway_to_loopback() -> None:
    text = forward_mappings("172.18.0.1", [5432, 19094, 5432, 9000])
    parsed = [node_forward.parse(line) for line in text.split()]
    assert parsed == [
        ("172.18.0.1", 5432, "127.0.0.1", 5432),
        ("172.18.0.1", 9000, "127.0.0.1", 9000),
        ("172.18.0.1", 19094, "127.0.0.1", 19094),
    ]


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _helm_set(value: str) -> Any:
    """A `--set` value as Helm reads it: {a,b} a list, true/false booleans."""
    if value.startswith("{") and value.endswith("}"):
        return value[1:-1].split(",")
    return {"true": True, "false": False}.get(value, value)


def test_the_operator_is_installed_as_the_gitops_application_installs_it() -> None:
    """kind gets the operator chart, version and values of argocd/spark-operator.yaml, so
    the kind path tries what production runs."""
    app = yaml.safe_load((paths.REPO_ROOT / "argocd" / "spark-operator.yaml").read_text())
    source = app["spec"]["source"]
    version = versions.get("SPARK_OPERATOR_CHART_VERSION")
    args = operator_helm_args(version)
    assert source["targetRevision"] == version
    assert args[args.index("--repo") + 1] == source["repoURL"]
    assert args[args.index("--version") + 1] == version
    assert args[3] == source["chart"]
    sets = dict(arg.split("=", 1) for prev, arg in itertools.pairwise(args) if prev == "--set")
    assert {k: _helm_set(v) for k, v in sets.items()} == _flatten(source["helm"]["valuesObject"])
    assert sets["spark.jobNamespaces"] == "{" + SPARK_JOBS_NAMESPACE + "}"


def test_the_jobs_namespace_is_the_charts_own_on_kind() -> None:
    """The operator creates nothing in `spark-jobs`: values/kind.yaml must create it, and
    name it as the operator watches it."""
    values = yaml.safe_load((paths.REPO_ROOT / "values" / "kind.yaml").read_text())
    assert values["spark"]["jobsNamespace"] == KindE2E.spark_namespace == SPARK_JOBS_NAMESPACE
    assert values["spark"]["createJobsNamespace"] is True


def test_without_a_docker_engine_up_says_so_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `docker` on it, as on this machine
    monkeypatch.setattr(paths, "RUN_DIR", tmp_path / "run")
    e2e = KindE2E("orders-etl-test")
    with pytest.raises(procs.StartupError, match="needs a Docker engine"):
        e2e.up()
    assert not e2e.forwarder().running()
    assert not e2e.slack_sink().running()
    assert not e2e.cluster.kubeconfig.exists()
    assert not list((tmp_path / "run").rglob("*.pid"))
