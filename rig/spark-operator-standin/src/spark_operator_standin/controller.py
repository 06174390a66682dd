"""The reconcile loop: one pass of the operator's state machine (`states.py`) per application.

Level-triggered, as the operator's reconciler is: every pass lists the SparkApplications,
observes each one's driver and executors, lets `states.reconcile` decide the new status
and the one side effect, performs it, and writes the status when it changed. A status
write that fails changes nothing that is known: the next pass observes the same driver
and writes again (what a process or pod told us is kept until its outcome is written).

The driver, by mode:
- local: spark-submit runs the job on this machine (client mode); the process is the
  driver. Running: RUNNING; exit 0: COMPLETED; else FAILED with the log's error lines.
  A process this incarnation did not start is a driver "not found" (a restarted stand-in).
- k8s: spark-submit (`--master k8s://...`, not waiting for completion, as the operator
  runs it) creates the driver pod and exits; SUBMITTED or SUBMISSION_FAILED by its exit
  code. From then on the driver pod is the driver (`driver_pod`), the executor pods the
  executors, found by the labels the operator puts on them. A restarted stand-in simply
  goes on observing them. Deleting a SparkApplication deletes its driver pod (also through
  the owner reference the pod template carries, as with the operator).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from spark_operator_standin import driver_pod, states
from spark_operator_standin.submit import (
    LABEL_APP_NAME,
    LABEL_SUBMISSION_ID,
    SubmitSettings,
    command,
    write_pod_templates,
)

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
_ERROR_LINE = re.compile(r"(Error|Exception|Traceback|FAILED|Caused by)", re.IGNORECASE)
#: Terminated applications' executors are still read for this long (the operator reads
#: them on every pod event; Spark stops executors just after the driver ends).
_TERMINATED_OBSERVED = dt.timedelta(seconds=60)


def error_message(log_file: Path, exit_code: int, limit: int = 1500) -> str:
    """The lines of a failed run that say why: error lines near the end, else the tail."""
    lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
    errors = [line for line in lines[-200:] if _ERROR_LINE.search(line)]
    chosen = errors[-6:] or lines[-6:]
    text = f"spark-submit exited with code {exit_code}: " + " | ".join(s.strip() for s in chosen)
    return text[:limit]


@dataclass
class Submission:
    """A spark-submit process this incarnation started, kept until its outcome is written.

    local mode: the job itself (the driver); k8s mode: the submission of the driver pod.
    """

    process: subprocess.Popen[bytes]
    submission_id: str
    log_file: Path
    #: A status still to write: k8s mode, the one begun with this submission (written with
    #: spark-submit's result once it exits); local mode, SUBMITTED if its write failed.
    status: dict[str, Any] = field(default_factory=dict)


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
        driver_pod_creation_grace: dt.timedelta = states.DRIVER_POD_CREATION_GRACE,
    ) -> None:
        """`pods`: the driver and executor pods are the state (k8s mode); None: the
        spark-submit process is the driver (local mode). `pod_poll_interval` is kept for
        the command line's sake: every reconcile pass reads the pods."""
        self.api = api
        self.pods = pods
        self.pod_poll_interval = pod_poll_interval
        self.settings = settings
        self.log_dir = log_dir
        self.namespace = namespace
        self.max_concurrent = max_concurrent
        self.grace = driver_pod_creation_grace
        self.active: dict[str, Submission] = {}  # uid -> submission
        #: uid -> (generation, spec) last seen: a changed spec invalidates the run
        self._specs: dict[str, tuple[int, dict[str, Any]]] = {}
        #: uid -> (namespace, driver pod) of the applications seen: deleted with them
        self._drivers: dict[str, tuple[str, str]] = {}

    # -- API ------------------------------------------------------------------------------
    def _list(self) -> list[dict[str, Any]]:
        if self.namespace:
            result = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        else:
            result = self.api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        items: list[dict[str, Any]] = result.get("items", [])
        return sorted(items, key=lambda a: a["metadata"].get("creationTimestamp", ""))

    def _write_status(self, app: dict[str, Any], status: dict[str, Any]) -> bool:
        """Replace `.status` as the operator does (Status().Update, optimistic: a conflict
        or an API error leaves it to the next pass). True once written."""
        meta = app["metadata"]
        body = {**app, "status": status}
        try:
            written = self.api.replace_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body
            )
        except ApiException as error:
            if error.status != 404:  # 404: deleted meanwhile, nothing to report to
                log.warning(
                    "writing the status of %s/%s (%s): %s %s; next pass",
                    meta["namespace"],
                    meta["name"],
                    states.state_of(status) or "NEW",
                    error.status,
                    error.reason,
                )
            return False
        app["status"] = status
        if isinstance(written, dict) and "metadata" in written:
            meta["resourceVersion"] = written["metadata"].get("resourceVersion")
        return True

    # -- reconcile ------------------------------------------------------------------------
    def reconcile_once(self) -> None:
        apps = self._list()
        present = {a["metadata"]["uid"] for a in apps}
        for uid in set(self.active) - present:  # deleted while running: stop it
            log.info("SparkApplication %s was deleted; stopping its spark-submit", uid)
            self.active.pop(uid).process.terminate()
        for uid in set(self._drivers) - present:
            namespace, driver_name = self._drivers.pop(uid)
            if self.pods is not None:
                self._delete_driver(namespace, driver_name)
        for uid in set(self._specs) - present:
            del self._specs[uid]
        for app in apps:
            try:
                self._reconcile(app)
            except states.RetryIntervalMissing as error:
                meta = app["metadata"]
                log.error("%s/%s: %s", meta["namespace"], meta["name"], error)

    def _reconcile(self, app: dict[str, Any]) -> None:
        meta, spec = app["metadata"], app.get("spec") or {}
        uid = meta["uid"]
        generation = int(meta.get("generation") or 0)
        seen_spec = self._specs.get(uid)
        self._specs[uid] = (generation, spec)
        if (
            seen_spec is not None
            and seen_spec[0] != generation
            and states.spec_changed(seen_spec[1], spec)
        ):
            log.info("%s/%s: spec changed; invalidating", meta["namespace"], meta["name"])
            self._write_status(app, states.invalidated(app))

        submission = self.active.get(uid)
        if submission is not None and submission.status:
            if self.pods is None:  # local: the SUBMITTED status not written yet
                if not self._write_status(app, submission.status):
                    return
                submission.status = {}
            elif not self._submission_ended(app, submission):
                return  # k8s: a spark-submit in flight; its result first

        status = app.get("status") or {}
        state = states.state_of(status)
        if state not in states.TERMINAL:
            self._drivers[uid] = (
                meta["namespace"],
                (status.get("driverInfo") or {}).get("podName") or states.driver_pod_name(app),
            )
        seen = self._observe(app, status)
        new, action = states.reconcile(app, seen, grace=self.grace)
        if action is states.Action.SUBMIT:
            if len(self.active) >= self.max_concurrent:
                return  # next pass; the state stays what it is
            result = self._submit(app, new)
            if result is None:
                return  # k8s: written once spark-submit exits
            new = result
        elif action is states.Action.DELETE_DRIVER:
            self._stop_driver(app, status)
        elif action is states.Action.DELETE_APPLICATION:
            self._delete_application(app)
            return
        if new != status and self._write_status(app, new):
            new_state = states.state_of(new)
            if new_state != state:
                log.info(
                    "%s/%s: %s -> %s %s",
                    meta["namespace"],
                    meta["name"],
                    state or "NEW",
                    new_state,
                    (new.get("applicationState") or {}).get("errorMessage", ""),
                )
            if new_state in states.TERMINAL:
                self.active.pop(uid, None)  # the outcome is written: forget the process
                self._drivers.pop(uid, None)

    def _observe(self, app: dict[str, Any], status: dict[str, Any]) -> states.Observed:
        if self.pods is None:
            return self._observe_local(app, status)
        if states.state_of(status) in states.TERMINAL:
            ended = states.parse_time(status.get("terminationTime"))
            if ended is None or dt.datetime.now(dt.UTC) - ended > _TERMINATED_OBSERVED:
                return states.Observed()
        return self._observe_pods(app, status)

    def _observe_local(self, app: dict[str, Any], status: dict[str, Any]) -> states.Observed:
        submission = self.active.get(app["metadata"]["uid"])
        if submission is None or submission.submission_id != status.get("submissionID"):
            return states.Observed(driver=None)
        app_id = f"spark-{submission.submission_id.replace('-', '')[:16]}"
        code = submission.process.poll()
        if code is None:
            driver = states.Driver("RUNNING", app_id)
        elif code == 0:
            driver = states.Driver("COMPLETED", app_id)
        else:
            driver = states.Driver("FAILED", app_id, error_message(submission.log_file, code))
        return states.Observed(driver=driver)

    def _observe_pods(self, app: dict[str, Any], status: dict[str, Any]) -> states.Observed:
        assert self.pods is not None
        meta = app["metadata"]
        namespace = meta["namespace"]
        name = (status.get("driverInfo") or {}).get("podName") or states.driver_pod_name(app)
        serialize = self.pods.api_client.sanitize_for_serialization
        try:
            pod: dict[str, Any] | None = serialize(self.pods.read_namespaced_pod(name, namespace))
        except ApiException as error:
            if error.status != 404:
                raise
            pod = None
        driver = None
        if pod is not None:
            state = driver_pod.driver_state(pod)
            driver = states.Driver(
                state,
                driver_pod.application_id(pod),
                driver_pod.driver_error(pod) if state == "FAILED" else "",
            )
        selector = f"{LABEL_APP_NAME}={meta['name']},spark-role=executor"
        if status.get("submissionID"):
            selector += f",{LABEL_SUBMISSION_ID}={status['submissionID']}"
        listed = serialize(self.pods.list_namespaced_pod(namespace, label_selector=selector))
        executors = listed.get("items", [])
        app_ids = [driver_pod.application_id(p) for p in executors]
        return states.Observed(
            driver=driver,
            executors=driver_pod.executor_states(executors),
            executor_application_id=next((a for a in app_ids if a), None),
        )

    # -- side effects ---------------------------------------------------------------------
    def _submit(self, app: dict[str, Any], begun: dict[str, Any]) -> dict[str, Any] | None:
        """Start spark-submit for the submission `begun`; the status to write now, or None
        when it is written here (local) or once spark-submit exits (k8s)."""
        meta = app["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        submission_id = str(begun["submissionID"])
        log_file = self.log_dir / namespace / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            templates = (
                write_pod_templates(app, submission_id, self.settings.template_dir)
                if self.settings.mode == "k8s"
                else {}
            )
            argv = command(app, self.settings, submission_id, templates)
        except (KeyError, ValueError, OSError) as error:
            return states.submitted(begun, f"failed to build spark-submit arguments: {error}")
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
            return states.submitted(begun, f"failed to run spark-submit: {error}")
        if self.settings.mode == "local":
            result = states.submitted(begun, None)
            # kept until written: a failed write must not submit the job a second time
            self.active[uid] = Submission(process, submission_id, log_file, status=result)
            if self._write_status(app, result):
                self.active[uid].status = {}
            return None
        self.active[uid] = Submission(process, submission_id, log_file, status=begun)
        return None

    def _submission_ended(self, app: dict[str, Any], submission: Submission) -> bool:
        """k8s mode: write SUBMITTED or SUBMISSION_FAILED once spark-submit exited. True
        when the application may be reconciled further in this pass."""
        code = submission.process.poll()
        if code is None:
            return False
        error = None if code == 0 else error_message(submission.log_file, code)
        if error is not None and "AlreadyExists" in error:
            error = "driver pod already exist"  # runSparkSubmit's message
        result = states.submitted(submission.status, error)
        if not self._write_status(app, result):
            return False  # the result is kept: written next pass
        del self.active[app["metadata"]["uid"]]
        template_dir = self.settings.template_dir / submission.submission_id
        for path in template_dir.glob("*.yaml"):  # cleanUpPodTemplateFiles
            path.unlink()
        if template_dir.exists():
            template_dir.rmdir()
        return True

    def _stop_driver(self, app: dict[str, Any], status: dict[str, Any]) -> None:
        """deleteSparkResources: the driver pod, or in local mode the driver process."""
        uid = app["metadata"]["uid"]
        submission = self.active.pop(uid, None)
        if submission is not None and submission.process.poll() is None:
            submission.process.terminate()
        if self.pods is not None:
            name = (status.get("driverInfo") or {}).get("podName") or states.driver_pod_name(app)
            self._delete_driver(app["metadata"]["namespace"], name)

    def _delete_driver(self, namespace: str, driver_name: str) -> None:
        assert self.pods is not None
        try:
            self.pods.delete_namespaced_pod(driver_name, namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("deleting driver pod %s/%s: %s", namespace, driver_name, error)

    def _delete_application(self, app: dict[str, Any]) -> None:
        meta = app["metadata"]
        log.info("deleting expired SparkApplication %s/%s", meta["namespace"], meta["name"])
        try:
            self.api.delete_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"]
            )
        except ApiException as error:
            if error.status != 404:
                log.warning("deleting %s/%s: %s", meta["namespace"], meta["name"], error)

    def run_forever(self, poll_interval: float = 1.0) -> None:
        while True:
            try:
                self.reconcile_once()
            except Exception:  # keep serving; the API may be briefly unavailable
                log.exception("reconcile failed; retrying")
            time.sleep(poll_interval)
