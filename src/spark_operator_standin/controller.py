"""The reconcile loop: list SparkApplications, submit new ones, report their state.

Local mode: spark-submit runs the job in this process's machine (client mode) and its exit
code is the outcome. k8s mode: spark-submit creates the driver pod, and the state comes
from the pods as the operator reads it (driver_pod): SUBMITTED until the driver runs,
RUNNING, then COMPLETED or FAILED from the driver's phase, with executorState and Spark's
own application id; deleting the SparkApplication deletes its driver pod (the operator's
owner reference does that), whose executors Spark owns and Kubernetes then removes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from spark_operator_standin import driver_pod
from spark_operator_standin.submit import SubmitSettings, command

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
TERMINAL = frozenset({"COMPLETED", "FAILED", "SUBMISSION_FAILED"})
_ERROR_LINE = re.compile(r"(Error|Exception|Traceback|FAILED|Caused by)", re.IGNORECASE)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_message(log_file: Path, exit_code: int, limit: int = 1500) -> str:
    """The lines of a failed run that say why: error lines near the end, else the tail."""
    lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
    errors = [line for line in lines[-200:] if _ERROR_LINE.search(line)]
    chosen = errors[-6:] or lines[-6:]
    text = f"spark-submit exited with code {exit_code}: " + " | ".join(s.strip() for s in chosen)
    return text[:limit]


def driver_pod_name(app: dict[str, Any]) -> str:
    """The driver pod's name: the spec's, else `<name>-driver` as the operator sets it."""
    conf = app["spec"].get("sparkConf") or {}
    return str(conf.get("spark.kubernetes.driver.pod.name") or f"{app['metadata']['name']}-driver")


@dataclass
class Submission:
    #: None for an application adopted from an earlier incarnation (k8s mode).
    process: subprocess.Popen[bytes] | None
    thread: threading.Thread
    #: Set when the SparkApplication was deleted: stop following it.
    cancelled: threading.Event = field(default_factory=threading.Event)


class Controller:
    def __init__(
        self,
        api: CustomObjectsApi,
        settings: SubmitSettings,
        log_dir: Path,
        namespace: str | None = None,
        max_concurrent: int = 1,
        pods: CoreV1Api | None = None,
        pod_poll_interval: float = 2.0,
    ) -> None:
        """`pods`: read driver and executor pods for the state (k8s mode); None: the
        spark-submit exit code is the outcome (local mode)."""
        self.api = api
        self.pods = pods
        self.pod_poll_interval = pod_poll_interval
        self.settings = settings
        self.log_dir = log_dir
        self.namespace = namespace
        self.max_concurrent = max_concurrent
        self.active: dict[str, Submission] = {}  # uid -> submission
        self._lock = threading.Lock()

    # -- API ------------------------------------------------------------------------------
    def _list(self) -> list[dict[str, Any]]:
        if self.namespace:
            result = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        else:
            result = self.api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        items: list[dict[str, Any]] = result.get("items", [])
        return sorted(items, key=lambda a: a["metadata"].get("creationTimestamp", ""))

    def _patch_status(self, app: dict[str, Any], status: dict[str, Any]) -> None:
        meta = app["metadata"]
        try:
            self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], {"status": status}
            )
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to report to
                raise

    # -- reconcile ------------------------------------------------------------------------
    def reconcile_once(self) -> None:
        apps = self._list()
        present = {a["metadata"]["uid"] for a in apps}
        with self._lock:
            for uid in set(self.active) - present:  # deleted while running: stop it
                log.info("SparkApplication %s was deleted; stopping its spark-submit", uid)
                submission = self.active[uid]
                submission.cancelled.set()
                if submission.process is not None:
                    submission.process.terminate()
        for app in apps:
            uid = app["metadata"]["uid"]
            state = (app.get("status") or {}).get("applicationState", {}).get("state", "")
            with self._lock:
                busy = uid in self.active
                capacity = len(self.active) < self.max_concurrent
            if state in TERMINAL or busy:
                continue
            if state in ("SUBMITTED", "RUNNING") and self.pods is not None:
                # Submitted by an earlier incarnation: its driver pod is the state; follow it.
                adopted = {
                    **(app.get("status") or {}),
                    "driverInfo": {"podName": driver_pod_name(app)},
                }
                self._follow(app, adopted, None, Path(os.devnull))
                continue
            if state in ("SUBMITTED", "RUNNING"):
                # Submitted by an earlier incarnation of this stand-in: its process is gone.
                self._patch_status(
                    app,
                    {
                        "applicationState": {
                            "state": "FAILED",
                            "errorMessage": "the spark-operator stand-in restarted while the "
                            "application ran; its driver process is gone",
                        },
                        "terminationTime": _now(),
                    },
                )
                continue
            if capacity:
                self._submit(app)

    def _submit(self, app: dict[str, Any]) -> None:
        meta = app["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
        app_id = f"spark-{uid.replace('-', '')[:16]}"
        base = {
            "sparkApplicationId": app_id,
            "submissionID": uid,
            "submissionAttempts": 1,
            "lastSubmissionAttemptTime": _now(),
            "driverInfo": {"podName": driver_pod_name(app)},
            "executorState": {},
        }
        log_file = self.log_dir / namespace / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            argv = command(app, self.settings)
        except (KeyError, ValueError) as error:
            self._patch_status(
                app,
                {
                    **base,
                    "applicationState": {
                        "state": "SUBMISSION_FAILED",
                        "errorMessage": f"invalid application: {error}",
                    },
                    "terminationTime": _now(),
                },
            )
            return
        self._patch_status(app, {**base, "applicationState": {"state": "SUBMITTED"}})
        log.info("submitting %s/%s: %s", namespace, name, " ".join(argv))
        try:
            with log_file.open("wb") as out:
                process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, **self.settings.env},
                    start_new_session=True,
                )
        except OSError as error:
            self._patch_status(
                app,
                {
                    **base,
                    "applicationState": {
                        "state": "SUBMISSION_FAILED",
                        "errorMessage": f"spark-submit: {error}",
                    },
                    "terminationTime": _now(),
                },
            )
            return
        if self.pods is None:
            self._patch_status(
                app, {**base, "applicationState": {"state": "RUNNING"}, "executionAttempts": 1}
            )
        self._follow(app, base, process, log_file)

    def _follow(
        self,
        app: dict[str, Any],
        base: dict[str, Any],
        process: subprocess.Popen[bytes] | None,
        log_file: Path,
    ) -> None:
        """Wait for the outcome in a thread: the exit code locally, the pods in k8s mode."""
        submission = Submission(process, threading.Thread())
        submission.thread = threading.Thread(
            target=self._wait if self.pods is None else self._follow_driver,
            args=(app, base, submission, log_file),
            name=f"wait-{app['metadata']['name']}",
            daemon=True,
        )
        with self._lock:
            self.active[app["metadata"]["uid"]] = submission
        submission.thread.start()

    def _wait(
        self,
        app: dict[str, Any],
        base: dict[str, Any],
        submission: Submission,
        log_file: Path,
    ) -> None:
        assert submission.process is not None
        code = submission.process.wait()
        try:
            if code == 0:
                self._patch_status(
                    app,
                    {**base, "applicationState": {"state": "COMPLETED"}, "terminationTime": _now()},
                )
            else:
                self._patch_status(
                    app,
                    {
                        **base,
                        "applicationState": {
                            "state": "FAILED",
                            "errorMessage": error_message(log_file, code),
                        },
                        "terminationTime": _now(),
                    },
                )
            log.info(
                "%s/%s finished with exit code %d",
                app["metadata"]["namespace"],
                app["metadata"]["name"],
                code,
            )
        finally:
            with self._lock:
                self.active.pop(app["metadata"]["uid"], None)

    def _read_pods(
        self, namespace: str, driver_name: str, app_id: str | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The driver pod (None if absent) and the executor pods of `app_id`, as JSON."""
        assert self.pods is not None
        serialize = self.pods.api_client.sanitize_for_serialization
        try:
            driver: dict[str, Any] | None = serialize(
                self.pods.read_namespaced_pod(driver_name, namespace)
            )
        except ApiException as error:
            if error.status != 404:
                raise
            driver = None
        if driver is not None:
            app_id = driver_pod.application_id(driver) or app_id
        executors: list[dict[str, Any]] = []
        if app_id:
            listed = self.pods.list_namespaced_pod(
                namespace, label_selector=f"spark-role=executor,{driver_pod.APP_ID_LABEL}={app_id}"
            )
            executors = serialize(listed).get("items", [])
        return driver, executors

    def _follow_driver(
        self,
        app: dict[str, Any],
        base: dict[str, Any],
        submission: Submission,
        log_file: Path,
    ) -> None:
        """k8s mode: report the state of the driver pod spark-submit created, until it ends."""
        meta = app["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        driver_name = base["driverInfo"]["podName"]
        status: dict[str, Any] = {**base, "applicationState": {"state": "SUBMITTED"}}
        executors: dict[str, str] = {}
        reported: dict[str, Any] = {}

        def finish(state: str, error: str | None = None) -> None:
            status["applicationState"] = {
                "state": state,
                **({"errorMessage": error} if error else {}),
            }
            status["terminationTime"] = _now()
            self._patch_status(app, status)
            log.info("%s/%s: %s %s", namespace, name, state, error or "")

        try:
            while not submission.cancelled.is_set():
                code = None if submission.process is None else submission.process.poll()
                try:
                    driver, executor_pods = self._read_pods(
                        namespace, driver_name, status.get("sparkApplicationId")
                    )
                except ApiException as error:  # the API briefly unavailable: ask again
                    log.warning("reading the pods of %s/%s: %s", namespace, name, error.reason)
                    time.sleep(self.pod_poll_interval)
                    continue
                # Executors are deleted as they finish: keep the last state seen of each.
                executors.update(driver_pod.executor_states(executor_pods))
                status["executorState"] = dict(executors)
                if driver is not None:
                    app_id = driver_pod.application_id(driver)
                    if app_id:
                        status["sparkApplicationId"] = app_id
                    state = driver_pod.driver_state(driver)
                    if state in ("RUNNING", "COMPLETED", "FAILED"):
                        status["executionAttempts"] = 1
                    if state == "COMPLETED":
                        return finish(state)
                    if state == "FAILED":
                        return finish(state, driver_pod.driver_error(driver))
                    if state != "UNKNOWN":
                        status["applicationState"] = {"state": state}
                elif submission.process is None:  # adopted, and its driver pod is gone
                    return finish("FAILED", f"the driver pod {driver_name} is gone")
                elif code:  # spark-submit failed before the driver pod existed
                    return finish("SUBMISSION_FAILED", error_message(log_file, code))
                elif code == 0:
                    return finish("FAILED", f"spark-submit exited 0, driver pod {driver_name} gone")
                if status != reported:
                    self._patch_status(app, status)
                    # Every value replaced above is a new object: a shallow copy is a snapshot.
                    reported = dict(status)
                time.sleep(self.pod_poll_interval)
            # The SparkApplication was deleted: so goes its driver (and, through Spark's
            # owner references, its executors), as the operator's owner reference does.
            self._delete_driver(namespace, driver_name)
        finally:
            process = submission.process
            if process is not None:
                try:  # it only watches the driver; once that ended it exits by itself
                    process.wait(timeout=0 if submission.cancelled.is_set() else 30)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    process.wait()
            with self._lock:
                self.active.pop(meta["uid"], None)

    def _delete_driver(self, namespace: str, driver_name: str) -> None:
        assert self.pods is not None
        try:
            self.pods.delete_namespaced_pod(driver_name, namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("deleting driver pod %s/%s: %s", namespace, driver_name, error)

    def run_forever(self, poll_interval: float = 1.0) -> None:
        while True:
            try:
                self.reconcile_once()
            except Exception:  # keep serving; the API may be briefly unavailable
                log.exception("reconcile failed; retrying")
            time.sleep(poll_interval)
