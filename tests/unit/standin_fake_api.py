"""A FAKE of the Kubernetes custom-objects API (in memory) for the stand-in's unit tests.

It keeps SparkApplications as the API server would (uid, creationTimestamp, generation,
resourceVersion, the status subresource) and can be told to refuse writes, to test what
the controller does when the API fails. The integration tests run the controller against
the real API server.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

_versions = itertools.count(1)


class FakeCustomObjects:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        #: called with the status about to be written; True refuses it (HTTP 500) once.
        self.refuse: Callable[[dict[str, Any]], bool] = lambda status: False
        self.refused: list[dict[str, Any]] = []
        #: every status written, in order
        self.written: list[dict[str, Any]] = []

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=f"2026-12-01T00:00:{len(self.objects):02d}Z",
            generation=1,
            resourceVersion=str(next(_versions)),
        )
        self.objects[(namespace, meta["name"])] = obj
        return copy.deepcopy(obj)

    def state(self, namespace: str, name: str) -> str:
        status = self.objects[(namespace, name)].get("status") or {}
        return str((status.get("applicationState") or {}).get("state", ""))

    # -- the CustomObjectsApi methods the controller calls ------------------------------
    def list_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, **_: Any
    ) -> dict[str, Any]:
        return {
            "items": [copy.deepcopy(o) for (ns, _n), o in self.objects.items() if ns == namespace]
        }

    def list_cluster_custom_object(
        self, group: str, version: str, plural: str, **_: Any
    ) -> dict[str, Any]:
        return {"items": [copy.deepcopy(o) for o in self.objects.values()]}

    def _write_status(
        self, namespace: str, name: str, status: dict[str, Any], replace: bool
    ) -> dict[str, Any]:
        if (namespace, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        if self.refuse(status):
            self.refused.append(copy.deepcopy(status))
            self.refuse = lambda status: False
            raise ApiException(status=500, reason="Internal Server Error (refused by the fake)")
        obj = self.objects[(namespace, name)]
        if replace:
            obj["status"] = copy.deepcopy(status)
        else:
            merged = obj.setdefault("status", {})
            for key, value in status.items():
                if value is None:
                    merged.pop(key, None)
                elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                    merged[key] = {k: v for k, v in merged[key].items() if v is not None}
                else:
                    merged[key] = copy.deepcopy(value)
        obj["metadata"]["resourceVersion"] = str(next(_versions))
        self.written.append(copy.deepcopy(obj["status"]))
        return copy.deepcopy(obj)

    def patch_namespaced_custom_object_status(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        return self._write_status(namespace, name, body["status"], replace=False)

    def replace_namespaced_custom_object_status(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        **_: Any,
    ) -> dict[str, Any]:
        current = self.objects.get((namespace, name))
        if (
            current
            and body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
        ):
            raise ApiException(status=409, reason="Conflict")
        return self._write_status(namespace, name, body.get("status") or {}, replace=True)

    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **_: Any
    ) -> dict[str, Any]:
        if self.objects.pop((namespace, name), None) is None:
            raise ApiException(status=404, reason="Not Found")
        return {}
