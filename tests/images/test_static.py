"""Cheap checks of the image sources (run by `make test`; nothing is built here).

hadolint passes on every Dockerfile; the chart's default image references equal what
hack/build-images.sh tags (Airflow's and pyspark's versions in uv.lock); the Spark image
copies the very jar directory the Spark tests put on their classpath.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml
from imagetools import BUILD_SCRIPT, DOCKERFILES, ROOT, image_names, lock_version

from localplatform import paths, versions
from localplatform.spark import SPARK_JARS_DIR

CHART = ROOT / "charts" / "orders-etl"


@pytest.mark.unit
def test_every_image_has_a_dockerfile() -> None:
    assert {p.parent.name for p in DOCKERFILES} == {
        "airflow",
        "spark",
        "pause",
        "spark-operator-standin",
    }


@pytest.mark.unit
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint(dockerfile: Any) -> None:
    hadolint = ROOT / ".venv" / "bin" / "hadolint"
    proc = subprocess.run(
        [str(hadolint), "--no-color", "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _chart_images() -> dict[str, str]:
    """Image references of the chart rendered with its defaults (+ the required DB Secret)."""
    out = subprocess.run(
        [
            str(paths.tool("helm")),
            "template",
            "oe",
            str(CHART),
            "--kube-version",
            versions.get("KUBERNETES_VERSION"),
            "--set",
            "database.existingSecret=db",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    images: dict[str, str] = {}
    for doc in yaml.safe_load_all(out):
        if not doc:
            continue
        if doc["kind"] == "ConfigMap" and "sparkapplication.yaml" in doc.get("data", {}):
            images["spark"] = yaml.safe_load(doc["data"]["sparkapplication.yaml"])["spec"]["image"]
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            if c["image"].startswith("orders-etl/airflow"):
                images.setdefault("airflow", c["image"])
                assert c["image"] == images["airflow"], "one Airflow image everywhere"
    return images


@pytest.mark.chart
def test_chart_defaults_are_the_images_built_here() -> None:
    built = image_names("airflow", "spark")
    assert _chart_images() == {"airflow": built["airflow"].ref, "spark": built["spark"].ref}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # The tags are the versions the images install from uv.lock.
    assert chart["appVersion"] == lock_version("apache-airflow")
    assert str(values["images"]["spark"]["tag"]) == lock_version("pyspark")
    assert values["images"]["airflow"]["repository"] == built["airflow"].ref.split(":")[0]
    assert values["images"]["spark"]["repository"] == built["spark"].ref.split(":")[0]


@pytest.mark.unit
def test_names_are_what_containerd_resolves() -> None:
    names = image_names()
    assert names["airflow"].qualified == f"docker.io/{names['airflow'].ref}"
    assert names["spark"].qualified == f"docker.io/{names['spark'].ref}"
    assert names["base"].ref == "python:3.11-slim-bookworm"
    assert re.fullmatch(r"localhost/orders-etl/pause:\d+\.\d+(\.\d+)?", names["pause"].ref)


@pytest.mark.unit
def test_base_image_is_an_argument_of_every_dockerfile() -> None:
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        if dockerfile.parent.name == "spark-operator-standin":  # the spark image plus a layer
            assert re.search(r"^FROM \$\{SPARK_IMAGE\}$", text, re.M), dockerfile
            continue
        assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text, dockerfile
        assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.M), dockerfile


@pytest.mark.unit
def test_spark_image_copies_the_jars_the_spark_tests_use() -> None:
    dockerfile = (ROOT / "images" / "spark" / "Dockerfile").read_text()
    rel = SPARK_JARS_DIR.relative_to(ROOT).as_posix()
    assert f"COPY {rel}/ " in dockerfile
    assert f'"$ROOT"/{rel}/*.jar' in BUILD_SCRIPT.read_text()
    # Every dependency pinned in the pom is among those jars.
    pom = ET.parse(ROOT / "hack" / "maven" / "spark" / "pom.xml")  # noqa: S314 (our own file)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    jars = {p.name for p in SPARK_JARS_DIR.glob("*.jar")}
    for dep in pom.getroot().iterfind("m:dependencies/m:dependency", ns):
        artifact = dep.findtext("m:artifactId", namespaces=ns)
        version = dep.findtext("m:version", namespaces=ns)
        assert f"{artifact}-{version}.jar" in jars, (artifact, version, sorted(jars))


@pytest.mark.unit
def test_airflow_image_installs_the_lock() -> None:
    dockerfile = (ROOT / "images" / "airflow" / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    # The production image leaves out the `local` extra (chdb, ~530 MB): only airflow-local.
    assert 'ARG EXTRAS="airflow pipeline spark-api"' in dockerfile
    versions = {
        line.split("=", 1)[1]
        for line in (ROOT / "versions.env").read_text().splitlines()
        if line.startswith("UV_VERSION=")
    }
    assert f"ARG UV_VERSION={versions.pop()}" in dockerfile
