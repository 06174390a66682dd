"""The chart in a cluster whose pods really run, wired to this machine's data services:
what the real node (localplatform.node_e2e, `make e2e-node`) and kind
(localplatform.kind_e2e, `make kind-e2e`) share, so tests/node/test_e2e_node.py runs the
same assertions on either.

The data services (Kafka with a listener for pods, PostgreSQL, Redis, the S3 server, a
Slack webhook sink) run on this machine, bound to 127.0.0.1. Each target makes them
reachable from its pods as `<name>.data-services.svc.cluster.local`: Services without a
selector whose EndpointSlice points at an address of this machine on the cluster's
network, where a forwarder (localplatform.node_forward) relays to the loopback server.
The chart is installed with the target's values plus values/e2e.yaml, which names those
Services and the Secrets created here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from localplatform import cli, paths, procs
from localplatform.services import LocalServices
from localplatform.services.base import ServicesConfig

RELEASE = "orders-etl"
NAMESPACE = "orders-etl"
DATA_NAMESPACE = "data-services"
CHART = paths.REPO_ROOT / "charts" / "orders-etl"
E2E_VALUES = paths.REPO_ROOT / "values" / "e2e.yaml"
SLACK_PORT = paths.port("slack_sink", 28090)
KAFKA_POD_ADDRESS = f"kafka.{DATA_NAMESPACE}.svc.cluster.local:9092"
#: Secrets the Spark driver and executor pods mount (values/e2e.yaml, spark.sparkConf),
#: needed in the SparkApplications' namespace too.
SPARK_SECRETS = ("orders-etl-s3", "orders-etl-iceberg")


def svc(name: str) -> str:
    return f"{name}.{DATA_NAMESPACE}.svc.cluster.local"


class Kube(Protocol):
    """A cluster this machine reaches with a kubeconfig (localplatform.cluster.Cluster)."""

    @property
    def kubeconfig(self) -> Path: ...

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...


class ChartE2E:
    """One target: a cluster, this machine's data services, the chart installed."""

    #: The target's own values files, before values/e2e.yaml.
    values: tuple[Path, ...] = ()
    #: Where the SparkApplications (and their driver and executor pods) live.
    spark_namespace = NAMESPACE

    def __init__(self, cluster: Kube, run_dir: Path) -> None:
        self.cluster = cluster
        # Kafka with a second listener, advertised under the name the pods use.
        self.services = LocalServices(ServicesConfig(kafka_pod_advertised=KAFKA_POD_ADDRESS))
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # -- what differs per target ---------------------------------------------------------
    #: How the CLI names the target ("the real node", "kind").
    label = ""

    def up(self, extra_values: dict[str, Any] | None = None) -> dict[str, float]:
        """Everything started and the chart installed; seconds per step."""
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def is_up(self) -> bool:
        """The cluster answers (its pods can be listed)."""
        raise NotImplementedError

    def node_names(self) -> set[str]:
        """The nodes the chart's and Spark's pods may run on."""
        raise NotImplementedError

    def airflow_api(self) -> contextlib.AbstractContextManager[str]:
        """The Airflow API server's base URL while open: a `kubectl port-forward` to its
        Service (kind's pod addresses are not routed to the host; the real node's are, but
        one way for both keeps the kind path's on the tested one)."""
        return port_forward(self.cluster, NAMESPACE, f"svc/{RELEASE}-api-server", 8080)

    def pods_memory(self) -> tuple[int, int] | None:
        """(current, peak) bytes of the pods, where the target can tell."""
        return None

    # -- shared ---------------------------------------------------------------------------
    def helm(self, *args: str, timeout: float = 900) -> str:
        return procs.run_checked(
            "helm " + " ".join(args[:2]),
            [str(paths.tool("helm")), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            timeout=timeout,
        )

    def start_data_services(self) -> None:
        kafka = self.services.kafka
        props = kafka.dir / "server.properties"
        if kafka.running() and "POD://" not in (props.read_text() if props.exists() else ""):
            kafka.stop()  # started without the pods' listener: restart with it
        self.services.up()
        self.slack_sink().start()

    def stop_data_services(self) -> None:
        self.slack_sink().stop()
        self.services.down()

    def host_services(self) -> dict[str, tuple[int, int]]:
        """name -> (port of its Service, port of the server on 127.0.0.1)."""
        s = self.services
        return {
            "postgres": (5432, s.postgres.port),
            "redis": (6379, s.redis.port),
            "s3": (9000, s.s3.port),
            "kafka": (9092, s.kafka.pod_port),
            "slack": (8090, SLACK_PORT),
        }

    def slack_sink(self) -> procs.Proc:
        """The notify task's Slack webhook: a local sink (localplatform.slack_sink)."""
        return procs.Proc(
            "slack-sink",
            [sys.executable, "-m", "localplatform.slack_sink", "--port", str(SLACK_PORT),
             "--out", str(self.run_dir / "slack.jsonl")],
            self.run_dir,
            ports=(SLACK_PORT,),
        )  # fmt: skip

    def restricted_namespace(self, name: str) -> None:
        k = self.cluster.kubectl
        if k("get", "namespace", name, check=False).returncode != 0:
            k("create", "namespace", name)
        k(
            "label",
            "--overwrite",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
        )

    def secrets(self) -> dict[str, dict[str, str]]:
        """The Secrets values/e2e.yaml names, pointing at the data services."""
        s = self.services
        creds = s.credentials
        db = f"postgresql+psycopg2://airflow:{creds['airflow_db']}@{svc('postgres')}:5432/airflow"
        return {
            "orders-etl-db": {"connection": db},
            "orders-etl-broker": {"url": f"redis://:{s.redis.password}@{svc('redis')}:6379/0"},
            "orders-etl-s3": {
                "AWS_ACCESS_KEY_ID": s.s3.access_key,
                "AWS_SECRET_ACCESS_KEY": s.s3.secret_key,
            },
            "orders-etl-slack": {
                "connection": json.dumps(
                    {"conn_type": "slackwebhook", "password": f"http://{svc('slack')}:8090/hook"}
                )
            },
            "orders-etl-iceberg": {
                "ICEBERG_JDBC_USER": "iceberg",
                "ICEBERG_JDBC_PASSWORD": creds["iceberg_db"],
            },
        }

    def apply_secrets(self, namespace: str, names: Iterable[str] | None = None) -> None:
        """The Secrets (all, or `names`) in `namespace`."""
        for name, data in self.secrets().items():
            if names is not None and name not in names:
                continue
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": data,
            }
            self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))

    def install_chart(self, extra_values: dict[str, Any] | None = None) -> None:
        args = ["upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE]
        for values in (*self.values, E2E_VALUES):
            args += ["-f", str(values)]
        if extra_values:
            overlay = self.run_dir / "e2e-overlay.json"
            overlay.write_text(json.dumps(extra_values))
            args += ["-f", str(overlay)]
        self.helm(*args, "--wait", "--timeout", "12m", timeout=800)

    def uninstall(self, release: str, namespace: str) -> None:
        self.helm("uninstall", release, "-n", namespace, "--ignore-not-found", "--wait",
                  "--timeout", "3m", timeout=240)  # fmt: skip

    def pods(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        out = self.cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def print_pods(self) -> None:
        for pod in self.pods():
            statuses = pod.get("status", {}).get("containerStatuses", [])
            ready = sum(1 for c in statuses if c.get("ready"))
            print(f"  {pod['metadata']['name']:<60} {pod['status'].get('phase')} "
                  f"{ready}/{len(statuses)} on {pod['spec'].get('nodeName')}")  # fmt: skip


@contextlib.contextmanager
def port_forward(cluster: Kube, namespace: str, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward` to `target` (e.g. svc/NAME) on a free local port; yields
    http://127.0.0.1:PORT and stops the forward (by PID) on exit."""
    child = subprocess.Popen(
        [str(paths.tool("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace,
         "port-forward", "--address=127.0.0.1", target, f":{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> port"
        if not line.startswith("Forwarding from 127.0.0.1:"):
            raise procs.StartupError(f"kubectl port-forward {target}: {line}{child.stdout.read()}")
        local = line.split("127.0.0.1:", 1)[1].split()[0]
        # It prints a line per connection: drained, so a long wait never fills the pipe.
        threading.Thread(target=child.stdout.read, daemon=True).start()
        yield f"http://127.0.0.1:{local}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main(target: Callable[[], ChartE2E], prog: str, doc: str | None, argv: list[str] | None) -> int:
    """`python -m <prog> up | down | status` for one target."""

    def pods(e2e: ChartE2E) -> None:
        if e2e.is_up():
            e2e.print_pods()

    def up(_: argparse.Namespace) -> tuple[str, bool]:
        e2e = target()
        timings = e2e.up()
        print(f"chart on {e2e.label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        pods(e2e)
        return "", True

    def down(_: argparse.Namespace) -> tuple[str, bool]:
        target().down()
        return "", True

    def status(_: argparse.Namespace) -> tuple[str, bool]:
        pods(target())
        return "", True

    return cli.ComponentCli(prog=prog, doc=doc, up=up, down=down, status=status).main(argv)
