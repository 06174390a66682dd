"""The chart on kind (make kind-up / kind-e2e / kind-down), for users with Docker: the
same wiring and assertions as the real node, with the real kubeflow spark-operator.

    python -m localplatform.kind_e2e up | down | status

NOT EXERCISED by this project's CI: this machine has no Docker engine. Linux only: the
forwarder listens on the host's address on the kind network, which Docker Desktop's VM
does not give the host.

1. the kind cluster KIND_CLUSTER (default orders-etl), its kubeconfig in .run/kind/, and
   the images loaded into it (`hack/build-images.sh kind-load`);
2. the data services on this machine, exposed in the namespace `data-services`
   (localplatform.chart_e2e) at the host's gateway address on the Docker network `kind`,
   where a forwarder (localplatform.node_forward) relays to 127.0.0.1;
3. the namespace `orders-etl` (PodSecurity `restricted`) and its Secrets;
4. the real spark-operator chart (SPARK_OPERATOR_CHART_VERSION, versions.env) watching
   `spark-jobs`, with the values of argocd/spark-operator.yaml;
5. the chart with values/kind.yaml and values/e2e.yaml, `helm upgrade --install --wait`
   (it creates `spark-jobs`), then the Secrets Spark's pods mount, in `spark-jobs`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from localplatform import chart_e2e, host_services, paths, procs, versions
from localplatform.chart_e2e import NAMESPACE, ChartE2E
from localplatform.cluster import kubectl

KIND_NETWORK = "kind"  # the Docker network kind puts its nodes on
SPARK_JOBS_NAMESPACE = "spark-jobs"
OPERATOR_RELEASE = "spark-operator"
OPERATOR_NAMESPACE = "spark-operator"
OPERATOR_REPO = "https://kubeflow.github.io/spark-operator"
MANAGED_BY = "localplatform-kind"


class KindCluster:
    """A kind cluster, reached through the kubeconfig `kind` wrote for it."""

    def __init__(self, name: str, run_dir: Path) -> None:
        self.name = name
        self.kubeconfig = run_dir / "kubeconfig"

    def kind(self, *args: str, timeout: float = 600) -> str:
        return procs.run_checked(
            "kind " + " ".join(args[:2]), [str(paths.tool("kind")), *args], timeout=timeout
        )

    def exists(self) -> bool:
        return self.name in self.kind("get", "clusters").split()

    def up(self) -> None:
        if self.exists():
            self.kind("export", "kubeconfig", "--name", self.name, "--kubeconfig",
                      str(self.kubeconfig))  # fmt: skip
        else:
            self.kind("create", "cluster", "--name", self.name, "--kubeconfig",
                      str(self.kubeconfig), "--wait", "180s")  # fmt: skip

    def down(self) -> None:
        if self.exists():
            self.kind("delete", "cluster", "--name", self.name)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)


def docker(*args: str, timeout: float = 60) -> str:
    try:
        return procs.run_checked("docker " + " ".join(args[:2]), ["docker", *args], timeout=timeout)
    except FileNotFoundError:
        raise procs.StartupError(
            "the kind path needs a Docker engine: `docker` is not on PATH "
            "(this project's CI has none; see README 'kind (users with Docker)')"
        ) from None


def ipv4_gateway(inspect_output: str, network: str = KIND_NETWORK) -> str:
    """The host's IPv4 address on a Docker network, from `docker network inspect`'s JSON
    (kind's network has an IPv6 subnet too)."""
    networks: list[dict[str, Any]] = json.loads(inspect_output)
    configs = (networks[0].get("IPAM") or {}).get("Config") or [] if networks else []
    for config in configs:
        gateway = config.get("Gateway", "")
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(gateway).version == 4:
                return str(gateway)
    raise procs.StartupError(f"Docker network {network!r} has no IPv4 gateway: {configs}")


def forward_mappings(gateway: str, ports: list[int]) -> str:
    """localplatform.node_forward's file: each port, on the gateway, to 127.0.0.1."""
    return "".join(f"{gateway}:{p}=127.0.0.1:{p}\n" for p in sorted(set(ports)))


def operator_helm_args(version: str, jobs_namespace: str = SPARK_JOBS_NAMESPACE) -> list[str]:
    """The real operator's chart with the values of argocd/spark-operator.yaml: it watches
    the jobs namespace and creates nothing in it (the orders-etl chart creates the
    namespace, the driver ServiceAccount and its Role), so it installs first."""
    return [
        "upgrade", "--install", OPERATOR_RELEASE, "spark-operator",
        "--repo", OPERATOR_REPO, "--version", version,
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--set", f"spark.jobNamespaces={{{jobs_namespace}}}",
        "--set", "spark.serviceAccount.create=false",
        "--set", "spark.rbac.create=false",
        "--set", "webhook.enable=true",
        "--wait", "--timeout", "5m",
    ]  # fmt: skip


class KindE2E(ChartE2E):
    label = "kind"
    values = (paths.REPO_ROOT / "values" / "kind.yaml",)
    spark_namespace = SPARK_JOBS_NAMESPACE

    def __init__(self, name: str | None = None) -> None:
        run_dir = paths.RUN_DIR / "kind"
        cluster = KindCluster(name or os.environ.get("KIND_CLUSTER", "orders-etl"), run_dir)
        super().__init__(cluster, run_dir)
        self.cluster: KindCluster = cluster
        self.mappings = run_dir / "forwards.txt"

    def forwarder(self) -> procs.Proc:
        return procs.Proc(
            "kind-forwarder",
            [sys.executable, "-m", "localplatform.node_forward", self.mappings],
            self.run_dir,
        )

    def _saved_mappings(self) -> str:
        return self.mappings.read_text() if self.mappings.exists() else ""

    def is_up(self) -> bool:
        return self.cluster.kubeconfig.exists() and self.cluster.exists()

    def node_names(self) -> set[str]:
        out = self.cluster.kubectl("get", "nodes", "-o", "name").stdout
        return {line.removeprefix("node/") for line in out.split()}

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, extra_values: dict[str, Any] | None = None) -> dict[str, float]:
        timings: dict[str, float] = {}
        t = time.monotonic()
        docker("version", "--format", "{{.Server.Version}}")  # an engine answers
        self.cluster.up()
        gateway = ipv4_gateway(docker("network", "inspect", KIND_NETWORK))
        self.load_images()
        timings["kind cluster"] = time.monotonic() - t
        t = time.monotonic()
        self.start_data_services()
        services = self.host_services()
        mappings = forward_mappings(gateway, [hp for _, hp in services.values()])
        forwarder = self.forwarder()
        if not forwarder.running() or self._saved_mappings() != mappings:
            forwarder.stop()  # a new network (a recreated cluster) means a new gateway
            self.mappings.write_text(mappings)
            forwarder.start()
        objects = host_services.service_objects(
            chart_e2e.DATA_NAMESPACE, services, gateway, MANAGED_BY
        )
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts",
                             f"--field-manager={MANAGED_BY}", "-f", "-",
                             input=yaml.safe_dump_all(objects))  # fmt: skip
        timings["data services"] = time.monotonic() - t
        t = time.monotonic()
        self.restricted_namespace(NAMESPACE)
        self.apply_secrets(NAMESPACE)
        self.helm(*operator_helm_args(versions.get("SPARK_OPERATOR_CHART_VERSION")))
        self.install_chart(extra_values)  # creates the jobs namespace (values/kind.yaml)
        self.apply_secrets(self.spark_namespace, chart_e2e.SPARK_SECRETS)
        timings["helm install"] = time.monotonic() - t
        return timings

    def load_images(self) -> None:
        procs.run_checked(
            "hack/build-images.sh kind-load",
            [str(paths.REPO_ROOT / "hack" / "build-images.sh"), "kind-load", "airflow-local",
             "spark"],
            env={**os.environ, "IMAGES_ENGINE": "docker", "KIND": str(paths.tool("kind")),
                 "KIND_CLUSTER": self.cluster.name},
            timeout=1800,
        )  # fmt: skip

    def down(self) -> None:
        self.forwarder().stop()
        self.stop_data_services()
        self.cluster.down()


def main(argv: list[str] | None = None) -> int:
    return chart_e2e.main(KindE2E, "python -m localplatform.kind_e2e", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
