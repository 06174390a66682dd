"""SparkApplications (sparkoperator.k8s.io/v1beta2): names, rendering, status.

Bodies are built from the chart's template and validated with Kubeflow's own models
(kubeflow-spark-api) before they reach the API server, so a wrong type fails in the
task with the model's message, not as an opaque 422.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"

COMPLETED = "COMPLETED"
FAILED_STATES = frozenset({"FAILED", "SUBMISSION_FAILED"})
TERMINAL_STATES = FAILED_STATES | {COMPLETED}

LABEL_RUN = "orders-etl.dev/run"
LABEL_TRY = "orders-etl.dev/try-number"
LABEL_DAG = "orders-etl.dev/dag-id"


def run_hash(dag_id: str, run_id: str) -> str:
    """A short, label-safe identity of one DAG run."""
    return hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:12]


def application_name(dag_id: str, run_id: str, try_number: int, prefix: str = "orders-etl") -> str:
    """Deterministic per run and try: a retry gets a fresh application, a rerun of the same
    try finds the one it created."""
    return f"{prefix}-{run_hash(dag_id, run_id)}-t{try_number}"


def render_application(
    template: dict[str, Any],
    *,
    name: str,
    namespace: str,
    arguments: list[str],
    labels: dict[str, str],
) -> dict[str, Any]:
    """The template with this run's name, namespace, labels and arguments; validated."""
    body = copy.deepcopy(template)
    if body.get("apiVersion") != f"{GROUP}/{VERSION}" or body.get("kind") != "SparkApplication":
        raise ValueError(f"template is not a {GROUP}/{VERSION} SparkApplication")
    metadata = body.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    metadata["labels"] = {**metadata.get("labels", {}), **labels}
    spec = body.setdefault("spec", {})
    spec["arguments"] = [*spec.get("arguments", []), *arguments]
    # The driver and executor pods carry the same labels, so they can be found per run.
    for role in ("driver", "executor"):
        part = spec.setdefault(role, {})
        part["labels"] = {**part.get("labels", {}), **labels}
    # Imported here: the models package is heavy and DAG parsing imports this module.
    from kubeflow_spark_api.models import SparkV1beta2SparkApplication

    SparkV1beta2SparkApplication.from_dict(body)  # raises on a schema violation
    return body


def application_state(obj: dict[str, Any]) -> tuple[str, str]:
    """(`.status.applicationState.state`, `.errorMessage`); ("", "") before the first status."""
    state = obj.get("status", {}).get("applicationState", {})
    return str(state.get("state", "")), str(state.get("errorMessage", ""))
