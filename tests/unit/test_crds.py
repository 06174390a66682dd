"""The spark-operator CRDs generated from the kubeflow-spark-api models."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from localplatform import crds
from localplatform.paths import REPO_ROOT

pytestmark = pytest.mark.unit

Schema = dict[str, Any]

SPARK_APP, SCHEDULED, CONNECT = crds.RESOURCES


def reference_dir() -> Path:
    """Upstream spark-operator CRDs (reference data outside the repo)."""
    default = REPO_ROOT.parent / "shared" / "reference" / "crds"
    return Path(os.environ.get("SPARK_REFERENCE_CRDS", default))


def reference_schema(resource: crds.Resource) -> Schema:
    path = reference_dir() / resource.filename
    if not path.is_file():
        pytest.skip(f"reference CRD {path} is absent (set SPARK_REFERENCE_CRDS)")
    schema: Schema = yaml.safe_load(path.read_text())["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    return schema


def openapi(crd: Schema) -> Schema:
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path: `.a.b` properties, `[]` items, `{}` map values."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def node_at(schema: Schema, path: str) -> Schema:
    return dict(nodes(schema))[path]


@pytest.fixture(scope="module", params=crds.RESOURCES, ids=lambda r: r.kind)
def crd(request: pytest.FixtureRequest) -> Schema:
    resource: crds.Resource = request.param
    return crds.crd(resource)


@pytest.fixture(scope="module")
def spark_app_schema() -> Schema:
    return openapi(crds.crd(SPARK_APP))


def valid_body() -> Schema:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "orders-etl", "namespace": "spark"},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "4.0.1",
            "mainApplicationFile": "local:///opt/spark/jobs/orders.py",
            "sparkConf": {"spark.sql.shuffle.partitions": "8"},
            "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
            "executor": {"cores": 1, "instances": 2, "memory": "1g", "memoryOverhead": "256m"},
        },
    }


# -- structure ------------------------------------------------------------------------


def test_no_json_schema_leftovers(crd: Schema) -> None:
    for path, node in nodes(openapi(crd)):
        assert "$ref" not in node, path
        for keyword in ("title", "default", "$defs", "oneOf", "allOf", "uniqueItems"):
            assert keyword not in node, f"{keyword} at {path}"


def test_no_null_alternatives(crd: Schema) -> None:
    for path, node in nodes(openapi(crd)):
        assert {"type": "null"} not in node.get("anyOf", []), path
        assert node.get("type") != "null", path


def test_every_node_is_typed(crd: Schema) -> None:
    for path, node in nodes(openapi(crd)):
        if "properties" in node or "additionalProperties" in node:
            assert node.get("type") == "object", path
            assert not ("properties" in node and "additionalProperties" in node), path
        if "items" in node:
            assert node.get("type") == "array", path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
        else:
            assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path


def test_anyof_only_for_int_or_string(crd: Schema) -> None:
    for path, node in nodes(openapi(crd)):
        if "anyOf" in node:
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert node["x-kubernetes-int-or-string"] is True, path


@pytest.mark.parametrize(
    "path",
    [
        ".spec.batchSchedulerOptions.resources{}",
        ".spec.volumes[].emptyDir.sizeLimit",
        ".spec.driver.sidecars[].resources.limits{}",
        ".spec.executor.initContainers[].resources.requests{}",
        ".spec.driver.env[].valueFrom.resourceFieldRef.divisor",
    ],
)
def test_quantities_are_int_or_string_with_pattern(spark_app_schema: Schema, path: str) -> None:
    node = node_at(spark_app_schema, path)
    assert node["x-kubernetes-int-or-string"] is True
    assert node["pattern"] == crds.QUANTITY_PATTERN
    assert "properties" not in node


def test_int_or_string_ports(spark_app_schema: Schema) -> None:
    node = node_at(spark_app_schema, ".spec.driver.sidecars[].livenessProbe.httpGet.port")
    assert node["x-kubernetes-int-or-string"] is True
    assert "pattern" not in node


def test_spark_resource_fields_are_strings(spark_app_schema: Schema) -> None:
    for field in ("coreLimit", "coreRequest", "memory", "memoryLimit", "memoryOverhead"):
        assert node_at(spark_app_schema, f".spec.driver.{field}")["type"] == "string", field
    assert node_at(spark_app_schema, ".spec.driver.cores")["type"] == "integer"


def test_open_only_where_upstream_is(crd: Schema) -> None:
    open_paths = {
        path
        for path, node in nodes(openapi(crd))
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    kind = crd["spec"]["names"]["kind"]
    prefix = ".spec.template" if kind == SCHEDULED.kind else ".spec"
    first = "server" if kind == CONNECT.kind else "driver"
    assert open_paths == {f"{prefix}.{first}.template", f"{prefix}.executor.template"}


def test_maps_keep_their_value_schema(spark_app_schema: Schema) -> None:
    assert node_at(spark_app_schema, ".spec.sparkConf") == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": node_at(spark_app_schema, ".spec.sparkConf")["description"],
    }
    assert node_at(spark_app_schema, ".spec.driver.envSecretKeyRefs{}")["required"] == [
        "key",
        "name",
    ]


def test_root_fields(crd: Schema) -> None:
    root = openapi(crd)
    assert root["type"] == "object"
    assert root["required"] == ["metadata", "spec"]
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["properties"]["apiVersion"]["type"] == "string"
    assert root["properties"]["kind"]["type"] == "string"


def test_json_field_names_are_aliases(spark_app_schema: Schema) -> None:
    spec = spark_app_schema["properties"]["spec"]
    assert {"sparkVersion", "mainApplicationFile", "sparkConf"} <= spec["properties"].keys()
    assert not any("_" in name for name in spec["properties"])
    assert spec["required"] == ["driver", "executor", "mainApplicationFile", "sparkVersion", "type"]


def test_upstream_markers(spark_app_schema: Schema) -> None:
    assert node_at(spark_app_schema, ".spec.type")["enum"] == ["Java", "Python", "Scala", "R"]
    assert node_at(spark_app_schema, ".spec.mode")["enum"] == ["cluster", "client"]
    assert node_at(spark_app_schema, ".spec.executor.instances")["minimum"] == 1
    assert node_at(spark_app_schema, ".status.terminationTime")["nullable"] is True


def test_names_subresources_and_annotations(crd: Schema) -> None:
    kind = crd["spec"]["names"]["kind"]
    resource = next(r for r in crds.RESOURCES if r.kind == kind)
    assert crd["metadata"]["name"] == f"{resource.plural}.sparkoperator.k8s.io"
    assert crd["spec"]["group"] == "sparkoperator.k8s.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == [resource.short_name]
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == (
        resource.version,
        True,
        True,
    )
    assert resource.version == ("v1alpha1" if kind == "SparkConnect" else "v1beta2")
    assert version["subresources"] == {"status": {}}
    annotations = crd["metadata"]["annotations"]
    assert annotations["orders-etl.dev/generated-from"] == (
        f"kubeflow-spark-api=={crds.package_version()}"
    )


def test_printer_columns() -> None:
    def columns(resource: crds.Resource) -> list[tuple[str, str]]:
        version = crds.crd(resource)["spec"]["versions"][0]
        return [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]

    assert ("Status", ".status.applicationState.state") in columns(SPARK_APP)
    assert [name for name, _ in columns(SPARK_APP)][-5:] == [
        "Status",
        "Attempts",
        "Start",
        "Finish",
        "Age",
    ]
    assert [name for name, _ in columns(SCHEDULED)] == [
        "Schedule",
        "TimeZone",
        "Suspend",
        "Last Run",
        "Last Run Name",
        "Age",
    ]


# -- output ---------------------------------------------------------------------------


def test_render_is_deterministic_yaml() -> None:
    first = crds.render(crds.crd(SPARK_APP))
    assert first == crds.render(crds.crd(SPARK_APP))
    assert yaml.safe_load(first) == crds.crd(SPARK_APP)
    # The marker upstream's generated (and so any copied) CRD files carry.
    assert "controller-gen" + ".kubebuilder.io/version" not in first


def test_cli_writes_the_three_crds_the_operators_chart_installs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crds.main(["--out-dir", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "sparkoperator.k8s.io_scheduledsparkapplications.yaml",
        "sparkoperator.k8s.io_sparkapplications.yaml",
        "sparkoperator.k8s.io_sparkconnects.yaml",
    ]
    for name in written:
        document = yaml.safe_load((tmp_path / "out" / name).read_text())
        assert document["kind"] == "CustomResourceDefinition"
    assert capsys.readouterr().out.count(".yaml") == 3


def test_unknown_keyword_fails_loudly() -> None:
    with pytest.raises(ValueError, match="unsupported JSON-schema keyword 'if'"):
        crds.structural({"type": "object", "if": {}}, {})


# -- the models agree with the bodies the CRD is meant for ----------------------------


def test_model_accepts_a_valid_body() -> None:
    from kubeflow_spark_api.models import SparkV1beta2SparkApplication

    app = SparkV1beta2SparkApplication.from_dict(valid_body())
    assert app.spec.driver.cores == 1
    assert app.to_dict()["spec"]["sparkConf"] == {"spark.sql.shuffle.partitions": "8"}


def test_model_rejects_string_cores() -> None:
    from kubeflow_spark_api.models import SparkV1beta2SparkApplication

    body = copy.deepcopy(valid_body())
    body["spec"]["driver"]["cores"] = "one"
    with pytest.raises(ValidationError, match="cores"):
        SparkV1beta2SparkApplication.from_dict(body)


# -- against the upstream CRDs --------------------------------------------------------


def _paths(schema: Schema, under: str, depth: int) -> set[str]:
    """Property paths below `under`, at most `depth` properties deep (items/maps free)."""
    found = set()
    for path, _ in nodes(schema):
        if path.startswith(under + ".") and path.count(".") - under.count(".") <= depth:
            found.add(path)
    return found


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_spec_fields_cover_reference(resource: crds.Resource) -> None:
    reference = reference_schema(resource)
    ours = openapi(crds.crd(resource))
    missing = _paths(reference, ".spec", 3) - _paths(ours, ".spec", 3)
    assert not missing, sorted(missing)


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_types_and_validations_match_reference(resource: crds.Resource) -> None:
    """Same paths (all depths), and the same type, required, enum and bounds at each.

    Not compared (known differences): upstream `default`s, x-kubernetes-list-type /
    list-map-keys / map-type markers and `format: int32/int64` on integers.
    """
    reference = dict(nodes(reference_schema(resource)))
    ours = dict(nodes(openapi(crds.crd(resource))))
    assert sorted(reference.keys() ^ ours.keys()) == []
    keys = ["type", "required", "enum", "minimum", "maximum", "nullable"]
    keys += ["x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"]
    differences = []
    for path, node in reference.items():
        for key in keys:
            if node.get(key) != ours[path].get(key) and not (
                key == "required" and sorted(node[key]) == ours[path].get(key)
            ):
                differences.append(f"{path}: {key} {node.get(key)!r} != {ours[path].get(key)!r}")
        if node.get("x-kubernetes-int-or-string"):
            assert ("pattern" in node) == ("pattern" in ours[path]), path
    assert differences == []
