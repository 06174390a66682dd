"""SparkApplications (sparkoperator.k8s.io/v1beta2): names, rendering, status.

Bodies are built from the chart's template and validated with Kubeflow's own models
(kubeflow-spark-api) before they reach the API server, so a wrong type fails in the
task with the model's message, not as an opaque 422.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from orders_contract.sparkapplication import API_VERSION, KIND

COMPLETED = "COMPLETED"
FAILED = "FAILED"
#: What each state the spark-operator (v2.5) writes means to a task waiting on it. Only
#: COMPLETED and FAILED are final (the operator's util.IsTerminated): SUBMISSION_FAILED
#: and FAILING are followed by FAILED, or by another attempt when the restartPolicy
#: retries (SUBMITTED again, or PENDING_RERUN), and the operator writes which.
STATE_MEANING: dict[str, str] = {
    "": "created; the spark-operator has not picked it up yet",
    "SUBMITTED": "submitted; waiting for the driver pod to run",
    "RUNNING": "the driver is running",
    "SUCCEEDING": "the driver succeeded; the operator finishes the application",
    COMPLETED: "completed",
    "FAILING": "the driver failed; the operator retries it or fails the application",
    FAILED: "failed",
    "SUBMISSION_FAILED": "spark-submit failed; the operator retries it or fails the application",
    "PENDING_RERUN": "another attempt is about to be submitted",
    "INVALIDATING": "its spec changed; the operator reruns it",
    "UNKNOWN": "the driver pod's phase is unknown (its node may be lost)",
    "SUSPENDING": "being suspended (spec.suspend)",
    "SUSPENDED": "suspended (spec.suspend); nothing runs until it is resumed",
    "RESUMING": "being resumed",
}
#: Final: the task ends with the application.
TERMINAL_STATES = frozenset({COMPLETED, FAILED})
#: Waiting on something outside the operator (a lost node, a suspension): a task gives
#: these their own, shorter timeout instead of waiting out its whole one.
STALLED_STATES = frozenset({"UNKNOWN", "SUSPENDING", "SUSPENDED"})

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
    spark_conf: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The template with this run's name, namespace, labels and arguments, and `spark_conf`
    under the template's own sparkConf (the template wins a key both set); validated."""
    body = copy.deepcopy(template)
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise ValueError(f"template is not a {API_VERSION} {KIND}")
    metadata = body.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    metadata["labels"] = {**metadata.get("labels", {}), **labels}
    spec = body.setdefault("spec", {})
    spec["arguments"] = [*spec.get("arguments", []), *arguments]
    if spark_conf:
        spec["sparkConf"] = {**spark_conf, **(spec.get("sparkConf") or {})}
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
