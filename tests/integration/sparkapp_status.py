"""SparkApplication status written the way spark-operator v2 writes it (shared by the
integration tests that drive the SparkApplication trigger against the real API server)."""

from __future__ import annotations

import json

from localplatform.cluster import Cluster


def set_state(cluster: Cluster, namespace: str, name: str, state: str, message: str = "") -> None:
    """Write status the way spark-operator v2 does, through the status subresource."""
    status = {
        "applicationState": {"state": state, "errorMessage": message},
        "driverInfo": {"podName": f"{name}-driver"},
        "sparkApplicationId": f"spark-{name}",
        "executorState": {},
    }
    cluster.kubectl(
        "patch",
        "sparkapplication",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
