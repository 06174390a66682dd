"""Generate the spark-operator CRDs from Kubeflow's own pydantic models.

The `kubeflow-spark-api` package models the sparkoperator.k8s.io API: v1beta2
(SparkApplication, ScheduledSparkApplication) and v1alpha1 (SparkConnect), the three CRDs
the operator's chart installs. This
module turns each model's JSON schema into a structural OpenAPI v3 schema, as the
Kubernetes API server requires for apiextensions.k8s.io/v1 CustomResourceDefinitions:
every `$ref` is inlined, `null` alternatives and JSON-schema-only keywords are dropped,
and the generator's wrapper objects for Kubernetes' int-or-string types become
`x-kubernetes-int-or-string` schemas.

A few validation markers of the upstream Go types (enums and bounds set with kubebuilder
markers) do not survive into the pydantic models; `UPSTREAM_MARKERS` restores them
so the generated CRDs accept and reject the same objects as the upstream ones.

    python -m localplatform.crds --out-dir .tools/share/spark-crds
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orders_contract.sparkapplication import GROUP, VERSION

Schema = dict[str, Any]

PACKAGE = "kubeflow-spark-api"
GENERATED_FROM = "orders-etl.dev/generated-from"
#: CRDs in *.k8s.io groups need an API review approval; this is the spark-operator's.
API_APPROVED = (
    "api-approved.kubernetes.io",
    "https://github.com/kubeflow/spark-operator/pull/1298",
)

#: Kubernetes' resource.Quantity serialisation (the pattern the API machinery publishes).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
INT_OR_STRING: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
QUANTITY: Schema = {**INT_OR_STRING, "pattern": QUANTITY_PATTERN}

#: `$defs` that are not converted but replaced by a fixed schema.
SPECIAL_DEFS: dict[str, Schema] = {
    # openapi-generator renders these oneOf types as wrapper objects.
    "IoK8sApimachineryPkgApiResourceQuantity": QUANTITY,
    "IoK8sApimachineryPkgUtilIntstrIntOrString": INT_OR_STRING,
    # Driver/executor pod templates are schemaless upstream (+kubebuilder:validation:Schemaless).
    "IoK8sApiCoreV1PodTemplateSpec": {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
}

#: Embedded ObjectMeta (e.g. in a volumeClaimTemplate) keeps only these fields, as
#: controller-gen's generateEmbeddedObjectMeta does; the API server handles the rest.
OBJECT_META = "IoK8sApimachineryPkgApisMetaV1ObjectMeta"
EMBEDDED_META_FIELDS = ("annotations", "finalizers", "labels", "name", "namespace")

#: Validation markers of the upstream Go API that the pydantic models lack,
#: keyed by ($defs name, JSON field name).
UPSTREAM_MARKERS: dict[tuple[str, str], Schema] = {
    ("SparkV1beta2SparkApplicationSpec", "type"): {"enum": ["Java", "Python", "Scala", "R"]},
    ("SparkV1beta2SparkApplicationSpec", "mode"): {"enum": ["cluster", "client"]},
    ("SparkV1beta2SparkApplicationSpec", "pythonVersion"): {"enum": ["2", "3"]},
    ("SparkV1beta2RestartPolicy", "type"): {"enum": ["Never", "Always", "OnFailure"]},
    ("SparkV1beta2RestartPolicy", "onFailureRetries"): {"minimum": 0},
    ("SparkV1beta2RestartPolicy", "onFailureRetryInterval"): {"minimum": 1},
    ("SparkV1beta2RestartPolicy", "onSubmissionFailureRetries"): {"minimum": 0},
    ("SparkV1beta2RestartPolicy", "onSubmissionFailureRetryInterval"): {"minimum": 1},
    ("SparkV1beta2DriverSpec", "cores"): {"minimum": 1},
    ("SparkV1beta2ExecutorSpec", "cores"): {"minimum": 1},
    ("SparkV1beta2ExecutorSpec", "instances"): {"minimum": 1},
    ("SparkV1beta2PrometheusSpec", "port"): {"minimum": 1024, "maximum": 49151},
    ("SparkV1beta2DriverSpec", "podName"): {
        "pattern": r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    },
    # metav1.Time marshals its zero value as null.
    ("SparkV1beta2SparkApplicationStatus", "lastSubmissionAttemptTime"): {"nullable": True},
    ("SparkV1beta2SparkApplicationStatus", "terminationTime"): {"nullable": True},
    ("SparkV1beta2ScheduledSparkApplicationStatus", "lastRun"): {"nullable": True},
    ("SparkV1beta2ScheduledSparkApplicationStatus", "nextRun"): {"nullable": True},
    # SparkConnect (v1alpha1): api/v1alpha1/sparkconnect_types.go (SparkPodSpec embedded)
    ("SparkV1alpha1ServerSpec", "cores"): {"minimum": 1},
    ("SparkV1alpha1ExecutorSpec", "cores"): {"minimum": 1},
    ("SparkV1alpha1ExecutorSpec", "instances"): {"minimum": 0},
    # metav1.Condition and corev1.PortStatus as the Kubernetes API marks them.
    ("IoK8sApimachineryPkgApisMetaV1Condition", "observedGeneration"): {"minimum": 0},
    ("IoK8sApimachineryPkgApisMetaV1Condition", "status"): {"enum": ["True", "False", "Unknown"]},
}
#: `required` lists of the upstream Go API the models lack, keyed by $defs name.
UPSTREAM_REQUIRED: dict[str, tuple[str, ...]] = {
    "IoK8sApiCoreV1PortStatus": ("error",),
}

#: JSON-schema keywords copied as they are (all valid in Kubernetes' OpenAPI v3 subset).
KEPT_KEYWORDS = frozenset({"description", "type", "enum", "pattern", "minimum", "maximum"})
#: JSON-schema keywords with no place in a structural schema.
DROPPED_KEYWORDS = frozenset({"title", "default", "$defs", "readOnly", "examples"})
#: `format` values kept (the API server knows them); others are dropped.
FORMATS = frozenset({"int32", "int64", "float", "double", "byte", "date", "date-time", "uri"})


@dataclass(frozen=True)
class Resource:
    """One custom resource: its model and its CRD names and printer columns."""

    model: str
    kind: str
    plural: str
    short_name: str
    printer_columns: tuple[tuple[str, str, str], ...]  # (name, type, jsonPath)
    version: str = VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def filename(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


RESOURCES = (
    Resource(
        model="SparkV1beta2SparkApplication",
        kind="SparkApplication",
        plural="sparkapplications",
        short_name="sparkapp",
        printer_columns=(
            ("Suspend", "boolean", ".spec.suspend"),
            ("Status", "string", ".status.applicationState.state"),
            ("Attempts", "string", ".status.executionAttempts"),
            ("Start", "string", ".status.lastSubmissionAttemptTime"),
            ("Finish", "string", ".status.terminationTime"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
    ),
    Resource(
        model="SparkV1beta2ScheduledSparkApplication",
        kind="ScheduledSparkApplication",
        plural="scheduledsparkapplications",
        short_name="scheduledsparkapp",
        printer_columns=(
            ("Schedule", "string", ".spec.schedule"),
            ("TimeZone", "string", ".spec.timeZone"),
            ("Suspend", "string", ".spec.suspend"),
            ("Last Run", "date", ".status.lastRun"),
            ("Last Run Name", "string", ".status.lastRunName"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ),
    ),
    # The operator's controller (v2.4+) watches SparkConnects too and does not start
    # without this CRD, which its chart installs beside the two above.
    Resource(
        model="SparkV1alpha1SparkConnect",
        kind="SparkConnect",
        plural="sparkconnects",
        short_name="sparkconn",
        printer_columns=(
            ("Age", "date", ".metadata.creationTimestamp"),
            ("Status", "string", ".status.state"),
            ("PodName", "string", ".status.server.podName"),
        ),
        version="v1alpha1",
    ),
)


def package_version() -> str:
    """The installed kubeflow-spark-api version."""
    return importlib.metadata.version(PACKAGE)


def model_schema(model_name: str) -> Schema:
    """The JSON schema (validation mode, JSON field names) of a kubeflow_spark_api model."""
    import kubeflow_spark_api.models as models

    schema: Schema = getattr(models, model_name).model_json_schema(by_alias=True, mode="validation")
    return schema


def _ref_name(ref: str) -> str:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref.removeprefix(prefix)


def _non_null(alternatives: Sequence[Schema]) -> list[Schema]:
    return [alt for alt in alternatives if alt != {"type": "null"}]


def structural(node: Schema, defs: Mapping[str, Schema], owner: str | None = None) -> Schema:
    """Convert one JSON-schema node to a structural OpenAPI v3 schema.

    `owner` is the `$defs` name of the object this node is the schema of (used to look
    up `UPSTREAM_MARKERS` for its properties). Unknown keywords raise ValueError, so
    a new package version with new schema features fails loudly instead of silently.
    """
    own = {"description": node["description"]} if "description" in node else {}
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        if name in SPECIAL_DEFS:
            target = copy.deepcopy(SPECIAL_DEFS[name])
        elif name == OBJECT_META:
            target = structural(embedded_object_meta(defs[name]), defs, owner=name)
        else:
            target = structural(defs[name], defs, owner=name)
        return {**target, **own}
    if "anyOf" in node:
        alternatives = _non_null(node["anyOf"])
        if len(alternatives) == 1:
            return {**structural(alternatives[0], defs), **own}
        if sorted(alt.get("type", "") for alt in alternatives) == ["integer", "string"]:
            return {**copy.deepcopy(INT_OR_STRING), **own}
        raise ValueError(f"unsupported anyOf {alternatives!r}")

    out: Schema = {}
    for key, value in node.items():
        if key in KEPT_KEYWORDS:
            out[key] = copy.deepcopy(value)
        elif key == "format":
            if value in FORMATS:
                out[key] = value
        elif key == "required":
            out[key] = sorted({*value, *UPSTREAM_REQUIRED.get(owner or "", ())})
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "properties":
            out[key] = {
                prop: {
                    **structural(sub, defs),
                    **UPSTREAM_MARKERS.get((owner or "", prop), {}),
                }
                for prop, sub in value.items()
            }
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = structural(value, defs)
        elif key not in DROPPED_KEYWORDS:
            raise ValueError(f"unsupported JSON-schema keyword {key!r} in {owner or 'schema'}")
    if not out.get("required"):
        out.pop("required", None)
    return out


def embedded_object_meta(meta: Schema) -> Schema:
    """The ObjectMeta JSON schema cut down to the fields an embedded ObjectMeta may carry."""
    properties = meta["properties"]
    return {
        "type": "object",
        "properties": {name: properties[name] for name in EMBEDDED_META_FIELDS},
    }


def openapi_schema(model_name: str) -> Schema:
    """The CRD's openAPIV3Schema for a model: structural, with a plain top-level metadata."""
    schema = model_schema(model_name)
    defs: Mapping[str, Schema] = schema.get("$defs", {})
    root = structural(schema, defs, owner=model_name)
    props = root["properties"]
    props["metadata"] = {"type": "object"}
    for field in ("apiVersion", "kind"):
        props[field]["type"] = "string"
    return root


def crd(resource: Resource, version: str | None = None) -> Schema:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one resource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "annotations": {
                API_APPROVED[0]: API_APPROVED[1],
                GENERATED_FROM: f"{PACKAGE}=={version or package_version()}",
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.kind.lower(),
                "shortNames": [resource.short_name],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(resource.model)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": name, "type": type_, "jsonPath": path}
                        for name, type_, path in resource.printer_columns
                    ],
                }
            ],
        },
    }


def render(document: Schema) -> str:
    """Deterministic YAML (sorted keys) with a do-not-edit header."""
    header = f"# Generated by localplatform.crds from {PACKAGE}=={package_version()}; do not edit."
    return f"{header}\n---\n" + yaml.safe_dump(document, sort_keys=True, width=100)


def write_all(out_dir: Path) -> list[Path]:
    """Write every CRD into out_dir; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for resource in RESOURCES:
        path = out_dir / resource.filename
        path.write_text(render(crd(resource)))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localplatform.crds",
        description=f"Generate the {GROUP} CRDs from the {PACKAGE} models.",
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    for path in write_all(args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
