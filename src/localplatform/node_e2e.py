"""The chart on the real node (make e2e-node): every pod really runs.

    python -m localplatform.node_e2e up | down | status

1. the local control plane, the data services (Kafka with a listener for pods) and the
   real node (localplatform.node);
2. the data services exposed in the namespace `data-services` as Services without
   selectors + EndpointSlices at the node's bridge (localplatform.node_forward relays);
3. the spark-operator stand-in chart (charts/spark-operator-standin, a TEST STAND-IN) in
   `spark-operator`, watching the release namespace;
4. the chart with values/node.yaml into `orders-etl` (PodSecurity `restricted`),
   `helm upgrade --install --wait`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from localplatform import paths, procs
from localplatform.cluster import Cluster
from localplatform.node import NODE_LABEL, NODE_TAINT, Node
from localplatform.services import LocalServices
from localplatform.services.base import ServicesConfig

RELEASE = "orders-etl"
NAMESPACE = "orders-etl"
DATA_NAMESPACE = "data-services"
STANDIN_RELEASE = "spark-operator-standin"
STANDIN_NAMESPACE = "spark-operator"
CHART = paths.REPO_ROOT / "charts" / "orders-etl"
STANDIN_CHART = paths.REPO_ROOT / "charts" / "spark-operator-standin"
VALUES = paths.REPO_ROOT / "values" / "node.yaml"
SLACK_PORT = paths.port("slack_sink", 28090)
KAFKA_POD_ADDRESS = f"kafka.{DATA_NAMESPACE}.svc.cluster.local:9092"


def _image_id(name: str) -> str:
    """The ID of an exported image (hack/build-images.sh export), '' if not exported."""
    path = paths.TOOLS_DIR / "images" / "export" / f"{name}.oci.tar.id"
    return path.read_text().strip()[:12] if path.exists() else ""


def svc(name: str) -> str:
    return f"{name}.{DATA_NAMESPACE}.svc.cluster.local"


class NodeE2E:
    def __init__(self) -> None:
        self.cluster = Cluster()
        # Kafka with a second listener, advertised under the name the pods use.
        self.services = LocalServices(ServicesConfig(kafka_pod_advertised=KAFKA_POD_ADDRESS))
        self.node = Node(cluster=self.cluster)
        # Its own state beside the node's: the node's teardown test counts every process
        # recorded under the node's run dir as left behind.
        self.run_dir = paths.RUN_DIR / "node-e2e"
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def helm(self, *args: str, timeout: float = 900) -> str:
        return procs.run_checked(
            "helm " + " ".join(args[:2]),
            [str(paths.tool("helm")), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            timeout=timeout,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, extra_values: dict[str, Any] | None = None) -> dict[str, float]:
        timings: dict[str, float] = {}
        t = time.monotonic()
        self.cluster.up()
        timings["control plane"] = time.monotonic() - t
        t = time.monotonic()
        kafka = self.services.kafka
        props = kafka.dir / "server.properties"
        if kafka.running() and "POD://" not in (props.read_text() if props.exists() else ""):
            kafka.stop()  # started without the pods' listener: restart with it
        self.services.up()
        self.slack_sink().start()
        timings["data services"] = time.monotonic() - t
        t = time.monotonic()
        self.node.up()
        timings["node"] = time.monotonic() - t
        t = time.monotonic()
        s = self.services
        self.node.expose_host_services(
            DATA_NAMESPACE,
            {
                "postgres": (5432, s.postgres.port),
                "redis": (6379, s.redis.port),
                "s3": (9000, s.s3.port),
                "kafka": (9092, kafka.pod_port),
                "slack": (8090, SLACK_PORT),
            },
        )
        self._namespace_and_secrets()
        self.install_standin()
        self.install_chart(extra_values)
        timings["helm install"] = time.monotonic() - t
        return timings

    def down(self) -> None:
        if self.cluster.is_up():
            for release, ns in ((RELEASE, NAMESPACE), (STANDIN_RELEASE, STANDIN_NAMESPACE)):
                procs.run_checked(
                    "helm uninstall",
                    [
                        str(paths.tool("helm")),
                        "--kubeconfig",
                        str(self.cluster.kubeconfig),
                        "uninstall",
                        release,
                        "-n",
                        ns,
                        "--ignore-not-found",
                        "--wait",
                        "--timeout",
                        "3m",
                    ],
                    timeout=240,
                )
        self.node.down()
        self.slack_sink().stop()
        self.services.down()
        self.cluster.down()

    def slack_sink(self) -> procs.Proc:
        """The notify task's Slack webhook: a local sink (localplatform.slack_sink)."""
        return procs.Proc(
            "slack-sink",
            [sys.executable, "-m", "localplatform.slack_sink", "--port", str(SLACK_PORT),
             "--out", str(self.run_dir / "slack.jsonl")],
            self.run_dir,
            ports=(SLACK_PORT,),
        )  # fmt: skip

    # -- pieces ---------------------------------------------------------------------------
    def _namespace_and_secrets(self) -> None:
        k = self.cluster.kubectl
        if k("get", "namespace", NAMESPACE, check=False).returncode != 0:
            k("create", "namespace", NAMESPACE)
        k(
            "label",
            "--overwrite",
            "namespace",
            NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
        )
        k("apply", "--server-side", "-f", str(paths.TOOLS_SHARE / "spark-crds"))
        s = self.services
        creds = s.credentials
        db = f"postgresql+psycopg2://airflow:{creds['airflow_db']}@{svc('postgres')}:5432/airflow"
        broker = f"redis://:{s.redis.password}@{svc('redis')}:6379/0"
        secrets = {
            "orders-etl-db": {"connection": db},
            "orders-etl-broker": {"url": broker},
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
                "PYICEBERG_URI": f"postgresql+psycopg2://iceberg:{creds['iceberg_db']}"
                f"@{svc('postgres')}:5432/iceberg",
            },
        }
        for name, data in secrets.items():
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "stringData": data,
            }
            k("apply", "-f", "-", input=json.dumps(body))

    def install_standin(self) -> None:
        if not STANDIN_CHART.exists():
            return
        on_node: dict[str, Any] = {
            "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
            "tolerations": [{"key": NODE_TAINT["key"], "operator": "Exists"}],
        }
        values: dict[str, Any] = {
            "watchNamespace": NAMESPACE,
            "image": {"pullPolicy": "Never"},
            # The tag stays when the image is rebuilt: its ID rolls the pod.
            "podAnnotations": {"orders-etl.io/image-id": _image_id("spark")},
            **on_node,
            "sparkPods": {**on_node, "imagePullPolicy": "Never"},
        }
        overlay = self.run_dir / "standin-values.json"
        overlay.write_text(json.dumps(values))
        self.helm(
            "upgrade", "--install", STANDIN_RELEASE, str(STANDIN_CHART),
            "--namespace", STANDIN_NAMESPACE, "--create-namespace", "-f", str(overlay),
            "--wait", "--timeout", "5m",
        )  # fmt: skip

    def install_chart(self, extra_values: dict[str, Any] | None = None) -> None:
        args = ["upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "-f", str(VALUES)]  # fmt: skip
        if extra_values:
            overlay = self.run_dir / "e2e-overlay.json"
            overlay.write_text(json.dumps(extra_values))
            args += ["-f", str(overlay)]
        self.helm(*args, "--wait", "--timeout", "12m", timeout=800)

    def pods(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        out = self.cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localplatform.node_e2e", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    e2e = NodeE2E()
    try:
        if args.action == "up":
            timings = e2e.up()
            summary = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            print(f"chart on the real node: {summary}")
        elif args.action == "down":
            e2e.down()
        for pod in e2e.pods() if e2e.cluster.is_up() else []:
            statuses = pod.get("status", {}).get("containerStatuses", [])
            ready = sum(1 for c in statuses if c.get("ready"))
            print(f"  {pod['metadata']['name']:<60} {pod['status'].get('phase')} "
                  f"{ready}/{len(statuses)} on {pod['spec'].get('nodeName')}")  # fmt: skip
    except (procs.StartupError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
