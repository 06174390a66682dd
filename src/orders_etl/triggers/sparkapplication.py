"""Waits in the triggerer until a SparkApplication reaches a terminal state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client import CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from orders_contract.sparkapplication import GROUP, PLURAL, VERSION
from orders_etl.sparkapp import (
    COMPLETED,
    FAILED,
    STALLED_STATES,
    STATE_MEANING,
    application_state,
)
from orders_etl.triggers.sparkapplication_watch import ApplicationWatch


class SparkApplicationTrigger(BaseTrigger):
    """Polls `.status.applicationState.state` of one SparkApplication.

    Yields exactly one event: status "success" (COMPLETED), "failed" (FAILED, with the
    operator's errorMessage), "stalled" (UNKNOWN, SUSPENDING or SUSPENDED for longer than
    `stall_timeout` in a row), "not_found" (deleted while waited on), "timeout", or
    "error" (the API kept failing). Every other state the operator writes is waited
    through (SUBMISSION_FAILED and FAILING end FAILED or lead to another attempt, as the
    application's restartPolicy says), and each change is logged with what it means.
    API errors and broken connections (any aiohttp.ClientError, TimeoutError, OSError)
    back off exponentially up to `max_api_errors` in a row. All kwargs are JSON-plain, so
    a restarted triggerer re-creates the trigger from `serialize()` and resumes.

    With `watch`, the trigger reads its application from the namespace's one shared watch
    (sparkapplication_watch.ApplicationWatch) and wakes when it changes, instead of a GET
    every `poll_interval`; while that watch is not in sync it GETs as without it.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        kubernetes_conn_id: str,
        poll_interval: float,
        timeout_at: float,
        max_api_errors: int = 8,
        stall_timeout: float = 900.0,
        watch: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.timeout_at = timeout_at
        self.max_api_errors = max_api_errors
        self.stall_timeout = stall_timeout
        self.watch = watch

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "max_api_errors": self.max_api_errors,
                "stall_timeout": self.stall_timeout,
                "watch": self.watch,
            },
        )

    def _hook(self) -> AsyncKubernetesHook:
        return AsyncKubernetesHook(conn_id=self.kubernetes_conn_id)

    def _event(self, status: str, state: str = "", message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "state": state,
                "message": message,
                "name": self.name,
                "namespace": self.namespace,
            }
        )

    def _log_state(self, obj: dict[str, Any], state: str, message: str) -> None:
        status = obj.get("status") or {}
        attempts = status.get("submissionAttempts")
        self.log.log(
            30 if state in STALLED_STATES or message else 20,  # WARNING / INFO
            "SparkApplication %s/%s: %s (%s)%s%s",
            self.namespace,
            self.name,
            state or "(no status yet)",
            STATE_MEANING.get(state, "a state this trigger does not know; waiting"),
            f", attempt {attempts}" if attempts else "",
            f": {message}" if message else "",
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        shared = None
        if self.watch:
            shared = ApplicationWatch.acquire(self.kubernetes_conn_id, self.namespace)
        waiting = self._wait(shared)
        try:
            yield await anext(waiting)  # _wait yields exactly one event
        finally:
            await waiting.aclose()
            if shared is not None:
                shared.release()

    async def _wait(self, shared: ApplicationWatch | None) -> AsyncGenerator[TriggerEvent, None]:
        errors = 0
        last_state: str | None = None
        stalled_since: float | None = None
        async with self._hook().get_conn() as api_client:
            api = CustomObjectsApi(api_client)
            while True:
                now = time.time()
                if now >= self.timeout_at:
                    yield self._event(
                        "timeout",
                        last_state or "",
                        f"SparkApplication {self.namespace}/{self.name} did not "
                        f"finish before the task's timeout",
                    )
                    return
                seen = shared.versions.get(self.name, 0) if shared is not None else 0
                cached, gone = self._from_watch(shared)
                try:
                    if gone:
                        raise ApiException(status=404, reason="deleted (watch)")
                    if cached is not None:
                        obj = cached
                    else:
                        obj = await api.get_namespaced_custom_object(
                            GROUP, VERSION, self.namespace, PLURAL, self.name
                        )
                    errors = 0
                except ApiException as error:
                    if error.status == 404:
                        yield self._event(
                            "not_found",
                            last_state or "",
                            f"SparkApplication {self.namespace}/{self.name} "
                            "was deleted while the task waited on it",
                        )
                        return
                    failure = f"Kubernetes API kept failing: {error.status} {error.reason}"
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    # ServerDisconnectedError, ClientPayloadError, connection refused...
                    failure = f"Kubernetes API unreachable: {type(error).__name__}: {error}"
                else:
                    failure = ""
                if failure:
                    errors += 1
                    if errors > self.max_api_errors:
                        yield self._event("error", last_state or "", failure)
                        return
                    self.log.warning("%s (%d in a row); retrying", failure, errors)
                    await asyncio.sleep(min(self.poll_interval * 2**errors, 300))
                    continue
                state, message = application_state(obj)
                if state != last_state:
                    self._log_state(obj, state, message)
                    last_state = state
                if state == COMPLETED:
                    yield self._event("success", state)
                    return
                if state == FAILED:
                    yield self._event("failed", state, message)
                    return
                if state in STALLED_STATES:
                    stalled_since = stalled_since or now
                    if now - stalled_since >= self.stall_timeout:
                        yield self._event(
                            "stalled",
                            state,
                            f"SparkApplication {self.namespace}/{self.name} stayed "
                            f"{', '.join(sorted(STALLED_STATES))} for {self.stall_timeout:.0f} s "
                            f"(last: {state}, {STATE_MEANING[state]})",
                        )
                        return
                else:
                    stalled_since = None
                if shared is not None:
                    # Woken by a change of the application or of the watch's sync state;
                    # in sync, the poll interval only paces the timeout and stall checks.
                    await shared.wait(self.name, seen, self.poll_interval)
                else:
                    await asyncio.sleep(self.poll_interval)

    def _from_watch(self, shared: ApplicationWatch | None) -> tuple[dict[str, Any] | None, bool]:
        """(the application as the shared watch last saw it, whether it saw it deleted);
        (None, False) when the watch cannot say (not in sync, or not seen yet: then GET)."""
        if shared is None or not shared.synced:
            return None, False
        if self.name in shared.objects:
            return shared.objects[self.name], False
        return None, self.name in shared.deleted
