"""Create the chart's generated Secret once, add keys it lacks, never change a key it has.

Run by the secrets-init Job with its ServiceAccount token (standard library only, so it
runs in the Airflow image). Because the Secret is created here and not rendered by helm,
neither `helm upgrade` nor an Argo CD sync ever sees (or rewrites) its values.

Environment: SECRET_NAME, SECRET_KEYS (JSON list), SECRET_LABELS (JSON object);
optional SECRET_NAMESPACE, KUBE_API, KUBE_TOKEN_FILE, KUBE_CA_FILE (default: in-cluster).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
JSON = "application/json"
#: The Secret is created here, not rendered, yet carries the release's labels: under Argo
#: CD's label tracking (the 2.x default, `app.kubernetes.io/instance` = Application name)
#: it looks like a resource of the Application that Git no longer has, so a sync would
#: prune it (a new fernet key: the database's secrets become unreadable). These tell Argo
#: CD to leave it alone: not OutOfSync, never pruned, kept when the Application is deleted
#: (as `helm uninstall` keeps it). Inert without Argo CD.
ANNOTATIONS = {
    "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
}


def new_value(key: str) -> str:
    if key == "fernet-key":
        # A Fernet key is 32 random bytes, urlsafe base64.
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if key == "redis-password":
        # Hex: safe inside a redis:// URL without escaping.
        return secrets.token_hex(32)
    return secrets.token_urlsafe(48)


class Api:
    def __init__(self) -> None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.base = os.environ.get("KUBE_API") or f"https://{host}:{port}"
        if not self.base.startswith("https://"):
            raise SystemExit(f"refusing a non-https API server URL: {self.base}")
        with open(os.environ.get("KUBE_TOKEN_FILE", f"{SA_DIR}/token")) as f:
            self.token = f.read().strip()
        self.tls = ssl.create_default_context(
            cafile=os.environ.get("KUBE_CA_FILE", f"{SA_DIR}/ca.crt")
        )

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, ctype: str = JSON
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=30) as resp:  # noqa: S310
                return int(resp.status), dict(json.loads(resp.read() or b"{}"))
        except urllib.error.HTTPError as err:
            return err.code, dict(json.loads(err.read() or b"{}"))


def main() -> int:
    name = os.environ["SECRET_NAME"]
    keys = json.loads(os.environ["SECRET_KEYS"])
    labels = json.loads(os.environ.get("SECRET_LABELS", "{}"))
    namespace = os.environ.get("SECRET_NAMESPACE")
    if not namespace:
        with open(f"{SA_DIR}/namespace") as f:
            namespace = f.read().strip()
    api = Api()
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for _attempt in range(5):
        status, live = api.call("GET", f"{path}/{name}")
        if status == 404:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": name, "labels": labels, "annotations": ANNOTATIONS},
                "data": {k: base64.b64encode(new_value(k).encode()).decode() for k in keys},
            }
            status, out = api.call("POST", path, body)
            if status == 201:
                print(f"created secret {namespace}/{name} with keys {sorted(keys)}")
                return 0
            if status == 409:  # created concurrently: read it again
                continue
            print(f"creating secret {namespace}/{name} failed: {status} {out.get('message')}")
            return 1
        if status != 200:
            print(f"reading secret {namespace}/{name} failed: {status} {live.get('message')}")
            return 1
        missing = [k for k in keys if k not in (live.get("data") or {})]
        current = live.get("metadata", {}).get("annotations") or {}
        annotations = {k: v for k, v in ANNOTATIONS.items() if current.get(k) != v}
        if not missing and not annotations:
            print(f"secret {namespace}/{name} already has every key; nothing changed")
            return 0
        patch: dict[str, Any] = {
            # resourceVersion: a concurrent writer makes this a 409, then we read again.
            "metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
            "data": {k: base64.b64encode(new_value(k).encode()).decode() for k in missing},
        }
        if annotations:
            patch["metadata"]["annotations"] = annotations
        status, out = api.call("PATCH", f"{path}/{name}", patch, "application/merge-patch+json")
        if status == 200:
            what = f"keys {sorted(missing)}" if missing else ""
            if annotations:
                what += (" and " if what else "") + f"Argo CD annotations {sorted(annotations)}"
            print(f"added {what} to secret {namespace}/{name}")
            return 0
        if status == 409:
            continue
        print(f"patching secret {namespace}/{name} failed: {status} {out.get('message')}")
        return 1
    print(f"gave up on secret {namespace}/{name} after concurrent updates")
    return 1


if __name__ == "__main__":
    sys.exit(main())
