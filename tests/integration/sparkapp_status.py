"""SparkApplications and their status as spark-operator v2 writes it (shared by the
integration tests of the trigger and of the stand-in against the real API server)."""

from __future__ import annotations

import json
from typing import Any

from localplatform.cluster import Cluster


def spark_application(name: str, main: str, arguments: list[str]) -> dict[str, Any]:
    """A small Python SparkApplication running `main` (a path in the image)."""
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "3.5.9",
            "image": "orders-etl/spark:3.5.9",
            "mainApplicationFile": f"local://{main}",
            "arguments": arguments,
            "sparkConf": {"spark.ui.enabled": "false"},
            "driver": {"cores": 1, "memory": "512m"},
            "executor": {"cores": 1, "instances": 1, "memory": "512m"},
        },
    }


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
