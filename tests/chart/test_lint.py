"""`helm lint --strict` over every values file and ci/ scenario."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from localplatform import paths, versions

pytestmark = pytest.mark.chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "orders-etl"
FILES = sorted((ROOT / "values").glob("*.yaml")) + sorted((CHART / "ci").glob("*-values.yaml"))


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(paths.tool("helm")),
            "lint",
            "--strict",
            str(CHART),
            "--kube-version",
            versions.get("KUBERNETES_VERSION"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_expected_scenario_exists() -> None:
    names = {f.name for f in FILES}
    assert {"local.yaml", "kind.yaml", "production.yaml"} <= names
    for scenario in (
        "celery-ha",
        "kubernetes-executor",
        "external-db",
        "no-spark",
        "networkpolicies",
        "day2",
    ):
        assert f"{scenario}-values.yaml" in names


@pytest.mark.parametrize("values_file", FILES, ids=lambda p: p.name)
def test_lint_strict(values_file: Path) -> None:
    result = _lint("-f", str(values_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout
    # helm lint only logs a template's `fail` (and exits 0): treat it as the failure it is.
    assert "Fail:" not in result.stderr, result.stderr


def test_lint_reports_a_missing_database_secret() -> None:
    # Without the required Secret reference the chart's validation fails; lint logs it.
    result = _lint()
    assert "Fail: database.existingSecret is required" in result.stderr


def test_template_works_without_kube_version() -> None:
    """Like a released helm: the project's helm carries a Kubernetes version (its client-go
    module's, stamped by hack/install-tools.sh), so the chart's `kubeVersion: >=1.29`
    holds without `--kube-version` (a helm built without it says v1.20.0 and refuses)."""
    helm = str(paths.tool("helm"))
    result = subprocess.run(
        [helm, "template", "oe", str(CHART), "--set", "database.existingSecret=db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "kind: StatefulSet" in result.stdout
