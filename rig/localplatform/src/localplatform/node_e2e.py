"""The chart on the real node (make e2e-node): every pod really runs.

    python -m localplatform.node_e2e up | down | status

1. the local control plane, the data services (Kafka with a listener for pods) and the
   real node (localplatform.node);
2. the data services exposed in the namespace `data-services` as Services without
   selectors + EndpointSlices at the node's bridge (localplatform.chart_e2e);
3. the spark-operator stand-in chart (charts/spark-operator-standin, a TEST STAND-IN) in
   `spark-operator`, watching the release namespace;
4. the chart with values/node.yaml and values/e2e.yaml into `orders-etl` (PodSecurity
   `restricted`), `helm upgrade --install --wait`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from localplatform import chart_e2e, paths
from localplatform.chart_e2e import NAMESPACE, RELEASE, ChartE2E
from localplatform.cluster import Cluster
from localplatform.node import NODE_LABEL, NODE_TAINT, Node

STANDIN_RELEASE = "spark-operator-standin"
STANDIN_NAMESPACE = "spark-operator"
STANDIN_CHART = paths.REPO_ROOT / "charts" / "spark-operator-standin"


def _image_id(name: str) -> str:
    """The ID of an exported image (hack/build-images.sh export), '' if not exported."""
    path = paths.TOOLS_DIR / "images" / "export" / f"{name}.oci.tar.id"
    return path.read_text().strip()[:12] if path.exists() else ""


class NodeE2E(ChartE2E):
    label = "the real node"
    values = (paths.REPO_ROOT / "values" / "node.yaml",)

    def __init__(self) -> None:
        cluster = Cluster()
        # Its own state beside the node's: the node's teardown test counts every process
        # recorded under the node's run dir as left behind.
        super().__init__(cluster, paths.RUN_DIR / "node-e2e")
        self.cluster: Cluster = cluster
        self.node = Node(cluster=cluster)

    def is_up(self) -> bool:
        return self.cluster.is_up()

    def node_names(self) -> set[str]:
        return {self.node.config.name}

    def pods_memory(self) -> tuple[int, int] | None:
        return self.node.pods_memory()

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, extra_values: dict[str, Any] | None = None) -> dict[str, float]:
        timings: dict[str, float] = {}
        t = time.monotonic()
        self.cluster.up()
        timings["control plane"] = time.monotonic() - t
        t = time.monotonic()
        self.start_data_services()
        timings["data services"] = time.monotonic() - t
        t = time.monotonic()
        self.node.up()
        timings["node"] = time.monotonic() - t
        t = time.monotonic()
        self.node.expose_host_services(chart_e2e.DATA_NAMESPACE, self.host_services())
        self.restricted_namespace(NAMESPACE)
        self.cluster.kubectl("apply", "--server-side", "-f", str(paths.TOOLS_SHARE / "spark-crds"))
        self.apply_secrets(NAMESPACE)  # the SparkApplications' namespace too
        self.install_standin()
        self.install_chart(extra_values)
        timings["helm install"] = time.monotonic() - t
        return timings

    def down(self) -> None:
        if self.cluster.is_up():
            self.uninstall(RELEASE, NAMESPACE)
            self.uninstall(STANDIN_RELEASE, STANDIN_NAMESPACE)
        self.node.down()
        self.stop_data_services()
        self.cluster.down()

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
            "podAnnotations": {"orders-etl.io/image-id": _image_id("spark-operator-standin")},
            # The stand-in's own pod; Spark's pods get theirs from the SparkApplication's
            # pod templates (values/node.yaml), as with the operator.
            **on_node,
        }
        overlay = self.run_dir / "standin-values.json"
        overlay.write_text(json.dumps(values))
        self.helm(
            "upgrade", "--install", STANDIN_RELEASE, str(STANDIN_CHART),
            "--namespace", STANDIN_NAMESPACE, "--create-namespace", "-f", str(overlay),
            "--wait", "--timeout", "5m",
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return chart_e2e.main(NodeE2E, "python -m localplatform.node_e2e", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
