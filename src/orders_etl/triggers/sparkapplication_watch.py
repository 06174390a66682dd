"""One watch of SparkApplications per namespace, shared by every SparkApplicationTrigger
waiting in the same triggerer process (event loop).

Instead of one GET per trigger per poll interval, the watch lists the namespace's
SparkApplications once and then follows the API server's watch stream from that
resourceVersion, keeping the last object of each application; a trigger reads its
application from there and wakes as soon as it changes. The stream ends on the server's
timeout (`WATCH_SECONDS`) or breaks; either way the watch lists again and resumes, and
while it is not in sync (`synced` False) the triggers fall back to their own GETs, so a
broken watch costs latency, never an event. The watch stops with its last user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
from kubernetes_asyncio import watch
from kubernetes_asyncio.client import CustomObjectsApi

from orders_contract.sparkapplication import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

#: How long one watch request may last before the server ends it (then: list again).
WATCH_SECONDS = 300
#: The client waits this much longer than WATCH_SECONDS for the server to end the
#: stream. The stream needs its own client timeout: the provider's API client gives a
#: request without one its API_TIMEOUT (60 s) in all, which would cut every stream.
WATCH_CLIENT_GRACE = 30
#: Back-off after a failed list or a broken stream, doubling up to MAX_BACKOFF.
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0

_Key = tuple[str, str]
_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, ApplicationWatch]] = (
    weakref.WeakKeyDictionary()
)


class ApplicationWatch:
    """The SparkApplications of one namespace, as one watch sees them."""

    def __init__(self, kubernetes_conn_id: str, namespace: str) -> None:
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        #: name -> the last object the watch saw (only while `synced`).
        self.objects: dict[str, dict[str, Any]] = {}
        #: Names seen deleted since the last list (and not created again).
        self.deleted: set[str] = set()
        #: Listed and following the stream: `objects` is the namespace's current state.
        self.synced = False
        #: Requests made: lists and watch streams opened (for the benchmark and tests).
        self.requests = 0
        #: name -> how many changes the watch has seen (a waiter passes what it last read).
        self.versions: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._users = 0
        self._task: asyncio.Task[None] | None = None

    # -- sharing ----------------------------------------------------------------------
    @classmethod
    def acquire(cls, kubernetes_conn_id: str, namespace: str) -> ApplicationWatch:
        """The running loop's watch of (connection, namespace), started if needed."""
        loop = asyncio.get_running_loop()
        watches = _registry.setdefault(loop, {})
        key = (kubernetes_conn_id, namespace)
        shared = watches.get(key)
        if shared is None:
            shared = watches[key] = cls(kubernetes_conn_id, namespace)
        shared._users += 1
        if shared._task is None or shared._task.done():
            shared._task = loop.create_task(shared._run(), name=f"sparkapp-watch-{namespace}")
        return shared

    def release(self) -> None:
        self._users -= 1
        if self._users > 0:
            return
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.synced = False
        try:
            watches = _registry.get(asyncio.get_running_loop(), {})
        except RuntimeError:  # no running loop: the registry goes with the loop
            return
        if watches.get((self.kubernetes_conn_id, self.namespace)) is self:
            del watches[(self.kubernetes_conn_id, self.namespace)]

    # -- waiting ----------------------------------------------------------------------
    async def wait(self, name: str, seen: int, timeout: float) -> None:
        """Until `name` has changed since version `seen` (at once if it already has), the
        watch's sync state changes, or `timeout` passes."""
        if self.versions.get(name, 0) != seen:
            return
        event = self._changed.setdefault(name, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def _notify(self, name: str) -> None:
        self.versions[name] = self.versions.get(name, 0) + 1
        if (event := self._changed.pop(name, None)) is not None:
            event.set()  # every waiter of this name wakes; the next wait gets a new event

    def _notify_all(self) -> None:
        for name in list(self._changed):
            self._notify(name)

    # -- the watch --------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            try:
                async with AsyncKubernetesHook(conn_id=self.kubernetes_conn_id).get_conn() as c:
                    api = CustomObjectsApi(c)
                    while True:
                        await self._list_and_follow(api)
                        backoff = FIRST_BACKOFF
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API unreachable, 410 Gone twice, a bad event
                if self.synced:
                    log.warning(
                        "SparkApplication watch of %s broke (%s: %s); the triggers poll "
                        "until it is back",
                        self.namespace,
                        type(error).__name__,
                        error,
                    )
                self.synced = False
                self._notify_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _list_and_follow(self, api: CustomObjectsApi) -> None:
        self.requests += 1
        listing = await api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        self.objects = {o["metadata"]["name"]: o for o in listing.get("items", [])}
        self.deleted = set()
        self.synced = True
        self._notify_all()
        self.requests += 1
        stream = watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            resource_version=listing["metadata"]["resourceVersion"],
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=WATCH_SECONDS + WATCH_CLIENT_GRACE,
        )
        async with stream:
            async for event in stream:
                obj = event["object"]
                name = obj.get("metadata", {}).get("name")
                if not name:
                    continue
                if event["type"] == "DELETED":
                    self.objects.pop(name, None)
                    self.deleted.add(name)
                else:
                    self.objects[name] = obj
                    self.deleted.discard(name)
                self._notify(name)
