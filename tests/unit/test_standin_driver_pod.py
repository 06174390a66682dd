"""The stand-in reads an application's state from its pods as spark-operator v2 does."""

from __future__ import annotations

from typing import Any

import pytest

from spark_operator_standin import driver_pod

pytestmark = pytest.mark.unit


def pod(
    name: str, phase: str, labels: dict[str, str] | None = None, **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"phase": phase, **status},
    }


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        ("Pending", "SUBMITTED"),
        ("Running", "RUNNING"),
        ("Succeeded", "COMPLETED"),
        ("Failed", "FAILED"),
        ("Unknown", "UNKNOWN"),
    ],
)
def test_the_driver_phase_is_the_application_state(phase: str, state: str) -> None:
    assert driver_pod.driver_state(pod("app-driver", phase)) == state


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


def test_a_failed_driver_says_its_exit_code_and_reason() -> None:
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
        "driver container failed with ExitCode: 1, Reason: Error, Message: Traceback ... ValueError"
    )


def test_a_driver_from_a_pod_template_is_its_only_container() -> None:
    driver = pod(
        "app-driver",
        "Failed",
        containerStatuses=[
            {"name": "spark", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
        ],
    )
    assert driver_pod.driver_error(driver) == (
        "driver container failed with ExitCode: 137, Reason: OOMKilled"
    )


def test_an_evicted_driver_says_so() -> None:
    driver = pod("app-driver", "Failed", reason="Evicted", message="The node was low on memory.")
    assert driver_pod.driver_error(driver) == (
        "driver pod failed: Evicted: The node was low on memory."
    )
