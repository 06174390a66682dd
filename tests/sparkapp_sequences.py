"""State sequences the kubeflow spark-operator (v2.5) writes to a SparkApplication's
`.status.applicationState`, one per situation, and what a waiting task must conclude.

Shared by the stand-in's state-machine test (which produces each `operator` sequence
from its table) and the trigger's tests (which replay every sequence through an API).
Read from the operator's controller.go; `operator=False` marks a sequence v2.5 does not
write but a client must still handle (the issue's reading of a submission retry).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sequence:
    #: (state, errorMessage) in the order they are written
    states: tuple[tuple[str, str], ...]
    #: the trigger's event status at the end: success, failed or stalled
    outcome: str
    #: spec.restartPolicy of the application
    restart_policy: dict[str, object]
    #: True: the operator's v2.5 state machine writes exactly this sequence
    operator: bool = True


NEVER = {"type": "Never"}
ON_FAILURE = {
    "type": "OnFailure",
    "onFailureRetries": 1,
    "onFailureRetryInterval": 1,
    "onSubmissionFailureRetries": 1,
    "onSubmissionFailureRetryInterval": 1,
}
EXIT_1 = "driver container failed with ExitCode: 1, Reason: Error"
REFUSED = "failed to run spark-submit: the API server refused the driver pod"


def _s(*states: str, error: str = "", at: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    return tuple((s, error if s in at else "") for s in states)


SEQUENCES: dict[str, Sequence] = {
    "completes": Sequence(_s("SUBMITTED", "RUNNING", "SUCCEEDING", "COMPLETED"), "success", NEVER),
    "fails": Sequence(
        _s("SUBMITTED", "RUNNING", "FAILING", "FAILED", error=EXIT_1, at=("FAILING", "FAILED")),
        "failed",
        NEVER,
    ),
    "submission-fails-without-retries": Sequence(
        _s("SUBMISSION_FAILED", "FAILED", error=REFUSED, at=("SUBMISSION_FAILED", "FAILED")),
        "failed",
        NEVER,
    ),
    "on-failure-retry-completes": Sequence(
        _s(
            "SUBMITTED",
            "RUNNING",
            "FAILING",
            "PENDING_RERUN",
            "SUBMITTED",
            "RUNNING",
            "SUCCEEDING",
            "COMPLETED",
            error=EXIT_1,
            at=("FAILING",),
        ),
        "success",
        ON_FAILURE,
    ),
    "on-failure-retries-exhausted": Sequence(
        _s(
            "SUBMITTED",
            "RUNNING",
            "FAILING",
            "PENDING_RERUN",
            "SUBMITTED",
            "RUNNING",
            "FAILING",
            "FAILED",
            error=EXIT_1,
            at=("FAILING", "FAILED"),
        ),
        "failed",
        ON_FAILURE,
    ),
    "submission-retried-completes": Sequence(
        _s(
            "SUBMISSION_FAILED",
            "SUBMITTED",
            "RUNNING",
            "SUCCEEDING",
            "COMPLETED",
            error=REFUSED,
            at=("SUBMISSION_FAILED",),
        ),
        "success",
        ON_FAILURE,
    ),
    "submission-failed-then-pending-rerun": Sequence(
        _s(
            "SUBMISSION_FAILED",
            "PENDING_RERUN",
            "SUBMITTED",
            "RUNNING",
            "SUCCEEDING",
            "COMPLETED",
            error=REFUSED,
            at=("SUBMISSION_FAILED",),
        ),
        "success",
        ON_FAILURE,
        operator=False,
    ),
    "driver-pod-missing": Sequence(
        _s(
            "SUBMITTED",
            "FAILING",
            "FAILED",
            error="driver pod not found",
            at=("FAILING", "FAILED"),
        ),
        "failed",
        NEVER,
    ),
    "spec-changed-reruns": Sequence(
        _s(
            "SUBMITTED",
            "RUNNING",
            "INVALIDATING",
            "PENDING_RERUN",
            "SUBMITTED",
            "RUNNING",
            "SUCCEEDING",
            "COMPLETED",
        ),
        "success",
        NEVER,
    ),
    "unknown-recovers": Sequence(
        _s("SUBMITTED", "RUNNING", "UNKNOWN", "RUNNING", "SUCCEEDING", "COMPLETED"),
        "success",
        NEVER,
    ),
    "unknown-stays": Sequence(_s("SUBMITTED", "RUNNING", "UNKNOWN"), "stalled", NEVER),
    "suspended-stays": Sequence(
        _s("SUBMITTED", "RUNNING", "SUSPENDING", "SUSPENDED"), "stalled", NEVER
    ),
    "suspended-then-resumed": Sequence(
        _s(
            "SUBMITTED",
            "RUNNING",
            "SUSPENDING",
            "SUSPENDED",
            "RESUMING",
            "SUBMITTED",
            "RUNNING",
            "SUCCEEDING",
            "COMPLETED",
        ),
        "success",
        NEVER,
    ),
}
