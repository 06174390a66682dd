"""The spark-operator's SparkApplication state machine, as one table.

The reference is the operator's v2.5 source, `internal/controller/sparkapplication/
controller.go` (one `reconcile<State>SparkApplication` per state) and `pkg/util/
sparkapplication.go` (`ShouldRetry`, `TimeUntilNextRetryDue`, `DriverStateToApplicationState`,
`IsExpired`). `reconcile()` is one pass of the operator's reconciler over one application:
it takes what the controller observed (the driver, the executors) and returns the new
`.status` and the one side effect the controller must perform. It does no I/O, so the
sequences the operator writes can be replayed and checked (tests/unit/test_standin_states.py).

`TRANSITIONS` is the table: every state the operator moves a state to. `reconcile()`
refuses to make a move the table does not list.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NEW = ""
SUBMITTED = "SUBMITTED"
RUNNING = "RUNNING"
SUCCEEDING = "SUCCEEDING"
COMPLETED = "COMPLETED"
FAILING = "FAILING"
FAILED = "FAILED"
SUBMISSION_FAILED = "SUBMISSION_FAILED"
PENDING_RERUN = "PENDING_RERUN"
INVALIDATING = "INVALIDATING"
UNKNOWN = "UNKNOWN"
SUSPENDING = "SUSPENDING"
SUSPENDED = "SUSPENDED"
RESUMING = "RESUMING"

#: `util.IsTerminated`: the states the operator never leaves (but for TTL deletion).
TERMINAL = frozenset({COMPLETED, FAILED})

#: state -> the states one reconcile pass may move it to (controller.go). Staying is
#: always allowed. Besides these: any state but the terminal ones -> SUSPENDING when
#: `spec.suspend` is set (`transitionToSuspending`), and any state -> INVALIDATING when
#: the spec changes (the operator's event filter, `EventFilter.Update`).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    # submitSparkApplication: SUBMITTED when spark-submit succeeded, else SUBMISSION_FAILED.
    NEW: frozenset({SUBMITTED, SUBMISSION_FAILED}),
    # updateDriverState: the driver pod's state (DRIVER_TO_APPLICATION), or FAILING when
    # the driver pod is missing (after the creation grace period while SUBMITTED).
    SUBMITTED: frozenset({RUNNING, SUCCEEDING, FAILING, UNKNOWN}),
    RUNNING: frozenset({SUBMITTED, SUCCEEDING, FAILING, UNKNOWN}),
    UNKNOWN: frozenset({SUBMITTED, RUNNING, SUCCEEDING, FAILING}),
    # ShouldRetry (restartPolicy Always) -> PENDING_RERUN, else COMPLETED.
    SUCCEEDING: frozenset({COMPLETED, PENDING_RERUN}),
    # ShouldRetry (Always; OnFailure with executionAttempts <= onFailureRetries), once
    # the retry interval has passed -> PENDING_RERUN, else FAILED.
    FAILING: frozenset({FAILED, PENDING_RERUN}),
    # ShouldRetry (Always; OnFailure with submissionAttempts <= onSubmissionFailureRetries):
    # submitted again directly (v2.5 does not pass through PENDING_RERUN here), else FAILED.
    SUBMISSION_FAILED: frozenset({SUBMITTED, FAILED}),
    # Once the driver pod is gone: submitted again.
    PENDING_RERUN: frozenset({SUBMITTED, SUBMISSION_FAILED}),
    INVALIDATING: frozenset({PENDING_RERUN}),
    SUSPENDING: frozenset({SUSPENDED}),
    SUSPENDED: frozenset({RESUMING}),
    RESUMING: frozenset({SUBMITTED, SUBMISSION_FAILED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
}

#: The driver's state (util.GetDriverState) -> the application's (DriverStateToApplicationState).
DRIVER_TO_APPLICATION: Mapping[str, str] = {
    "PENDING": SUBMITTED,
    "RUNNING": RUNNING,
    "COMPLETED": SUCCEEDING,
    "FAILED": FAILING,
    "UNKNOWN": UNKNOWN,
}

#: The operator's `--driver-pod-creation-grace-period` default.
DRIVER_POD_CREATION_GRACE = dt.timedelta(seconds=10)


class Action(enum.Enum):
    """The side effect a reconcile pass asks of the controller."""

    NONE = "none"
    #: run spark-submit for the submission `reconcile` just began (status.submissionID);
    #: report its result with `submitted()`.
    SUBMIT = "submit"
    #: delete the driver (deleteSparkResources) before the state written may hold.
    DELETE_DRIVER = "delete-driver"
    #: delete the SparkApplication itself (timeToLiveSeconds passed).
    DELETE_APPLICATION = "delete-application"


@dataclass(frozen=True)
class Driver:
    """The driver as the controller saw it: `util.GetDriverState` of the driver pod."""

    state: str  # PENDING, RUNNING, COMPLETED, FAILED or UNKNOWN
    #: Spark's application id (the pod's spark-app-selector label), if known.
    application_id: str | None = None
    #: for FAILED: the operator's message ("driver container failed with ExitCode: ...").
    error: str = ""


@dataclass(frozen=True)
class Observed:
    """What the controller read before a reconcile pass."""

    #: None: the driver pod (in local mode: the driver process) was not found.
    driver: Driver | None = None
    #: executor pod name -> PENDING, RUNNING, COMPLETED, FAILED or UNKNOWN.
    executors: Mapping[str, str] = field(default_factory=dict)
    #: Spark's application id as the executors carry it (preferred, SPARK-25922).
    executor_application_id: str | None = None


def format_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def state_of(status: Mapping[str, Any]) -> str:
    return str((status.get("applicationState") or {}).get("state") or NEW)


def driver_pod_name(app: Mapping[str, Any]) -> str:
    """util.GetDriverPodName: spec.driver.podName, else the sparkConf's, else `<name>-driver`."""
    spec = app.get("spec") or {}
    name = (spec.get("driver") or {}).get("podName")
    if name:
        return str(name)
    conf = spec.get("sparkConf") or {}
    return str(conf.get("spark.kubernetes.driver.pod.name") or f"{app['metadata']['name']}-driver")


def should_retry(app: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """util.ShouldRetry."""
    policy = (app.get("spec") or {}).get("restartPolicy") or {}
    kind = policy.get("type") or "Never"
    state = state_of(status)
    if state == SUCCEEDING:
        return bool(kind == "Always")
    if state == FAILING:
        if kind == "Always":
            return True
        retries = policy.get("onFailureRetries")
        return (
            kind == "OnFailure"
            and retries is not None
            and int(status.get("executionAttempts") or 0) <= int(retries)
        )
    if state == SUBMISSION_FAILED:
        if kind == "Always":
            return True
        retries = policy.get("onSubmissionFailureRetries")
        return (
            kind == "OnFailure"
            and retries is not None
            and int(status.get("submissionAttempts") or 0) <= int(retries)
        )
    return False


class RetryIntervalMissing(ValueError):
    """TimeUntilNextRetryDue's error: the operator keeps the application where it is and
    logs this on every pass (a policy that retries needs its interval)."""


def time_until_next_retry(
    app: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime
) -> dt.timedelta:
    """util.TimeUntilNextRetryDue: a linear backoff, interval x attempts since the last."""
    policy = (app.get("spec") or {}).get("restartPolicy") or {}
    state = state_of(status)
    interval = (
        policy.get("onSubmissionFailureRetryInterval")
        if state == SUBMISSION_FAILED
        else policy.get("onFailureRetryInterval")
        if state == FAILING
        else None
    )
    attempts = int(status.get("submissionAttempts") or 0)
    last = parse_time(status.get("lastSubmissionAttemptTime"))
    if interval is None or last is None or attempts <= 0:
        raise RetryIntervalMissing(
            f"invalid retry interval ({interval}), last attempt time ({last}) "
            f"or attemptsDone ({attempts})"
        )
    return dt.timedelta(seconds=int(interval) * attempts) - (now - last)


def is_expired(app: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime) -> bool:
    """util.IsExpired: terminated longer ago than spec.timeToLiveSeconds."""
    ttl = (app.get("spec") or {}).get("timeToLiveSeconds")
    ended = parse_time(status.get("terminationTime"))
    return ttl is not None and ended is not None and now - ended > dt.timedelta(seconds=int(ttl))


def _reset(status: dict[str, Any]) -> None:
    """resetSparkApplicationStatus, keyed by the state being left."""
    state = state_of(status)
    app_state = status.setdefault("applicationState", {})
    if state in (SUCCEEDING, FAILING, INVALIDATING, SUSPENDED):
        for key in ("sparkApplicationId", "driverInfo", "executorState"):
            status.pop(key, None)
        app_state.pop("errorMessage", None)
    if state in (SUCCEEDING, FAILING, INVALIDATING):
        status.pop("terminationTime", None)
    if state == INVALIDATING:
        for key in ("submissionAttempts", "executionAttempts", "lastSubmissionAttemptTime"):
            status.pop(key, None)


def _set_state(status: dict[str, Any], state: str, error: str | None = None) -> None:
    app_state = status.setdefault("applicationState", {})
    app_state["state"] = state
    if error is not None:
        app_state["errorMessage"] = error


def _begin_submission(app: Mapping[str, Any], status: dict[str, Any], now: dt.datetime) -> Action:
    """submitSparkApplication's first half: a fresh submission id, the driver's name."""
    status["submissionID"] = str(uuid.uuid4())
    status.setdefault("driverInfo", {})["podName"] = driver_pod_name(app)
    status["lastSubmissionAttemptTime"] = format_time(now)
    status["submissionAttempts"] = int(status.get("submissionAttempts") or 0) + 1
    return Action.SUBMIT


def submitted(status: Mapping[str, Any], error: str | None) -> dict[str, Any]:
    """submitSparkApplication's second half: spark-submit's result."""
    result = copy.deepcopy(dict(status))
    if error is None:
        result["applicationState"] = {"state": SUBMITTED}
        result["executionAttempts"] = int(result.get("executionAttempts") or 0) + 1
    else:
        result["applicationState"] = {"state": SUBMISSION_FAILED, "errorMessage": error}
    return result


@dataclass
class _Pass:
    app: Mapping[str, Any]
    status: dict[str, Any]
    seen: Observed
    now: dt.datetime
    grace: dt.timedelta


def _update_driver_state(p: _Pass) -> None:
    """updateDriverState + updateExecutorState."""
    status, driver = p.status, p.seen.driver
    if driver is None:
        last = parse_time(status.get("lastSubmissionAttemptTime"))
        if state_of(status) != SUBMITTED or last is None or p.now - last > p.grace:
            _set_state(status, FAILING, "driver pod not found")
            status["terminationTime"] = format_time(p.now)
    else:
        if driver.application_id:
            status["sparkApplicationId"] = driver.application_id
        if driver.state in ("COMPLETED", "FAILED"):
            status.setdefault("terminationTime", format_time(p.now))
            if driver.state == "FAILED":
                _set_state(
                    status, state_of(status), driver.error or "driver container status missing"
                )
        _set_state(status, DRIVER_TO_APPLICATION[driver.state])
    _update_executor_state(p)


def _update_executor_state(p: _Pass) -> None:
    status = p.status
    states: dict[str, str] = dict(status.get("executorState") or {})
    states.update(p.seen.executors)
    if p.seen.executor_application_id:
        status["sparkApplicationId"] = p.seen.executor_application_id
    for name, old in list(states.items()):
        if name not in p.seen.executors and old not in ("COMPLETED", "FAILED"):
            if state_of(status) != RUNNING:
                states[name] = "COMPLETED" if state_of(status) == COMPLETED else "FAILED"
            else:
                states[name] = "UNKNOWN"
    if states or "executorState" in status:
        status["executorState"] = states


def _new(p: _Pass) -> Action:
    return _begin_submission(p.app, p.status, p.now)


def _following(p: _Pass) -> Action:  # SUBMITTED, RUNNING, UNKNOWN
    _update_driver_state(p)
    return Action.NONE


def _submission_failed(p: _Pass) -> Action:
    if should_retry(p.app, p.status):
        if time_until_next_retry(p.app, p.status, p.now) <= dt.timedelta(0):
            if p.seen.driver is None:  # validateSparkResourceDeletion
                return _begin_submission(p.app, p.status, p.now)
            return Action.DELETE_DRIVER
        return Action.NONE
    _set_state(p.status, FAILED)
    p.status["terminationTime"] = format_time(p.now)
    return Action.NONE


def _pending_rerun(p: _Pass) -> Action:
    if p.seen.driver is None:
        return _begin_submission(p.app, p.status, p.now)
    return Action.NONE


def _invalidating(p: _Pass) -> Action:
    _reset(p.status)
    _set_state(p.status, PENDING_RERUN)
    return Action.DELETE_DRIVER


def _succeeding(p: _Pass) -> Action:
    if should_retry(p.app, p.status):
        _reset(p.status)
        _set_state(p.status, PENDING_RERUN)
        return Action.DELETE_DRIVER
    _set_state(p.status, COMPLETED)
    return Action.NONE


def _failing(p: _Pass) -> Action:
    if should_retry(p.app, p.status):
        if time_until_next_retry(p.app, p.status, p.now) <= dt.timedelta(0):
            _reset(p.status)
            _set_state(p.status, PENDING_RERUN)
            return Action.DELETE_DRIVER
        return Action.NONE
    _set_state(p.status, FAILED)
    return Action.NONE


def _terminated(p: _Pass) -> Action:
    if is_expired(p.app, p.status, p.now):
        return Action.DELETE_APPLICATION
    _update_executor_state(p)
    return Action.NONE


def _suspending(p: _Pass) -> Action:
    p.status["applicationState"] = {"state": SUSPENDED}
    _reset(p.status)
    return Action.DELETE_DRIVER


def _suspended(p: _Pass) -> Action:
    if p.seen.driver is None:
        _reset(p.status)
        if not (p.app.get("spec") or {}).get("suspend"):
            p.status["applicationState"] = {"state": RESUMING}
    return Action.NONE


def _resuming(p: _Pass) -> Action:
    return _begin_submission(p.app, p.status, p.now)


#: The reconciler's switch (controller.go `Reconcile`): state -> one pass over it.
HANDLERS: Mapping[str, Callable[[_Pass], Action]] = {
    NEW: _new,
    SUBMITTED: _following,
    RUNNING: _following,
    UNKNOWN: _following,
    SUBMISSION_FAILED: _submission_failed,
    PENDING_RERUN: _pending_rerun,
    INVALIDATING: _invalidating,
    SUCCEEDING: _succeeding,
    FAILING: _failing,
    COMPLETED: _terminated,
    FAILED: _terminated,
    SUSPENDING: _suspending,
    SUSPENDED: _suspended,
    RESUMING: _resuming,
}


class IllegalTransition(AssertionError):
    pass


def reconcile(
    app: Mapping[str, Any],
    seen: Observed,
    now: dt.datetime | None = None,
    grace: dt.timedelta = DRIVER_POD_CREATION_GRACE,
) -> tuple[dict[str, Any], Action]:
    """One reconcile pass: the application's new `.status` and what to do.

    With Action.SUBMIT the controller runs spark-submit for the submission begun in the
    returned status (its `submissionID`) and writes `submitted(status, error)`. A status
    is only written when it differs from the current one.
    """
    now = now or dt.datetime.now(dt.UTC)
    status: dict[str, Any] = copy.deepcopy(dict(app.get("status") or {}))
    old = state_of(status)
    if (app.get("spec") or {}).get("suspend") and old not in TERMINAL | {SUSPENDED, SUSPENDING}:
        _set_state(status, SUSPENDING)
        return status, Action.NONE
    action = HANDLERS[old](_Pass(app, status, seen, now, grace))
    new = state_of(status)
    if action is Action.SUBMIT:
        new_states = TRANSITIONS[old] & {SUBMITTED, SUBMISSION_FAILED}
        if not new_states:
            raise IllegalTransition(f"{old or 'NEW'} cannot submit")
    elif new != old and new not in TRANSITIONS[old]:
        raise IllegalTransition(f"{old or 'NEW'} -> {new or 'NEW'} is not the operator's")
    return status, action


def invalidated(app: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's event filter on a spec change (other than suspend and
    timeToLiveSeconds): the status forced to INVALIDATING."""
    status = copy.deepcopy(dict(app.get("status") or {}))
    _set_state(status, INVALIDATING)
    return status


def spec_changed(old_spec: Mapping[str, Any], new_spec: Mapping[str, Any]) -> bool:
    """Whether a spec change invalidates the current run (EventFilter.Update)."""
    ignored = ("suspend", "timeToLiveSeconds")
    old = {k: v for k, v in old_spec.items() if k not in ignored}
    return old != {k: v for k, v in new_spec.items() if k not in ignored}
