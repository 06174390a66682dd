"""An application's state read from its pods, the way spark-operator v2 reads it.

In cluster mode (`--mode k8s`) spark-submit only creates the driver pod and watches it;
its exit code is not a reliable outcome (SPARK-26365: in Kubernetes cluster mode it
does not carry the driver's exit code), and the driver lives on if spark-submit dies.
The operator therefore takes the state from the driver pod's phase, the
error from the driver container's termination, the application id from the pod's
`spark-app-selector` label and `executorState` from the executor pods; so does the
stand-in. Pods are the API's JSON (camelCase dicts), so this module needs no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Pod = Mapping[str, Any]

#: Driver pod phase -> applicationState.state (the operator's SUBMITTED until it runs).
_DRIVER_STATE = {
    "Pending": "SUBMITTED",
    "Running": "RUNNING",
    "Succeeded": "COMPLETED",
    "Failed": "FAILED",
}
#: Executor pod phase -> executorState value, as the operator reports them.
_EXECUTOR_STATE = {
    "Pending": "PENDING",
    "Running": "RUNNING",
    "Succeeded": "COMPLETED",
    "Failed": "FAILED",
}
DRIVER_CONTAINER = "spark-kubernetes-driver"
APP_ID_LABEL = "spark-app-selector"


def driver_state(pod: Pod) -> str:
    """SUBMITTED, RUNNING, COMPLETED or FAILED from the driver pod's phase (UNKNOWN else)."""
    return _DRIVER_STATE.get(str((pod.get("status") or {}).get("phase")), "UNKNOWN")


def application_id(pod: Pod) -> str | None:
    """Spark's own application id, which Spark puts on its pods as a label."""
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(APP_ID_LABEL)
    return str(value) if value else None


def executor_states(pods: Iterable[Pod]) -> dict[str, str]:
    """executorState: executor pod name -> PENDING, RUNNING, COMPLETED or FAILED."""
    return {
        str(p["metadata"]["name"]): _EXECUTOR_STATE.get(
            str((p.get("status") or {}).get("phase")), "UNKNOWN"
        )
        for p in pods
    }


def driver_error(pod: Pod, limit: int = 1500) -> str:
    """Why a failed driver pod failed: its container's exit code, reason and message, or
    the pod's own reason (evicted, deadline exceeded) when no container terminated."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    chosen = next((c for c in containers if c.get("name") == DRIVER_CONTAINER), None)
    chosen = chosen or (containers[0] if containers else None)
    terminated = ((chosen or {}).get("state") or {}).get("terminated") or {}
    if terminated:
        text = (
            f"driver container failed with ExitCode: {terminated.get('exitCode')}, "
            f"Reason: {terminated.get('reason', 'unknown')}"
        )
        if terminated.get("message"):
            text += f", Message: {terminated['message'].strip()}"
    else:
        text = f"driver pod failed: {status.get('reason') or 'unknown reason'}" + (
            f": {status['message']}" if status.get("message") else ""
        )
    return text[:limit]
