"""values.yaml, values.schema.json and README.md agree, and every value is documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from localplatform import paths

pytestmark = pytest.mark.chart

CHART = Path(__file__).resolve().parents[2] / "charts" / "orders-etl"
ROOT = CHART.parents[1]


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def test_schema_is_valid_draft7_and_strict() -> None:
    schema = _schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for section in ("airflow", "scheduler", "workers", "spark", "secrets", "database"):
        assert schema["properties"][section]["additionalProperties"] is False, section


@pytest.mark.parametrize(
    "values_file",
    [
        CHART / "values.yaml",
        *sorted((ROOT / "values").glob("*.yaml")),
        *sorted((CHART / "ci").glob("*.yaml")),
    ],
    ids=lambda p: p.name,
)
def test_values_files_validate_against_the_schema(values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text()) or {}
    jsonschema.Draft7Validator(_schema()).validate(values)


def test_schema_rejects_typos_and_wrong_types() -> None:
    validator = jsonschema.Draft7Validator(_schema())
    assert list(validator.iter_errors({"workers": {"replicaCount": 2}}))
    assert list(validator.iter_errors({"apiServer": {"service": {"port": "8080"}}}))
    assert list(validator.iter_errors({"airflow": {"pools": {"p": {"slots": "4"}}}}))
    assert not list(validator.iter_errors({"scheduler": {"pdb": {"maxUnavailable": "50%"}}}))


def test_schema_is_generated_from_values() -> None:
    result = subprocess.run(
        [sys.executable, str(CHART / "hack" / "values_schema.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def _documented_keys(values_text: str) -> tuple[set[str], set[str]]:
    """(every key path, key paths carrying a `# --` comment) of values.yaml."""
    all_keys: set[str] = set()
    documented: set[str] = set()
    stack: list[tuple[int, str]] = []
    pending_doc = False
    in_list = False
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending_doc = True
            continue
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        match = re.match(r"^([A-Za-z0-9_.]+):", stripped)
        if stripped.startswith("- ") or not match:
            in_list = True
            pending_doc = False
            continue
        in_list = False
        key = ".".join([s[1] for s in stack] + [match.group(1)])
        all_keys.add(key)
        if pending_doc:
            documented.add(key)
        pending_doc = False
        stack.append((indent, match.group(1)))
    del in_list
    return all_keys, documented


def test_every_value_is_documented() -> None:
    all_keys, documented = _documented_keys((CHART / "values.yaml").read_text())
    # A documented map documents its whole default (a Kubernetes object, a probe...).
    undocumented = [
        k
        for k in sorted(all_keys)
        if k not in documented
        and not any(k.startswith(d + ".") for d in documented)
        and not any(d.startswith(k + ".") for d in documented)
    ]
    assert not undocumented, f"values without a `# --` comment: {undocumented}"


def test_readme_is_up_to_date() -> None:
    result = subprocess.run(
        [
            str(paths.tool("helm-docs")),
            "--chart-search-root",
            str(CHART.parent),
            "--template-files",
            "README.md.gotmpl",
            "--sort-values-order",
            "file",
            "--skip-version-footer",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (CHART / "README.md").read_text().strip(), (
        "charts/orders-etl/README.md is stale: run `make chart-docs`"
    )


def test_readme_describes_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    rows = [r for r in readme.splitlines() if r.startswith("| ") and r.count("|") >= 5]
    values_rows = {r.split("|")[1].strip(): r.split("|")[4].strip() for r in rows}
    for key in (
        "scheduler.replicas",
        "secrets.existingSecret",
        "spark.jobsNamespace",
        "airflow.executor",
    ):
        assert values_rows.get(key), key
    empty = [k for k, desc in values_rows.items() if "." in k and not desc]
    assert not empty, f"README rows without a description: {empty}"
