"""The NetworkPolicies allow exactly the paths the chart README documents (issue: security).

Renders the `ci/networkpolicies` scenario (with PgBouncer on, so that every component the
policies name has pods), evaluates the rendered policies the way Kubernetes does (a pod
selected by a policy of a type is isolated in that direction; a connection needs the
sender's egress and the receiver's ingress to allow it) for every pair of peers and
every port in play, and compares the allowed (from, to, port) triples with the table
under "Network policies" in charts/orders-etl/README.md. A policy that opens more, or
less, than the table says fails this test; so does a table that drifts from the chart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.chart

RELEASE_NS = "orders"
AIRFLOW = {
    "scheduler",
    "triggerer",
    "dag-processor",
    "api-server",
    "worker",
    "migrate",
    "bootstrap",
    "create-user",
    "db-clean",
    "secrets-init",
    "task",
}
#: Peers that are not the release's pods: an address outside the cluster, a pod of the
#: namespace the scenario's apiServerIngressFrom names, a pod in some other namespace.
EXTERNAL, INGRESS_NGINX, OTHER_NS_POD = "external", "ingress-nginx pod", "other-namespace pod"
OUTSIDE = {EXTERNAL, INGRESS_NGINX, OTHER_NS_POD}
#: Ports probed besides those the policies and the table name: nothing else may be open.
EXTRA_PORTS = {(22, "TCP"), (80, "TCP"), (3306, "TCP"), (53, "SCTP")}


@dataclass(frozen=True)
class Peer:
    name: str
    namespace: str | None  # None: not a pod (an IP address outside the cluster)
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector against labels (empty or absent selector: everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def peer_matches(peers: list[dict[str, Any]] | None, peer: Peer, policy_ns: str) -> bool:
    """A rule's `from` / `to` list against a peer (absent list: every peer)."""
    if peers is None:
        return True
    for p in peers:
        if "ipBlock" in p:
            if peer.namespace is None:  # every ipBlock in the chart is 0.0.0.0/0-like
                return True
            continue
        if peer.namespace is None:
            continue
        if "namespaceSelector" in p:
            ns_labels = {"kubernetes.io/metadata.name": peer.namespace}
            if not matches(p["namespaceSelector"], ns_labels):
                continue
        elif peer.namespace != policy_ns:
            continue
        if "podSelector" in p and not matches(p["podSelector"], peer.labels):
            continue
        return True
    return False


def port_matches(ports: list[dict[str, Any]] | None, port: tuple[int, str]) -> bool:
    if not ports:
        return True
    return any(int(p["port"]) == port[0] and p.get("protocol", "TCP") == port[1] for p in ports)


def allowed(policies: list[dict[str, Any]], src: Peer, dst: Peer, port: tuple[int, str]) -> bool:
    def direction(pod: Peer, kind: str, other: Peer) -> bool:
        if pod.namespace != RELEASE_NS:
            return True  # the release's policies do not govern it
        selecting = [
            p
            for p in policies
            if kind in p["spec"].get("policyTypes", [])
            and matches(p["spec"].get("podSelector"), pod.labels)
        ]
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        return any(
            peer_matches(rule.get(peers_key), other, RELEASE_NS)
            and port_matches(rule.get("ports"), port)
            for p in selecting
            for rule in p["spec"].get(key) or []
        )

    return direction(src, "Egress", dst) and direction(dst, "Ingress", src)


def release_pods(objects: list[dict[str, Any]]) -> dict[str, Peer]:
    pods: dict[str, Peer] = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = o["spec"]["template"]["metadata"]["labels"]
        elif o["kind"] == "ConfigMap" and "pod_template.yaml" in o.get("data", {}):
            labels = yaml.safe_load(o["data"]["pod_template.yaml"])["metadata"]["labels"]
        else:
            continue
        component = labels["app.kubernetes.io/component"]
        pods[component] = Peer(component, RELEASE_NS, labels)
    return pods


def documented_paths(readme: str, components: set[str]) -> set[tuple[str, str, int, str]]:
    section = readme.split("### Network policies", 1)[1].split("\n#", 1)[0]
    rows = [
        line
        for line in section.splitlines()
        if line.startswith("| `")  # the table's body rows
    ]
    assert rows, "the README's Network policies section has no table"
    groups = {
        "release pods": components,
        "Airflow pods": components & AIRFLOW,
        "outside the release": OUTSIDE,
        "apiServerIngressFrom": {INGRESS_NGINX},
    }

    def expand(cell: str) -> set[str]:
        names: set[str] = set()
        for token in re.findall(r"`([^`]+)`", cell):
            names |= {token} if token in components else groups[token]
        return names

    paths = set()
    for row in rows:
        source_cell, target_cell, ports = (c.strip() for c in row.strip("|").split("|")[:3])
        for spec in ports.split(","):
            number, protocol = spec.strip().split("/")
            for src in expand(source_cell):
                for dst in expand(target_cell):
                    paths.add((src, dst, int(number), protocol))
    return paths


def test_rendered_policies_allow_exactly_the_documented_paths(chart: Any) -> None:
    objects = chart.render(
        {"pgbouncer": {"enabled": True, "existingSecret": "orders-etl-pgbouncer"}},
        values_files=[chart.path / "ci" / "networkpolicies-values.yaml"],
    )
    policies = chart.find(objects, "NetworkPolicy")
    assert policies, "the networkpolicies scenario renders no NetworkPolicy"
    pods = release_pods(objects)
    assert {"api-server", "worker", "triggerer", "redis", "pgbouncer", "statsd"} <= set(pods)
    peers = {
        **pods,
        EXTERNAL: Peer(EXTERNAL, None),
        INGRESS_NGINX: Peer(INGRESS_NGINX, "ingress-nginx", {"app": "ingress-nginx"}),
        OTHER_NS_POD: Peer(OTHER_NS_POD, "monitoring", {"app": "prometheus"}),
    }
    documented = documented_paths((chart.path / "README.md").read_text(), set(pods))

    ports = set(EXTRA_PORTS) | {(p, proto) for _, _, p, proto in documented}
    for policy in policies:
        for rule in (policy["spec"].get("ingress") or []) + (policy["spec"].get("egress") or []):
            ports |= {(int(p["port"]), p.get("protocol", "TCP")) for p in rule.get("ports") or []}
    rendered = {
        (src, dst, port, proto)
        for src, a in peers.items()
        for dst, b in peers.items()
        if src in pods or dst in pods  # only paths the release's policies govern
        for port, proto in ports
        if allowed(policies, a, b, (port, proto))
    }
    assert rendered - documented == set(), "allowed by the policies but not documented"
    assert documented - rendered == set(), "documented but blocked by the policies"


def test_workers_reach_the_execution_api_whatever_api_server_ingress_says(chart: Any) -> None:
    """Airflow 3 task supervisors and triggerers call the api-server's execution API: a
    restricted `apiServerIngressFrom` (the UI's ingress controller) must not cut them off."""
    objects = chart.render(
        {
            "networkPolicies": {
                "enabled": True,
                "apiServerIngressFrom": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
            }
        }
    )
    policies = chart.find(objects, "NetworkPolicy")
    pods = release_pods(objects)
    for client in ("worker", "triggerer", "dag-processor", "task"):
        assert allowed(policies, pods[client], pods["api-server"], (8080, "TCP")), client
    assert not allowed(policies, Peer("x", "elsewhere"), pods["api-server"], (8080, "TCP"))
