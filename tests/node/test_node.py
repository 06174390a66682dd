"""The real node itself: a restricted pod runs on it, resolves a Service through CoreDNS,
reaches it through kube-proxy, reaches the API server the in-cluster way; kwok nodes keep
taking everything else; `down` leaves nothing running, mounted or configured."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from typing import Any

import pytest
import yaml

from localplatform.node import NODE_LABEL, NODE_TAINT, Node, exported_image

pytestmark = pytest.mark.node


SERVER = """
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from the real node")
http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""

CLIENT = """
import json, os, socket, ssl, time, urllib.request
out = {"uid": os.getuid()}
status = open("/proc/self/status").read().splitlines()
out["seccomp"] = next(l.split()[1] for l in status if l.startswith("Seccomp:"))
out["cap_eff"] = next(l.split()[1] for l in status if l.startswith("CapEff:"))
try:
    open("/opt/airflow/written", "w").write("x")
    out["root_fs"] = "writable"
except OSError as error:
    out["root_fs"] = error.strerror
out["resolv"] = open("/etc/resolv.conf").read()
out["short"] = socket.gethostbyname("web")
out["fqdn"] = socket.gethostbyname("web.%s.svc.cluster.local" % os.environ["NS"])
# kube-proxy programs the Service a moment after the endpoint turns ready: retry a while.
for attempt in range(60):
    try:
        out["body"] = urllib.request.urlopen("http://web/", timeout=10).read().decode()
        break
    except OSError:
        if attempt == 59:
            raise
        time.sleep(0.5)
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
request = urllib.request.Request(
    "https://kubernetes.default.svc/version",
    headers={"Authorization": "Bearer " + open(sa + "token").read()},
)
out["api"] = json.load(urllib.request.urlopen(request, context=ctx, timeout=10))["gitVersion"]
try:
    socket.gethostbyname("pypi.org")
    out["outside"] = "resolved"
except OSError:
    out["outside"] = "not resolved"
print(json.dumps(out))
"""


def _restricted_pod(name: str, namespace: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
            "tolerations": [{"key": NODE_TAINT["key"], "operator": "Exists"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 50000,
                "runAsGroup": 0,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": exported_image("airflow-local"),  # any with python3
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", script],
                    "env": [{"name": "NS", "value": namespace}],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                }
            ],
            **extra,
        },
    }


def _wait_phase(node: Node, namespace: str, pod: str, phases: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        out = node.cluster.kubectl(
            "get", "pod", pod, "-n", namespace, "-o", "jsonpath={.status.phase}", check=False
        )
        phase = out.stdout.strip()
        if phase in phases:
            return phase
        time.sleep(1)
    describe = node.cluster.kubectl("describe", "pod", pod, "-n", namespace, check=False).stdout
    pytest.fail(f"pod {namespace}/{pod} stayed {phase!r} for {timeout:.0f} s:\n{describe}")


@pytest.fixture
def namespace(real_node: Node) -> Any:
    name = f"node-test-{uuid.uuid4().hex[:6]}"
    real_node.cluster.kubectl("create", "namespace", name)
    real_node.cluster.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted"
    )
    # Pods are admitted only once the controller-manager created the default ServiceAccount.
    deadline = time.monotonic() + 60
    while real_node.cluster.kubectl("get", "serviceaccount", "default", "-n", name,
                                    check=False).returncode != 0:  # fmt: skip
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name} after 60 s"
        time.sleep(0.5)
    yield name
    real_node.cluster.kubectl("delete", "namespace", name, "--wait=true", timeout=180)


def test_restricted_pod_resolves_and_reaches_a_service(real_node: Node, namespace: str) -> None:
    kubectl = real_node.cluster.kubectl
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    web = _restricted_pod("web", namespace, SERVER)
    web["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": 8080},
        "periodSeconds": 1,
    }
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([service, web]))
    kubectl(
        "wait", "pod/web", "-n", namespace, "--for=condition=Ready", "--timeout=120s", timeout=150
    )
    client = _restricted_pod("client", namespace, CLIENT, restartPolicy="Never")
    kubectl("apply", "-f", "-", input=yaml.safe_dump(client))
    phase = _wait_phase(real_node, namespace, "client", {"Succeeded", "Failed"}, 120)
    # Logs come through the API server from the kubelet's own server (the node is real).
    logs = kubectl("logs", "client", "-n", namespace).stdout
    assert phase == "Succeeded", logs
    result = json.loads(logs.strip().splitlines()[-1])

    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    for pod in pods:
        assert pod["spec"]["nodeName"] == real_node.config.name
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert ip in ipaddress.ip_network(real_node.config.pod_cidr)
    cluster_ip = kubectl(
        "get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    assert result["uid"] == 50000
    assert result["seccomp"] == "2"  # filter mode: RuntimeDefault applied
    assert int(result["cap_eff"], 16) == 0
    assert result["root_fs"] == "Read-only file system"
    assert f"nameserver {real_node.dns_ip}" in result["resolv"]
    assert result["short"] == result["fqdn"] == cluster_ip  # CoreDNS
    assert result["body"] == "hello from the real node"  # kube-proxy to the pod
    assert result["api"].startswith("v1.35")  # kubernetes.default.svc -> the API server
    assert result["outside"] == "not resolved"  # no upstream DNS: nothing outside is asked


def test_pods_without_the_toleration_stay_on_kwok_nodes(real_node: Node, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "elsewhere", "namespace": namespace},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "elsewhere"}},
            "template": {
                "metadata": {"labels": {"app": "elsewhere"}},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 50000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "main",
                            "image": exported_image("airflow-local"),  # any with python3
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    kubectl = real_node.cluster.kubectl
    kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    kubectl(
        "rollout", "status", "deployment/elsewhere", "-n", namespace, "--timeout=60s", timeout=90
    )
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    nodes = {pod["spec"]["nodeName"] for pod in pods}
    assert nodes
    assert all(n.startswith("kwok-node-") for n in nodes), nodes
    taints = json.loads(
        kubectl("get", "node", real_node.config.name, "-o", "jsonpath={.spec.taints}").stdout
    )
    assert NODE_TAINT in taints


def test_down_leaves_nothing_behind(real_node: Node) -> None:
    """Last in this file: down, check every kind of leftover, then bring the node back
    (a later test or the session that started it may still use it)."""
    real_node.down()
    left = {kind: items for kind, items in real_node.leftovers().items() if items}
    assert not left, f"the real node left things behind: {left}"
    node_list = real_node.cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert f"node/{real_node.config.name}" not in node_list
    assert all(n.startswith("node/kwok-node-") for n in node_list)
    real_node.up()
    assert real_node.is_up()
