"""The stand-in's controller in local mode: a real spark-submit process (a small script
standing in for spark-submit, exiting as the job would), the FAKE custom-objects API of
standin_fake_api.py (to make the status writes fail on purpose)."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from standin_fake_api import FakeCustomObjects

from spark_operator_standin.controller import Controller
from spark_operator_standin.submit import SubmitSettings

pytestmark = pytest.mark.unit

NS = "jobs"

#: exits with the code given as the application's last argument, after 0.3 s; "flaky:F"
#: fails once (creating the file F), then succeeds
SPARK_SUBMIT = textwrap.dedent(
    f"""\
    #!{sys.executable}
    import os, sys, time
    if os.environ.get("RUNS_FILE"):
        print("started", file=open(os.environ["RUNS_FILE"], "a"))
    time.sleep(0.3)
    arg = sys.argv[-1]
    if arg.startswith("flaky:"):
        if not os.path.exists(arg[6:]):
            open(arg[6:], "w").close()
            print("Traceback: RuntimeError: first try fails")
            sys.exit(1)
        sys.exit(0)
    print("job output")
    sys.exit(int(arg))
    """
)


def app(name: str, code: int | str, restart: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "3.5.9",
            "image": "orders-etl/spark:3.5.9",
            "mainApplicationFile": "local:///opt/jobs/job.py",
            "arguments": [str(code)],
            "restartPolicy": restart or {"type": "Never"},
            "driver": {"cores": 1, "memory": "512m"},
            "executor": {"cores": 1, "instances": 1, "memory": "512m"},
        },
    }


def controller(tmp_path: Path, api: FakeCustomObjects) -> Controller:
    script = tmp_path / "spark-submit"
    script.write_text(SPARK_SUBMIT)
    script.chmod(0o755)
    return Controller(
        api,  # type: ignore[arg-type]
        SubmitSettings(spark_submit=str(script), env={"RUNS_FILE": str(tmp_path / "runs")}),
        tmp_path / "logs",
        namespace=NS,
        max_concurrent=2,
    )


def run_until(
    c: Controller, done: Callable[[], bool], timeout: float = 30, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the controller never got there"
        c.reconcile_once()
        time.sleep(interval)


def test_a_failed_status_write_after_success_does_not_fail_the_application(
    tmp_path: Path,
) -> None:
    """Issue 22: spark-submit succeeded, the API refused the status write that says so:
    the application must still end COMPLETED, never FAILED "stand-in restarted"."""
    api = FakeCustomObjects()
    c = controller(tmp_path, api)
    api.create(NS, app("ok", 0))
    api.refuse = lambda status: (
        status.get("applicationState", {}).get("state")
        in (
            "SUCCEEDING",
            "COMPLETED",
        )
    )
    run_until(c, lambda: api.state(NS, "ok") in ("COMPLETED", "FAILED"))
    time.sleep(0.5)
    for _ in range(3):  # later passes must not change a finished application
        c.reconcile_once()
    assert api.refused, "the fake never refused a write: the test proves nothing"
    status = api.objects[(NS, "ok")]["status"]
    assert status["applicationState"]["state"] == "COMPLETED", status


def states_written(api: FakeCustomObjects) -> list[str]:
    seen: list[str] = []
    for status in api.written:
        state = status.get("applicationState", {}).get("state", "")
        if not seen or seen[-1] != state:
            seen.append(state)
    return seen


def test_on_failure_retries_a_failed_run_and_completes(tmp_path: Path) -> None:
    api = FakeCustomObjects()
    c = controller(tmp_path, api)
    policy = {"type": "OnFailure", "onFailureRetries": 1, "onFailureRetryInterval": 1}
    api.create(NS, app("flaky", f"flaky:{tmp_path / 'tried'}", policy))
    run_until(c, lambda: api.state(NS, "flaky") in ("COMPLETED", "FAILED"), interval=0.2)
    assert states_written(api) == [
        "SUBMITTED",
        "RUNNING",
        "FAILING",
        "PENDING_RERUN",
        "SUBMITTED",
        "RUNNING",
        "SUCCEEDING",
        "COMPLETED",
    ]
    status = api.objects[(NS, "flaky")]["status"]
    assert (status["submissionAttempts"], status["executionAttempts"]) == (2, 2)
    failing = next(s for s in api.written if s["applicationState"]["state"] == "FAILING")
    assert "first try fails" in failing["applicationState"]["errorMessage"]


def test_a_failed_run_with_restart_policy_never_fails(tmp_path: Path) -> None:
    api = FakeCustomObjects()
    c = controller(tmp_path, api)
    api.create(NS, app("bad", 3))
    run_until(c, lambda: api.state(NS, "bad") in ("COMPLETED", "FAILED"))
    assert states_written(api) == ["SUBMITTED", "RUNNING", "FAILING", "FAILED"]
    error = api.objects[(NS, "bad")]["status"]["applicationState"]["errorMessage"]
    assert error.startswith("spark-submit exited with code 3")


def test_a_restarted_standin_reports_the_lost_driver_as_the_operator_does(
    tmp_path: Path,
) -> None:
    """Local mode: the driver is this process's child; a new incarnation cannot follow it.
    The operator's word for that: FAILING "driver pod not found", then FAILED."""
    api = FakeCustomObjects()
    first = controller(tmp_path, api)
    api.create(NS, app("lost", 0))
    run_until(first, lambda: api.state(NS, "lost") == "RUNNING")
    for submission in first.active.values():
        submission.process.kill()
    restarted = controller(tmp_path, api)
    run_until(restarted, lambda: api.state(NS, "lost") == "FAILED")
    status = api.objects[(NS, "lost")]["status"]
    assert status["applicationState"]["errorMessage"] == "driver pod not found"


def test_a_failed_write_of_submitted_does_not_submit_twice(tmp_path: Path) -> None:
    api = FakeCustomObjects()
    c = controller(tmp_path, api)
    api.create(NS, app("once", 0))
    api.refuse = lambda status: status.get("applicationState", {}).get("state") == "SUBMITTED"
    c.reconcile_once()  # spark-submit started; writing SUBMITTED refused
    assert api.refused
    assert api.state(NS, "once") == ""
    run_until(c, lambda: api.state(NS, "once") == "COMPLETED")
    assert (tmp_path / "runs").read_text().splitlines() == ["started"]  # one spark-submit
    assert api.objects[(NS, "once")]["status"]["submissionAttempts"] == 1
