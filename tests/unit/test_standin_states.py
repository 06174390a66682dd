"""The stand-in's state machine (spark_operator_standin.states) produces, pass by pass,
the sequences the operator v2.5 writes (tests/sparkapp_sequences.py), with the status
fields the operator keeps: a fresh submissionID per attempt, the attempt counters,
terminationTime, errorMessage."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from spark_operator_standin import states
from sparkapp_sequences import EXIT_1, REFUSED, SEQUENCES

pytestmark = pytest.mark.unit

SPEC_CHANGE = "spec-change"
SUSPEND, RESUME = "suspend", "resume"
SUBMIT_FAILS = "submit-fails"

#: What the controller observes on each pass: a driver state (PENDING, RUNNING,
#: COMPLETED, FAILED, UNKNOWN), None (no driver pod), or an event between passes.
SCRIPTS: dict[str, list[Any]] = {
    "completes": [None, "PENDING", "RUNNING", "COMPLETED", "COMPLETED"],
    "fails": [None, "RUNNING", "FAILED", "FAILED"],
    "submission-fails-without-retries": [SUBMIT_FAILS, None],
    "on-failure-retry-completes": [
        None,
        "RUNNING",
        "FAILED",
        "FAILED",
        None,
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
    ],
    "on-failure-retries-exhausted": [
        None,
        "RUNNING",
        "FAILED",
        "FAILED",
        None,
        "RUNNING",
        "FAILED",
        "FAILED",
    ],
    "submission-retried-completes": [SUBMIT_FAILS, None, "RUNNING", "COMPLETED", "COMPLETED"],
    "driver-pod-missing": [None, None, None],
    "spec-changed-reruns": [
        None,
        "RUNNING",
        SPEC_CHANGE,
        "RUNNING",
        None,
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
    ],
    "unknown-recovers": [None, "RUNNING", "UNKNOWN", "RUNNING", "COMPLETED", "COMPLETED"],
    "unknown-stays": [None, "RUNNING", "UNKNOWN", "UNKNOWN"],
    "suspended-stays": [None, "RUNNING", SUSPEND, "RUNNING", None],
    "suspended-then-resumed": [
        None,
        "RUNNING",
        SUSPEND,
        "RUNNING",
        RESUME,
        None,
        None,
        None,
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
    ],
}


def application(restart_policy: dict[str, object]) -> dict[str, Any]:
    return {
        "metadata": {"name": "app", "namespace": "jobs", "uid": "u1"},
        "spec": {"type": "Python", "restartPolicy": restart_policy, "timeToLiveSeconds": 3600},
        "status": {},
    }


def replay(app: dict[str, Any], script: list[Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """Run the script through reconcile(); the states written, the submission ids."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    written: list[tuple[str, str]] = []
    submissions: list[str] = []
    for step in script:
        now += dt.timedelta(minutes=1)  # past the grace period and every retry interval
        if step == SPEC_CHANGE:
            app["status"] = states.invalidated(app)
        elif step in (SUSPEND, RESUME):
            app["spec"]["suspend"] = step == SUSPEND
        else:
            driver = None
            if step not in (None, SUBMIT_FAILS):
                driver = states.Driver(step, "spark-1", EXIT_1 if step == "FAILED" else "")
            status, action = states.reconcile(app, states.Observed(driver=driver), now)
            if action is states.Action.SUBMIT:
                submissions.append(status["submissionID"])
                status = states.submitted(status, REFUSED if step == SUBMIT_FAILS else None)
            app["status"] = status
        state = app["status"]["applicationState"]
        entry = (state["state"], state.get("errorMessage", ""))
        if not written or written[-1][0] != entry[0]:
            written.append(entry)
    return written, submissions


@pytest.mark.parametrize("name", [n for n, s in SEQUENCES.items() if s.operator])
def test_the_operators_sequence(name: str) -> None:
    sequence = SEQUENCES[name]
    app = application(sequence.restart_policy)
    written, submissions = replay(app, SCRIPTS[name])
    assert tuple(written) == sequence.states
    assert len(set(submissions)) == len(submissions), "a submissionID was reused"
    status = app["status"]
    assert status["submissionID"] == submissions[-1]
    if written[-1][0] in states.TERMINAL:
        assert status["terminationTime"]


@pytest.mark.parametrize("name", SEQUENCES)
def test_every_move_is_in_the_table(name: str) -> None:
    sequence = SEQUENCES[name]
    moves = list(zip(sequence.states, sequence.states[1:], strict=False))
    outside = [
        (a, b)
        for (a, _), (b, _) in moves
        if b not in states.TRANSITIONS[a] and b not in (states.INVALIDATING, states.SUSPENDING)
    ]
    assert (outside == []) == sequence.operator, outside


def test_attempt_counters_and_reset_on_retry() -> None:
    app = application(SEQUENCES["on-failure-retry-completes"].restart_policy)
    replay(app, SCRIPTS["on-failure-retry-completes"][:4])  # -> PENDING_RERUN
    status = app["status"]
    assert status["applicationState"] == {"state": "PENDING_RERUN"}
    assert (status["submissionAttempts"], status["executionAttempts"]) == (1, 1)
    assert "sparkApplicationId" not in status
    assert "terminationTime" not in status
    replay(app, SCRIPTS["on-failure-retry-completes"][4:])
    assert (app["status"]["submissionAttempts"], app["status"]["executionAttempts"]) == (2, 2)


def test_a_move_outside_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    app = application({"type": "Never"})
    app["status"] = {"applicationState": {"state": "SUBMITTED"}, "driverInfo": {"podName": "p"}}
    monkeypatch.setattr(states, "TRANSITIONS", {**states.TRANSITIONS, "SUBMITTED": frozenset()})
    with pytest.raises(states.IllegalTransition, match="SUBMITTED -> RUNNING"):
        states.reconcile(app, states.Observed(states.Driver("RUNNING")))


def test_a_driver_pod_not_yet_created_is_waited_for_within_the_grace_period() -> None:
    app = application({"type": "Never"})
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    app["status"] = {
        "applicationState": {"state": "SUBMITTED"},
        "lastSubmissionAttemptTime": states.format_time(now),
        "driverInfo": {"podName": "app-driver"},
    }
    within, _ = states.reconcile(app, states.Observed(), now + dt.timedelta(seconds=5))
    assert within["applicationState"]["state"] == "SUBMITTED"
    after, _ = states.reconcile(app, states.Observed(), now + dt.timedelta(seconds=11))
    assert after["applicationState"] == {"state": "FAILING", "errorMessage": "driver pod not found"}


def test_a_finished_application_is_deleted_after_its_ttl() -> None:
    app = application({"type": "Never"})
    ended = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    app["status"] = {
        "applicationState": {"state": "COMPLETED"},
        "terminationTime": states.format_time(ended),
    }
    _, action = states.reconcile(app, states.Observed(), ended + dt.timedelta(seconds=3599))
    assert action is states.Action.NONE
    _, action = states.reconcile(app, states.Observed(), ended + dt.timedelta(seconds=3601))
    assert action is states.Action.DELETE_APPLICATION


def test_executors_are_reported_as_the_operator_does() -> None:
    """The last state seen of each; one that vanished while the driver was not running:
    COMPLETED if the application completed, else FAILED."""
    app = application({"type": "Never"})
    app["status"] = {
        "applicationState": {"state": "RUNNING"},
        "driverInfo": {"podName": "app-driver"},
        "executorState": {"app-exec-1": "RUNNING", "app-exec-2": "RUNNING"},
    }
    seen = states.Observed(
        driver=states.Driver("COMPLETED", "spark-1"),
        executors={"app-exec-1": "FAILED"},  # SIGTERM after the job: exit code 143
        executor_application_id="spark-1",
    )
    status, _ = states.reconcile(app, seen)
    assert status["applicationState"]["state"] == "SUCCEEDING"
    assert status["executorState"] == {"app-exec-1": "FAILED", "app-exec-2": "FAILED"}
