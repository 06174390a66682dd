"""Waits in the triggerer until a SparkApplication reaches a terminal state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client import CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from orders_etl.sparkapp import COMPLETED, FAILED_STATES, GROUP, PLURAL, VERSION, application_state


class SparkApplicationTrigger(BaseTrigger):
    """Polls `.status.applicationState.state` of one SparkApplication.

    Yields exactly one event: status "success" (COMPLETED), "failed" (FAILED or
    SUBMISSION_FAILED, with the operator's errorMessage), "not_found" (deleted while
    waited on), "timeout", or "error" (the API kept failing). Transient API errors back
    off exponentially up to `max_api_errors` in a row. All kwargs are JSON-plain, so a
    restarted triggerer re-creates the trigger from `serialize()` and resumes.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        kubernetes_conn_id: str,
        poll_interval: float,
        timeout_at: float,
        max_api_errors: int = 8,
    ) -> None:
        super().__init__()
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.poll_interval = poll_interval
        self.timeout_at = timeout_at
        self.max_api_errors = max_api_errors

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        errors = 0
        last_state = None
        async with self._hook().get_conn() as api_client:
            api = CustomObjectsApi(api_client)
            while True:
                if time.time() >= self.timeout_at:
                    yield self._event(
                        "timeout",
                        last_state or "",
                        f"SparkApplication {self.namespace}/{self.name} did not "
                        f"finish before the task's timeout",
                    )
                    return
                try:
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
                    errors += 1
                    if errors > self.max_api_errors:
                        yield self._event(
                            "error",
                            last_state or "",
                            f"Kubernetes API kept failing: {error.status} {error.reason}",
                        )
                        return
                    await asyncio.sleep(min(self.poll_interval * 2**errors, 300))
                    continue
                except (TimeoutError, OSError) as error:
                    errors += 1
                    if errors > self.max_api_errors:
                        yield self._event(
                            "error", last_state or "", f"Kubernetes API unreachable: {error}"
                        )
                        return
                    await asyncio.sleep(min(self.poll_interval * 2**errors, 300))
                    continue
                state, message = application_state(obj)
                if state != last_state:
                    self.log.info(
                        "SparkApplication %s/%s: %s",
                        self.namespace,
                        self.name,
                        state or "(no status yet)",
                    )
                    last_state = state
                if state == COMPLETED:
                    yield self._event("success", state)
                    return
                if state in FAILED_STATES:
                    yield self._event("failed", state, message)
                    return
                await asyncio.sleep(self.poll_interval)
