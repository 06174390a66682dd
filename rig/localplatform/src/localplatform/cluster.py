"""A real Kubernetes control plane on 127.0.0.1, from the pinned binaries in .tools/bin.

etcd, kube-apiserver (TLS, client-certificate admin, RBAC + Node authorization,
service-account token signing, the default admission plugins with PodSecurity),
kube-controller-manager, kube-scheduler, and kwok simulating zoned nodes.

    python -m localplatform.cluster up | down | status

State lives in .run/cluster (pki/, etcd/, logs/, pids/); the admin kubeconfig is
.run/cluster/kubeconfig. `up` is idempotent and serialised by a lock; `down` stops every
process by PID and deletes the cluster's data (the CA is kept, so kubeconfigs stay valid).
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from localplatform import cli, paths, pki, procs
from orders_contract.sparkapplication import CRD_NAMES

ZONES = ("zone-a", "zone-b", "zone-c")


@dataclass(frozen=True)
class Ports:
    """Loopback ports (see paths.port: LOCALPLATFORM_PORT_<NAME> / _OFFSET)."""

    etcd: int = paths.port_field("etcd", 12379)
    etcd_peer: int = paths.port_field("etcd_peer", 12380)
    apiserver: int = paths.port_field("apiserver", 16443)
    controller_manager: int = paths.port_field("controller_manager", 20257)
    scheduler: int = paths.port_field("scheduler", 20259)
    kwok: int = paths.port_field("kwok", 20247)


@dataclass(frozen=True)
class ClusterConfig:
    run_dir: Path = paths.RUN_DIR / "cluster"
    ports: Ports = field(default_factory=Ports)
    kwok_nodes: int = 3
    service_cidr: str = "10.96.0.0/16"
    #: kwok hands fake pod IPs out of this range; nothing ever connects to them.
    kwok_pod_cidr: str = "10.244.0.1/16"


def kubectl(
    kubeconfig: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the pinned kubectl with `kubeconfig` (text mode, output captured); raise
    CalledProcessError on failure when `check`."""
    result = subprocess.run(
        [str(paths.tool("kubectl")), f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, result.args, result.stdout, result.stderr
        )
    return result


class Cluster:
    """A handle on the running local cluster: its kubeconfig and a pinned kubectl."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self.run_dir = self.config.run_dir
        self.pki_dir = self.run_dir / "pki"
        self.kubeconfig = self.run_dir / "kubeconfig"
        self.server = f"https://127.0.0.1:{self.config.ports.apiserver}"

    # -- clients ----------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this cluster (text mode, output captured)."""
        return kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)

    def wait_crds_established(self, *names: str, timeout: float = 60) -> None:
        """Wait until each CRD's Established condition is True.

        `kubectl wait` fails at once ("accessor error") while a CRD just created has no
        .status.conditions yet, which a loaded machine makes likely; that case is retried.
        """
        args = ("wait", "--for=condition=Established", f"--timeout={timeout:.0f}s")
        deadline = time.monotonic() + timeout
        while True:
            result = self.kubectl(*args, *(f"crd/{n}" for n in names), check=False)
            if result.returncode == 0:
                return
            if "accessor error" not in result.stderr or time.monotonic() > deadline:
                raise procs.StartupError(
                    f"CRDs {', '.join(names)} not Established: {result.stderr}"
                )
            time.sleep(0.2)

    def apply_spark_crds(self) -> None:
        """Apply the spark-operator CRDs generated from kubeflow-spark-api (SparkApplication,
        ScheduledSparkApplication, SparkConnect: what the operator's chart installs) and
        wait for them."""
        self.kubectl("apply", "--server-side", "-f", str(paths.TOOLS_SHARE / "spark-crds"))
        self.wait_crds_established(*CRD_NAMES)

    def _get(self, path: str, port: int | None = None, client_cert: bool = True) -> str:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        if port is not None:  # component health ports use self-signed serving certs
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{port or self.config.ports.apiserver}{path}"
        with urllib.request.urlopen(url, context=ctx, timeout=3) as response:
            return str(response.read().decode())

    def server_version(self) -> str:
        return str(json.loads(self._get("/version"))["gitVersion"])

    # -- processes --------------------------------------------------------------------
    def processes(self) -> list[procs.Proc]:
        p, run, pk = self.config.ports, self.run_dir, self.pki_dir
        kubeconfigs = {
            name: str(run / f"{name}.kubeconfig")
            for name in ("controller-manager", "scheduler", "kwok")
        }
        etcd = procs.Proc(
            "etcd",
            [
                paths.tool("etcd"),
                "--name=local",
                f"--data-dir={run / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{p.etcd}",
                f"--advertise-client-urls=http://127.0.0.1:{p.etcd}",
                f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
                f"--initial-cluster=local=http://127.0.0.1:{p.etcd_peer}",
                "--listen-metrics-urls=",
                "--log-level=warn",
                # Single local member: trade durability for speed.
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
            ],
            run,
            ports=(p.etcd, p.etcd_peer),
        )
        apiserver = procs.Proc(
            "kube-apiserver",
            [
                paths.tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{p.etcd}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.apiserver}",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={pk / 'apiserver.crt'}",
                f"--tls-private-key-file={pk / 'apiserver.key'}",
                f"--client-ca-file={pk / 'ca.crt'}",
                f"--kubelet-client-certificate={pk / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pk / 'apiserver-kubelet-client.key'}",
                f"--service-account-key-file={pk / 'sa.pub'}",
                f"--service-account-signing-key-file={pk / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=Node,RBAC",
                # The default plugins (PodSecurity among them) plus NodeRestriction.
                "--enable-admission-plugins=NodeRestriction",
                f"--service-cluster-ip-range={self.config.service_cidr}",
                "--allow-privileged=true",
                "--profiling=false",
                "--endpoint-reconciler-type=none",
                # Logs/exec dial a node by its address, not its name (the real node's name
                # is not in any DNS this machine uses; kwok nodes report 127.0.0.1).
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ],
            run,
            ports=(p.apiserver,),
        )
        controller_manager = procs.Proc(
            "kube-controller-manager",
            [
                paths.tool("kube-controller-manager"),
                f"--kubeconfig={kubeconfigs['controller-manager']}",
                f"--authentication-kubeconfig={kubeconfigs['controller-manager']}",
                f"--authorization-kubeconfig={kubeconfigs['controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.controller_manager}",
                f"--service-account-private-key-file={pk / 'sa.key'}",
                f"--root-ca-file={pk / 'ca.crt'}",
                f"--cluster-signing-cert-file={pk / 'ca.crt'}",
                f"--cluster-signing-key-file={pk / 'ca.key'}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={self.config.service_cidr}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            run,
            ports=(p.controller_manager,),
        )
        scheduler = procs.Proc(
            "kube-scheduler",
            [
                paths.tool("kube-scheduler"),
                f"--kubeconfig={kubeconfigs['scheduler']}",
                f"--authentication-kubeconfig={kubeconfigs['scheduler']}",
                f"--authorization-kubeconfig={kubeconfigs['scheduler']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.scheduler}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            run,
            ports=(p.scheduler,),
        )
        stages = sorted((paths.TOOLS_SHARE / "kwok").glob("*.yaml"))
        kwok = procs.Proc(
            "kwok",
            [
                paths.tool("kwok"),
                f"--kubeconfig={kubeconfigs['kwok']}",
                *(f"--config={stage}" for stage in stages),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={self.config.kwok_pod_cidr}",
                # Fake nodes report a loopback address, so anything that dials a node
                # (logs, exec) stays on this machine and reaches kwok itself.
                "--node-ip=127.0.0.1",
                f"--node-port={p.kwok}",
                f"--server-address=127.0.0.1:{p.kwok}",
                "--node-lease-duration-seconds=40",
            ],
            run,
            ports=(p.kwok,),
        )
        return [etcd, apiserver, controller_manager, scheduler, kwok]

    # -- lifecycle --------------------------------------------------------------------
    def up(self, timeout: float = 120) -> float:
        """Start whatever is not running and wait until the cluster is usable.

        Returns the seconds it took. Safe to call while the cluster runs.
        """
        started = time.monotonic()
        with procs.file_lock(self.run_dir / "lock"):
            self._write_pki_and_kubeconfigs()
            etcd, apiserver, kcm, scheduler, kwok = self.processes()
            p = self.config.ports

            etcd.start()
            etcd.wait_healthy(lambda: procs.http_ok(f"http://127.0.0.1:{p.etcd}/health"), timeout)
            apiserver.start()
            apiserver.wait_healthy(lambda: self._get("/readyz") == "ok", timeout)
            kcm.start()
            scheduler.start()
            kwok.start()
            kcm.wait_healthy(
                lambda: self._get("/healthz", p.controller_manager, False) == "ok", timeout
            )
            scheduler.wait_healthy(
                lambda: self._get("/healthz", p.scheduler, False) == "ok", timeout
            )
            self.kubectl(
                "apply",
                "--server-side",
                "--field-manager=localplatform",
                "-f",
                "-",
                input=yaml.safe_dump_all(self._kwok_nodes()),
            )
            kwok.wait_healthy(self._nodes_ready, timeout)
            # Pods are only admitted once the default ServiceAccount exists.
            kcm.wait_healthy(
                lambda: (
                    self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0
                ),
                timeout,
            )
        return time.monotonic() - started

    def down(self) -> None:
        """Stop every process (reverse order, by PID) and delete the cluster's data."""
        with procs.file_lock(self.run_dir / "lock"):
            for proc in reversed(self.processes()):
                proc.stop()
            shutil.rmtree(self.run_dir / "etcd", ignore_errors=True)

    def is_up(self) -> bool:
        if not all(proc.running() for proc in self.processes()):
            return False
        try:
            return self._get("/readyz") == "ok"
        except Exception:
            return False

    def status(self) -> str:
        lines = [f"kubeconfig: {self.kubeconfig}", f"server:     {self.server}"]
        for proc in self.processes():
            pid = proc.pid()
            lines.append(f"  {proc.name:<24} {'pid ' + str(pid) if pid else 'stopped'}")
        if self.is_up():
            lines.append(f"version:    {self.server_version()}")
            lines.append(self.kubectl("get", "nodes", "-L", "topology.kubernetes.io/zone").stdout)
        return "\n".join(lines)

    # -- internals --------------------------------------------------------------------
    def _write_pki_and_kubeconfigs(self) -> None:
        ca = pki.CertificateAuthority(self.pki_dir)
        ca.issue(
            "apiserver",
            "kube-apiserver",
            client=False,
            server_names=(
                "127.0.0.1",
                "localhost",
                "10.96.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        )
        ca.issue(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            organization="system:masters",
        )
        pki.service_account_keypair(self.pki_dir)
        identities = {
            "kubeconfig": ("admin", "kubernetes-admin", "system:masters"),
            "controller-manager.kubeconfig": (
                "controller-manager",
                "system:kube-controller-manager",
                None,
            ),
            "scheduler.kubeconfig": ("scheduler", "system:kube-scheduler", None),
            # kwok plays every fake node's kubelet; it needs node and pod status writes.
            "kwok.kubeconfig": ("kwok", "kwok", "system:masters"),
        }
        for filename, (name, cn, org) in identities.items():
            cert = ca.issue(name, cn, organization=org)
            self._write_kubeconfig(self.run_dir / filename, cert)

    def _write_kubeconfig(self, path: Path, cert: pki.CertPaths) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki_dir / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "local",
                    "user": {"client-certificate": str(cert.cert), "client-key": str(cert.key)},
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _kwok_nodes(self) -> list[dict[str, object]]:
        nodes: list[dict[str, object]] = []
        for index in range(self.config.kwok_nodes):
            name = f"kwok-node-{index}"
            resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                        },
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                            "topology.kubernetes.io/region": "local",
                            "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
                        },
                    },
                    "status": {"allocatable": resources, "capacity": resources},
                }
            )
        return nodes

    def _nodes_ready(self) -> bool:
        out = self.kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout
        items = json.loads(out)["items"]
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.config.kwok_nodes


def _up(_: argparse.Namespace) -> tuple[str, bool]:
    cluster = Cluster()
    was_up = cluster.is_up()
    seconds = cluster.up()
    verb = "was already up" if was_up else "is up"
    return (
        f"cluster {verb} ({seconds:.1f} s); kubeconfig: {cluster.kubeconfig}\n{cluster.status()}",
        True,
    )


def _down(_: argparse.Namespace) -> tuple[str, bool]:
    cluster = Cluster()
    cluster.down()
    left = procs.pids_under(cluster.run_dir)
    return f"cluster is down; no process left: {not left}", True


main = cli.ComponentCli(
    prog="python -m localplatform.cluster",
    doc=__doc__,
    up=_up,
    down=_down,
    status=lambda _: (Cluster().status(), True),
).main


if __name__ == "__main__":
    sys.exit(main())
