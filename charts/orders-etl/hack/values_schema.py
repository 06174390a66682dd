"""Generate values.schema.json from values.yaml (so the two never drift).

Types come from the defaults in values.yaml; every object the chart defines gets
`additionalProperties: false`, so a typo in a key fails `helm install/template/lint`.
Keys whose default is an empty map are free-form maps (labels, annotations, Kubernetes
objects passed through). OVERRIDES below pins what a default cannot say (enums,
Kubernetes object shapes, nullable fields, minimums); `*` matches one key.

    python charts/orders-etl/hack/values_schema.py           # write values.schema.json
    python charts/orders-etl/hack/values_schema.py --check   # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

import yaml

# The catalog types are the contract's (the engines' settings are built there).
from orders_contract.catalog import CATALOG_TYPES

CHART = Path(__file__).resolve().parents[1]

STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
OPEN_OBJECT: dict[str, Any] = {"type": "object"}
OBJECT_LIST: dict[str, Any] = {"type": "array", "items": {"type": "object"}}
PULL_POLICY: dict[str, Any] = {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]}
PROBE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        k: {"type": "integer", "minimum": 0}
        for k in (
            "initialDelaySeconds",
            "periodSeconds",
            "timeoutSeconds",
            "failureThreshold",
            "successThreshold",
            "terminationGracePeriodSeconds",
        )
    },
}
INT_OR_PERCENT_OR_NULL: dict[str, Any] = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^[0-9]+%$"},
        {"type": "null"},
    ]
}
STRING_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def named_list(*required: str) -> dict[str, Any]:
    """A list of Kubernetes objects that must carry `required` keys (volumes, containers)."""
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": list(required),
            "properties": {k: {"type": "string", "minLength": 1} for k in required},
        },
    }


ENV_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
}
SECRET_REF: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "key"],
    "properties": {"name": {"type": "string", "minLength": 1}, "key": {"type": "string"}},
}

# Dotted paths (fnmatch patterns, `*` = one key) -> schema replacing the inferred one.
OVERRIDES: dict[str, dict[str, Any]] = {
    "commonLabels": STRING_MAP,
    "podSecurityContext": OPEN_OBJECT,
    "containerSecurityContext": OPEN_OBJECT,
    "imagePullSecrets": {"type": "array", "items": {"type": "string"}},
    "images.*.pullPolicy": PULL_POLICY,
    "images.*.tag": {"type": "string"},
    "images.*.repository": {"type": "string", "minLength": 1},
    "airflow.executor": {"type": "string", "minLength": 1},
    "airflow.config": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
    },
    "airflow.extraEnv": ENV_LIST,
    "airflow.extraEnvFrom": OBJECT_LIST,
    "airflow.logging.level": {
        "type": "string",
        "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    },
    "airflow.xcom.threshold": {"type": "integer", "minimum": -1},
    "airflow.openlineage.transport": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string"}},
    },
    "airflow.secretsBackend.kwargs": OPEN_OBJECT,
    "airflow.pools": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "required": ["slots"],
            "properties": {
                "slots": {"type": "integer", "minimum": -1},
                "description": {"type": "string"},
                "includeDeferred": {"type": "boolean"},
            },
        },
    },
    "airflow.connections": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                "secretRef": SECRET_REF,
                "json": {"type": "object", "required": ["conn_type"]},
            },
        },
    },
    "*.resources": OPEN_OBJECT,
    "*.*.resources": OPEN_OBJECT,
    "*.livenessProbe": PROBE,
    "*.readinessProbe": PROBE,
    "*.startupProbe": PROBE,
    "*.extraEnv": ENV_LIST,
    "*.podAnnotations": STRING_MAP,
    "*.podLabels": STRING_MAP,
    "*.command": STRING_LIST,
    "*.args": STRING_LIST,
    "*.lifecycle": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "postStart": OPEN_OBJECT,
            "preStop": OPEN_OBJECT,
            "stopSignal": {"type": "string"},
        },
    },
    "*.extraVolumes": named_list("name"),
    "*.extraVolumeMounts": named_list("name", "mountPath"),
    "*.extraContainers": named_list("name"),
    "*.extraInitContainers": named_list("name"),
    "*.logGroomer": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean"},
            "retentionDays": {"type": "integer", "minimum": 1},
            "intervalMinutes": {"type": "integer", "minimum": 1},
            "resources": OPEN_OBJECT,
        },
    },
    "logGroomer.retentionDays": {"type": "integer", "minimum": 1},
    "logGroomer.intervalMinutes": {"type": "integer", "minimum": 1},
    "auth.manager": {"type": "string", "enum": ["fab", "simple"]},
    "auth.simple.users": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["username", "role"],
            "properties": {
                "username": {"type": "string", "pattern": "^[^:,\\s]+$"},
                "role": {"type": "string", "enum": ["admin", "op", "user", "viewer"]},
            },
        },
    },
    "auth.admin.username": {"type": "string", "minLength": 1},
    "auth.admin.passwordKey": {"type": "string", "minLength": 1},
    "airflow.logging.remote": {"enum": ["auto", True, False]},
    "apiServer.ingress.hosts": STRING_LIST,
    "apiServer.ingress.tls": {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"secretName": {"type": "string"}, "hosts": STRING_LIST},
        },
    },
    "apiServer.ingress.pathType": {
        "type": "string",
        "enum": ["Prefix", "Exact", "ImplementationSpecific"],
    },
    "apiServer.ingress.path": {"type": "string", "pattern": "^/"},
    "apiServer.httpRoute.path": {"type": "string", "pattern": "^/"},
    "apiServer.httpRoute.parentRefs": named_list("name"),
    "apiServer.httpRoute.hostnames": STRING_LIST,
    "dbClean.retentionDays": {"type": "integer", "minimum": 1},
    "dbClean.schedule": {"type": "string", "minLength": 9},
    "dbClean.tables": STRING_LIST,
    "pgbouncer.poolMode": {"type": "string", "enum": ["transaction", "session"]},
    "pgbouncer.upstreamKey": {"type": "string", "minLength": 1},
    "redis.persistence.size": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?([KMGTPE]i?)?$"},
    "*.nodeSelector": STRING_MAP,
    "*.tolerations": OBJECT_LIST,
    "*.affinity": OPEN_OBJECT,
    "*.topologySpreadConstraints": OBJECT_LIST,
    "*.securityContexts.pod": OPEN_OBJECT,
    "*.securityContexts.container": OPEN_OBJECT,
    "*.podSecurityContext": OPEN_OBJECT,
    "*.serviceAccount.annotations": STRING_MAP,
    "*.service.annotations": STRING_MAP,
    "*.pdb.maxUnavailable": INT_OR_PERCENT_OR_NULL,
    "*.pdb.minAvailable": INT_OR_PERCENT_OR_NULL,
    "*.replicas": {"type": "integer", "minimum": 0},
    "scheduler.replicas": {"type": "integer", "minimum": 1},
    "apiServer.service.type": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "apiServer.service.port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "workers.keda.triggers": OBJECT_LIST,
    "statsd.serviceMonitor.labels": STRING_MAP,
    "spark.sparkConf": STRING_MAP,
    "spark.labels": STRING_MAP,
    "spark.jobsNamespace": {"type": "string", "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"},
    "spark.catalog.type": {"type": "string", "enum": list(CATALOG_TYPES)},
    "spark.driver.memory": {"type": "string", "pattern": "^[0-9]+[kmgt]?$"},
    "spark.executor.memory": {"type": "string", "pattern": "^[0-9]+[kmgt]?$"},
    "networkPolicies.apiServerIngressFrom": OBJECT_LIST,
    "networkPolicies.airflowEgress": OBJECT_LIST,
}


def _override(path: str) -> dict[str, Any] | None:
    # The most specific pattern wins: an exact path beats `*` patterns, fewer `*` beat more.
    matches = [
        p for p in OVERRIDES if fnmatch.fnmatchcase(path, p) and p.count(".") == path.count(".")
    ]
    if not matches:
        return None
    best = min(matches, key=lambda p: (p.count("*"), -len(p)))
    return OVERRIDES[best]


def infer(value: Any, path: str) -> dict[str, Any]:
    forced = _override(path)
    if forced is not None:
        return forced
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        if not value:  # an empty default map is a free-form map
            return OPEN_OBJECT
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                k: infer(v, f"{path}.{k}" if path else k) for k, v in sorted(value.items())
            },
        }
    raise SystemExit(f"values.yaml: {path} has a null default; add it to OVERRIDES")


def build() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = infer(values, "")
    # helm adds `global` to every chart's values; this chart's keys in it are typed.
    schema["properties"].setdefault("global", OPEN_OBJECT)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "orders-etl chart values",
        "description": "Generated from values.yaml by hack/values_schema.py; do not edit.",
        **schema,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args()
    text = json.dumps(build(), indent=2, sort_keys=False) + "\n"
    target = CHART / "values.schema.json"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run make chart-docs", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
