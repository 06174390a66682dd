"""The stand-in reads the driver's state from its pod as spark-operator v2.5 does
(util.GetDriverState; states.DRIVER_TO_APPLICATION makes it the application's)."""

from __future__ import annotations

from typing import Any

import pytest

from spark_operator_standin import driver_pod, states

pytestmark = pytest.mark.unit


def pod(
    name: str, phase: str, labels: dict[str, str] | None = None, **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"phase": phase, **status},
    }


def driver(exit_code: int) -> list[dict[str, Any]]:
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
    return [{"name": "spark-kubernetes-driver", "state": {"terminated": terminated}}]


@pytest.mark.parametrize(
    ("phase", "containers", "state", "application_state"),
    [
        ("Pending", [], "PENDING", "SUBMITTED"),
        ("Running", [], "RUNNING", "RUNNING"),
        # the driver container ended while a sidecar keeps the pod Running
        ("Running", driver(0), "COMPLETED", "SUCCEEDING"),
        ("Running", driver(1), "FAILED", "FAILING"),
        ("Succeeded", driver(0), "COMPLETED", "SUCCEEDING"),
        ("Failed", driver(1), "FAILED", "FAILING"),
        ("Failed", driver(0), "COMPLETED", "SUCCEEDING"),  # e.g. a sidecar failed
        ("Unknown", [], "UNKNOWN", "UNKNOWN"),
    ],
)
def test_the_driver_state_and_the_application_state_it_means(
    phase: str, containers: list[dict[str, Any]], state: str, application_state: str
) -> None:
    seen = driver_pod.driver_state(pod("app-driver", phase, containerStatuses=containers))
    assert seen == state
    assert states.DRIVER_TO_APPLICATION[seen] == application_state


def test_the_application_id_is_sparks_own_label() -> None:
    driver = pod(
        "app-driver", "Running", {"spark-app-selector": "spark-6d1c", "spark-role": "driver"}
    )
    assert driver_pod.application_id(driver) == "spark-6d1c"
    assert driver_pod.application_id(pod("app-driver", "Pending")) is None


def test_executor_state_per_pod() -> None:
    pods = [pod("a-exec-1", "Running"), pod("a-exec-2", "Pending"), pod("a-exec-3", "Failed")]
    assert driver_pod.executor_states(pods) == {
        "a-exec-1": "RUNNING",
        "a-exec-2": "PENDING",
        "a-exec-3": "FAILED",
    }


def test_a_failed_driver_says_its_exit_code_and_reason_as_the_operator_does() -> None:
    terminated = {"exitCode": 1, "reason": "Error", "message": "Traceback ... ValueError\n"}
    driver = pod(
        "app-driver",
        "Failed",
        containerStatuses=[
            {"name": "sidecar", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "spark-kubernetes-driver", "state": {"terminated": terminated}},
        ],
    )
    assert driver_pod.driver_error(driver) == (
        "driver container failed with ExitCode: 1, Reason: Error"
    )


def test_a_driver_without_a_terminated_container_says_so() -> None:
    driver = pod("app-driver", "Failed", reason="Evicted", message="The node was low on memory.")
    assert driver_pod.driver_error(driver) == "driver container status missing"
