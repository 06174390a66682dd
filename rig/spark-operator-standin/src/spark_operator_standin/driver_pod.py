"""An application's state read from its pods, the way spark-operator v2 reads it.

In cluster mode (`--mode k8s`) spark-submit only creates the driver pod and watches it;
its exit code is not a reliable outcome (SPARK-26365: in Kubernetes cluster mode it
does not carry the driver's exit code), and the driver lives on if spark-submit dies.
The operator therefore takes the driver's state from the driver pod (`util.GetDriverState`),
the error from the driver container's termination, the application id from the pod's
`spark-app-selector` label and `executorState` from the executor pods; so does the
stand-in (`states.py` turns these into the application's state). Pods are the API's
JSON (camelCase dicts), so this module needs no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Pod = Mapping[str, Any]

#: Executor pod phase -> executorState value, as the operator reports them.
_EXECUTOR_STATE = {
    "Pending": "PENDING",
    "Running": "RUNNING",
    "Succeeded": "COMPLETED",
    "Failed": "FAILED",
}
#: common.SparkDriverContainerName / Spark3DefaultExecutorContainerName
DRIVER_CONTAINER = "spark-kubernetes-driver"
EXECUTOR_CONTAINER = "spark-kubernetes-executor"
APP_ID_LABEL = "spark-app-selector"


def driver_state(pod: Pod) -> str:
    """util.GetDriverState: PENDING, RUNNING, COMPLETED, FAILED or UNKNOWN. A Running pod
    whose driver container has terminated is COMPLETED or FAILED by its exit code, and a
    Failed pod whose driver exited 0 is COMPLETED."""
    phase = str((pod.get("status") or {}).get("phase"))
    terminated = _terminated(pod, DRIVER_CONTAINER)
    if phase == "Pending":
        return "PENDING"
    if phase == "Running":
        if terminated is not None:
            return "COMPLETED" if terminated.get("exitCode") == 0 else "FAILED"
        return "RUNNING"
    if phase == "Succeeded":
        return "COMPLETED"
    if phase == "Failed":
        return (
            "COMPLETED" if terminated is not None and terminated.get("exitCode") == 0 else "FAILED"
        )
    return "UNKNOWN"


def _terminated(pod: Pod, container: str) -> Mapping[str, Any] | None:
    """util.GetContainerTerminatedState: the named container's termination, if any."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated")
            return terminated if terminated else None
    return None


def application_id(pod: Pod) -> str | None:
    """Spark's own application id, which Spark puts on its pods as a label."""
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(APP_ID_LABEL)
    return str(value) if value else None


def executor_states(pods: Iterable[Pod]) -> dict[str, str]:
    """executorState (util.GetExecutorState): pod name -> PENDING, RUNNING, COMPLETED,
    FAILED or UNKNOWN. Spark stops executors with SIGTERM once the job is done, so the
    executors of a COMPLETED application usually end FAILED (exit code 143), as the
    operator reports them."""
    return {
        str(p["metadata"]["name"]): _EXECUTOR_STATE.get(
            str((p.get("status") or {}).get("phase")), "UNKNOWN"
        )
        for p in pods
    }


def driver_error(pod: Pod) -> str:
    """The operator's errorMessage for a failed driver (updateDriverState)."""
    terminated = _terminated(pod, DRIVER_CONTAINER)
    if terminated is None:
        return "driver container status missing"
    return (
        f"driver container failed with ExitCode: {terminated.get('exitCode')}, "
        f"Reason: {terminated.get('reason', '')}"
    )
