"""The reconcile loop: list SparkApplications, submit new ones, report their state."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

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


@dataclass
class Submission:
    process: subprocess.Popen[bytes]
    thread: threading.Thread


class Controller:
    def __init__(
        self,
        api: CustomObjectsApi,
        settings: SubmitSettings,
        log_dir: Path,
        namespace: str | None = None,
        max_concurrent: int = 1,
    ) -> None:
        self.api = api
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
                self.active[uid].process.terminate()
        for app in apps:
            uid = app["metadata"]["uid"]
            state = (app.get("status") or {}).get("applicationState", {}).get("state", "")
            with self._lock:
                busy = uid in self.active
                capacity = len(self.active) < self.max_concurrent
            if state in TERMINAL or busy:
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
            "driverInfo": {"podName": f"{name}-driver"},
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
        self._patch_status(
            app, {**base, "applicationState": {"state": "RUNNING"}, "executionAttempts": 1}
        )
        thread = threading.Thread(
            target=self._wait, args=(app, base, process, log_file), name=f"wait-{name}", daemon=True
        )
        with self._lock:
            self.active[uid] = Submission(process, thread)
        thread.start()

    def _wait(
        self,
        app: dict[str, Any],
        base: dict[str, Any],
        process: subprocess.Popen[bytes],
        log_file: Path,
    ) -> None:
        code = process.wait()
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

    def run_forever(self, poll_interval: float = 1.0) -> None:
        while True:
            try:
                self.reconcile_once()
            except Exception:  # keep serving; the API may be briefly unavailable
                log.exception("reconcile failed; retrying")
            time.sleep(poll_interval)
