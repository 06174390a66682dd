"""A real Kubernetes node beside the kwok nodes: containerd + runc, kubelet, CNI bridge,
kube-proxy (iptables) and CoreDNS, all on this machine, all under the run directory.

    python -m localplatform.node up | down | status

Needs the local control plane (`make cluster-up`) and the images exported for containerd
(`hack/build-images.sh export`). The node is labelled ``orders-etl.io/node=real`` and
tainted ``orders-etl.io/real-node=true:NoSchedule``: only pods that tolerate the taint
land on it, everything else keeps going to the kwok nodes.

Network: a bridge (default ``oetl-node0``) owns the pod CIDR's first address, the CNI
bridge plugin puts pods behind it (host-local IPAM), a FORWARD chain of ours drops any
pod packet that would leave the bridge, and no traffic is masqueraded. The API server
and the data services listen on 127.0.0.1; a forwarder (localplatform.node_forward)
relays the bridge address to them, and Services without selectors plus EndpointSlices
point there (``kubernetes``, ``kube-dns`` in kube-system).

`down` stops in the order that leaves nothing behind (measured): cordon and delete the
node's pods and wait, stop kubelet, remove containers, stop containerd, kill any shim
that names our socket, kill what is left in our cgroups, unmount everything under the
run directory, remove the bridge, our chain, kube-proxy's rules and the cgroups.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from localplatform import cli, host_services, node_network, paths, pki, procs
from localplatform.cluster import Cluster

NODE_LABEL = ("orders-etl.io/node", "real")
NODE_TAINT = {"key": "orders-etl.io/real-node", "value": "true", "effect": "NoSchedule"}
#: Objects this module creates in the cluster carry this manager label.
MANAGED_BY = "localplatform-node"
CONTAINERD_NAMESPACE = "k8s.io"


#: The pinned binaries the node runs (hack/install-tools.sh kubernetes coredns).
NODE_TOOLS = ("kubelet", "kube-proxy", "coredns")


@dataclass(frozen=True)
class NodePorts:
    """Ports of the node's servers (see paths.port: LOCALPLATFORM_PORT_<NAME> / _OFFSET)."""

    kubelet: int = paths.port_field("kubelet", 10250)
    kubelet_healthz: int = paths.port_field("kubelet_healthz", 10248)
    proxy_healthz: int = paths.port_field("kube_proxy_healthz", 10256)
    proxy_metrics: int = paths.port_field("kube_proxy_metrics", 10249)
    dns: int = paths.port_field("coredns", 1053)
    dns_health: int = paths.port_field("coredns_health", 18180)
    dns_ready: int = paths.port_field("coredns_ready", 18181)


@dataclass(frozen=True)
class NodeConfig:
    run_dir: Path = paths.RUN_DIR / "node"
    name: str = "orders-etl-node"
    ports: NodePorts = field(default_factory=NodePorts)
    bridge: str = field(
        default_factory=lambda: os.environ.get("LOCALPLATFORM_NODE_BRIDGE", "oetl-node0")
    )
    pod_cidr: str = field(
        default_factory=lambda: os.environ.get("LOCALPLATFORM_NODE_POD_CIDR", "10.213.0.0/24")
    )
    chain: str = "OETL-NODE-FORWARD"
    cgroup_root: str = "orders-etl-node"
    cluster_domain: str = "cluster.local"
    max_pods: int = 40
    #: Loopback servers the pods reach through the bridge address: name -> port. The
    #: API server is always there; `up(forwards=...)` adds the data services.
    forwards: dict[str, int] = field(default_factory=dict)


class Node:
    def __init__(self, config: NodeConfig | None = None, cluster: Cluster | None = None) -> None:
        self.config = config or NodeConfig()
        self.cluster = cluster or Cluster()
        self.run_dir = self.config.run_dir
        self.network = node_network.NodeNetwork(
            self.config.bridge, self.config.pod_cidr, self.config.chain
        )
        self.containerd_dir = self.run_dir / "containerd"
        self.socket = self.containerd_dir / "containerd.sock"
        self.kubelet_dir = self.run_dir / "kubelet"
        self.cni_conf_dir = self.run_dir / "cni" / "net.d"
        self.cni_ipam_dir = self.run_dir / "cni" / "ipam"
        self.pod_logs_dir = self.run_dir / "pod-logs"
        self.pki_dir = self.cluster.pki_dir
        service_net = ipaddress.ip_network(self.cluster.config.service_cidr)
        #: The tenth address of the service range, as kubeadm and kind use.
        self.dns_ip = str(service_net.network_address + 10)

    @property
    def gateway(self) -> str:
        return self.network.gateway

    # -- processes --------------------------------------------------------------------
    def processes(self) -> dict[str, procs.Proc]:
        """The node's servers. Their binaries are not checked here (up() does): stopping
        a node whose start failed before a tool was built must still work."""
        run, p = self.run_dir, self.config.ports
        return {
            "containerd": procs.Proc(
                "containerd",
                [
                    shutil.which("containerd") or "/usr/bin/containerd",
                    "--config",
                    run / "containerd.toml",
                ],
                run,
            ),
            "forwarder": procs.Proc(
                "forwarder",
                [sys.executable, "-m", "localplatform.node_forward", run / "forwards.txt"],
                run,
            ),
            "kube-proxy": procs.Proc(
                "kube-proxy",
                [paths.TOOLS_BIN / "kube-proxy", f"--config={run / 'kube-proxy.yaml'}", "--v=1"],
                run,
                ports=(p.proxy_healthz, p.proxy_metrics),
            ),
            "coredns": procs.Proc(
                "coredns",
                [paths.TOOLS_BIN / "coredns", "-conf", run / "Corefile"],
                run,
                ports=(p.dns_health, p.dns_ready),
            ),
            "kubelet": procs.Proc(
                "kubelet",
                [
                    paths.TOOLS_BIN / "kubelet",
                    f"--config={run / 'kubelet.yaml'}",
                    f"--kubeconfig={run / 'kubelet.kubeconfig'}",
                    f"--root-dir={self.kubelet_dir}",
                    f"--cert-dir={self.kubelet_dir / 'pki'}",
                    f"--hostname-override={self.config.name}",
                    f"--node-ip={self.gateway}",
                    # A zone of its own: zone-spread constraints and tools that expect
                    # every node to have one (as the kwok nodes do) keep working.
                    f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]},"
                    f"topology.kubernetes.io/zone={self.config.name}",
                    "--v=1",
                ],
                run,
                ports=(p.kubelet_healthz,),
            ),
        }

    # -- lifecycle --------------------------------------------------------------------
    def up(self, forwards: dict[str, int] | None = None, timeout: float = 180) -> float:
        """Start whatever is not running and wait for the node to be Ready; returns seconds."""
        started = time.monotonic()
        if not self.cluster.is_up():
            raise procs.StartupError("the local control plane is not up: run `make cluster-up`")
        for binary in ("containerd", "runc", "ctr", "iptables"):
            if not shutil.which(binary):
                raise FileNotFoundError(f"{binary} is missing: run `make node-deps`")
        if not Path("/usr/lib/cni/bridge").exists():
            raise FileNotFoundError("/usr/lib/cni/bridge is missing: run `make node-deps`")
        for tool in NODE_TOOLS:
            paths.tool(tool)  # raises with the fix (processes() does not: down needs none)
        with procs.file_lock(self.run_dir / "lock"):
            self._save_forwards(self._saved_forwards() if forwards is None else forwards)
            self._write_pki()
            self._write_configs()
            self.network.ensure_bridge()
            self.network.ensure_isolation()
            node_network.ensure_cgroup_root(self.config.cgroup_root)
            pr = self.processes()
            pr["containerd"].start()
            pr["containerd"].wait_healthy(self._containerd_ready, timeout)
            self.import_images()
            pr["forwarder"].start()
            self._apply_cluster_objects()
            pr["kube-proxy"].start()
            pr["coredns"].start()
            pr["kubelet"].start()
            pr["kube-proxy"].wait_healthy(
                lambda: procs.http_ok(
                    f"http://127.0.0.1:{self.config.ports.proxy_healthz}/healthz"
                ),
                timeout,
            )
            pr["coredns"].wait_healthy(
                lambda: procs.http_ok(f"http://127.0.0.1:{self.config.ports.dns_ready}/ready"),
                timeout,
            )
            pr["kubelet"].wait_healthy(self.ready, timeout)
        return time.monotonic() - started

    def down(self, wipe_images: bool = False) -> list[str]:
        """Stop everything (see the module doc for the order); returns what was left
        behind and had to be forced, for the caller to report."""
        notes: list[str] = []
        with procs.file_lock(self.run_dir / "lock"):
            pr = self.processes()
            cluster_up = self.cluster.is_up()
            if cluster_up and pr["kubelet"].running():
                notes += self._drain()
            pr["kubelet"].stop(timeout=30)
            if pr["containerd"].running():
                self._remove_containers()
            pr["containerd"].stop(timeout=30)
            if shims := node_network.shims_of(self.socket):
                notes.append(f"killed {len(shims)} leftover shim(s): {shims}")
                node_network.kill_pids(shims)
            for name in ("coredns", "kube-proxy", "forwarder"):
                pr[name].stop()
            if left := node_network.cgroup_pids(self.config.cgroup_root):
                notes.append(f"killed {len(left)} leftover process(es) in the node's cgroups")
            notes += [
                f"cgroup not removed: {c}"
                for c in node_network.remove_cgroup_root(self.config.cgroup_root)
            ]
            if mounts := node_network.unmount_under(self.run_dir):
                notes.append(f"still mounted: {[str(m) for m in mounts]}")
            node_network.remove_kube_chains()
            node_network.sweep_hard_coded_paths(self.run_dir)
            self.network.remove_isolation()
            self.network.delete_bridge()
            if cluster_up:
                self._delete_cluster_objects()
            for sub in ("kubelet", "cni", "pod-logs", "containerd/state"):
                shutil.rmtree(self.run_dir / sub, ignore_errors=True)
            if wipe_images:
                shutil.rmtree(self.containerd_dir, ignore_errors=True)
        return notes

    def ready(self) -> bool:
        out = self.cluster.kubectl("get", "node", self.config.name, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def is_up(self) -> bool:
        return all(p.running() for p in self.processes().values()) and self.ready()

    def leftovers(self) -> dict[str, list[str]]:
        """What a stopped node must not leave: processes, mounts, shims, cgroups, bridge,
        chain (the teardown test asserts all of these are empty)."""
        cgroups = [
            str(h / self.config.cgroup_root)
            for h in node_network.cgroup_hierarchies()
            if (h / self.config.cgroup_root).exists()
        ]
        return {
            "processes": [str(p) for p in procs.pids_under(self.run_dir)],
            "shims": [str(p) for p in node_network.shims_of(self.socket)],
            "mounts": [str(m) for m in node_network.mounts_under(self.run_dir)],
            "cgroups": cgroups,
            "bridge": [self.config.bridge] if self.network.bridge_exists() else [],
            "chain": [self.config.chain] if self.network.isolation_present() else [],
            "kube chains": node_network.kube_chains(),
            "container log links": [str(p) for p in node_network.container_log_links(self.run_dir)],
            "kubelet socket": [str(node_network.KUBELET_DEVICE_PLUGIN_SOCKET)]
            if node_network.KUBELET_DEVICE_PLUGIN_SOCKET.exists()
            else [],
        }

    def pods_memory(self) -> tuple[int, int]:
        """(current, peak) bytes of the node's pods, from the memory cgroup kubelet puts
        them under (page cache included); (0, 0) when there is none."""
        root = node_network.CGROUP_MOUNT / "memory" / self.config.cgroup_root
        try:
            return (
                int((root / "memory.usage_in_bytes").read_text()),
                int((root / "memory.max_usage_in_bytes").read_text()),
            )
        except (OSError, ValueError):
            return (0, 0)

    def status(self) -> str:
        lines = [
            f"node:       {self.config.name} (bridge {self.config.bridge}, "
            f"pods {self.config.pod_cidr}, gateway {self.gateway}, cluster DNS {self.dns_ip})",
            f"containerd: {self.socket}",
        ]
        for proc in self.processes().values():
            pid = proc.pid()
            lines.append(f"  {proc.name:<12} {'pid ' + str(pid) if pid else 'stopped'}")
        current, peak = self.pods_memory()
        lines.append(f"pods' memory: {current / 2**20:.0f} MiB (peak {peak / 2**20:.0f} MiB)")
        if self.cluster.is_up():
            lines.append(
                self.cluster.kubectl(
                    "get", "node", self.config.name, "-o", "wide", check=False
                ).stdout.strip()
            )
        return "\n".join(lines)

    def expose_host_services(self, namespace: str, services: dict[str, tuple[int, int]]) -> None:
        """Make loopback servers of this machine reachable from pods as
        `<name>.<namespace>.svc`: a Service without selector (port -> the host port) and an
        EndpointSlice at the bridge address, where the forwarder relays to 127.0.0.1.
        `services`: name -> (service port, host port)."""
        forwards = {**self._saved_forwards(), **{name: hp for name, (_, hp) in services.items()}}
        if forwards != self._saved_forwards():
            self._save_forwards(forwards)
            # New listeners without dropping the connections pods already have.
            if (pid := self.processes()["forwarder"].pid()) is not None:
                os.kill(pid, signal.SIGHUP)
        objects = host_services.service_objects(namespace, services, self.gateway, MANAGED_BY)
        self.cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={MANAGED_BY}",
            "-f",
            "-",
            input=yaml.safe_dump_all(objects),
        )

    # -- containerd ---------------------------------------------------------------------
    def ctr(self, *args: str, timeout: float = 60) -> str:
        return procs.run_checked(
            "ctr " + " ".join(args[:3]),
            ["ctr", "--address", str(self.socket), "-n", CONTAINERD_NAMESPACE, *args],
            timeout=timeout,
        )

    def _containerd_ready(self) -> bool:
        return self.socket.exists() and bool(self.ctr("version", timeout=5))

    def import_images(self, timeout: float = 900) -> list[str]:
        """Import the exported images (hack/build-images.sh export) that containerd does
        not have yet, judged by the image ID recorded beside each archive."""
        index = paths.TOOLS_DIR / "images" / "export" / "images.tsv"
        if not index.exists():
            raise FileNotFoundError(
                f"{index} is missing: build and export the images (`make images`, "
                "`hack/build-images.sh export`)"
            )
        markers = self.containerd_dir / "imported"
        markers.mkdir(parents=True, exist_ok=True)
        present = set(self.ctr("images", "ls", "-q").split())
        imported = []
        for line in index.read_text().splitlines():
            name, ref, archive = line.split("\t")
            image_id = Path(archive + ".id").read_text().strip()
            marker = markers / f"{name}.id"
            if ref in present and marker.exists() and marker.read_text().strip() == image_id:
                continue
            self.ctr("images", "import", archive, timeout=timeout)
            marker.write_text(image_id + "\n")
            imported.append(ref)
        return imported

    def _remove_containers(self) -> None:
        """Delete every task and container kubelet left in containerd's metadata, so the
        next start begins clean (images stay)."""
        with contextlib.suppress(procs.StartupError, subprocess.TimeoutExpired):
            for task in self.ctr("tasks", "ls", "-q").split():
                with contextlib.suppress(procs.StartupError):
                    self.ctr("tasks", "kill", "-s", "SIGKILL", task)
                with contextlib.suppress(procs.StartupError):
                    self.ctr("tasks", "delete", "-f", task)
            for container in self.ctr("containers", "ls", "-q").split():
                with contextlib.suppress(procs.StartupError):
                    self.ctr("containers", "delete", container)

    # -- cluster objects ----------------------------------------------------------------
    def _drain(self, timeout: float = 120) -> list[str]:
        """Cordon, delete every pod bound to the node and wait until kubelet has
        stopped them all (pods leave the API only once kubelet confirms)."""
        kubectl = self.cluster.kubectl
        name = self.config.name
        kubectl("cordon", name, check=False)
        selector = f"spec.nodeName={name}"
        kubectl("delete", "pods", "-A", "--field-selector", selector, "--wait=false", check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = kubectl(
                "get", "pods", "-A", "--field-selector", selector, "-o", "name", check=False
            )
            if out.returncode == 0 and not out.stdout.strip():
                return []
            time.sleep(1)
        left = kubectl(
            "get", "pods", "-A", "--field-selector", selector, "-o", "name"
        ).stdout.split()
        kubectl(
            "delete",
            "pods",
            "-A",
            "--field-selector",
            selector,
            "--force",
            "--grace-period=0",
            check=False,
        )
        return [f"pods still on the node after {timeout:.0f} s, forced: {left}"]

    def _apply_cluster_objects(self) -> None:
        api_port = self.cluster.config.ports.apiserver
        objects: list[dict[str, Any]] = [
            *self._coredns_rbac(),
            host_services.endpoint_slice(
                "default",
                "kubernetes",
                "kubernetes-node",
                self.gateway,
                [("https", api_port, "TCP")],
                MANAGED_BY,
            ),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns", "app.kubernetes.io/managed-by": MANAGED_BY},
                },
                "spec": {
                    "clusterIP": self.dns_ip,
                    "ports": [
                        {
                            "name": "dns",
                            "port": 53,
                            "protocol": "UDP",
                            "targetPort": self.config.ports.dns,
                        },
                        {
                            "name": "dns-tcp",
                            "port": 53,
                            "protocol": "TCP",
                            "targetPort": self.config.ports.dns,
                        },
                    ],
                },
            },
            host_services.endpoint_slice(
                "kube-system",
                "kube-dns",
                "kube-dns-node",
                self.gateway,
                [("dns", self.config.ports.dns, "UDP"), ("dns-tcp", self.config.ports.dns, "TCP")],
                MANAGED_BY,
            ),
        ]
        self.cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={MANAGED_BY}",
            "-f",
            "-",
            input=yaml.safe_dump_all(objects),
        )

    def _delete_cluster_objects(self) -> None:
        kubectl = self.cluster.kubectl
        kubectl(
            "delete", "node", self.config.name, "--ignore-not-found", "--wait=false", check=False
        )
        kubectl(
            "delete", "service", "kube-dns", "-n", "kube-system", "--ignore-not-found", check=False
        )
        kubectl(
            "delete",
            "endpointslices",
            "-A",
            "-l",
            f"endpointslice.kubernetes.io/managed-by={MANAGED_BY}",
            check=False,
        )

    def _coredns_rbac(self) -> list[dict[str, Any]]:
        name = "orders-etl-node:coredns"
        return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["services", "namespaces", "pods"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}
                ],
            },
        ]

    # -- files ----------------------------------------------------------------------------
    def _save_forwards(self, forwards: dict[str, int]) -> None:
        """forwards.json (name -> host port) and the forwarder's mappings file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "forwards.json").write_text(json.dumps(forwards, indent=2))
        ports = {self.cluster.config.ports.apiserver, *forwards.values()}
        (self.run_dir / "forwards.txt").write_text(
            "".join(f"{self.gateway}:{p}=127.0.0.1:{p}\n" for p in sorted(ports))
        )

    def _saved_forwards(self) -> dict[str, int]:
        path = self.run_dir / "forwards.json"
        saved: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        return {**saved, **self.config.forwards}

    def _write_pki(self) -> None:
        ca = pki.CertificateAuthority(self.pki_dir)
        name = self.config.name
        identities = {
            "kubelet.kubeconfig": ("node-kubelet", f"system:node:{name}", "system:nodes"),
            "kube-proxy.kubeconfig": ("node-kube-proxy", "system:kube-proxy", None),
            "coredns.kubeconfig": ("node-coredns", "orders-etl-node:coredns", None),
        }
        for filename, (cert_name, cn, org) in identities.items():
            cert = ca.issue(cert_name, cn, organization=org)
            self.cluster._write_kubeconfig(self.run_dir / filename, cert)
        ca.issue(
            "node-kubelet-serving",
            f"system:node:{name}",
            client=False,
            server_names=(self.gateway, name, "127.0.0.1"),
        )

    def config_values(self) -> dict[str, str]:
        """What the config templates (node_configs/) are rendered with."""
        run, p, c = self.run_dir, self.config.ports, self.config
        return {
            "run_dir": str(run),
            "containerd_dir": str(self.containerd_dir),
            "socket": str(self.socket),
            "pause_image": exported_image("pause"),
            "runc": shutil.which("runc") or "/usr/sbin/runc",
            "cni_conf_dir": str(self.cni_conf_dir),
            "cni_ipam_dir": str(self.cni_ipam_dir),
            "bridge": c.bridge,
            "pod_cidr": c.pod_cidr,
            "gateway": self.gateway,
            "kubelet_port": str(p.kubelet),
            "kubelet_healthz_port": str(p.kubelet_healthz),
            "pki_dir": str(self.pki_dir),
            "cgroup_root": c.cgroup_root,
            "dns_ip": self.dns_ip,
            "cluster_domain": c.cluster_domain,
            "max_pods": str(c.max_pods),
            "pod_logs_dir": str(self.pod_logs_dir),
            "kubelet_dir": str(self.kubelet_dir),
            "taint_key": NODE_TAINT["key"],
            "taint_value": NODE_TAINT["value"],
            "taint_effect": NODE_TAINT["effect"],
            "node_name": c.name,
            "proxy_healthz_port": str(p.proxy_healthz),
            "proxy_metrics_port": str(p.proxy_metrics),
            "dns_port": str(p.dns),
            "dns_health_port": str(p.dns_health),
            "dns_ready_port": str(p.dns_ready),
        }

    def _write_configs(self) -> None:
        run = self.run_dir
        for directory in (
            run,
            self.cni_conf_dir,
            self.cni_ipam_dir,
            self.kubelet_dir,
            self.pod_logs_dir,
            self.containerd_dir / "root",
            self.containerd_dir / "state",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        values = self.config_values()
        for template, target in (
            ("containerd.toml", run / "containerd.toml"),
            ("10-orders-etl-node.conflist", self.cni_conf_dir / "10-orders-etl-node.conflist"),
            ("kubelet.yaml", run / "kubelet.yaml"),
            ("kube-proxy.yaml", run / "kube-proxy.yaml"),
            ("Corefile", run / "Corefile"),
        ):
            target.write_text(render_config(template, values))


#: The node's config files as templates (string.Template, `${name}`): containerd, CNI,
#: kubelet, kube-proxy and CoreDNS read files, so the files are what is kept here.
CONFIG_TEMPLATES = resources.files("localplatform") / "node_configs"


def render_config(template: str, values: dict[str, str]) -> str:
    """A node_configs/ template with `values` substituted; a name the template uses and
    `values` lacks is a KeyError, not a blank."""
    return string.Template((CONFIG_TEMPLATES / template).read_text()).substitute(values)


def exported_image(name: str) -> str:
    """The reference containerd knows image `name` (pause, airflow-local, spark) by, from the
    index `hack/build-images.sh export` writes."""
    index = paths.TOOLS_DIR / "images" / "export" / "images.tsv"
    for line in index.read_text().splitlines() if index.exists() else []:
        exported, ref, _ = line.split("\t")
        if exported == name:
            return ref
    raise RuntimeError(
        f"image {name!r} is not exported ({index}): `make node-up` builds and exports it"
    )


def _up(_: argparse.Namespace) -> tuple[str, bool]:
    node = Node()
    seconds = node.up()
    return f"node {node.config.name} is Ready ({seconds:.1f} s)\n{node.status()}", True


def _down(args: argparse.Namespace) -> tuple[str, bool]:
    node = Node()
    notes = [f"note: {note}" for note in node.down(wipe_images=args.wipe_images)]
    left = {k: v for k, v in node.leftovers().items() if v}
    verdict = "node is down; nothing left: True" if not left else f"node is down; LEFT: {left}"
    return "\n".join([*notes, verdict]), not left


main = cli.ComponentCli(
    prog="python -m localplatform.node",
    doc=__doc__,
    up=_up,
    down=_down,
    status=lambda _: (Node().status(), True),
    options=[cli.Option("--wipe-images", "down: also delete containerd's image store")],
).main


if __name__ == "__main__":
    sys.exit(main())
